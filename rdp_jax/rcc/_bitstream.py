"""The byte format: header, range-coded indices and chunk layouts (constriction), CRC32.

A stream carries S ≥ 1 *segments*, each one channel-simulated Gaussian message with its own
chunk layout and index law: `encode` writes one, the progressive coder one per σ step. Layout of
format version 4 (integers are unsigned LEB128 varints unless stated):

==============  =============================================================================
field           content
==============  =============================================================================
version         1 byte, `FORMAT_VERSION`
flags           1 byte: bit 0 dtype (0 float32, 1 float64), bits 1-2 algorithm (0 PFR, 1 ORC),
                bit 3 progressive
d, N, S         the dimension, the candidates per chunk, the number of segments
per segment     C (chunks), kl (the mean chunk KL in 1/16 bit) and sd (the sd of ln w per
                chunk in 1/16 nat), the parameters of the index law
                (`_index_model.index_law`); then, if C > 1, 2·a + m with m the layout mode
                and a its parameter, and for the split mode the base chunk count C₀:
                m = 0, KL-balanced cuts: a = the Cauchy scale of the width changes
                (1/16 dimension; 0: equal widths, none coded); m = 1, split: a = P(split)
                in 1/256 (0: no chunk split, no flags coded)
payload         one range-coded block: per segment, its C indices under its index law, then
                its layout: for cuts, the changes from chunk to chunk of the width excess over
                `balanced_cuts(d, C)` (C − 1 of them) under a quantised Cauchy law centred
                on 0 (free when the KL per dimension is uniform); for split, the Bernoulli flags of
                `split_counts(d, C₀, ·)` in its visiting order. The block is cut to the
                shortest byte string that still decodes to the same symbols when zero-padded
                (checked by decoding it), which saves the ~15 bits a sealed range coder
                spends on its final word.
crc             4 bytes big-endian: CRC32 of everything above, seeded with the CRC32 of the
                decoder's context (the key data, the bytes of the prior, and for progressive
                streams the decoded sample) and of the index-law tables. A corrupted or
                truncated stream, a wrong key, prior or score model, or a decoder whose model
                tables differ in any bit all fail this check (unnoticed with probability 2⁻³²).
==============  =============================================================================
"""

import math
import zlib
from typing import NamedTuple

import constriction
import numpy as np

from rdp_jax.rcc._index_model import index_law
from rdp_jax.rcc._layout import balanced_cuts, split_counts

FORMAT_VERSION = 4
DTYPES = ("float32", "float64")
ALGORITHMS = ("pfr", "orc")
LAYOUTS = ("cuts", "split")
CUT_SCALE = 16  # Cauchy scale of the cut-mode width deviations, 1/16 dimension
SPLIT_SCALE = 256  # split probability, 1/256
MAX_CANDIDATES = 2**22


class Segment(NamedTuple):
    """One message's index-law parameters and chunk layout (`counts` sums to d).

    `layout` is "cuts" (`layout_q`: the Cauchy scale of the width deviations in 1/16 dimension)
    or "split" (`layout_q`: P(split) in 1/256, `base_chunks`: C₀); see the module docstring.
    """

    kl_q: int
    sd_q: int
    layout: str
    layout_q: int
    base_chunks: int
    counts: np.ndarray


class Header(NamedTuple):
    dtype: str
    algorithm: str
    progressive: bool
    dim: int
    num_candidates: int
    segments: tuple[Segment, ...]


def _put_varint(out: bytearray, value: int) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return


def _get_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("decode: `data` is truncated or corrupted (bad header varint).")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _width_deviations(counts: np.ndarray) -> np.ndarray:
    """Cut mode: how much each of the first C − 1 chunks deviates from the balanced width
    (`balanced_cuts(d, C)`) more than its predecessor did. Slowly varying KL (smooth image
    regions) makes most of them 0, and a uniform KL all of them."""
    excess = counts - np.diff(balanced_cuts(int(counts.sum()), len(counts)))
    return np.diff(excess[:-1], prepend=0)


