"""The codec's file: a compact header (varints, raw floats), the rcc stream, and a CRC32.

Layout, in order (integers are LEB128 varints, floats little-endian in the file's dtype unless
said otherwise):

- magic `RDPc`, format version (one byte);
- flags (one byte): bit 0 progressive, bit 1 float64, bit 2 one item (no batch axis),
  bit 3 σ per dimension, bits 4-5 the prior (`PRIORS`);
- the number of event axes, then the batch size (absent for one item) and the event shape;
- σ: one float, or one per event dimension;
- the shared key (its two uint32 words as one varint, w₀·2³² + w₁), the first 8 bytes of the
  model's fingerprint (a wrong model passes with probability 2⁻⁶⁴);
- for a stored prior, its standard deviations (float32, one per dimension) or, for a prior the
  caller passed, its mean and variances (the file's dtype);
- for progressive files, the number of grid steps, the grid, and the first step's prior std;
- the rcc stream, then a CRC32 of everything before it.
"""

import struct
import zlib
from typing import NamedTuple

import numpy as np

MAGIC = b"RDPc"
FORMAT_VERSION = 1
FINGERPRINT_BYTES = 8
# How the decoder obtains the one-shot prior's standard deviations.
PRIORS = ("model", "stored", "caller")


class FileHeader(NamedTuple):
    """Everything a codec file records besides its rcc stream."""

    mode: str
    dtype: str
    single: bool
    shape: tuple[int, ...]  # (n, *event), n = 1 for one item
    sigma: np.ndarray  # () or (d,)
    key: np.ndarray  # (2,) uint32
    fingerprint: bytes
    prior: str
    prior_std: np.ndarray | None  # (d,) float32, for prior == "stored"
    prior_mean: np.ndarray | None  # (d,), for prior == "caller"
    prior_var: np.ndarray | None  # (d,), for prior == "caller"
    grid: np.ndarray | None  # (S,), progressive only
    first_std: float | None  # progressive only


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    """Reads the header front to back; running past the end means a truncated file."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ValueError("decompress: `data` is truncated (the header runs past its end).")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("decompress: `data` is corrupted (an oversized integer).")

    def floats(self, count: int, dtype: str) -> np.ndarray:
        dt = np.dtype(dtype).newbyteorder("<")
        return np.frombuffer(self.take(count * dt.itemsize), dt).astype(dtype)


def _floats(values, dtype: str) -> bytes:
    return np.ascontiguousarray(values, np.dtype(dtype).newbyteorder("<")).tobytes()


def pack(header: FileHeader, stream: bytes) -> bytes:
    """The file: header, rcc stream, CRC32."""
    flags = (
        (header.mode == "progressive")
        | (header.dtype == "float64") << 1
        | header.single << 2
        | (header.sigma.ndim == 1) << 3
        | PRIORS.index(header.prior) << 4
    )
    shape = header.shape[1:] if header.single else header.shape
    out = bytearray(MAGIC + bytes([FORMAT_VERSION, flags]))
    out += _varint(len(header.shape) - 1) + b"".join(_varint(s) for s in shape)
    out += _floats(header.sigma, header.dtype)
    out += _varint(int(header.key[0]) << 32 | int(header.key[1]))
    out += header.fingerprint[:FINGERPRINT_BYTES]
    if header.prior == "stored":
        out += _floats(header.prior_std, "float32")
    elif header.prior == "caller":
        out += _floats(header.prior_mean, header.dtype) + _floats(header.prior_var, header.dtype)
    if header.mode == "progressive":
        out += _varint(len(header.grid)) + _floats(header.grid, header.dtype)
        out += _floats(np.float32(header.first_std), "float32")
    out += stream
    return bytes(out) + struct.pack("<I", zlib.crc32(out))


def unpack(data: bytes) -> tuple[FileHeader, bytes]:
    """Parses and checks a file; returns its header and rcc stream.

    **Raises:** `ValueError` for bytes that are not a codec file, another format version, a
    truncated file and a corrupted one (CRC32 mismatch, or a header that contradicts itself).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"decompress: `data` must be bytes, got {type(data).__name__}.")
    data = bytes(data)
    if data[:4] != MAGIC:
        raise ValueError("decompress: `data` is not an rdp-jax codec file (bad magic number).")
    if len(data) < 10:
        raise ValueError("decompress: `data` is truncated.")
    if data[4] != FORMAT_VERSION:
        raise ValueError(
            f"decompress: `data` has format version {data[4]}; this rdp-jax reads "
            f"version {FORMAT_VERSION}."
        )
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise ValueError("decompress: `data` is corrupted or truncated (CRC32 mismatch).")
    reader = _Reader(body)
    reader.take(5)
    flags = reader.take(1)[0]
    if flags >> 6 or (flags >> 4) & 3 >= len(PRIORS):
        raise ValueError("decompress: `data` is corrupted (unknown flags).")
    mode = "progressive" if flags & 1 else "oneshot"
    dtype = "float64" if flags & 2 else "float32"
    single = bool(flags & 4)
    axes = reader.varint()
    shape = tuple(reader.varint() for _ in range(axes + (not single)))
    shape = (1, *shape) if single else shape
    if min(shape, default=0) < 1 or axes < 1:
        raise ValueError("decompress: `data` is corrupted (an empty shape).")
    dim = int(np.prod(shape[1:]))
    sigma = reader.floats(dim, dtype) if flags & 8 else reader.floats(1, dtype)[0]
    words = reader.varint()
    if words >> 64:
        raise ValueError("decompress: `data` is corrupted (the key does not fit 64 bits).")
    key = np.array([words >> 32, words & 0xFFFFFFFF], np.uint32)
    fingerprint = reader.take(FINGERPRINT_BYTES)
    prior = PRIORS[(flags >> 4) & 3]
    prior_std = prior_mean = prior_var = grid = first_std = None
    if prior == "stored":
        prior_std = reader.floats(dim, "float32")
    elif prior == "caller":
        prior_mean, prior_var = reader.floats(dim, dtype), reader.floats(dim, dtype)
    if mode == "progressive":
        grid = reader.floats(reader.varint(), dtype)
        first_std = float(reader.floats(1, "float32")[0])
    header = FileHeader(
        mode,
        dtype,
        single,
        shape,
        np.asarray(sigma),
        key,
        fingerprint,
        prior,
        prior_std,
        prior_mean,
        prior_var,
        grid,
        first_std,
    )
    return header, body[reader.at :]
