"""One channel-simulated message (a stream segment): chunk layout, PFR search, regeneration."""

import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from jaxtyping import Array, Float, PRNGKeyArray

from rdp_jax.rcc._bitstream import Segment
from rdp_jax.rcc._layout import gaussian_kl_bits
from rdp_jax.rcc._pfr import ROWS_PER_KEY, chosen_noise, search_chunks
from rdp_jax.rcc._plan import plan_layout

# Elements (candidates × padded width) per chunk per scan step, and per compiled call over a
# group of chunks: bounds memory to a few MB of temporaries whatever N and d are.
_BLOCK_ELEMENTS = 2**16
_STEP_ELEMENTS = 2**18
_CHUNKS_PER_CALL = 64
# jax's float32 normal is √2·erfinv(u) with u on a 2⁻²³ grid, so |ε| never exceeds ≈ 5.42 (the
# maximum of 2²⁶ draws is 5.41998); q mass beyond μ_p ± 5.42 σ_p cannot be sampled in float32.
_FLOAT32_REACH = 5.42
_UNREACHABLE_MASS = 1e-3


class Message(NamedTuple):
    """A simulated message: its segment, indices, sample and per-chunk accounting."""

    segment: Segment
    indices: np.ndarray
    sample: Float[Array, " d"]
    kl_bits: np.ndarray  # per dimension
    chunk_kl_bits: np.ndarray
    chunk_log2_weight: np.ndarray


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


def regenerate(
    key: PRNGKeyArray, counts: np.ndarray, indices: np.ndarray, p_mean: Array, p_std: Array
) -> Float[Array, " d"]:
    """z = μ_p + σ_p ε of the chosen candidates, in p's dtype, identically in encoder and decoder.

    Only the C chosen candidates are generated, `_CHUNKS_PER_CALL` chunks per call so that one
    compilation per width serves every C; the affine map runs in NumPy (see `chosen_noise`).
    """
    width, chunk_of_dim, slot_of_dim = _dim_maps(counts)
    cand_root, _ = jax.random.split(key)
    padded = np.pad(indices, (0, -len(indices) % _CHUNKS_PER_CALL)).astype(np.uint32)
    eps = np.concatenate(
        [
            np.asarray(
                chosen_noise(
                    cand_root,
                    jnp.uint32(start),
                    jnp.asarray(padded[start : start + _CHUNKS_PER_CALL]),
                    width=width,
                    dtype=p_mean.dtype,
                )
            )
            for start in range(0, len(padded), _CHUNKS_PER_CALL)
        ]
    )
    mean, std = np.asarray(p_mean), np.asarray(p_std)
    return jnp.asarray(mean + std * eps[chunk_of_dim, slot_of_dim])


def _warn_unreachable_tail(q_mean, q_std, p_mean, p_std) -> None:
    """Warns when float32 candidates cannot reach a part of q that matters (sample biased)."""
    lo = (p_mean - _FLOAT32_REACH * p_std - q_mean) / q_std
    hi = (p_mean + _FLOAT32_REACH * p_std - q_mean) / q_std
    mass = scipy.special.ndtr(lo) + scipy.special.ndtr(-hi)
    worst = int(np.argmax(mass))
    if mass[worst] > _UNREACHABLE_MASS:
        warnings.warn(
            f"float32 candidates reach only |ε| ≤ {_FLOAT32_REACH} prior standard deviations, but "
            f"q puts {mass[worst]:.1e} of its mass beyond that in dimension {worst}: the sample "
            "is biased there. Encode in float64.",
            stacklevel=3,
        )


def simulate(
    key: PRNGKeyArray,
    q_mean: Array,
    q_std: Array,
    p_mean: Array,
    p_std: Array,
    chunk_bits: float,
    num_candidates: int,
    algorithm: str,
) -> Message:
    """Lays out the chunks (`plan_layout`), runs truncated PFR on every chunk and regenerates the
    chosen sample.

    Inputs are validated 1-D arrays of one dtype; see `encode` for the maths.
    """
    as64 = [np.asarray(x, dtype=np.float64) for x in (q_mean, q_std, p_mean, p_std)]
    kl = gaussian_kl_bits(*as64)
    if p_mean.dtype == np.float32:
        _warn_unreachable_tail(*as64)
    segment = plan_layout(*as64, kl, chunk_bits, num_candidates)
    counts = segment.counts
    num_chunks = len(counts)
    width, chunk_of_dim, slot_of_dim = _dim_maps(counts)
    chunk_kl = np.bincount(chunk_of_dim, weights=kl, minlength=num_chunks)

    dtype = p_mean.dtype
    # Padded per-chunk coefficients; padding (a = 0, b = 1) adds exactly 0 to log w.
    # Whole row blocks of the randomness layout (see `_pfr`); candidates past N are masked.
    block = max(ROWS_PER_KEY, min(_pow2(num_candidates), _BLOCK_ELEMENTS // width))
    # The group size does not depend on C, so one compilation per (N, width) serves every
    # message; the padding chunks of the last group cost at most one call's candidates.
    group = max(1, _STEP_ELEMENTS // (block * width))
    rows = -(-num_chunks // group) * group
    a = np.zeros((rows, width), dtype=dtype)
    b = np.ones((rows, width), dtype=dtype)
    # Host-side NumPy: eager jnp arithmetic would compile a kernel for every new d.
    qm, qs, pm, ps = (np.asarray(x) for x in (q_mean, q_std, p_mean, p_std))
    a[chunk_of_dim, slot_of_dim] = (pm - qm) / qs
    b[chunk_of_dim, slot_of_dim] = ps / qs
    cand_root, time_root = jax.random.split(key)
    # Groups are dealt round-robin over the local devices and dispatched asynchronously, so
    # several devices (GPUs, or CPU cores exposed with JAX_NUM_CPU_DEVICES) search at once.
    devices = jax.local_devices()
    found = [
        search_chunks(
            cand_root,
            time_root,
            *jax.device_put(
                (
                    np.arange(start, start + group, dtype=np.uint32),
                    a[start : start + group],
                    b[start : start + group],
                ),
                devices[(start // group) % len(devices)],
            ),
            num_candidates=num_candidates,
            block=block,
            ordered=algorithm == "orc",
        )
        for start in range(0, rows, group)
    ]
    indices = np.concatenate([np.asarray(f[0]) for f in found])[:num_chunks].astype(np.int64)
    logw = np.concatenate([np.asarray(f[1]) for f in found])[:num_chunks].astype(np.float64)
    sample = regenerate(key, counts, indices, p_mean, p_std)
    return Message(segment, indices, sample, kl, chunk_kl, logw / math.log(2.0))
