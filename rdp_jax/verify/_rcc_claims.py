"""Claims of the RCC issue: PFR codelength, unbiasedness, bit-exact streams, DiffC's total KL."""

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import warnings

import jax
import numpy as np
import scipy.stats

from rdp_jax import rcc
from rdp_jax.scores import gaussian
from rdp_jax.verify._registry import Measurement, claim

# Li & El Gamal (2018, SFRL): an optimal code for the PFR index costs ≤ KL + log2(KL+1) + 4.
_SFRL_C = 4.0
# Monte Carlo comparisons: ≤ 5 standard errors (false failure ~6e-7 for a normal mean).
_Z = 5.0
# KS level for unbiasedness: a false failure (q exact, p < level) happens with probability 1 %.
_KS_LEVEL = 0.01


def _one_bit_per_dim(seed: int, d: int, dtype=np.float64):
    """q = N(Δ, I), p = N(0, I) with Δ_i = ±√(2 ln 2): exactly 1 bit of KL per dimension."""
    rng = np.random.default_rng(seed)
    delta = rng.choice([-1.0, 1.0], d) * math.sqrt(2 * math.log(2))
    return delta.astype(dtype), np.ones(d, dtype), np.zeros(d, dtype), np.ones(d, dtype)


def _diffusion_channel(seed: int, d: int):
    """The seed paper's encoder channel X_t = √ᾱ X + √(1−ᾱ) ε, X ~ N(0, I), ᾱ = 3/4: q =
    N(√ᾱ x, 1/4), p = N(0, 1), I(X; X_t) = 1 bit per dimension, but a KL per dimension that varies
    with x² (so the chunk layout has to be paid for)."""
    x = np.random.default_rng(seed).standard_normal(d)
    return math.sqrt(0.75) * x, np.full(d, 0.5), np.zeros(d), np.ones(d)


def _codelength(message) -> Measurement:
    """Mean payload per chunk (layout included) of 40 messages against the SFRL bound."""
    bits, kbars = [], []
    for seed in range(40):
        _, info = rcc.encode(jax.random.key(seed), *message(seed), return_info=True)
        bits.append(info.payload_bits / info.num_chunks)
        kbars.append(info.kl_bits / info.num_chunks)
    kbar = float(np.mean(kbars))
    bound = kbar + math.log2(kbar + 1) + _SFRL_C
    mean, se = float(np.mean(bits)), float(np.std(bits) / math.sqrt(len(bits)))
    return Measurement(
        mean,
        bound,
        0.0,
        "at_most",
        detail=f"payload bits/chunk {mean:.2f} ± {se:.2f} at k̄ = {kbar:.2f} (c = 4 bound "
        f"{bound:.2f}); measured c = {mean - kbar - math.log2(kbar + 1):.2f}; 40 messages",
    )


@claim(
    "PFR codelength ≤ KL + log2(KL+1) + 4 per chunk",
    "Li & El Gamal 2018 (SFRL); rcc.encode defaults, 64-bit messages",
    group="rcc",
    evidence="Monte Carlo",
)
def _codelength_bound() -> Measurement:
    return _codelength(lambda seed: _one_bit_per_dim(seed, 64))


@claim(
    "PFR codelength bound in the seed paper's channel, layout included",
    "Li & El Gamal 2018 (SFRL); X_t = √ᾱ X + √(1−ᾱ) ε at 1 bit/dim, 64-dim messages",
    group="rcc",
    evidence="Monte Carlo",
)
def _codelength_bound_channel() -> Measurement:
    return _codelength(lambda seed: _diffusion_channel(seed, 64))


@claim(
    "decoded samples are distributed as q (KS on the projection onto Δ)",
    "Li & El Gamal 2018, PFR exactness; rcc defaults (k = 8, N = 2^18)",
    group="rcc",
    evidence="Monte Carlo",
)
def _unbiased() -> Measurement:
    # One 8000-dim message of 1000 chunks: the chunks are independent messages, so each chunk's
    # standardised projection on its own Δ must be N(0, 1) when the sample follows q.
    q_mean, q_std, p_mean, p_std = _one_bit_per_dim(7, 8000)
    _, info = rcc.encode(jax.random.key(7), q_mean, q_std, p_mean, p_std, return_info=True)
    chunk = np.repeat(np.arange(info.num_chunks), info.chunk_dims)
    delta = q_mean - p_mean
    proj = np.bincount(chunk, delta * (np.asarray(info.sample) - q_mean))
    scale = np.sqrt(np.bincount(chunk, (delta * q_std) ** 2))
    pvalue = float(scipy.stats.kstest(proj / scale, "norm").pvalue)
    deficit = float(np.mean(info.chunk_kl_bits - info.chunk_log2_weight))
    return Measurement(
        pvalue,
        _KS_LEVEL,
        0.0,
        "at_least",
        detail=f"KS p over {info.num_chunks} chunks at k̄ = {np.mean(info.chunk_kl_bits):.2f}; "
        f"mean log2 w deficit {deficit:.3f} bits/chunk; false-failure rate 1 %",
    )


