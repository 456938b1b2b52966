"""The stream's header fields, coded in its range-coded block under fixed integer laws.

Format v7 sends no header byte it can avoid: the flags, N and every segment's chunk count,
index-law parameters and layout parameters are symbols of the same range-coded block as the
indices, each under a fixed integer law (`_tables`), so a field costs its information, not a
byte. What the decoder already holds is not sent at all: d when the caller gives the prior
(always for `decode`), and the segment count (1, or the length of the σ grid).

An unsigned integer v is coded as its bit length L = ⌊log2 v⌋ + 1 (0 for v = 0) under a
length law chosen for the field (`lengths`), then the L − 1 bits below its leading one in raw
bits: all of them (exact), or only the top P of them when the field has a precision P that both
sides know, the encoder having rounded v to P + 1 significant bits (`round_significant`). The
index-law parameters are rounded so, at a precision set by the segment's chunk count
(`law_precision`): mismatching the law by a relative δ costs each of the C chunks O(δ²) bits,
and each bit of precision halves δ, so the best precision grows like ½ log2 C. N is coded as
its exponent and, when it is not a power of two, its low bits.
"""

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rdp_jax.rcc._index_model import uniform_table
from rdp_jax.rcc._tables import Table, table_from_weights


def _length_law(size: int, *tiers: tuple[range, int]) -> Table:
    """A law on bit lengths 0, …, size − 1: weight 1, or the weight of a tier that holds the
    length (fixed integers: the laws are part of the format)."""
    weights = np.ones(size, dtype=np.int64)
    for lengths_, weight in tiers:
        weights[lengths_.start : lengths_.stop] = weight
    return table_from_weights(weights)


class Lengths(NamedTuple):
    """The length laws of the fields (bit lengths of the coded values)."""

    dim: Table  # d < 2^32
    chunks: Table  # C − 1
    kl: Table  # mean chunk KL, 1/16 bit
    sd: Table  # |sd − predicted sd|, 1/16 nat
    boosted: Table  # B − 1
    cut_scale: Table  # the cut law's scale, 1/16 dimension
    split: Table  # P(split) − 1 in 1/256, and C − C₀


@functools.cache
def lengths() -> Lengths:
    """The fields' length laws. The favoured lengths are the common values: d of 8 to 2^20,
    one chunk (a step of a few bits) and up to 1,023, a mean chunk KL of 1 to 32 bits, an sd
    within 16/16 nat of its prediction, up to 127 boosted chunks, P(split) up to 1/2."""
    return Lengths(
        dim=_length_law(33, (range(4, 21), 4)),
        chunks=_length_law(41, (range(0, 1), 12), (range(1, 11), 4)),
        kl=_length_law(MAX_LAW_BITS + 1, (range(5, 10), 8)),
        sd=_length_law(MAX_LAW_BITS - 1, (range(0, 4), 6)),
        boosted=_length_law(41, (range(0, 8), 4)),
        cut_scale=_length_law(22),
        split=_length_law(41, (range(0, 9), 4)),
    )


@functools.cache
def flag_table(one_in: int) -> Table:
    """A flag that is set once in `one_in` (an ideal 0 costs log2(n/(n−1)) bits)."""
    return table_from_weights(np.array([one_in - 1, 1]))


# The exponent e = ⌊log2 N⌋ of the candidate count: the default's 18 … 22 are favoured.
_EXPONENTS = 23
_NEAR_CERTAIN = 1 << 20  # PRNG codes 1-3 (unassigned) weigh 1 each: code 0 costs ~4e-6 bits


@functools.cache
def exponent_table() -> Table:
    weights = np.ones(_EXPONENTS, dtype=np.int64)  # e = 0 (N = 1) is invalid, and rejected
    weights[18:23] = 8
    return table_from_weights(weights)


@functools.cache
def prng_table() -> Table:
    return table_from_weights(np.array([_NEAR_CERTAIN, 1, 1, 1]))


# The index law's parameters stay below 2^16 (kl: 4,096 bits a chunk) and sd's offset below 2^14
# (1,024 nats): the decoder builds a law of a size that grows with sd, which a corrupted
# stream must not make unbounded. The encoder clamps its parameters to half of that.
MAX_LAW_BITS = 16


