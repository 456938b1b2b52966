"""The byte format: header, entropy-coded chunk indices (constriction range coder) and CRC32.

Layout of format version 1 (all integers are unsigned LEB128 varints unless stated):

====================  =====================================================================
field                 content
====================  =====================================================================
version               1 byte, `FORMAT_VERSION`
flags                 1 byte: bits 0-1 dtype code (0 float32, 1 float64), bits 2-3 algorithm
                      (0 PFR)
d                     the dimension
N                     candidates per chunk
C                     number of chunks
k̄·16                  the mean chunk KL in 1/16 bit: the index model's parameter
counts                C − 1 chunk widths (the last is d minus their sum)
payload               the range-coded indices, big-endian 32-bit words with at most 3
                      trailing zero bytes of the last word dropped (restored on decode)
crc                   4 bytes big-endian, `zlib.crc32` of everything above
====================  =====================================================================
"""

import functools
import math
import zlib
from typing import NamedTuple

import constriction
import numpy as np

FORMAT_VERSION = 1
DTYPES = ("float32", "float64")
ALGORITHMS = ("pfr",)
KBAR_SCALE = 16


class Header(NamedTuple):
    dtype: str
    algorithm: str
    dim: int
    num_candidates: int
    kbar_q: int
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


def zipf_exponent(kbar_q: int) -> float:
    """s = 1 + 1/(k + e⁻¹ ln(e+1)) of THEORY §10, for the dequantised mean chunk KL k."""
    return 1.0 + 1.0 / (kbar_q / KBAR_SCALE + math.log(math.e + 1.0) / math.e)


@functools.lru_cache(maxsize=16)
def _zipf(num_candidates: int, kbar_q: int) -> tuple[np.ndarray, object]:
    """The truncated Zipf law P(j) ∝ (j+1)^(−s) on [0, N) and its constriction model.

    `perfect=False` makes constriction's fixed-point quantisation a fast, documented,
    deterministic function of the float table, which both sides compute from the same integers.
    """
    log_p = -zipf_exponent(kbar_q) * np.log1p(np.arange(num_candidates, dtype=np.float64))
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    return p, constriction.stream.model.Categorical(p, perfect=False)


def index_bits(indices: np.ndarray, num_candidates: int, kbar_q: int) -> float:
    """The ideal codelength Σ −log2 P(j) of the indices under the model, in bits."""
    p, _ = _zipf(num_candidates, kbar_q)
    return float(-np.sum(np.log2(p[indices])))


def pack(header: Header, indices: np.ndarray) -> tuple[bytes, int]:
    """Serialises header and indices; returns the stream and the payload length in bytes."""
    out = bytearray(
        [FORMAT_VERSION, DTYPES.index(header.dtype) | ALGORITHMS.index(header.algorithm) << 2]
    )
    for value in (header.dim, header.num_candidates, len(header.counts), header.kbar_q):
        _put_varint(out, int(value))
    for count in header.counts[:-1]:
        _put_varint(out, int(count))
    _, model = _zipf(header.num_candidates, header.kbar_q)
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(np.asarray(indices, dtype=np.int32), model)
    words = encoder.get_compressed().astype(">u4").tobytes()
    # Dropping only the last word's zero bytes keeps the payload exactly recoverable by padding.
    payload = words[: len(words) - 4] + words[len(words) - 4 :].rstrip(b"\0") if words else b""
    out += payload
    out += zlib.crc32(out).to_bytes(4, "big")
    return bytes(out), len(payload)


def unpack(data: bytes) -> tuple[Header, np.ndarray]:
    """Parses and checks a stream; returns the header and the chunk indices.

    **Raises:** `ValueError` for a stream that is not bytes, too short, of another format
    version, with a CRC mismatch (corruption or truncation) or with an inconsistent layout.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"decode: `data` must be bytes; got {type(data).__name__}.")
    data = bytes(data)
    if len(data) < 2 + 4 + 4:
        raise ValueError(f"decode: `data` is truncated ({len(data)} bytes).")
    if data[0] != FORMAT_VERSION:
        raise ValueError(
            f"decode: unsupported format version {data[0]} in `data` (this build reads "
            f"{FORMAT_VERSION})."
        )
    end = len(data) - 4
    if zlib.crc32(data[:end]) != int.from_bytes(data[end:], "big"):
        raise ValueError("decode: CRC32 mismatch: `data` is corrupted or truncated.")
    flags = data[1]
    if flags & 0b11 >= len(DTYPES) or flags >> 2 >= len(ALGORITHMS):
        raise ValueError(f"decode: `data` has unknown flags {flags:#04x}.")
    pos = 2
    dim, pos = _get_varint(data, pos, end)
    num_candidates, pos = _get_varint(data, pos, end)
    num_chunks, pos = _get_varint(data, pos, end)
    kbar_q, pos = _get_varint(data, pos, end)
    if dim < 1 or num_candidates < 2 or not 1 <= num_chunks <= dim:
        raise ValueError("decode: `data` has an inconsistent header (d, N or chunk count).")
    counts = []
    for _ in range(num_chunks - 1):
        count, pos = _get_varint(data, pos, end)
        counts.append(count)
    counts.append(dim - sum(counts))
    counts = np.asarray(counts, dtype=np.int64)
    if np.any(counts < 1):
        raise ValueError("decode: `data` has an inconsistent chunk layout.")
    payload = data[pos:end]
    payload += b"\0" * (-len(payload) % 4)
    words = np.frombuffer(payload, dtype=">u4").astype(np.uint32)
    _, model = _zipf(num_candidates, kbar_q)
    try:
        indices = constriction.stream.queue.RangeDecoder(words).decode(model, num_chunks)
    except Exception as error:  # constriction signals malformed data with its own error types
        raise ValueError(f"decode: the payload of `data` does not decode: {error}") from None
    header = Header(
        DTYPES[flags & 0b11], ALGORITHMS[flags >> 2], dim, num_candidates, kbar_q, counts
    )
    return header, np.asarray(indices, dtype=np.int64)
