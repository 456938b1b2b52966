"""The byte format: a magic byte, the version, one range-coded block (constriction), CRC32.

A stream carries S ≥ 1 *segments*, each one channel-simulated Gaussian message with its own
chunk layout and index law: `encode` writes one, the progressive coder one per σ step. Every law
is an integer table built from integers the stream carries (`_tables`), and the candidates
follow `_candidates`, so a stream decodes to the same bits on every machine. Format version 7:

==============  =============================================================================
field           content
==============  =============================================================================
magic, version  1 byte: its high 4 bits `MAGIC` (0xD), its low 4 bits `FORMAT_VERSION`
block           one range-coded block. First the stream's fields (`_fields`): the dtype, the
                algorithm (PFR or ORC), the progressive flag, the PRNG (0: Threefry-2x32 as
                `_candidates` specifies), d unless the decoder holds the prior (always for
                `decode`; for `progressive_decode` when `prior_mean` or `prior_std` is
                given; a carried d is at most `MAX_DIM`), N. S is not
                sent: it is 1, or the length of the σ grid the decoder is given. Then, per
                segment: C − 1; the index-law parameters kl (mean chunk KL, 1/16 bit) and sd
                (of ln w, 1/16 nat, as its difference from the sd of an all-mean-shift chunk of
                KL kl, `_fields.predicted_sd_q`), both rounded to the precision
                `_fields.law_precision(C)`; a flag and B, the boosted chunk count; for C > 1 the
                layout mode, then the cut law's scale (cuts) or C − C₀ and P(split) (split),
                `_layout_code`; then the segment's payload: the chunks' candidate-count
                exponents (if B > 0), the C indices, chunk c's under the index law of N·2^(e_c)
                candidates (each as its knot interval under the law's integer table, then its
                offset in the interval's b raw bits, grouped by b: `_index_model.IndexLaw`),
                then the layout symbols (`_layout_code`). The block is cut to the shortest byte
                string that still decodes to the same symbols when zero-padded (checked by
                decoding it), which saves the ~15 bits a sealed range coder spends on its final
                word.
crc             4 bytes big-endian: CRC32 of everything above, seeded with the CRC32 of the
                decoder's context (the key data, the bytes of the prior, and for progressive
                streams the σ grid and the score model's fingerprint) and of the digests of
                every index-law and layout table the stream is coded with. A corrupted or
                truncated stream, a wrong key, prior, grid or score model, or a decoder whose
                tables differ in any bit all fail this check (unnoticed with probability
                2⁻³²).
==============  =============================================================================

Format v6 (two magic bytes "RJ", then the version) put the header in LEB128 varints, a byte or
more per field; its streams, and v5's, are refused with their version named.
"""

import zlib
from typing import NamedTuple

import constriction
import numpy as np

from rdp_jax.rcc import _fields
from rdp_jax.rcc._fields import Reader, Writer
from rdp_jax.rcc._index_model import IndexLaw, index_bits, index_law, uniform_table
from rdp_jax.rcc._layout_code import (
    LAYOUTS,
    MAX_CANDIDATES,
    MAX_CUT_SCALE,
    SPLIT_SCALE,
    cut_table,
    decode_layout,
    extra_table,
    layout_symbols,
    max_extra,
    split_table,
)
from rdp_jax.rcc._tables import Table

# One byte says "rdp-jax, format v": a foreign byte string passes it with probability 1/16, and
# then fails the CRC (2⁻³²) if nothing else.
MAGIC = 0xD
FORMAT_VERSION = 7
LEGACY_MAGIC = b"RJ"  # formats 5 and 6: two magic bytes, then the version
DTYPES = ("float32", "float64")
ALGORITHMS = ("pfr", "orc")
PRNGS = ("threefry2x32",)
_FIXED = 1
_CRC = 4
# The largest d a stream may carry: far beyond what the channel search can code (10⁵ dimensions
# take most of an hour on two cores), and small enough that a corrupted d cannot make a decoder
# allocate more than a few GiB before the CRC refuses the stream.
MAX_DIM = 2**27


