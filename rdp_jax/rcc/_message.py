"""One channel-simulated message (a stream segment): chunk layout, PFR search, regeneration."""

import collections
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np
import scipy.special
from jaxtyping import Array, Float

from rdp_jax.rcc._bitstream import MAX_DIM, Segment
from rdp_jax.rcc._budget import next_pow2, search_widths
from rdp_jax.rcc._candidates import (
    CANDIDATES,
    FLOAT32_REACH,
    TIMES,
    candidate_noise,
    chunk_keys,
)
from rdp_jax.rcc._layout import DEFAULT_CANDIDATES, gaussian_kl_bits, unbiased_candidates
from rdp_jax.rcc._pfr import search_chunks
from rdp_jax.rcc._plan import plan_budget_layout, plan_layout

# Elements (candidates × padded width) per chunk per scan step, and per compiled call over a
# group of chunks: bounds memory to a few MB of temporaries whatever N and d are.
_BLOCK_ELEMENTS = 2**16
_STEP_ELEMENTS = 2**18
_MIN_BLOCK = 64
_UNREACHABLE_MASS = 1e-3


class Message(NamedTuple):
    """A simulated message: its segment, indices, sample and per-chunk accounting."""

    segment: Segment
    indices: np.ndarray
    sample: Float[np.ndarray, " d"]
    kl_bits: np.ndarray  # per dimension
    chunk_kl_bits: np.ndarray
    chunk_log2_weight: np.ndarray
    num_candidates: int  # N of the stream header
    chunk_candidates: np.ndarray  # the candidates each chunk searched


def _dim_maps(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chunk of each dimension, slot of each dimension within its chunk)."""
    chunk_of_dim = np.repeat(np.arange(len(counts)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return chunk_of_dim, np.arange(int(counts.sum())) - starts[chunk_of_dim]


def _padded(x: np.ndarray, multiple: int) -> np.ndarray:
    return np.pad(x, [(0, -len(x) % multiple)] + [(0, 0)] * (x.ndim - 1))


def regenerate(
    segment_key: np.ndarray,
    counts: np.ndarray,
    indices: np.ndarray,
    p_mean: np.ndarray,
    p_std: np.ndarray,
) -> Float[np.ndarray, " d"]:
    """z = μ_p + σ_p ε of the chosen candidates, in p's dtype, bit-identically on every machine.

    Only the C chosen candidates are generated, in NumPy (`_candidates.candidate_noise`); the
    affine map is NumPy's separate IEEE multiply and add, which round the same way everywhere.
    The sample stays on the host: its consumers (the next progressive step's q, the codec's
    change of coordinates) work in NumPy, and the public decoders convert it once.
    """
    chunk_of_dim, slot_of_dim = _dim_maps(counts)
    keys = chunk_keys(segment_key, len(counts), CANDIDATES)
    mean, std = np.asarray(p_mean), np.asarray(p_std)
    eps = candidate_noise(
        keys[chunk_of_dim],
        np.asarray(indices)[chunk_of_dim].astype(np.uint32),
        slot_of_dim.astype(np.uint32),
        mean.dtype,
    )
    return mean + std * eps


class _Job(NamedTuple):
    """One compiled search call: a group of chunks of one padded width and count."""

    chunk_ids: np.ndarray  # the message's chunks in the group (padding excluded)
    inputs: tuple  # `search_chunks`'s arguments
    block: int
    work: int  # candidates × padded width, the call's share of the search


def _search(
    jobs: list[_Job], num_chunks: int, ordered: bool, progress: Callable[[float], None] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Runs the calls over the local devices; returns each chunk's index and log w (nats).

    Calls are dealt round-robin over the devices (GPUs, or CPU cores exposed with
    JAX_NUM_CPU_DEVICES) and dispatched asynchronously, two per device in flight: enough to
    keep every device busy, and each collected in order, so that `progress` hears the fraction
    of the search work done as it is done.
    """
    devices = jax.local_devices()
    total = sum(job.work for job in jobs)
    indices = np.zeros(num_chunks, dtype=np.int64)
    logw = np.zeros(num_chunks, dtype=np.float64)
    in_flight: collections.deque = collections.deque()
    done = 0

    def collect() -> None:
        nonlocal done
        job, (index, log_weight) = in_flight.popleft()
        indices[job.chunk_ids] = np.asarray(index)[: len(job.chunk_ids)]
        logw[job.chunk_ids] = np.asarray(log_weight)[: len(job.chunk_ids)]
        done += job.work
        if progress is not None:
            progress(done / total)

    for n, job in enumerate(jobs):
        device = devices[n % len(devices)]
        found = search_chunks(*jax.device_put(job.inputs, device), block=job.block, ordered=ordered)
        in_flight.append((job, found))
        if len(in_flight) > 2 * len(devices):
            collect()
    while in_flight:
        collect()
    return indices, logw