def _split_flags(dim: int, segment: Segment) -> np.ndarray:
    """Split mode: the answers that make `split_counts` rebuild `segment.counts`."""
    ends = np.cumsum(segment.counts)
    leaves = set(zip((ends - segment.counts).tolist(), ends.tolist(), strict=True))
    flags = []

    def answer(start: int, stop: int) -> bool:
        flags.append((start, stop) not in leaves)
        return flags[-1]

    if not np.array_equal(split_counts(dim, segment.base_chunks, answer), segment.counts):
        raise ValueError("encode: internal error: the chunk layout is not a split layout.")
    return np.array(flags, dtype=np.int32)


def layout_symbols(dim: int, segment: Segment) -> np.ndarray:
    """The symbols that code `segment`'s layout; none when its parameter is 0 (cuts: all
    widths equal; split: no chunk split)."""
    symbols = (
        _width_deviations(segment.counts)
        if segment.layout == "cuts"
        else _split_flags(dim, segment)
    ).astype(np.int32)
    if segment.layout_q == 0 and symbols.any():
        raise ValueError("encode: internal error: layout symbols with a zero layout parameter.")
    return symbols if segment.layout_q else symbols[:0]


def _cauchy_bits(deviations: np.ndarray, scale: float) -> float:
    """Σ −log2 P(x) under a Cauchy(0, scale) law quantised to the integers (truncation to [−d, d]
    ignored). For |x| ≥ 1, atan((x+½)/s) − atan((x−½)/s) = atan(s / (s² + x² − ¼)) avoids the
    cancellation of two angles near π/2."""
    x2 = np.asarray(deviations, dtype=np.float64) ** 2
    nonzero = x2 > 0.0
    arg = scale / np.where(nonzero, scale * scale + x2 - 0.25, 1.0)
    p = np.where(nonzero, np.arctan(arg), 2.0 * np.arctan(0.5 / scale)) / math.pi
    return float(-np.sum(np.log2(p)))


def cut_scale_q(counts: np.ndarray) -> int:
    """The Cauchy scale of the cut mode, in 1/16 dimension, that codes `_width_deviations` in
    the fewest bits (a grid search). Cauchy, not Laplace: deviations are mostly 0 with a few
    large ones where the KL per dimension jumps (region edges), and a heavy tail pays for those
    in O(log) bits without making the zeros costly."""
    deviations = _width_deviations(counts)
    if not deviations.any():
        return 0  # equal widths: no deviation is coded
    grid = np.unique(np.round(np.geomspace(1, CUT_SCALE * counts.sum(), 64)).astype(int))
    return int(min(grid, key=lambda q: _cauchy_bits(deviations, q / CUT_SCALE)))


def split_probability_q(flags: np.ndarray) -> int:
    """P(split) of the split mode in 1/256, in [1, 255] when any flag is set, else 0."""
    if not flags.any():
        return 0
    return int(np.clip(round(SPLIT_SCALE * float(np.mean(flags))), 1, SPLIT_SCALE - 1))


def _cut_model(dim: int, segment: Segment):
    """The quantised Cauchy law of the width deviations on [−d, d], centred on 0."""
    scale = max(segment.layout_q, 1) / CUT_SCALE
    return constriction.stream.model.QuantizedCauchy(-dim, dim, 0.0, scale)


def _split_model(dim: int, segment: Segment):
    """The Bernoulli law of the split flags (`dim` unused: the signature of `_cut_model`)."""
    return constriction.stream.model.Bernoulli(segment.layout_q / SPLIT_SCALE, perfect=False)


def layout_bits(dim: int, segment: Segment) -> float:
    """What `segment`'s layout costs in bits: its header fields, and the ideal codelength of
    its symbols (the range coder adds < 1 bit per block)."""
    if len(segment.counts) == 1:
        return 0.0
    header = bytearray()
    for value in _layout_fields(segment):
        _put_varint(header, value)
    return 8 * len(header) + _symbol_bits(layout_symbols(dim, segment), segment)


def _layout_fields(segment: Segment) -> list[int]:
    """The header varints of a layout of C > 1 chunks: 2·a + m, then C₀ for the split mode."""
    fields = [2 * segment.layout_q + LAYOUTS.index(segment.layout)]
    return fields + ([segment.base_chunks] if segment.layout == "split" else [])


def _symbol_bits(symbols: np.ndarray, segment: Segment) -> float:
    if not len(symbols):
        return 0.0
    if segment.layout == "split":
        p = segment.layout_q / SPLIT_SCALE
        return float(-np.sum(np.where(symbols, np.log2(p), np.log2(1.0 - p))))
    return _cauchy_bits(symbols, max(segment.layout_q, 1) / CUT_SCALE)