class Segment(NamedTuple):
    """One message's index-law parameters, chunk layout (`counts` sums to d) and the
    candidate-count exponent of each chunk (`extra`: chunk c searches N·2^extra[c]).

    `layout` is "cuts" (`layout_q`: the cut law's scale in 1/16 dimension) or "split"
    (`layout_q`: P(split) in 1/256, `base_chunks`: C₀); see `_layout_code`.
    """

    kl_q: int
    sd_q: int
    layout: str
    layout_q: int
    base_chunks: int
    counts: np.ndarray
    extra: np.ndarray


class Header(NamedTuple):
    dtype: str
    algorithm: str
    progressive: bool
    dim: int
    num_candidates: int
    segments: tuple[Segment, ...]


class Packed(NamedTuple):
    """What `pack` returns: the stream, the segments as coded (their index-law and layout
    parameters rounded to what the stream carries), and its bits: `payload_bits`, the block
    less its header fields' ideal codelength (so the coder's last bits count as payload);
    `header_bits`, the rest (the magic and version byte, the fields, CRC); `step_header_bits`, each
    segment's fields' ideal codelength."""

    data: bytes
    segments: tuple[Segment, ...]
    payload_bits: int
    header_bits: int
    step_header_bits: np.ndarray


def _boosted(segment: Segment) -> int:
    return int(np.count_nonzero(segment.extra))


def coded(segment: Segment, indices: np.ndarray, num_candidates: int, algorithm: str) -> Segment:
    """`segment` with its parameters at the precision the stream carries them: the layout's
    rounded down to 3 significant bits (a nonzero one stays nonzero and in range), and the
    index law's (kl, sd) at `_fields.law_precision(C)`, kl rounded down or up and sd's offset
    from its prediction 0 or rounded, whichever of the four codes the fields and `indices` in
    the fewest bits (the encoder's choice: the decoder reads what was chosen)."""
    num_chunks = len(segment.counts)
    if num_chunks == 1:  # no layout is stored: it reads back as equal-width "cuts"
        segment = segment._replace(layout="cuts", layout_q=0, base_chunks=1)
    elif segment.layout == "cuts":
        layout_q = _fields.round_layout_q("cuts", segment.layout_q)
        segment = segment._replace(layout_q=layout_q, base_chunks=num_chunks)
    else:  # split: P(split) is stored only when some chunk split
        split = segment.base_chunks < num_chunks
        layout_q = _fields.round_layout_q("split", segment.layout_q) if split else 0
        segment = segment._replace(layout_q=layout_q)
    precision = _fields.law_precision(num_chunks)
    kl_q, sd_q = _fields.clamp_law(segment.kl_q, segment.sd_q)
    segment = segment._replace(kl_q=kl_q, sd_q=sd_q)

    def bits(candidate: Segment) -> float:
        fields = _fields.cost(lambda out: _fields.write_segment(out, candidate))
        law = (num_candidates, candidate.kl_q, candidate.sd_q, algorithm)
        return fields + index_bits(indices, candidate.extra, *law)

    candidates = []
    for up in (False, True):
        kl_q = _fields.round_significant(segment.kl_q, precision, up)
        predicted = _fields.predicted_sd_q(kl_q)
        off = _fields.round_significant(abs(segment.sd_q - predicted), precision)
        for sd_q in (predicted, predicted + off if segment.sd_q >= predicted else predicted - off):
            if sd_q >= 0:  # a rounded offset below −predicted is not a law
                candidates.append(segment._replace(kl_q=kl_q, sd_q=sd_q))
    return min(candidates, key=bits)


def _index_runs(header: Header, segment: Segment):
    """(first chunk, end chunk, index law) of each run of chunks with one candidate count."""
    starts = np.flatnonzero(np.diff(segment.extra, prepend=-1))
    ends = np.append(starts[1:], len(segment.extra))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        count = header.num_candidates << int(segment.extra[start])
        yield start, end, index_law(count, segment.kl_q, segment.sd_q, header.algorithm)


def _segment_tables(header: Header, segment: Segment) -> list[Table]:
    """Every table `segment` is coded with, in a fixed order (their digests seed the CRC)."""
    tables = [table for _, _, table in _index_runs(header, segment)]
    if _boosted(segment):
        tables.insert(0, extra_table(len(segment.counts), _boosted(segment), header.num_candidates))
    if len(segment.counts) > 1 and segment.layout_q:
        tables.append(
            cut_table(header.dim, segment.layout_q)
            if segment.layout == "cuts"
            else split_table(segment.layout_q)
        )
    return tables