@claim(
    "progressive (DiffC) total KL → I(X; X_σ)",
    "Vonderfecht & Liu 2025 (DiffC), maths §10; exact Gaussian score, d = 32",
    group="rcc",
    evidence="Monte Carlo",
)
def _progressive_kl() -> Measurement:
    rng = np.random.default_rng(5)
    d, sigma_t = 32, 0.5
    mean, var = rng.normal(size=d), np.exp(rng.normal(size=d))
    model = gaussian(mean, var)
    grid = np.geomspace(20.0, sigma_t, 32)
    totals = []
    for seed in range(40):
        x = mean + np.sqrt(var) * rng.normal(size=d)
        _, info = rcc.progressive_encode(
            jax.random.key(seed),
            x,
            grid,
            model,
            prior_mean=mean,
            prior_std=np.sqrt(var + grid[0] ** 2),
            num_candidates=2**10,
            return_info=True,
        )
        totals.append(info.kl_bits)
    expected = float(rcc.progressive_expected_kl_bits(var, grid).sum())
    mutual = float(0.5 * np.sum(np.log2(1 + var / sigma_t**2)))
    fine = float(rcc.progressive_expected_kl_bits(var, np.geomspace(20.0, sigma_t, 1024)).sum())
    se = float(np.std(totals) / math.sqrt(len(totals)))
    return Measurement(
        float(np.mean(totals)),
        expected,
        _Z * se,
        detail=f"coded mean over 40 trajectories, 32 steps, vs its expectation; I = {mutual:.3f}"
        f" bits, expected total {expected:.3f} (32 steps), {fine:.3f} (1024 steps)",
    )


# The first case of tests/data/rcc_golden_v5.json: 64 dimensions at 1 bit each, the defaults,
# key 1, p = N(0, I); encoded once, it must decode to the same sample forever.
_GOLDEN_STREAM = "524a0501408080100108800135006bc9a9b34cd353cce4ee07e00ed8a7"
_GOLDEN_SHA256 = "b1962b9e70b74191701013739557076b7a330ef38b2634e2d9f92b7ce0685bd5"

_DECODE_IN_CHILD = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
from rdp_jax.verify._rcc_claims import decode_hashes
print(json.dumps(decode_hashes(json.loads(sys.stdin.read()))))
"""


def decode_hashes(cases: list) -> list[str]:
    """SHA-256 of each decoded sample, for cases (key, dtype, d, stream hex) against N(0, I)."""
    hashes = []
    for key, dtype, dim, stream in cases:
        p_mean, p_std = np.zeros(dim, dtype), np.ones(dim, dtype)
        x = rcc.decode(jax.random.key(key), bytes.fromhex(stream), p_mean, p_std)
        hashes.append(hashlib.sha256(np.asarray(x).tobytes()).hexdigest())
    return hashes


def _other_cpu_settings() -> dict[str, str]:
    """NumPy's SIMD dispatch off, XLA without AVX/FMA (x86), another BLAS thread count."""
    from numpy._core import _multiarray_umath as umath

    changes = {"JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1", "OPENBLAS_NUM_THREADS": "3"}
    dispatched = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    if dispatched:
        changes["NPY_DISABLE_CPU_FEATURES"] = " ".join(dispatched)
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_max_isa=SSE4_2"
        changes["XLA_FLAGS"] = flags.strip()
    return changes


@claim(
    "streams decode bit-exactly, here, on other CPU settings, and a golden stream forever",
    f"rdp-jax format v{rcc.FORMAT_VERSION}: a golden stream and 20 fresh ones (d ≤ 512, float32 "
    "and float64, PFR and ORC), decoded here and in a process with NumPy baseline kernels and "
    "XLA at SSE4.2",
    group="rcc",
    evidence="golden",
)
def _portable() -> Measurement:
    rng = np.random.default_rng(21)
    cases, want = [(1, "float64", 64, _GOLDEN_STREAM)], [_GOLDEN_SHA256]
    for trial in range(20):
        d, dtype = int(rng.integers(1, 513)), ("float32", "float64")[trial % 2]
        q_mean, q_std = rng.normal(size=d), np.exp(-0.3 * np.abs(rng.normal(size=d)))
        args = [a.astype(dtype) for a in (q_mean, q_std, np.zeros(d), np.ones(d))]
        algorithm = rcc.ALGORITHMS[trial // 2 % 2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # float32 reach: exactness is the point
            data, info = rcc.encode(
                jax.random.key(trial), *args, algorithm=algorithm, num_candidates=256,
                return_info=True,
            )  # fmt: skip
        cases.append((trial, dtype, d, data.hex()))
        want.append(hashlib.sha256(np.asarray(info.sample).tobytes()).hexdigest())
    here = decode_hashes(cases)
    settings = _other_cpu_settings()
    child = subprocess.run(
        [sys.executable, "-c", _DECODE_IN_CHILD], input=json.dumps(cases), capture_output=True,
        text=True, env={**os.environ, **settings}, timeout=600, check=True,
    )  # fmt: skip
    there = json.loads(child.stdout)
    mismatches = sum(a != w for a, w in zip(here + there, want + want, strict=True))
    golden = "ok" if here[0] == there[0] == _GOLDEN_SHA256 else "MISMATCH"
    return Measurement(
        float(mismatches),
        0.0,
        0.0,
        detail=f"mismatching samples out of {2 * len(cases)} decodes (golden {golden}); the other "
        "process ran with " + ", ".join(f"{k}={v}" for k, v in sorted(settings.items())),
    )