def _decode_layout(decoder, dim: int, segment: Segment) -> np.ndarray:
    num_chunks = len(segment.counts)
    if segment.layout == "cuts":
        deviations = np.zeros(num_chunks - 1, dtype=np.int64)
        if num_chunks > 1 and segment.layout_q:
            deviations = decoder.decode(_cut_model(dim, segment), num_chunks - 1)
        widths = np.diff(balanced_cuts(dim, num_chunks))
        widths[:-1] += np.cumsum(deviations, dtype=np.int64)
        widths[-1] = dim - widths[:-1].sum()
        return widths
    if segment.layout_q == 0:
        return split_counts(dim, segment.base_chunks, lambda start, stop: False)
    model = _split_model(dim, segment)
    return split_counts(dim, segment.base_chunks, lambda start, stop: bool(decoder.decode(model)))


def _decode_block(block: bytes, header: Header) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each segment's C indices and chunk widths, from a zero-padded block."""
    words = np.frombuffer(block + b"\0" * (-len(block) % 4), dtype=">u4").astype(np.uint32)
    out = []
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        for segment in header.segments:
            _, model, _ = index_law(
                header.num_candidates, segment.kl_q, segment.sd_q, header.algorithm
            )
            chosen = decoder.decode(model, len(segment.counts)).astype(np.int64)
            out.append((chosen, _decode_layout(decoder, header.dim, segment).astype(np.int64)))
    except Exception as error:  # constriction signals malformed data with its own error types
        raise ValueError(
            f"decode: `data` is truncated or corrupted: its payload does not decode ({error})."
        ) from None
    return out


def _decodes_to(block: bytes, header: Header, indices: list[np.ndarray]) -> bool:
    try:
        decoded = _decode_block(block, header)
    except ValueError:
        return False
    return all(
        np.array_equal(chosen, want) and np.array_equal(counts, segment.counts)
        for (chosen, counts), want, segment in zip(decoded, indices, header.segments, strict=True)
    )


def _shortest_block(block: bytes, header: Header, indices: list[np.ndarray]) -> bytes:
    """The shortest prefix of `block`, possibly with its last byte incremented, that decodes to
    `indices` and the header's layouts. Valid code values form an interval, so the search stops
    at the first length with neither candidate (the truncation, and the truncation plus one unit
    in its last byte)."""
    best = block
    for length in range(len(block) - 1, -1, -1):
        cut = block[:length]
        bumped = int.from_bytes(cut, "big") + 1
        candidates = [cut] + ([bumped.to_bytes(length, "big")] if bumped < 256**length else [])
        found = next((c for c in candidates if _decodes_to(c, header, indices)), None)
        if found is None:
            break
        best = found
    return best


def _header_bytes(header: Header) -> bytearray:
    flags = (
        DTYPES.index(header.dtype)
        | ALGORITHMS.index(header.algorithm) << 1
        | int(header.progressive) << 3
    )
    out = bytearray([FORMAT_VERSION, flags])
    for value in (header.dim, header.num_candidates, len(header.segments)):
        _put_varint(out, value)
    for segment in header.segments:
        values = [len(segment.counts), segment.kl_q, segment.sd_q]
        if len(segment.counts) > 1:  # one chunk needs no layout (`plan_layout` makes it "cuts")
            values += _layout_fields(segment)
        for value in values:
            _put_varint(out, int(value))
    return out


def crc(stream: bytes, header: Header, context: bytes) -> bytes:
    """CRC32 of `stream`, seeded with `context` and the digests of the index-law tables."""
    seed = zlib.crc32(context)
    for segment in header.segments:
        _, _, digest = index_law(
            header.num_candidates, segment.kl_q, segment.sd_q, header.algorithm
        )
        seed = zlib.crc32(digest.to_bytes(4, "big"), seed)
    return zlib.crc32(stream, seed).to_bytes(4, "big")


