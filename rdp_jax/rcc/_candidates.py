"""The shared randomness of a stream, specified to the bit: keys, candidates and arrival times.

Everything derives from the 64-bit key data (k₀, k₁) of a threefry key through the
Threefry-2x32 block cipher with 20 rounds (Salmon et al. 2011, "Parallel random numbers: as
easy as 1, 2, 3"; the function jax's default PRNG is built on). The decoder evaluates it in
NumPy (`threefry2x32`); the encoder's search uses jax's own `threefry2x32_p` primitive, the
same function (both match the Random123 known-answer vectors, tested), which XLA compiles into a
faster kernel than the same operations written out in jax.numpy. Integer arithmetic is exact on
every platform; the one float step, bits → normal, is done by the decoder in NumPy with IEEE
basic operations only (`_portable_math`), so a stream decodes to the same bits on any CPU, GPU or
jax version. With T(k, (a, b)) the cipher's two output words (format versions 5 and 6):

- segment s of a stream (one per progressive step; 0 for `encode`): key T(root, (s, SEGMENT)).
- chunk c of a segment with key g: candidate key T(g, (c, CANDIDATES)), time key T(g, (c, TIMES)).
- candidate j of a chunk with candidate key h, dimension slot i < n_c (its place in the chunk):
  - float64: (w₀, w₁) = T(h, (j, i)), x = ((w₀ − 2³¹)·2²¹ + ⌊w₁ / 2¹¹⌋ + ½)·2⁻⁵² — the 53 top
    bits, centred;
  - float32: (w₀, w₁) = T(h, (j, ⌊i/2⌋)), w = w₀ for even i and w₁ for odd i, x = (⌊w / 2⁸⌋ −
    2²³ + ½)·2⁻²³;
  - ε = Φ⁻¹((1 + x)/2): in float64 by Wichura's AS 241 (accurate to about 1e-16); in float32
    by Giles' single-precision erfinv, ε = √2·x·P(w) with w = −ln((1 − x)(1 + x)) (within
    1e-6 relative, and cheaper: the search evaluates it for every candidate), computed in
    float64 and rounded once to float32; then z = μ_p + σ_p ε.
  x is exact in its dtype and lies in (−1, 1), so u = (1 + x)/2 never reaches 0 or 1: float64
  candidates reach |ε| ≤ 8.29 and float32 ones |ε| ≤ `FLOAT32_REACH`.
- arrival times (the encoder's private randomness: the decoder never needs them): candidate j
  of a chunk with time key t draws w from T(t, (⌊j/2⌋, 0)) as above, and E_j = −ln u with
  u = (w + ½)·2⁻³² (float64) or (⌊w / 2⁸⌋ + ½)·2⁻²⁴ (float32).

The encoder's search (`_pfr`) evaluates the same formulas in XLA, where FMA contraction may move
a result by a few ulps (at most 8 measured, `tests/test_rcc_portable.py`); the chosen candidates
are then regenerated exactly (`candidate_noise`), so encoder and decoder hold the same sample.
"""

import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p
from jaxtyping import Array, Float, UInt32

from rdp_jax.rcc import _portable_math

# Domain separation of the derived keys (ASCII tags).
SEGMENT = 0x7365676D  # "segm"
CANDIDATES = 0x63616E64  # "cand"
TIMES = 0x74696D65  # "time"

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
_U32 = np.uint32


def threefry2x32(key0, key1, x0, x1):
    """Threefry-2x32-20 of the counter (x0, x1) under the key (key0, key1), on NumPy uint32
    arrays (broadcast together); returns the two output words. Additions wrap modulo 2³²."""
    schedule = (key0, key1, key0 ^ key1 ^ _U32(_PARITY))
    x0, x1 = x0 + key0, x1 + key1
    for injection in range(1, 6):
        for r in _ROTATIONS[(injection - 1) % 2]:
            x0 = x0 + x1
            x1 = ((x1 << _U32(r)) | (x1 >> _U32(32 - r))) ^ x0
        x0 = x0 + schedule[injection % 3]
        x1 = x1 + schedule[(injection + 1) % 3] + _U32(injection)
    return x0, x1


def _threefry_xla(key0, key1, x0, x1):
    """`threefry2x32` in XLA, through jax's primitive (its operands broadcast explicitly)."""
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in (key0, key1, x0, x1)))
    operands = [jnp.broadcast_to(jnp.asarray(v, jnp.uint32), shape) for v in (key0, key1, x0, x1)]
    return threefry2x32_p.bind(*operands)


