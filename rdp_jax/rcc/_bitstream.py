"""The byte format: magic, header, range-coded indices and layouts (constriction), CRC32.

A stream carries S ≥ 1 *segments*, each one channel-simulated Gaussian message with its own
chunk layout and index law: `encode` writes one, the progressive coder one per σ step. Every law
is an integer table built from header integers (`_tables`), and the candidates follow
`_candidates`, so a stream decodes to the same bits on every machine. Format version 6
(integers are unsigned LEB128 varints unless stated):

==============  =============================================================================
field           content
==============  =============================================================================
magic           2 bytes, `MAGIC` ("RJ")
version         1 byte, `FORMAT_VERSION`
flags           1 byte: bit 0 dtype (0 float32, 1 float64), bits 1-2 algorithm (0 PFR, 1 ORC),
                bit 3 progressive, bits 4-5 the PRNG (0: Threefry-2x32 as `_candidates`
                specifies), bit 6 set when some segment boosts candidate counts
d, N, S         the dimension, the candidates per chunk, the number of segments
per segment     C (chunks), kl (the mean chunk KL in 1/16 bit) and sd (the sd of ln w per
                chunk in 1/16 nat), the parameters of the index law
                (`_index_model.index_law`); then, if C > 1, 2·a + m with m the layout mode
                and a its parameter, and for the split mode the base chunk count C₀
                (`_layout_code`); then, if flag bit 6 is set, B, the boosted chunk count
payload         one range-coded block: per segment, the chunks' candidate-count exponents
                (if B > 0), the C indices, chunk c's under the index law of N·2^(e_c)
                candidates (each index as its knot interval under the law's integer
                table, then its offset in the interval's b raw bits, grouped by b:
                `_index_model.IndexLaw`; v5 coded one frequency per index), then the
                layout symbols (`_layout_code`). The block is cut to the
                shortest byte string that still decodes to the same symbols when zero-padded
                (checked by decoding it), which saves the ~15 bits a sealed range coder
                spends on its final word.
crc             4 bytes big-endian: CRC32 of everything above, seeded with the CRC32 of the
                decoder's context (the key data, the bytes of the prior, and for progressive
                streams the σ grid and the score model's fingerprint) and of the digests of
                every table the stream is coded with. A corrupted or truncated stream, a wrong
                key, prior or score model, or a decoder whose tables differ in any bit all fail
                this check (unnoticed with probability 2⁻³²).
==============  =============================================================================
"""

import zlib
from typing import NamedTuple

import constriction
import numpy as np

from rdp_jax.rcc._index_model import IndexLaw, index_law, uniform_table
from rdp_jax.rcc._layout_code import (
    LAYOUTS,
    MAX_CANDIDATES,
    MAX_CUT_SCALE,
    SPLIT_SCALE,
    cut_table,
    decode_layout,
    extra_table,
    layout_fields,
    layout_symbols,
    max_extra,
    split_table,
)
from rdp_jax.rcc._tables import Table

MAGIC = b"RJ"
FORMAT_VERSION = 6
DTYPES = ("float32", "float64")
ALGORITHMS = ("pfr", "orc")
PRNGS = ("threefry2x32",)
_FIXED = len(MAGIC) + 2  # magic, version, flags


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


def _boosted(segment: Segment) -> int:
    return int(np.count_nonzero(segment.extra))


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


