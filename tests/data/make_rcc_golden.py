"""Writes `rcc_golden_v7.json`: streams encoded once, with the samples they must decode to forever.

Run from the repository root, only when the format version changes:
`python tests/data/make_rcc_golden.py`. `tests/test_rcc_portable.py` decodes every case, here and
in processes with other CPU settings, and compares bits (one-shot) or float noise (progressive:
the score model's outputs vary with the machine's kernels, the stream does not).
"""

import json
import math
import sys
import warnings
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import portability  # noqa: E402
from portability import to_hex  # noqa: E402

from rdp_jax import rcc  # noqa: E402


def oneshot(name, key, q_mean, q_std, p_mean, p_std, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float32 reach: exactness is the point
        data, info = rcc.encode(
            jax.random.key(key), q_mean, q_std, p_mean, p_std, return_info=True, **options
        )
    print(
        f"{name}: {len(data)} bytes, {info.num_chunks} chunks ({info.layout}), "
        f"candidates {sorted(set(info.chunk_candidates.tolist()))}"
    )
    return {
        "name": name,
        "kind": "oneshot",
        "dtype": str(p_mean.dtype),
        "key": key,
        "p_mean": to_hex(p_mean),
        "p_std": to_hex(p_std),
        "options": options,
        "stream": data.hex(),
        "sample": to_hex(info.sample),
    }


def progressive(name, key, x, grid, spec, prior_mean, prior_std, **options):
    dtype = x.dtype
    model = portability.golden_model(spec, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an untrained model's p can be far from q
        data, info = rcc.progressive_encode(
            jax.random.key(key),
            x,
            grid,
            model,
            prior_mean=prior_mean,
            prior_std=prior_std,
            return_info=True,
            **options,
        )
    print(f"{name}: {len(data)} bytes, {len(grid)} steps")
    return {
        "name": name,
        "kind": "progressive",
        "dtype": str(dtype),
        "key": key,
        "model": spec,
        "grid": to_hex(grid),
        "prior_mean": to_hex(prior_mean),
        "prior_std": to_hex(prior_std),
        "options": options,
        "stream": data.hex(),
        "sample": to_hex(info.sample),
    }


def spec(kind, dtype, **arrays):
    arrays = {k: np.asarray(v, dtype) for k, v in arrays.items()}
    return {
        "kind": kind,
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
        "arrays": {k: to_hex(v) for k, v in arrays.items()},
    }


def main():
    rng = np.random.default_rng(20261201)
    cases = []
    # All the KL in the mean, 1 bit/dim, the defaults (k = 8, N = 2^18).
    delta = rng.choice([-1.0, 1.0], 64) * math.sqrt(2 * math.log(2))
    cases.append(
        oneshot("shift f64 pfr defaults", 1, delta, np.ones(64), np.zeros(64), np.ones(64))
    )
    # The seed paper's channel X_t = √ᾱ X + √(1−ᾱ) ε in float32, ORC: split layout.
    x = rng.standard_normal(200)
    args = [
        np.asarray(a, np.float32)
        for a in (math.sqrt(0.75) * x, np.full(200, 0.5), np.zeros(200), np.ones(200))
    ]
    cases.append(oneshot("channel f32 orc", 2, *args, algorithm="orc", num_candidates=2**12))
    # KL packed into the first dimensions: KL-balanced cuts with width deviations.
    bits = np.r_[np.full(10, 4.0), np.full(50, 0.05)]
    cases.append(
        oneshot(
            "cuts f64 pfr",
            3,
            np.sqrt(2 * math.log(2) * bits),
            np.ones(60),
            np.zeros(60),
            np.ones(60),
            num_candidates=1024,
        )
    )
    # A heavy dimension that needs more candidates than the others.
    q_mean = 0.3 * rng.standard_normal(24)
    q_mean[5] = 2.5
    cases.append(
        oneshot(
            "boosted f64 pfr",
            4,
            q_mean,
            np.full(24, 0.8),
            np.zeros(24),
            np.ones(24),
            chunk_bits=2.0,
            num_candidates=256,
        )
    )
    # Random q and p in float32.
    p_mean, p_std = rng.normal(size=300), np.exp(0.3 * rng.normal(size=300))
    q_std = p_std * np.exp(0.3 * rng.normal(size=300))
    q_mean = p_mean + p_std * rng.normal(size=300) * 0.4
    args = [np.asarray(a, np.float32) for a in (q_mean, q_std, p_mean, p_std)]
    cases.append(oneshot("random f32 pfr", 5, *args, num_candidates=256))
    # Progressive (DiffC) against an exact Gaussian score, and a closure MLP in float32.
    mean, var = rng.normal(size=6), np.exp(rng.normal(size=6))
    grid = np.geomspace(10.0, 0.4, 6)
    x0 = mean + np.sqrt(var) * rng.normal(size=6)
    cases.append(
        progressive(
            "progressive gaussian f64 pfr",
            6,
            x0,
            grid,
            spec("gaussian", np.float64, mean=mean, var=var),
            mean,
            np.sqrt(var + grid[0] ** 2),
            num_candidates=256,
        )
    )
    weights = spec(
        "mlp",
        np.float32,
        w1=0.3 * rng.normal(size=(16, 5)),
        b1=0.1 * rng.normal(size=16),
        w2=0.02 * rng.normal(size=(4, 16)),
    )
    grid = np.geomspace(8.0, 0.5, 5).astype(np.float32)
    x0 = rng.normal(size=4).astype(np.float32)
    cases.append(
        progressive(
            "progressive closure-mlp f32 orc",
            7,
            x0,
            grid,
            weights,
            np.zeros(4, np.float32),
            np.full(4, math.sqrt(1 + 64), np.float32),
            algorithm="orc",
            num_candidates=256,
        )
    )
    out = {"format_version": rcc.FORMAT_VERSION, "jax": jax.__version__, "cases": cases}
    portability.GOLDEN.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