def pack(header: Header, indices: list[np.ndarray], context: bytes) -> tuple[bytes, int]:
    """Serialises the header and each segment's indices and layout.

    `context` is what the decoder must supply identically (key data, prior bytes, ...): it seeds
    the CRC and is not stored.

    **Returns:** the stream and the length of its payload block in bytes.
    """
    out = _header_bytes(header)
    encoder = constriction.stream.queue.RangeEncoder()
    for segment, chosen in zip(header.segments, indices, strict=True):
        _, model, _ = index_law(header.num_candidates, segment.kl_q, segment.sd_q, header.algorithm)
        encoder.encode(np.asarray(chosen, dtype=np.int32), model)
        symbols = layout_symbols(header.dim, segment)
        if len(symbols):
            layout_model = _cut_model if segment.layout == "cuts" else _split_model
            encoder.encode(symbols, layout_model(header.dim, segment))
    block = _shortest_block(encoder.get_compressed().astype(">u4").tobytes(), header, indices)
    out += block
    out += crc(bytes(out), header, context)
    return bytes(out), len(block)


def unpack(data: bytes) -> tuple[Header, list[np.ndarray]]:
    """Parses a stream; returns the header (with each segment's chunk widths) and the indices.

    The CRC is *not* checked here: its seed needs the decoder's context (`check_crc`).

    **Raises:** `ValueError` for a stream that is not bytes, too short, of another format
    version, or with an inconsistent header, payload or chunk layout.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"decode: `data` must be bytes; got {type(data).__name__}.")
    data = bytes(data)
    if len(data) < 2 + 6 + 4:
        raise ValueError(f"decode: `data` is truncated ({len(data)} bytes).")
    if data[0] != FORMAT_VERSION:
        raise ValueError(
            f"decode: unsupported format version {data[0]} in `data` (this build reads "
            f"{FORMAT_VERSION})."
        )
    flags, end = data[1], len(data) - 4
    if flags >> 4 or flags >> 1 & 0b11 >= len(ALGORITHMS):
        raise ValueError(f"decode: `data` has unknown flags {flags:#04x}.")
    pos = 2
    dim, pos = _get_varint(data, pos, end)
    num_candidates, pos = _get_varint(data, pos, end)
    num_segments, pos = _get_varint(data, pos, end)
    if dim < 1 or not 2 <= num_candidates <= MAX_CANDIDATES or not 1 <= num_segments <= end:
        raise ValueError(
            "decode: `data` is corrupted (inconsistent header: d, N or segment count)."
        )
    segments = []
    for _ in range(num_segments):
        num_chunks, pos = _get_varint(data, pos, end)
        kl_q, pos = _get_varint(data, pos, end)
        sd_q, pos = _get_varint(data, pos, end)
        layout = 0
        if num_chunks > 1:
            layout, pos = _get_varint(data, pos, end)
        mode, layout_q = layout & 1, layout >> 1
        base_chunks = num_chunks
        if mode:
            base_chunks, pos = _get_varint(data, pos, end)
        if (
            not 1 <= base_chunks <= num_chunks <= dim
            or (mode and layout_q >= SPLIT_SCALE)
            or (mode and not layout_q and base_chunks != num_chunks)
        ):
            raise ValueError("decode: `data` is corrupted (inconsistent header: chunk layout).")
        segments.append(
            Segment(
                kl_q,
                sd_q,
                LAYOUTS[mode],
                layout_q,
                base_chunks,
                np.zeros(num_chunks, dtype=np.int64),
            )
        )
    header = Header(
        DTYPES[flags & 1],
        ALGORITHMS[flags >> 1 & 0b11],
        bool(flags >> 3),
        dim,
        num_candidates,
        tuple(segments),
    )
    indices, filled = [], []
    decoded = _decode_block(data[pos:end], header)
    for segment, (chosen, counts) in zip(segments, decoded, strict=True):
        if (
            len(counts) != len(segment.counts)
            or np.any(counts < 1)
            or np.any(chosen >= num_candidates)
        ):
            raise ValueError("decode: `data` is corrupted (inconsistent chunk layout or index).")
        indices.append(chosen)
        filled.append(segment._replace(counts=counts))
    return header._replace(segments=tuple(filled)), indices


def check_crc(data: bytes, header: Header, context: bytes) -> None:
    """**Raises:** `ValueError` when the stored CRC does not match `data` and `context`."""
    data = bytes(data)
    if crc(data[:-4], header, context) != data[-4:]:
        raise ValueError(
            "decode: CRC32 mismatch: `data` is corrupted or truncated, or `key`, `p_mean`, "
            "`p_std` (or the score model) differ from the encoder's."
        )
