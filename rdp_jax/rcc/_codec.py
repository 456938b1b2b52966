"""`encode` / `decode`: chunked PFR channel simulation of diagonal Gaussians, as bytes."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax.rcc._bitstream import (
    ALGORITHMS,
    Header,
    cut_scale_q,
    pack,
    read_header,
    read_payload,
)
from rdp_jax.rcc._index_model import KL_SCALE, SD_SCALE, index_bits, log_weight_variance
from rdp_jax.rcc._layout import chunk_counts, gaussian_kl_bits
from rdp_jax.rcc._pfr import chosen_noise, search_chunks

# Largest candidate count: constriction's categorical models quantise to 24-bit probabilities,
# and every index must keep a nonzero one.
MAX_CANDIDATES = 2**22
# Elements (candidates × padded width) per chunk per scan step, and per compiled call over a
# group of chunks: bounds memory to a few MB of temporaries whatever N and d are.
_BLOCK_ELEMENTS = 2**16
_STEP_ELEMENTS = 2**18


class EncodeInfo(NamedTuple):
    """What `encode(..., return_info=True)` reports besides the bytes.

    - `sample`: the selected sample, exactly what `decode` returns (same dtype, same bits).
    - `kl_bits`: KL(q‖p) in bits, the exact Gaussian value summed over dimensions.
    - `payload_bits`: the range-coded block (chunk indices, then the chunk layout), in bits as
      stored.
    - `header_bits`: everything else (header fields and CRC32), in bits.
    - `num_chunks`: the number of chunks C.
    - `chunk_kl_bits`: the KL of each chunk in bits, shape `(C,)`.
    - `chunk_log2_weight`: log2 w = log2 q/p of each chunk's selected candidate, shape `(C,)`;
      E[chunk_kl_bits − chunk_log2_weight] is the truncation bias ("deficit", THEORY §10),
      0 for exact PFR.
    - `indices`: the selected candidate index of each chunk, shape `(C,)`.
    - `index_bits`: the ideal codelength Σ −log2 P(index) under the index law; `payload_bits`
      exceeds it by the layout's codelength and the coder's termination (a few bits).
    """

    sample: Float[Array, " d"]
    kl_bits: float
    payload_bits: int
    header_bits: int
    num_chunks: int
    chunk_kl_bits: np.ndarray
    chunk_log2_weight: np.ndarray
    indices: np.ndarray
    index_bits: float


def _as_key(key, where: str) -> PRNGKeyArray:
    """Accepts a typed key (`jax.random.key`) or raw key data (`jax.random.PRNGKey`)."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{where}: `key` must be a single key; got shape {key.shape}.")
        return key
    if key.dtype != jnp.uint32 or key.ndim != 1:
        raise ValueError(f"{where}: `key` must be a jax.random key; got {key.dtype}{key.shape}.")
    try:
        return jax.random.wrap_key_data(key)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `key` has the wrong shape {key.shape} for a key.") from None


def _vector(x: ArrayLike, name: str, dtype, dim: int | None, where: str, positive=False) -> Array:
    x = jnp.asarray(x, dtype=dtype)
    if x.ndim != 1 or x.shape[0] < 1 or (dim is not None and x.shape[0] != dim):
        want = "a non-empty 1-D array" if dim is None else f"shape ({dim},)"
        raise ValueError(f"{where}: `{name}` must be {want}; got shape {x.shape}.")
    values = np.asarray(x)
    if not np.all(np.isfinite(values)) or (positive and not np.all(values > 0)):
        raise ValueError(f"{where}: `{name}` must be finite" + (" and > 0." if positive else "."))
    return x


def _dtype(*args: ArrayLike, where: str):
    dtype = jnp.result_type(float, *(jnp.asarray(a) for a in args))
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"{where}: the arrays must be float32 or float64; got {dtype}.")
    return dtype


