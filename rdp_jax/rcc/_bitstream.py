"""The byte format: header, range-coded indices and chunk layout (constriction), CRC32.

Layout of format version 2 (integers are unsigned LEB128 varints unless stated):

==============  =============================================================================
field           content
==============  =============================================================================
version         1 byte, `FORMAT_VERSION`
flags           1 byte: bit 0 dtype (0 float32, 1 float64), bits 1-2 algorithm (0 PFR)
d               the dimension
N               candidates per chunk
C               number of chunks
kl              the mean chunk KL in 1/16 bit        } parameters of the index law
sd              the sd of ln w per chunk in 1/16 nat } (`_index_model.index_law`)
cut scale       only if C > 1: the Laplace scale of the chunk cut offsets, in 1/16 dimension
payload         one range-coded block: the C indices under the index law, then the C − 1 chunk
                cuts as offsets from the balanced cuts round(t d / C), under a quantised
                Laplace law centred on 0 (free when the KL per dimension is uniform). The
                block is cut to the shortest byte string that still decodes to the same
                symbols when zero-padded (checked by decoding it), which saves the ~15 bits a
                sealed range coder spends on its final word.
crc             4 bytes big-endian: CRC32 of everything above, seeded with the CRC32 of the
                decoder's context (the key data and the bytes of p_mean, p_std) and of the
                index-law table. A corrupted or truncated stream, a wrong key, a wrong prior or
                a decoder whose model table differs in any bit all fail this check
                (undetected with probability 2⁻³²).
==============  =============================================================================
"""

import zlib
from typing import NamedTuple

import constriction
import numpy as np

from rdp_jax.rcc._index_model import index_law

FORMAT_VERSION = 2
DTYPES = ("float32", "float64")
ALGORITHMS = ("pfr",)
CUT_SCALE = 16


class Header(NamedTuple):
    dtype: str
    algorithm: str
    dim: int
    num_candidates: int
    kl_q: int
    sd_q: int
    cut_scale_q: int
    counts: np.ndarray


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


def _cut_model(header: Header):
    """The quantised Laplace law of the cut offsets on [−d, d], centred on 0."""
    scale = max(header.cut_scale_q, 1) / CUT_SCALE
    return constriction.stream.model.QuantizedLaplace(-header.dim, header.dim, 0.0, scale)


def cut_scale_q(counts: np.ndarray) -> int:
    """The encoder's Laplace scale: the mean absolute cut offset, in 1/16 dimension."""
    offsets = cut_offsets(counts)
    return round(CUT_SCALE * float(np.mean(np.abs(offsets)))) if len(offsets) else 0


def _decodes_to(block: bytes, header: Header, indices: np.ndarray) -> bool:
    try:
        return np.array_equal(_decode_block(block, header), indices)
    except ValueError:
        return False


def _decode_block(block: bytes, header: Header) -> np.ndarray:
    """The C indices and C − 1 cut offsets of a zero-padded payload block, as one array."""
    words = np.frombuffer(block + b"\0" * (-len(block) % 4), dtype=">u4").astype(np.uint32)
    _, model, _ = index_law(header.num_candidates, header.kl_q, header.sd_q)
    num_chunks = len(header.counts)
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        indices = decoder.decode(model, num_chunks)
        offsets = decoder.decode(_cut_model(header), num_chunks - 1) if num_chunks > 1 else []
    except Exception as error:  # constriction signals malformed data with its own error types
        raise ValueError(f"decode: the payload of `data` does not decode: {error}") from None
    return np.concatenate([indices, offsets]).astype(np.int64)


def _shortest_block(block: bytes, header: Header, symbols: np.ndarray) -> bytes:
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
    out = bytearray(
        [FORMAT_VERSION, DTYPES.index(header.dtype) | ALGORITHMS.index(header.algorithm) << 1]
    )
    fields = [header.dim, header.num_candidates, len(header.counts), header.kl_q, header.sd_q]
    for value in fields + ([header.cut_scale_q] if len(header.counts) > 1 else []):
        _put_varint(out, int(value))
    return out