def _decode_block(block: bytes, header: Header) -> list[Segment]:
    """Each segment with its indices' exponents and chunk widths filled in, and the indices,
    from a zero-padded block."""
    words = np.frombuffer(block + b"\0" * (-len(block) % 4), dtype=">u4").astype(np.uint32)
    out = []
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        for segment in header.segments:
            num_chunks = len(segment.counts)
            extra = np.zeros(num_chunks, dtype=np.int64)
            if _boosted(segment):
                table = extra_table(num_chunks, _boosted(segment), header.num_candidates)
                extra = decoder.decode(table.model, num_chunks).astype(np.int64)
            segment = segment._replace(extra=extra)
            chosen = np.empty(num_chunks, dtype=np.int64)
            for start, end, law in _index_runs(header, segment):
                chosen[start:end] = _decode_indices(decoder, law, end - start)
            counts = decode_layout(decoder, header.dim, segment).astype(np.int64)
            out.append((segment._replace(counts=counts), chosen))
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
        np.array_equal(chosen, want)
        and np.array_equal(got.counts, segment.counts)
        and np.array_equal(got.extra, segment.extra)
        for (got, chosen), want, segment in zip(decoded, indices, header.segments, strict=True)
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
    boosts = any(_boosted(segment) for segment in header.segments)
    flags = (
        DTYPES.index(header.dtype)
        | ALGORITHMS.index(header.algorithm) << 1
        | int(header.progressive) << 3
        | int(boosts) << 6
    )
    out = bytearray(MAGIC + bytes([FORMAT_VERSION, flags]))
    for value in (header.dim, header.num_candidates, len(header.segments)):
        _put_varint(out, value)
    for segment in header.segments:
        values = [len(segment.counts), segment.kl_q, segment.sd_q]
        if len(segment.counts) > 1:  # one chunk needs no layout (`plan_layout` makes it "cuts")
            values += layout_fields(segment)
        if boosts:
            values.append(_boosted(segment))
        for value in values:
            _put_varint(out, int(value))
    return out


def crc(stream: bytes, header: Header, context: bytes) -> bytes:
    """CRC32 of `stream`, seeded with `context` and the digests of the stream's tables."""
    seed = zlib.crc32(context)
    for segment in header.segments:
        for table in _segment_tables(header, segment):
            seed = zlib.crc32(table.digest.to_bytes(4, "big"), seed)
    return zlib.crc32(stream, seed).to_bytes(4, "big")


def pack(header: Header, indices: list[np.ndarray], context: bytes) -> tuple[bytes, int]:
    """Serialises the header and each segment's exponents, indices and layout.

    `context` is what the decoder must supply identically (key data, prior bytes, ...): it seeds
    the CRC and is not stored.

    **Returns:** the stream and the length of its payload block in bytes.
    """
    out = _header_bytes(header)
    encoder = constriction.stream.queue.RangeEncoder()
    for segment, chosen in zip(header.segments, indices, strict=True):
        if _boosted(segment):
            table = extra_table(len(segment.counts), _boosted(segment), header.num_candidates)
            encoder.encode(segment.extra.astype(np.int32), table.model)
        for start, end, law in _index_runs(header, segment):
            _encode_indices(encoder, law, chosen[start:end])
        symbols, table = layout_symbols(header.dim, segment)
        if table is not None:
            encoder.encode(symbols, table.model)
    block = _shortest_block(encoder.get_compressed().astype(">u4").tobytes(), header, indices)
    out += block
    out += crc(bytes(out), header, context)
    return bytes(out), len(block)


def _read_segments(data: bytes, pos: int, end: int, dim: int, boosts: bool, num_candidates: int):
    num_segments, pos = _get_varint(data, pos, end)
    if not 1 <= num_segments <= end:
        raise ValueError("decode: `data` is corrupted (inconsistent header: segment count).")
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
        boosted = 0
        if boosts:
            boosted, pos = _get_varint(data, pos, end)
        if (
            not 1 <= base_chunks <= num_chunks <= dim
            or (mode and layout_q >= SPLIT_SCALE)
            or (mode and not layout_q and base_chunks != num_chunks)
            or (not mode and layout_q > MAX_CUT_SCALE)
            or boosted > num_chunks
            or (boosted and not max_extra(num_candidates))
        ):
            raise ValueError("decode: `data` is corrupted (inconsistent header: chunk layout).")
        # `extra` holds B nonzero placeholders until the payload gives the exponents.
        extra = np.zeros(num_chunks, dtype=np.int64)
        extra[:boosted] = 1
        counts = np.zeros(num_chunks, dtype=np.int64)
        segments.append(Segment(kl_q, sd_q, LAYOUTS[mode], layout_q, base_chunks, counts, extra))
    return tuple(segments), pos