def _context(key: PRNGKeyArray, p_mean: Array, p_std: Array) -> bytes:
    """What the decoder must hold identically to the encoder; it seeds the stream's CRC."""
    key_data = np.asarray(jax.random.key_data(key), dtype=np.uint32)
    return key_data.tobytes() + np.asarray(p_mean).tobytes() + np.asarray(p_std).tobytes()


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def _dim_maps(counts: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(padded width, chunk of each dimension, slot of each dimension within its chunk)."""
    chunk_of_dim = np.repeat(np.arange(len(counts)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot_of_dim = np.arange(int(counts.sum())) - starts[chunk_of_dim]
    # Power-of-two width (at least 4): the candidate noise depends on it, and bucketing caps
    # recompilation at a small cost for chunks of one or two dimensions.
    return max(4, _pow2(int(counts.max()))), chunk_of_dim, slot_of_dim


def _regenerate(cand_root, indices, chunk_of_dim, slot_of_dim, p_mean, p_std, width) -> Array:
    """z = μ_p + σ_p ε of the chosen candidates, in p's dtype, identically in encoder and decoder.

    The noise is computed on C padded to a power of two (at least 8) so compilations repeat;
    the affine map runs in NumPy (see `chosen_noise`).
    """
    rows = max(8, _pow2(len(indices)))
    padded = jnp.asarray(np.pad(indices, (0, rows - len(indices))), dtype=jnp.uint32)
    eps = np.asarray(chosen_noise(cand_root, padded, width=width, dtype=p_mean.dtype))
    mean, std = np.asarray(p_mean), np.asarray(p_std)
    return jnp.asarray(mean + std * eps[chunk_of_dim, slot_of_dim])


def encode(
    key: PRNGKeyArray,
    q_mean: Float[ArrayLike, " d"],
    q_std: Float[ArrayLike, " d"],
    p_mean: Float[ArrayLike, " d"],
    p_std: Float[ArrayLike, " d"],
    *,
    algorithm: str = "pfr",
    chunk_bits: float = 6.0,
    num_candidates: int = 2**16,
    return_info: bool = False,
) -> bytes | tuple[bytes, EncodeInfo]:
    """Sends one sample of q = N(μ_q, diag σ_q²) to a decoder that knows only p and the key.

    The exact per-dimension KL (`gaussian_kl_bits`) is split into C contiguous chunks of about
    `chunk_bits` each (`chunk_counts`). In each chunk the encoder draws N candidates z_j ~ p from
    the shared key and arrival times T_j = Σ_{i≤j} E_i, E_i ~ Exp(1), from its own key-derived
    randomness, and sends the index of (Li & El Gamal 2018, THEORY §10)

    .. math::
        j^\\star = \\arg\\min_{j < N}\\; \\log T_j - \\log w(z_j), \\qquad w = q/p.

    Untruncated, z_{j*} ~ q exactly; with N candidates the sample is close to q when N ≫ 2^k
    and biased towards p otherwise. The indices are range-coded (constriction) under the truncated
    Zipf law P(j) ∝ (j+1)^(−s), s = 1 + 1/(k̄ + e⁻¹ ln(e+1)), k̄ the mean chunk KL.

    **Arguments:**

    - `key`: the key shared with the decoder (`jax.random.key` or `jax.random.PRNGKey`).
    - `q_mean`, `q_std`, `p_mean`, `p_std`: 1-D arrays of one length d ≥ 1; standard deviations
      finite and > 0. The sample dtype is their common float dtype (float32 or float64).
    - `algorithm`: "pfr" (the only one so far).
    - `chunk_bits`: target KL per chunk k, in bits, > 0.
    - `num_candidates`: candidates per chunk N, an integer in [2, 2^22].
    - `return_info`: also return an `EncodeInfo`.

    **Returns:** the stream as `bytes`; with `return_info`, `(bytes, info)`. The same key and
    inputs always give the same bytes.

    **Raises:** `ValueError` naming the argument for bad shapes, dtypes or values.
    """
    where = "encode"
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{where}: unknown `algorithm` {algorithm!r}; choose one of {ALGORITHMS}.")
    if not (isinstance(chunk_bits, int | float) and math.isfinite(chunk_bits) and chunk_bits > 0):
        raise ValueError(f"{where}: `chunk_bits` must be a finite number > 0; got {chunk_bits!r}.")
    if not (isinstance(num_candidates, int | np.integer) and 2 <= num_candidates <= MAX_CANDIDATES):
        raise ValueError(
            f"{where}: `num_candidates` must be an integer in [2, {MAX_CANDIDATES}]; "
            f"got {num_candidates!r}."
        )
    num_candidates = int(num_candidates)
    key = _as_key(key, where)
    dtype = _dtype(q_mean, q_std, p_mean, p_std, where=where)
    q_mean = _vector(q_mean, "q_mean", dtype, None, where)
    dim = q_mean.shape[0]
    q_std = _vector(q_std, "q_std", dtype, dim, where, positive=True)
    p_mean = _vector(p_mean, "p_mean", dtype, dim, where)
    p_std = _vector(p_std, "p_std", dtype, dim, where, positive=True)

    kl = gaussian_kl_bits(
        *(np.asarray(x, dtype=np.float64) for x in (q_mean, q_std, p_mean, p_std))
    )
    counts = chunk_counts(kl, float(chunk_bits))
    num_chunks = len(counts)
    width, chunk_of_dim, slot_of_dim = _dim_maps(counts)
    chunk_kl = np.bincount(chunk_of_dim, weights=kl, minlength=num_chunks)
    kl_q = round(float(kl.sum()) / num_chunks * KL_SCALE)
    # The index law's spread: Var_q[ln w] within a chunk plus the spread of chunk KLs (nats²).
    variance = np.asarray(
        log_weight_variance(*(np.asarray(x, np.float64) for x in (q_mean, q_std, p_mean, p_std)))
    )
    chunk_var = np.bincount(chunk_of_dim, weights=variance, minlength=num_chunks)
    spread = float(np.mean(chunk_var) + np.var(chunk_kl * math.log(2.0)))
    sd_q = round(SD_SCALE * math.sqrt(spread))

    # Padded per-chunk coefficients; padding (a = 0, b = 1) adds exactly 0 to log w.
    block = min(_pow2(num_candidates), max(1, _BLOCK_ELEMENTS // width))
    # The group size depends on C only through a power-of-two bucket with a floor of 8, so few
    # compilations serve many messages; padding chunks cost less than one group's candidates.
    group = min(max(8, _pow2(num_chunks)), max(1, _STEP_ELEMENTS // (block * width)))
    rows = -(-num_chunks // group) * group
    a = np.zeros((rows, width), dtype=dtype)
    b = np.ones((rows, width), dtype=dtype)
    a[chunk_of_dim, slot_of_dim] = np.asarray((p_mean - q_mean) / q_std)
    b[chunk_of_dim, slot_of_dim] = np.asarray(p_std / q_std)
    cand_root, time_root = jax.random.split(key)
    indices, logw = [], []
    for start in range(0, rows, group):
        chunks = jnp.arange(start, start + group, dtype=jnp.uint32)
        found = search_chunks(
            cand_root,
            time_root,
            chunks,
            jnp.asarray(a[start : start + group]),
            jnp.asarray(b[start : start + group]),
            num_candidates=num_candidates,
            block=block,
        )
        indices.append(np.asarray(found[0]))
        logw.append(np.asarray(found[1]))
    indices = np.concatenate(indices)[:num_chunks].astype(np.int64)
    log2w = np.concatenate(logw)[:num_chunks].astype(np.float64) / math.log(2.0)

    sample = _regenerate(cand_root, indices, chunk_of_dim, slot_of_dim, p_mean, p_std, width)
    header = Header(
        jnp.dtype(dtype).name,
        algorithm,
        dim,
        num_candidates,
        kl_q,
        sd_q,
        cut_scale_q(counts),
        counts,
    )
    data, payload_bytes = pack(header, indices, _context(key, p_mean, p_std))
    if not return_info:
        return data
    info = EncodeInfo(
        sample=sample,
        kl_bits=float(kl.sum()),
        payload_bits=8 * payload_bytes,
        header_bits=8 * (len(data) - payload_bytes),
        num_chunks=num_chunks,
        chunk_kl_bits=chunk_kl,
        chunk_log2_weight=log2w,
        indices=indices,
        index_bits=index_bits(indices, num_candidates, kl_q, sd_q),
    )
    return data, info


def decode(
    key: PRNGKeyArray,
    data: bytes,
    p_mean: Float[ArrayLike, " d"],
    p_std: Float[ArrayLike, " d"],
) -> Float[Array, " d"]:
    """Rebuilds the encoder's sample from the stream, the shared key and p alone (never q).

    Only the C chosen candidates are regenerated, with the same compiled function the encoder
    used, so the result has the encoder's dtype and is bit-identical to `EncodeInfo.sample`.

    The stream's CRC is seeded with the key and the prior, so a wrong key or prior raises like a
    corrupted stream does (a mismatch goes unnoticed with probability 2⁻³²).

    **Arguments:**

    - `key`: the key given to `encode`.
    - `data`: the bytes `encode` returned.
    - `p_mean`, `p_std`: the prior given to `encode`, 1-D of the length recorded in `data`.

    **Returns:** the sample, shape `(d,)`, in the dtype recorded in `data`.

    **Raises:** `ValueError` for a truncated or corrupted stream, a wrong key or prior (CRC32
    mismatch), a bad format version or inconsistent header, and for `p_mean`/`p_std` of the
    wrong length or bad values.
    """
    where = "decode"
    header, pos = read_header(data)
    key = _as_key(key, where)
    if header.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(f"{where}: `data` holds a float64 sample; enable jax_enable_x64.")
    for name, x in (("p_mean", p_mean), ("p_std", p_std)):
        if np.shape(x) != (header.dim,):
            raise ValueError(
                f"{where}: `data` records d = {header.dim} but `{name}` has shape "
                f"{np.shape(x)}: the prior does not match, or `data` is corrupted."
            )
    p_mean = _vector(p_mean, "p_mean", header.dtype, header.dim, where)
    p_std = _vector(p_std, "p_std", header.dtype, header.dim, where, positive=True)
    header, indices = read_payload(data, header, pos, _context(key, p_mean, p_std))
    width, chunk_of_dim, slot_of_dim = _dim_maps(header.counts)
    cand_root, _ = jax.random.split(key)
    return _regenerate(cand_root, indices, chunk_of_dim, slot_of_dim, p_mean, p_std, width)
