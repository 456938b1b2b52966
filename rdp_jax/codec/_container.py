"""The codec's file: a compact header (varints, raw floats), then the rcc stream.

Layout, in order (integers are LEB128 varints, floats little-endian in the file's dtype unless
said otherwise):

- magic `RDPc`, format version (one byte);
- flags (one byte): bit 0 progressive, bit 1 float64, bit 2 one item (no batch axis),
  bit 3 σ per dimension, bits 4-5 the prior (`PRIORS`);
- the number of event axes, then the batch size (absent for one item) and the event shape;
- σ: one float, or one per event dimension;
- the shared key (its two uint32 words as one varint, w₀·2³² + w₁), the first 4 bytes of the
  model's 16-byte `identity`;
- the one-shot prior (`PRIORS`): nothing for "model" (a diagonal Gaussian's variances, the
  portable spectrum of a `scores.gaussian_full`'s Σ, or the portable Gaussian fit of a
  `models.Pretrained`, which every decoder recomputes bit for bit); for "stored" (a
  `scores.gaussian` of a full covariance, whose fields are a LAPACK eigendecomposition, or
  another model's `gaussian_fit`) its standard deviations, float32, one per dimension; for
  "caller", the mean and variances the caller passed (the file's dtype);
- for progressive files, the number of grid steps S, σ_max (absent for S = 1: the grid is σ
  alone; `geometric_grid` rebuilds the rest), and the first step's prior std (float32);
- the rcc stream.

**Integrity.** The rcc stream ends in a CRC32 seeded with its key and prior, and its key is not
the stored one but `stream_key`: a digest of every header byte and of the model's full
16-byte identity (and, for a one-shot file in coordinates a decoder might not reproduce, a
"stored" prior with eigenvectors, of those eigenvectors). A flipped header bit, a truncated or
corrupted stream and a wrong model therefore all fail that one CRC, so the file needs no CRC of
its own. A miss has probability about 2⁻³²: a CRC32 catches every burst of up to 32 bits under
one seed, but an error that changes the header (the key) or a field the decoder parses (its
tables) changes the seed too, and is then caught like a random error. The 4 stored identity
bytes are for a clear message: a wrong model is named as such, except with probability 2⁻³²,
and then still fails the CRC (2⁻⁶⁴ in all, as with the 8 identity bytes and a file CRC
before).
"""

import hashlib
import math
from typing import NamedTuple

import numpy as np

from rdp_jax.rcc import _portable_math
from rdp_jax.rcc._bitstream import MAX_DIM

MAGIC = b"RDPc"
# 1: an 8-byte fingerprint, the progressive grid as S floats, and a CRC32 of the whole file.
# 2: a pretrained model's one-shot prior stored, as float32 standard deviations.
# 3: a `gaussian_full` model coded in its LAPACK eigenbasis, which not every decoder reproduces.
FORMAT_VERSION = 4
FINGERPRINT_BYTES = 4
# How the decoder obtains the one-shot prior's standard deviations.
PRIORS = ("model", "stored", "caller")
# Beyond any grid a file could afford (each step costs a stream segment); bounds a corrupt count.
MAX_STEPS = 2**16
# Components (items × dimensions) of one file: its rcc message's limit, checked on the shape
# before the decoder allocates anything.
MAX_COMPONENTS = MAX_DIM
# σ and σ_max of a progressive grid: `geometric_grid` takes their logs, which `_portable_math`
# evaluates on [e^-700, e^700].
SIGMA_RANGE = tuple(float(_portable_math.exp(np.float64(x))) for x in (-699.0, 699.0))


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
        if size < 0:
            raise ValueError("decompress: `data` is corrupted (a negative field size).")
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


def geometric_grid(sigma, sigma_max, steps: int, dtype: str) -> np.ndarray:
    """σ_max = σ_1 > … > σ_S = σ, geometric: σ_s = exp(ln σ_max + (s−1)/(S−1) · ln(σ/σ_max)),
    from the dtype's σ and σ_max, in float64 by `_portable_math` (the same bits everywhere: the
    grid steers the progressive stream), rounded to `dtype`; exact at both ends."""
    sigma, sigma_max = float(np.asarray(sigma, dtype)), float(np.asarray(sigma_max, dtype))
    if steps == 1:
        return np.array([sigma], dtype)
    ends = _portable_math.log(np.array([sigma_max, sigma]))
    fraction = np.arange(steps, dtype=np.float64) / (steps - 1)
    grid = _portable_math.exp(ends[0] + fraction * (ends[1] - ends[0])).astype(dtype)
    grid[0], grid[-1] = sigma_max, sigma
    return grid


def stream_key(head: bytes, identity: bytes) -> np.ndarray:
    """The rcc stream's key: 8 bytes of BLAKE2b over the file's header and `identity` (the
    model's 16 bytes, and any coordinates' digest), as two uint32 words (see the module's
    **Integrity**)."""
    digest = hashlib.blake2b(head + identity, digest_size=8, person=b"rdp-codec").digest()
    return np.frombuffer(digest, "<u4").astype(np.uint32)


def header_bytes(header: FileHeader) -> bytes:
    """The file's bytes before its rcc stream."""
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
        steps = len(header.grid)
        if not np.array_equal(
            header.grid, geometric_grid(header.sigma, header.grid[0], steps, header.dtype)
        ):
            raise ValueError("compress: internal error: the σ grid is not `geometric_grid`.")
        out += _varint(steps) + (_floats(header.grid[0], header.dtype) if steps > 1 else b"")
        out += _floats(np.float32(header.first_std), "float32")
    return bytes(out)


def unpack(data: bytes) -> tuple[FileHeader, bytes, bytes]:
    """Parses a file; returns its header, the header's bytes (for `stream_key`) and the rcc
    stream, which `rcc` checks when it decodes it.

    **Raises:** `ValueError` for bytes that are not a codec file, another format version, a
    truncated header and one that contradicts itself.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"decompress: `data` must be bytes, got {type(data).__name__}.")
    data = bytes(data)
    if data[:4] != MAGIC:
        raise ValueError("decompress: `data` is not an rdp-jax codec file (bad magic number).")
    if len(data) < 6:
        raise ValueError("decompress: `data` is truncated.")
    if data[4] != FORMAT_VERSION:
        raise ValueError(
            f"decompress: `data` has format version {data[4]}; this rdp-jax reads version "
            f"{FORMAT_VERSION} only (compress the items again to convert)."
        )
    reader = _Reader(data)
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
    if math.prod(shape) > MAX_COMPONENTS:
        raise ValueError(
            f"decompress: `data` is corrupted (a shape of more than {MAX_COMPONENTS} components)."
        )
    dim = math.prod(shape[1:])
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
        steps = reader.varint()
        if not 1 <= steps <= MAX_STEPS:
            raise ValueError("decompress: `data` is corrupted (a bad number of grid steps).")
        if np.ndim(sigma):
            raise ValueError("decompress: `data` is corrupted (a progressive σ per dimension).")
        sigma_max = reader.floats(1, dtype)[0] if steps > 1 else sigma
        top, bottom = float(sigma_max), float(sigma)  # compared in float64: no overflow
        low, high = SIGMA_RANGE
        if not (high >= top >= bottom >= low) or (steps > 1 and not top > bottom):
            raise ValueError("decompress: `data` is corrupted (a bad σ grid).")
        grid = geometric_grid(sigma, sigma_max, steps, dtype)
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
    return header, data[: reader.at], data[reader.at :]