def unpack(data: bytes, where: str = "decode") -> tuple[Header, list[np.ndarray]]:
    """`parse` with its errors named after the caller, `where` ("decode" or
    "progressive_decode")."""
    try:
        return parse(data)
    except ValueError as error:
        message = str(error)
        if not message.startswith("decode: ") or where == "decode":
            raise
        raise ValueError(f"{where}: {message[len('decode: ') :]}") from None


def parse(data: bytes) -> tuple[Header, list[np.ndarray]]:
    """Parses a stream; returns the header (with each segment's chunk widths and exponents) and
    the indices.

    The CRC is *not* checked here: its seed needs the decoder's context (`check_crc`).

    **Raises:** `ValueError` for anything that is not bytes or not an rdp-jax stream, a stream
    that is too short, of another format version or PRNG, or with an inconsistent header,
    payload or chunk layout.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"decode: `data` must be bytes; got {type(data).__name__}.")
    data = bytes(data)
    if data[: len(MAGIC)] != MAGIC[: len(data)] or len(data) < len(MAGIC):
        raise ValueError("decode: `data` is not an rdp-jax stream (no magic number).")
    if len(data) < _FIXED + 3 + 4:
        raise ValueError(f"decode: `data` is truncated ({len(data)} bytes).")
    if data[2] != FORMAT_VERSION:
        raise ValueError(
            f"decode: unsupported format version {data[2]} in `data` (this build reads "
            f"{FORMAT_VERSION} only; streams do not carry over between format versions, so "
            "decode it with the rdp-jax that wrote it, or encode the message again)."
        )
    flags, end = data[3], len(data) - 4
    if flags >> 7 or flags >> 1 & 0b11 >= len(ALGORITHMS):
        raise ValueError(f"decode: `data` has unknown flags {flags:#04x}.")
    if flags >> 4 & 0b11 >= len(PRNGS):
        raise ValueError(f"decode: `data` uses an unknown PRNG (code {flags >> 4 & 0b11}).")
    dim, pos = _get_varint(data, _FIXED, end)
    num_candidates, pos = _get_varint(data, pos, end)
    if dim < 1 or not 2 <= num_candidates <= MAX_CANDIDATES:
        raise ValueError("decode: `data` is corrupted (inconsistent header: d or N).")
    segments, pos = _read_segments(data, pos, end, dim, bool(flags >> 6 & 1), num_candidates)
    header = Header(
        DTYPES[flags & 1], ALGORITHMS[flags >> 1 & 0b11], bool(flags >> 3 & 1), dim,
        num_candidates, segments,
    )  # fmt: skip
    decoded = _decode_block(data[pos:end], header)
    for segment, (got, _) in zip(segments, decoded, strict=True):
        if (
            len(got.counts) != len(segment.counts)
            or np.any(got.counts < 1)
            or np.count_nonzero(got.extra) != _boosted(segment)
        ):
            raise ValueError("decode: `data` is corrupted (inconsistent chunk layout or index).")
    filled = tuple(got for got, _ in decoded)
    return header._replace(segments=filled), [chosen for _, chosen in decoded]


def check_crc(
    data: bytes, header: Header, context: bytes, where: str = "decode", inputs: str = ""
) -> None:
    """**Raises:** `ValueError` when the stored CRC does not match `data` and `context`, naming
    the caller `where` and the arguments that seed the CRC (`inputs`; by default `decode`'s)."""
    data = bytes(data)
    if crc(data[:-4], header, context) != data[-4:]:
        inputs = inputs or "`key`, `p_mean` or `p_std`"
        raise ValueError(
            f"{where}: CRC32 mismatch: `data` is corrupted or truncated, or {inputs} differ "
            "from the encoder's."
        )