def _read_segment_fields(reader: Reader, dim: int, num_candidates: int) -> Segment:
    num_chunks, kl_q, sd_q, boosted, mode, layout_q, base_chunks = _fields.read_segment(reader)
    if (
        num_chunks > dim
        or not 0 <= sd_q <= _fields.MAX_CODED_SD_Q
        or not 1 <= base_chunks <= num_chunks
        or (mode and layout_q >= SPLIT_SCALE)
        or (not mode and layout_q > MAX_CUT_SCALE)
        or boosted > num_chunks
        or (boosted and not max_extra(num_candidates))
    ):
        raise _corrupt("inconsistent header: chunk layout")
    # `extra` holds B nonzero placeholders until the payload gives the exponents.
    extra = np.zeros(num_chunks, dtype=np.int64)
    extra[:boosted] = 1
    counts = np.zeros(num_chunks, dtype=np.int64)
    return Segment(kl_q, sd_q, LAYOUTS[mode], layout_q, base_chunks, counts, extra)


def _encode_indices(encoder, law: IndexLaw, indices: np.ndarray) -> None:
    """The indices' intervals under the law, then their offsets, b raw bits each, grouped by
    b in increasing order (the decoder learns every b from the intervals)."""
    interval, offset, width_bits = law.split(indices)
    encoder.encode(interval.astype(np.int32), law.intervals.model)
    for b in np.unique(width_bits[width_bits > 0]).tolist():
        encoder.encode(offset[width_bits == b].astype(np.int32), uniform_table(b).model)


def _decode_indices(decoder, law: IndexLaw, count: int) -> np.ndarray:
    """The inverse of `_encode_indices`."""
    interval = decoder.decode(law.intervals.model, count).astype(np.int64)
    width_bits = law.width_bits(interval)
    indices = law.knots[interval]
    for b in np.unique(width_bits[width_bits > 0]).tolist():
        where = width_bits == b
        indices[where] += decoder.decode(uniform_table(b).model, int(where.sum()))
    return indices


def _write_stream_fields(out: Writer, header: Header, send_dim: bool) -> None:
    out.symbol(DTYPES.index(header.dtype), _fields.flag_table(2))
    out.symbol(ALGORITHMS.index(header.algorithm), _fields.flag_table(2))
    out.symbol(int(header.progressive), _fields.flag_table(2))
    out.symbol(0, _fields.prng_table())
    if send_dim:
        out.uint(header.dim, _fields.lengths().dim)
    out.count(header.num_candidates)


def _read_block(
    block: bytes, dim: int | None, steps: int | None, model_dim: int | None
) -> tuple[Header, list]:
    """The header (each segment with its chunk widths and exponents) and the indices, from a
    zero-padded block; `dim` None when the stream carries d (which must then be `model_dim`
    when that is given), `steps` None for one-shot."""
    words = np.frombuffer(block + b"\0" * (-len(block) % 4), dtype=">u4").astype(np.uint32)
    decoder = constriction.stream.queue.RangeDecoder(words)
    reader = Reader(decoder)
    dtype = DTYPES[reader.symbol(_fields.flag_table(2))]
    algorithm = ALGORITHMS[reader.symbol(_fields.flag_table(2))]
    progressive = bool(reader.symbol(_fields.flag_table(2)))
    if progressive != (steps is not None):
        raise _KindError(progressive)
    prng = reader.symbol(_fields.prng_table())
    if prng >= len(PRNGS):
        raise _StreamError(f"decode: `data` uses an unknown PRNG (code {prng}).")
    if dim is None:
        dim = reader.uint(_fields.lengths().dim)
        if model_dim is not None and dim != model_dim:
            raise _StreamError(
                f"decode: `data` holds a message of {dim} dimensions, not the model's {model_dim}."
            )
    num_candidates = reader.count()
    if not 1 <= dim <= MAX_DIM or not 2 <= num_candidates <= MAX_CANDIDATES:
        raise _corrupt("inconsistent header: d or N")
    header = Header(dtype, algorithm, progressive, dim, num_candidates, ())
    segments, indices = [], []
    for _ in range(steps or 1):
        segment = _read_segment_fields(reader, dim, num_candidates)
        num_chunks = len(segment.counts)
        extra = np.zeros(num_chunks, dtype=np.int64)
        if _boosted(segment):
            table = extra_table(num_chunks, _boosted(segment), num_candidates)
            extra = decoder.decode(table.model, num_chunks).astype(np.int64)
            if np.count_nonzero(extra) != _boosted(segment):
                raise _corrupt("inconsistent candidate counts")
        segment = segment._replace(extra=extra)
        chosen = np.empty(num_chunks, dtype=np.int64)
        for start, end, law in _index_runs(header, segment):
            chosen[start:end] = _decode_indices(decoder, law, end - start)
        counts = decode_layout(decoder, dim, segment).astype(np.int64)
        if len(counts) != num_chunks or np.any(counts < 1):
            raise _corrupt("inconsistent chunk layout")
        segments.append(segment._replace(counts=counts))
        indices.append(chosen)
    return header._replace(segments=tuple(segments)), indices