def _warn_unreachable_tail(q_mean, q_std, p_mean, p_std) -> None:
    """Warns when float32 candidates cannot reach a part of q that matters (sample biased)."""
    lo = (p_mean - FLOAT32_REACH * p_std - q_mean) / q_std
    hi = (p_mean + FLOAT32_REACH * p_std - q_mean) / q_std
    mass = scipy.special.ndtr(lo) + scipy.special.ndtr(-hi)
    worst = int(np.argmax(mass))
    if mass[worst] > _UNREACHABLE_MASS:
        warnings.warn(
            f"float32 candidates reach only |ε| ≤ {FLOAT32_REACH:.2f} prior standard deviations, "
            f"but q puts {mass[worst]:.1e} of its mass beyond that in dimension {worst}: the "
            "sample is biased there. Encode in float64.",
            stacklevel=3,
        )


def simulate(
    segment_key: np.ndarray,
    q_mean: Array,
    q_std: Array,
    p_mean: Array,
    p_std: Array,
    chunk_bits: float,
    num_candidates: int | None,
    algorithm: str,
    budget_share: float = 1.0,
    progress: Callable[[float], None] | None = None,
) -> Message:
    """Lays out the chunks, runs truncated PFR (or ORC) on every chunk and regenerates the
    chosen sample.

    Inputs are validated 1-D arrays of one dtype and the segment's key words; see `encode`.
    `num_candidates` None is the default: for PFR the bias-budget layout
    (`plan_budget_layout`: per-chunk counts, not sent, the header's N the largest; the message
    spends `budget_share` of its bias budget); for ORC
    N = `unbiased_candidates` of the message, against the risk reference of
    `DEFAULT_CANDIDATES` (`plan_layout`). `progress`, if given, is called with the fraction
    of the search done (of its candidates × padded widths) as each call completes, last with 1.
    """
    as64 = [np.asarray(x, dtype=np.float64) for x in (q_mean, q_std, p_mean, p_std)]
    if as64[0].size > MAX_DIM:
        raise ValueError(
            f"encode: the message has {as64[0].size} dimensions; a stream holds at most {MAX_DIM}."
        )
    with np.errstate(over="ignore"):
        kl = gaussian_kl_bits(*as64)
    total = float(np.sum(kl))
    if not math.isfinite(total):
        raise ValueError(
            "encode: KL(q‖p) is beyond float64: q and p are too far apart to code (send it in "
            "steps, or bring p closer)."
        )
    if not math.isfinite(total / chunk_bits):
        raise ValueError(f"encode: `chunk_bits` {chunk_bits:g} is too small for any layout.")
    if p_mean.dtype == np.float32:
        _warn_unreachable_tail(*as64)
    if num_candidates is None and algorithm == "pfr":
        segment, searched = plan_budget_layout(tuple(as64), kl, chunk_bits, budget_share)
        num_candidates = int(searched.max())
    else:
        reference = None
        if num_candidates is None:
            reference = DEFAULT_CANDIDATES
            num_candidates = unbiased_candidates(float(np.sum(kl)), chunk_bits)
        segment = plan_layout(*as64, kl, chunk_bits, num_candidates, reference)
        searched = num_candidates << segment.extra
    counts = segment.counts
    num_chunks = len(counts)
    chunk_of_dim, slot_of_dim = _dim_maps(counts)
    chunk_kl = np.bincount(chunk_of_dim, weights=kl, minlength=num_chunks)
    widths = search_widths(counts)
    candidate_keys = chunk_keys(segment_key, num_chunks, CANDIDATES)
    time_keys = chunk_keys(segment_key, num_chunks, TIMES)

    dtype = p_mean.dtype
    # Host-side NumPy: eager jnp arithmetic would compile a kernel for every new d.
    qm, qs, pm, ps = (np.asarray(x) for x in (q_mean, q_std, p_mean, p_std))
    jobs = []
    for width, count in sorted(set(zip(widths.tolist(), searched.tolist(), strict=True))):
        ids = np.flatnonzero((widths == width) & (searched == count))
        block = max(_MIN_BLOCK, min(next_pow2(count), _BLOCK_ELEMENTS // width))
        # The group size does not depend on C, so one compilation per (width, block) serves
        # every message; the padding chunks of the last group cost at most one call's candidates.
        group = max(1, _STEP_ELEMENTS // (block * width))
        padded_ids = _padded(ids, group)
        # Per-chunk coefficients; padding (a = 0, b = 1) adds exactly 0 to log w.
        a = np.zeros((len(padded_ids), width), dtype=dtype)
        b = np.ones((len(padded_ids), width), dtype=dtype)
        dims = np.flatnonzero(np.isin(chunk_of_dim, ids))
        rows = np.searchsorted(ids, chunk_of_dim[dims])
        a[rows, slot_of_dim[dims]] = (pm[dims] - qm[dims]) / qs[dims]
        b[rows, slot_of_dim[dims]] = ps[dims] / qs[dims]
        keys = (_padded(candidate_keys[ids], group), _padded(time_keys[ids], group))
        for start in range(0, len(padded_ids), group):
            part = slice(start, start + group)
            inputs = (keys[0][part], keys[1][part], a[part], b[part], np.uint32(count))
            jobs.append(_Job(ids[start : start + group], inputs, block, group * count * width))
    indices, logw = _search(jobs, num_chunks, algorithm == "orc", progress)
    sample = regenerate(segment_key, counts, indices, p_mean, p_std)
    log2_weight = logw / math.log(2.0)
    return Message(segment, indices, sample, kl, chunk_kl, log2_weight, num_candidates, searched)