def derive(key: UInt32[np.ndarray, "... 2"], a, b) -> UInt32[np.ndarray, "... 2"]:
    """The key T(key, (a, b)), in NumPy; `a` and `b` broadcast against the key's batch shape."""
    key = np.asarray(key, dtype=_U32)
    a, b = (np.asarray(v, dtype=_U32) for v in (a, b))
    with np.errstate(over="ignore"):  # NumPy warns on scalar (0-d) wrap-around; it is intended
        w0, w1 = threefry2x32(key[..., 0], key[..., 1], a, b)
    return np.stack([w0, w1], axis=-1)


def chunk_keys(segment_key: np.ndarray, num_chunks: int, tag: int) -> UInt32[np.ndarray, "c 2"]:
    """The candidate (`CANDIDATES`) or time (`TIMES`) key of every chunk of a segment."""
    return derive(segment_key, np.arange(num_chunks, dtype=_U32), tag)


def _centred64(w0, w1):
    """x of a float64 candidate from its two words: the top 53 bits, centred (exact)."""
    high = w0.astype(np.int64) - 2**31
    return (
        high.astype(np.float64) * 2.0**21 + (w1 >> _U32(11)).astype(np.float64) + 0.5
    ) * 2.0**-52


def _centred32(word, dtype):
    """x of a float32 candidate from its word: the top 24 bits, centred (exact in float32)."""
    top = (word >> _U32(8)).astype(np.int32) - 2**23
    return (top.astype(dtype) + dtype(0.5)) * dtype(2.0**-23)


def candidate_noise(
    keys: UInt32[np.ndarray, "n 2"],
    indices: UInt32[np.ndarray, " n"],
    slots: UInt32[np.ndarray, " n"],
    dtype,
) -> Float[np.ndarray, " n"]:
    """ε of candidate `indices[n]` at dimension slot `slots[n]` of the chunk whose candidate key
    is `keys[n]`, exactly (NumPy, the same bits everywhere), in `dtype`."""
    dtype = np.dtype(dtype).type
    indices, slots = indices.astype(_U32), slots.astype(_U32)
    if dtype == np.float64:
        x = _centred64(*threefry2x32(keys[:, 0], keys[:, 1], indices, slots))
        return _portable_math.ndtri_centered(x)
    w0, w1 = threefry2x32(keys[:, 0], keys[:, 1], indices, slots >> _U32(1))
    x = _centred32(np.where(slots & _U32(1), w1, w0), np.float64)
    return _portable_math.ndtri_centered_float32(x)


def search_noise(
    keys: UInt32[Array, "g 2"], first: Array, block: int, width: int, dtype
) -> Float[Array, "g block width"]:
    """ε of candidates first, …, first + block − 1 at slots 0, …, width − 1 of each chunk, in XLA
    (for the encoder's search; within a few ulps of `candidate_noise`)."""
    dtype = np.dtype(dtype).type
    j = (first + jnp.arange(block, dtype=jnp.uint32))[None, :, None]
    k0, k1 = keys[:, 0, None, None], keys[:, 1, None, None]
    if dtype == np.float64:
        slots = jnp.arange(width, dtype=jnp.uint32)[None, None, :]
        x = _centred64(*_threefry_xla(k0, k1, j, slots))
        return _portable_math.quantile_centered(x, jnp, jnp.log)
    pairs = jnp.arange(width // 2, dtype=jnp.uint32)[None, None, :]
    w0, w1 = _threefry_xla(k0, k1, j, pairs)
    words = jnp.stack([w0, w1], axis=-1).reshape(keys.shape[0], block, width)
    return _portable_math.giles_quantile_centered(_centred32(words, dtype), jnp, jnp.log)


def search_exponentials(keys: UInt32[Array, "g 2"], first: Array, block: int, dtype):
    """E_j ~ Exp(1) of candidates first, …, first + block − 1 (`first`, `block` even)."""
    dtype = np.dtype(dtype).type
    pairs = (first // 2 + jnp.arange(block // 2, dtype=jnp.uint32))[None, :]
    w0, w1 = _threefry_xla(keys[:, 0, None], keys[:, 1, None], pairs, 0)
    words = jnp.stack([w0, w1], axis=-1).reshape(keys.shape[0], block)
    if dtype == np.float64:
        u = (words.astype(np.float64) + 0.5) * 2.0**-32
    else:
        u = ((words >> _U32(8)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)
    return -jnp.log(u)


# The largest |ε| a float32 candidate can take: x = ±(1 − 2⁻²⁴), i.e. u = 2⁻²⁵.
FLOAT32_REACH = float(_portable_math.ndtri_centered_float32(np.float64(1.0 - 2.0**-24)))