def _crc(stream: bytes, header: Header, context: bytes) -> bytes:
    _, _, digest = index_law(header.num_candidates, header.kl_q, header.sd_q)
    seed = zlib.crc32(context, digest)
    return zlib.crc32(stream, seed).to_bytes(4, "big")


def pack(header: Header, indices: np.ndarray, context: bytes) -> tuple[bytes, int]:
    """Serialises header, indices and layout; returns the stream and the payload length in bytes.

    `context` is what the decoder must supply identically (key data, prior bytes): it seeds the
    CRC and is not stored.
    """
    out = _header_bytes(header)
    _, model, _ = index_law(header.num_candidates, header.kl_q, header.sd_q)
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(np.asarray(indices, dtype=np.int32), model)
    offsets = cut_offsets(header.counts).astype(np.int32)
    if len(offsets):
        encoder.encode(offsets, _cut_model(header))
    symbols = np.concatenate([indices, offsets]).astype(np.int64)
    block = _shortest_block(encoder.get_compressed().astype(">u4").tobytes(), header, symbols)
    out += block
    out += _crc(bytes(out), header, context)
    return bytes(out), len(block)


def read_header(data: bytes) -> tuple[Header, int]:
    """Parses the header; returns it (chunk widths not yet known: `counts` has C zeros) and the
    position of the payload.

    **Raises:** `ValueError` for a stream that is not bytes, too short, of another format
    version or with an inconsistent header.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"decode: `data` must be bytes; got {type(data).__name__}.")
    data = bytes(data)
    if len(data) < 2 + 5 + 4:
        raise ValueError(f"decode: `data` is truncated ({len(data)} bytes).")
    if data[0] != FORMAT_VERSION:
        raise ValueError(
            f"decode: unsupported format version {data[0]} in `data` (this build reads "
            f"{FORMAT_VERSION})."
        )
    flags, end = data[1], len(data) - 4
    if flags >> 3 or flags & 1 >= len(DTYPES) or flags >> 1 >= len(ALGORITHMS):
        raise ValueError(f"decode: `data` has unknown flags {flags:#04x}.")
    pos, fields = 2, []
    for _ in range(5):
        value, pos = _get_varint(data, pos, end)
        fields.append(value)
    dim, num_candidates, num_chunks, kl_q, sd_q = fields
    if dim < 1 or not 2 <= num_candidates <= 2**22 or not 1 <= num_chunks <= dim:
        raise ValueError("decode: `data` has an inconsistent header (d, N or chunk count).")
    scale = 0
    if num_chunks > 1:
        scale, pos = _get_varint(data, pos, end)
    header = Header(
        DTYPES[flags & 1],
        ALGORITHMS[flags >> 1],
        dim,
        num_candidates,
        kl_q,
        sd_q,
        scale,
        np.zeros(num_chunks, dtype=np.int64),
    )
    return header, pos


def read_payload(
    data: bytes, header: Header, pos: int, context: bytes
) -> tuple[Header, np.ndarray]:
    """Checks the CRC against `context` and decodes the payload.

    **Returns:** the header with its chunk widths filled in, and the C chunk indices.

    **Raises:** `ValueError` on a CRC mismatch (corruption, truncation, wrong key or prior) or
    an inconsistent chunk layout.
    """
    data = bytes(data)
    end = len(data) - 4
    if _crc(data[:end], header, context) != data[end:]:
        raise ValueError(
            "decode: CRC32 mismatch: `data` is corrupted or truncated, or `key`, `p_mean` or "
            "`p_std` differ from the encoder's."
        )
    symbols = _decode_block(data[pos:end], header)
    num_chunks = len(header.counts)
    indices, offsets = symbols[:num_chunks], symbols[num_chunks:]
    cuts = _balanced_cuts(header.dim, num_chunks) + offsets
    counts = np.diff(np.concatenate([[0], cuts, [header.dim]]))
    if np.any(counts < 1) or np.any(indices >= header.num_candidates):
        raise ValueError("decode: `data` has an inconsistent chunk layout or index.")
    return header._replace(counts=counts), indices