class _StreamError(ValueError):
    """What the parser found wrong with a stream (other errors are the range decoder's)."""


def _corrupt(what: str) -> _StreamError:
    return _StreamError(f"decode: `data` is truncated or corrupted ({what}).")


class _KindError(_StreamError):
    """A one-shot stream given to the progressive decoder, or the other way round."""

    def __init__(self, progressive: bool):
        super().__init__(
            "decode: `data` is a progressive stream; use `progressive_decode`."
            if progressive
            else "decode: `data` is a one-shot stream; use `rdp_jax.rcc.decode`."
        )


def _decode_block(block: bytes, dim, steps, model_dim) -> tuple[Header, list]:
    try:
        return _read_block(block, dim, steps, model_dim)
    except _StreamError:
        raise
    except Exception as error:  # constriction signals malformed data with its own error types
        raise ValueError(
            f"decode: `data` is truncated or corrupted: its payload does not decode ({error})."
        ) from None


def _decodes_to(block: bytes, header: Header, indices: list[np.ndarray], dim, steps) -> bool:
    try:
        got, decoded = _decode_block(block, dim, steps, None)
    except ValueError:
        return False
    return got.dim == header.dim and all(
        np.array_equal(chosen, want)
        and np.array_equal(a.counts, b.counts)
        and np.array_equal(a.extra, b.extra)
        and a[:5] == b[:5]
        for a, b, chosen, want in zip(got.segments, header.segments, decoded, indices, strict=True)
    )


def _shortest_block(block: bytes, header: Header, indices, dim, steps) -> bytes:
    """The shortest prefix of `block`, possibly with its last byte incremented, that decodes to
    the header and `indices`. Valid code values form an interval, so the search stops at the
    first length with neither candidate (the truncation, and the truncation plus one unit in its
    last byte)."""
    best = block
    for length in range(len(block) - 1, -1, -1):
        cut = block[:length]
        bumped = int.from_bytes(cut, "big") + 1
        candidates = [cut] + ([bumped.to_bytes(length, "big")] if bumped < 256**length else [])
        found = next((c for c in candidates if _decodes_to(c, header, indices, dim, steps)), None)
        if found is None:
            break
        best = found
    return best


def crc(stream: bytes, header: Header, context: bytes) -> bytes:
    """CRC32 of `stream`, seeded with `context` and the digests of the stream's tables."""
    seed = zlib.crc32(context)
    for segment in header.segments:
        for table in _segment_tables(header, segment):
            seed = zlib.crc32(table.digest.to_bytes(4, "big"), seed)
    return zlib.crc32(stream, seed).to_bytes(4, "big")