def clamp_law(kl_q: int, sd_q: int) -> tuple[int, int]:
    """(kl, sd) clamped so that rounding them up stays within the laws' ranges."""
    return min(kl_q, 1 << (MAX_LAW_BITS - 1)), min(sd_q, 1 << (MAX_LAW_BITS - 3))


# The largest sd a stream can carry: the clamp's 2^13 plus what rounding its offset from
# `predicted_sd_q` (at most √(2^15 · 32 ln 2) ≈ 852) to 2+ significant bits can add (a quarter
# of the offset). A decoder refuses more: a law's construction time grows with its sd.
MAX_CODED_SD_Q = 852 + (5 << (MAX_LAW_BITS - 3)) // 4


def law_precision(num_chunks: int) -> int:
    """P of the index-law parameters: the significant bits below the leading one, 1 for one
    chunk, one more per factor 4 in C, at most 7 (the 1/16 units' own resolution at k ≈ 8)."""
    return min(7, 1 + (max(num_chunks, 1).bit_length() - 1) // 2)


def round_significant(value: int, precision: int, up: bool | None = None) -> int:
    """`value` ≥ 0 rounded to `precision` + 1 significant bits: to nearest (ties up), or down
    (`up=False`), or up (`up=True`)."""
    drop = max(int(value).bit_length() - 1 - precision, 0)
    if not drop:
        return int(value)
    unit = 1 << drop
    low = int(value) & ~(unit - 1)
    if up is None:
        return low + unit if (int(value) - low) * 2 >= unit else low
    return low + unit if up and low != value else low


def predicted_sd_q(kl_q: int) -> int:
    """sd of ln w a chunk of mean KL kl_q/16 bits has when its KL is all in the mean, in 1/16
    nat: 16·√(2 ln 2 · kl) = √(kl_q · 32 ln 2), with ln 2 as 22713/32768 (integer arithmetic:
    the decoder must get the same value)."""
    return math.isqrt(kl_q * 22713 // 1024)


class Writer:
    """Codes fields into a constriction range encoder and adds up their ideal codelength."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.bits = 0.0

    def symbol(self, value: int, table: Table) -> None:
        self.encoder.encode(np.array([value], dtype=np.int32), table.model)
        self.bits += table.bits(np.array([value]))

    def raw(self, value: int, count: int) -> None:
        while count > 0:
            part = min(count, 16)
            count -= part
            self.symbol((value >> count) & ((1 << part) - 1), uniform_table(part))

    def uint(self, value: int, law: Table, precision: int | None = None) -> None:
        length = int(value).bit_length()
        if length >= len(law.freq):
            raise ValueError(f"encode: internal error: a header field is out of range ({value}).")
        self.symbol(length, law)
        below = max(length - 1, 0)
        keep = below if precision is None else min(precision, below)
        if (value >> (below - keep)) << (below - keep) != value:
            raise ValueError("encode: internal error: a header field is not rounded.")
        self.raw((value >> (below - keep)) & ((1 << keep) - 1), keep)

    def count(self, value: int) -> None:
        """N in [2, 2²²]: its exponent, a flag for a power of two, then its low bits."""
        exponent = int(value).bit_length() - 1
        self.symbol(exponent, exponent_table())
        rest = value - (1 << exponent)
        self.symbol(int(rest > 0), flag_table(16))
        if rest:
            self.raw(rest, exponent)


class Reader:
    """The inverse of `Writer`, reading from a constriction range decoder."""

    def __init__(self, decoder):
        self.decoder = decoder

    def symbol(self, table: Table) -> int:
        return int(self.decoder.decode(table.model))

    def raw(self, count: int) -> int:
        value = 0
        while count > 0:
            part = min(count, 16)
            count -= part
            value = value << part | self.symbol(uniform_table(part))
        return value

    def uint(self, law: Table, precision: int | None = None) -> int:
        length = self.symbol(law)
        below = max(length - 1, 0)
        keep = below if precision is None else min(precision, below)
        if not length:
            return 0
        return ((1 << keep | self.raw(keep)) << (below - keep)) if length > 1 else 1

    def count(self) -> int:
        exponent = self.symbol(exponent_table())
        rest = self.raw(exponent) if self.symbol(flag_table(16)) else 0
        return (1 << exponent) + rest  # the caller checks the range


# The layout parameters travel with 2 bits below their leading one (within 25 %): the cut law's
# scale and P(split) only shape a law, and are rounded down, so a nonzero one stays nonzero.
_LAYOUT_PRECISION = 2


def round_layout_q(layout: str, layout_q: int) -> int:
    """The layout parameter as the stream carries it (split codes P − 1, P ≥ 1)."""
    if not layout_q:
        return 0
    shift = int(layout == "split")
    return shift + round_significant(layout_q - shift, _LAYOUT_PRECISION, up=False)


def write_layout(out: Writer, layout: str, layout_q: int, base_chunks: int, chunks: int) -> None:
    """The layout fields of C > 1 chunks: the mode (cuts or split), then the cut law's scale, or
    C − C₀ and, when some chunk split, P(split) − 1 (`_layout_code`)."""
    law = lengths()
    out.symbol(int(layout == "split"), flag_table(2))
    if layout == "cuts":
        out.uint(layout_q, law.cut_scale, _LAYOUT_PRECISION)
        return
    out.uint(chunks - base_chunks, law.split)
    if chunks > base_chunks:
        out.uint(layout_q - 1, law.split, _LAYOUT_PRECISION)


def read_layout(reader: Reader, chunks: int) -> tuple[int, int, int]:
    """The inverse of `write_layout`: (mode, layout_q, C₀)."""
    law = lengths()
    if reader.symbol(flag_table(2)):
        base_chunks = chunks - reader.uint(law.split)
        layout_q = reader.uint(law.split, _LAYOUT_PRECISION) + 1 if base_chunks < chunks else 0
        return 1, layout_q, base_chunks
    return 0, reader.uint(law.cut_scale, _LAYOUT_PRECISION), chunks


def write_segment(out: Writer, segment) -> None:
    """A coded segment's fields (`_bitstream.Segment`): C − 1, kl, sd's offset from
    `predicted_sd_q(kl)` (magnitude, then its sign if nonzero), the boost flag and B − 1, and
    for C > 1 the layout's (`write_layout`)."""
    law = lengths()
    chunks = len(segment.counts)
    precision = law_precision(chunks)
    out.uint(chunks - 1, law.chunks)
    out.uint(segment.kl_q, law.kl, precision)
    off = segment.sd_q - predicted_sd_q(segment.kl_q)
    out.uint(abs(off), law.sd, precision)
    if off:
        out.symbol(int(off < 0), flag_table(2))
    boosted = int(np.count_nonzero(segment.extra))
    out.symbol(int(boosted > 0), flag_table(32))
    if boosted:
        out.uint(boosted - 1, law.boosted)
    if chunks > 1:  # one chunk needs no layout (`plan_layout` makes it "cuts")
        write_layout(out, segment.layout, segment.layout_q, segment.base_chunks, chunks)


def read_segment(reader: Reader) -> tuple[int, int, int, int, int, int, int]:
    """The inverse of `write_segment`: (C, kl, sd, B, layout mode, layout parameter, C₀),
    unchecked."""
    law = lengths()
    chunks = reader.uint(law.chunks) + 1
    precision = law_precision(chunks)
    kl_q = reader.uint(law.kl, precision)
    off = reader.uint(law.sd, precision)
    if off and reader.symbol(flag_table(2)):
        off = -off
    boosted = reader.uint(law.boosted) + 1 if reader.symbol(flag_table(32)) else 0
    mode, layout_q, base_chunks = read_layout(reader, chunks) if chunks > 1 else (0, 0, chunks)
    return chunks, kl_q, predicted_sd_q(kl_q) + off, boosted, mode, layout_q, base_chunks


def cost(write: Callable[[Writer], None]) -> float:
    """The ideal codelength of the fields `write` codes, in bits, without coding them."""

    class _Null:
        def encode(self, *_):
            pass

    writer = Writer(_Null())
    write(writer)
    return writer.bits
