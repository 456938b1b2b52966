"""The byte format: header, range-coded indices and chunk layouts (constriction), CRC32.

A stream carries S ≥ 1 *segments*, each one channel-simulated Gaussian message with its own
chunk layout and index law: `encode` writes one, the progressive coder one per σ step. Layout of
format version 3 (integers are unsigned LEB128 varints unless stated):

==============  =============================================================================
field           content
==============  =============================================================================
version         1 byte, `FORMAT_VERSION`
flags           1 byte: bit 0 dtype (0 float32, 1 float64), bits 1-2 algorithm (0 PFR, 1 ORC),
                bit 3 progressive
d, N, S         the dimension, the candidates per chunk, the number of segments
per segment     C (chunks), kl (the mean chunk KL in 1/16 bit) and sd (the sd of ln w per
                chunk in 1/16 nat), the parameters of the index law
                (`_index_model.index_law`), and if C > 1 the cut scale (1/16 dimension)
payload         one range-coded block: per segment, its C indices under its index law, then
                its C − 1 chunk cuts as offsets from the balanced cuts round(t d / C) under a
                quantised Laplace law centred on 0 (free when the KL per dimension is
                uniform). The block is cut to the shortest byte string that still decodes to
                the same symbols when zero-padded (checked by decoding it), which saves the
                ~15 bits a sealed range coder spends on its final word.
crc             4 bytes big-endian: CRC32 of everything above, seeded with the CRC32 of the
                decoder's context (the key data, the bytes of the prior, and for progressive
                streams the decoded sample) and of the index-law tables. A corrupted or
                truncated stream, a wrong key, prior or score model, or a decoder whose model
                tables differ in any bit all fail this check (unnoticed with probability 2⁻³²).
==============  =============================================================================
"""

import zlib
from typing import NamedTuple

import constriction
import numpy as np

from rdp_jax.rcc._index_model import index_law

FORMAT_VERSION = 3
DTYPES = ("float32", "float64")
ALGORITHMS = ("pfr", "orc")
CUT_SCALE = 16
MAX_CANDIDATES = 2**22


class Segment(NamedTuple):
    """One message's layout and index-law parameters (`counts` sums to d)."""

    kl_q: int
    sd_q: int
    cut_scale_q: int
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


def _balanced_cuts(dim: int, num_chunks: int) -> np.ndarray:
    """The cuts round(t d / C), t = 1 … C−1, of equal-width chunks (exact integer rounding)."""
    t = np.arange(1, num_chunks, dtype=np.int64)
    return (2 * t * dim + num_chunks) // (2 * num_chunks)


def cut_offsets(counts: np.ndarray) -> np.ndarray:
    """The chunk cuts minus the balanced cuts: what the stream stores for the layout."""
    return np.cumsum(counts)[:-1] - _balanced_cuts(int(counts.sum()), len(counts))


def cut_scale_q(counts: np.ndarray) -> int:
    """The encoder's Laplace scale: the mean absolute cut offset, in 1/16 dimension."""
    offsets = cut_offsets(counts)
    return round(CUT_SCALE * float(np.mean(np.abs(offsets)))) if len(offsets) else 0


def _cut_model(dim: int, segment: Segment):
    """The quantised Laplace law of the cut offsets on [−d, d], centred on 0."""
    scale = max(segment.cut_scale_q, 1) / CUT_SCALE
    return constriction.stream.model.QuantizedLaplace(-dim, dim, 0.0, scale)


def _decode_block(block: bytes, header: Header) -> list[np.ndarray]:
    """Each segment's C indices followed by its C − 1 cut offsets, from a zero-padded block."""
    words = np.frombuffer(block + b"\0" * (-len(block) % 4), dtype=">u4").astype(np.uint32)
    out = []
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        for segment in header.segments:
            num_chunks = len(segment.counts)
            _, model, _ = index_law(
                header.num_candidates, segment.kl_q, segment.sd_q, header.algorithm
            )
            symbols = [decoder.decode(model, num_chunks)]
            if num_chunks > 1:
                symbols.append(decoder.decode(_cut_model(header.dim, segment), num_chunks - 1))
            out.append(np.concatenate(symbols).astype(np.int64))
    except Exception as error:  # constriction signals malformed data with its own error types
        raise ValueError(f"decode: the payload of `data` does not decode: {error}") from None
    return out


def _decodes_to(block: bytes, header: Header, symbols: list[np.ndarray]) -> bool:
    try:
        decoded = _decode_block(block, header)
    except ValueError:
        return False
    return all(np.array_equal(a, b) for a, b in zip(decoded, symbols, strict=True))


def _shortest_block(block: bytes, header: Header, symbols: list[np.ndarray]) -> bytes:
    """The shortest prefix of `block`, possibly with its last byte incremented, that decodes to
    `symbols`. Valid code values form an interval, so the search stops at the first length with
    neither candidate (the truncation, and the truncation plus one unit in its last byte)."""
    best = block
    for length in range(len(block) - 1, -1, -1):
        cut = block[:length]
        bumped = int.from_bytes(cut, "big") + 1
        candidates = [cut] + ([bumped.to_bytes(length, "big")] if bumped < 256**length else [])
        found = next((c for c in candidates if _decodes_to(c, header, symbols)), None)
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
        num_chunks = len(segment.counts)
        extra = [segment.cut_scale_q] if num_chunks > 1 else []
        for value in [num_chunks, segment.kl_q, segment.sd_q, *extra]:
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
    symbols = []
    for segment, chosen in zip(header.segments, indices, strict=True):
        _, model, _ = index_law(header.num_candidates, segment.kl_q, segment.sd_q, header.algorithm)
        encoder.encode(np.asarray(chosen, dtype=np.int32), model)
        offsets = cut_offsets(segment.counts).astype(np.int32)
        if len(offsets):
            encoder.encode(offsets, _cut_model(header.dim, segment))
        symbols.append(np.concatenate([chosen, offsets]).astype(np.int64))
    block = _shortest_block(encoder.get_compressed().astype(">u4").tobytes(), header, symbols)
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
        scale = 0
        if num_chunks > 1:
            scale, pos = _get_varint(data, pos, end)
        if not 1 <= num_chunks <= dim:
            raise ValueError("decode: `data` is corrupted (inconsistent header: chunk count).")
        segments.append(Segment(kl_q, sd_q, scale, np.zeros(num_chunks, dtype=np.int64)))
    header = Header(
        DTYPES[flags & 1],
        ALGORITHMS[flags >> 1 & 0b11],
        bool(flags >> 3),
        dim,
        num_candidates,
        tuple(segments),
    )
    indices, filled = [], []
    for segment, symbols in zip(segments, _decode_block(data[pos:end], header), strict=True):
        num_chunks = len(segment.counts)
        chosen, offsets = symbols[:num_chunks], symbols[num_chunks:]
        cuts = _balanced_cuts(dim, num_chunks) + offsets
        counts = np.diff(np.concatenate([[0], cuts, [dim]]))
        if np.any(counts < 1) or np.any(chosen >= num_candidates):
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