def pack(header: Header, indices: list[np.ndarray], context: bytes, send_dim: bool) -> Packed:
    """Serialises the header and each segment's exponents, indices and layout.

    `context` is what the decoder must supply identically (key data, prior bytes, ...): it seeds
    the CRC and is not stored. `send_dim`: whether the stream carries d (the decoder cannot
    take it from a prior). The segments' parameters are rounded first (`coded`).

    **Returns:** a `Packed`.
    """
    header = header._replace(
        segments=tuple(
            coded(s, chosen, header.num_candidates, header.algorithm)
            for s, chosen in zip(header.segments, indices, strict=True)
        )
    )
    encoder = constriction.stream.queue.RangeEncoder()
    out = Writer(encoder)
    _write_stream_fields(out, header, send_dim)
    step_bits = []
    for segment, chosen in zip(header.segments, indices, strict=True):
        before = out.bits
        _fields.write_segment(out, segment)
        step_bits.append(out.bits - before)
        if _boosted(segment):
            table = extra_table(len(segment.counts), _boosted(segment), header.num_candidates)
            encoder.encode(segment.extra.astype(np.int32), table.model)
        for start, end, law in _index_runs(header, segment):
            _encode_indices(encoder, law, chosen[start:end])
        symbols, table = layout_symbols(header.dim, segment)
        if table is not None:
            encoder.encode(symbols, table.model)
    dim = None if send_dim else header.dim
    steps = len(header.segments) if header.progressive else None
    words = encoder.get_compressed().astype(">u4").tobytes()
    block = _shortest_block(words, header, indices, dim, steps)
    data = bytes([MAGIC << 4 | FORMAT_VERSION]) + block
    data += crc(data, header, context)
    payload = 8 * len(block) - round(out.bits)
    return Packed(data, header.segments, payload, 8 * len(data) - payload, np.array(step_bits))


def unpack(
    data: bytes,
    where: str = "decode",
    *,
    dim: int | None = None,
    steps: int | None = None,
    model_dim: int | None = None,
) -> tuple[Header, list[np.ndarray]]:
    """`parse` with its errors named after the caller, `where` ("decode" or
    "progressive_decode")."""
    try:
        return parse(data, dim=dim, steps=steps, model_dim=model_dim)
    except ValueError as error:
        message = str(error)
        if not message.startswith("decode: ") or where == "decode":
            raise
        raise ValueError(f"{where}: {message[len('decode: ') :]}") from None


def parse(
    data: bytes,
    *,
    dim: int | None = None,
    steps: int | None = None,
    model_dim: int | None = None,
) -> tuple[Header, list[np.ndarray]]:
    """Parses a stream; returns the header (with each segment's chunk widths and exponents) and
    the indices.

    **Arguments:** `data`; `dim`, the d the decoder takes from its prior (None: the stream
    carries it, at most `MAX_DIM`); `steps`, the σ grid's length for a progressive stream (None:
    one-shot); `model_dim`, the d a stream that carries it must have (the decoder's model's),
    checked before any segment is read.

    The CRC is *not* checked here: its seed needs the decoder's context (`check_crc`).

    **Raises:** `ValueError` for anything that is not bytes or not an rdp-jax stream, a stream
    that is too short, of another format version or PRNG, of the other kind (one-shot or
    progressive), or with an inconsistent header, payload or chunk layout.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"decode: `data` must be bytes; got {type(data).__name__}.")
    data = bytes(data)
    if data[: len(LEGACY_MAGIC)] == LEGACY_MAGIC and len(data) > len(LEGACY_MAGIC):
        version = data[len(LEGACY_MAGIC)]
    elif data and data[0] >> 4 == MAGIC:
        version = data[0] & 0xF
    else:
        raise ValueError("decode: `data` is not an rdp-jax stream (no magic number).")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"decode: unsupported format version {version} in `data` (this build reads "
            f"{FORMAT_VERSION} only; streams do not carry over between format versions, so "
            "decode it with the rdp-jax that wrote it, or encode the message again)."
        )
    if len(data) < _FIXED + _CRC:
        raise ValueError(f"decode: `data` is truncated ({len(data)} bytes).")
    return _decode_block(data[_FIXED:-_CRC], dim, steps, model_dim)


def check_crc(
    data: bytes, header: Header, context: bytes, where: str = "decode", inputs: str = ""
) -> None:
    """**Raises:** `ValueError` when the stored CRC does not match `data` and `context`, naming
    the caller `where` and the arguments that seed the CRC (`inputs`; by default `decode`'s)."""
    data = bytes(data)
    if crc(data[:-_CRC], header, context) != data[-_CRC:]:
        inputs = inputs or "`key`, `p_mean` or `p_std`"
        raise ValueError(
            f"{where}: CRC32 mismatch: `data` is corrupted or truncated, or {inputs} differ "
            "from the encoder's."
        )
