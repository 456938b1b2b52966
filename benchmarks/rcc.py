"""RCC benchmark: the rate / bias / speed frontier of chunked PFR, and speed against NumPy.

Run: `python benchmarks/rcc.py [--chunks 2000] [--quick]`. For each (chunk KL k, candidates
2^(k+e)) it codes one message of `--chunks` chunks at 1 bit/dim (q = N(Δ, I), p = N(0, I)):
the chunks are independent messages, which gives per-chunk statistics in one call.

Columns: payload bits per chunk minus KL (as stored, trimmed coder), the same under the plain
Zipf law of THEORY §10 (ideal codelength: "without the index law"), the mean log2 w deficit per
chunk (± se), the KS p-value of the chunk projections on Δ, and candidates/s. Then encode/decode
wall time for 64- and 784-dim messages, and the candidate rate of a plain NumPy PFR loop (one
chunk at a time, vectorised over candidates) as the baseline, with the ratio.
"""

import argparse
import math
import time

import jax
import numpy as np
import scipy.stats

jax.config.update("jax_enable_x64", True)

from rdp_jax import rcc  # noqa: E402
from rdp_jax.rcc._index_model import zipf_exponent  # noqa: E402


def _message(d, seed=0):
    rng = np.random.default_rng(seed)
    delta = rng.choice([-1.0, 1.0], d) * math.sqrt(2 * math.log(2))
    return delta, np.ones(d), np.zeros(d), np.ones(d)


def _zipf_bits(indices, n, kbar):
    s = zipf_exponent(round(16 * kbar))
    log_p = -s * np.log1p(np.arange(n, dtype=np.float64))
    log_norm = np.log(np.sum(np.exp(log_p - log_p.max()))) + log_p.max()
    return float(np.sum(log_norm - log_p[indices]) / math.log(2))


def frontier_row(k, e, chunks):
    n = 2 ** (k + e)
    q_mean, q_std, p_mean, p_std = _message(k * chunks)
    key = jax.random.key(k * 100 + e)
    rcc.encode(key, *_message(k * 8), chunk_bits=k, num_candidates=n)  # compile
    start = time.perf_counter()
    _, info = rcc.encode(
        key, q_mean, q_std, p_mean, p_std, chunk_bits=k, num_candidates=n, return_info=True
    )
    seconds = time.perf_counter() - start
    c = info.num_chunks
    chunk = np.repeat(np.arange(c), info.chunk_dims)
    delta = q_mean - p_mean
    proj = np.bincount(chunk, delta * (np.asarray(info.sample) - q_mean))
    ks = scipy.stats.kstest(proj / np.sqrt(np.bincount(chunk, delta**2)), "norm").pvalue
    deficit = info.chunk_kl_bits - info.chunk_log2_weight
    kbar = info.kl_bits / c
    return {
        "k": k,
        "N": f"2^{k + e}",
        "C": c,
        "bits-KL": info.payload_bits / c - kbar,
        "zipf-KL": _zipf_bits(info.indices, n, kbar) / c - kbar,
        "deficit": deficit.mean(),
        "se": deficit.std() / math.sqrt(c),
        "KS p": ks,
        "Mcand/s": c * n / seconds / 1e6,
    }


def numpy_pfr_rate(k, n, chunks=4):
    """Plain NumPy PFR: per chunk, N candidates at once (PCG64 normals), argmin of log T − log w."""
    rng = np.random.default_rng(0)
    delta = np.full(k, math.sqrt(2 * math.log(2)))
    start = time.perf_counter()
    for _ in range(chunks):
        z = rng.standard_normal((n, k))
        log_w = z @ delta - 0.5 * delta @ delta
        log_t = np.log(np.cumsum(rng.exponential(size=n)))
        int(np.argmin(log_t - log_w))
    return chunks * n / (time.perf_counter() - start) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000, help="chunks per frontier row")
    parser.add_argument("--quick", action="store_true", help="fewer rows, 300 chunks")
    args = parser.parse_args()
    chunks = 300 if args.quick else args.chunks
    grid = [(6, 10), (8, 8), (8, 10), (10, 8), (14, 2)]
    if args.quick:
        grid = [(6, 10), (8, 8), (14, 2)]
    print(f"frontier at 1 bit/dim, {chunks} chunks per row (KS n = chunks)")
    print(
        f"{'k':>3} {'N':>6} {'bits-KL':>8} {'zipf-KL':>8} {'deficit':>14} {'KS p':>7} "
        f"{'Mcand/s':>8}"
    )
    for k, e in grid:
        r = frontier_row(k, e, chunks)
        print(
            f"{r['k']:>3} {r['N']:>6} {r['bits-KL']:8.2f} {r['zipf-KL']:8.2f} "
            f"{r['deficit']:7.3f} ± {r['se']:.3f} {r['KS p']:7.3f} {r['Mcand/s']:8.2f}",
            flush=True,
        )
    print("\nencode / decode at 1 bit/dim, defaults (k = 6, N = 2^16); whole stream / KL")
    for d in (64, 784):
        args_ = _message(d, 1)
        rcc.encode(jax.random.key(0), *args_)
        t0 = time.perf_counter()
        data = rcc.encode(jax.random.key(1), *args_)
        t1 = time.perf_counter()
        rcc.decode(jax.random.key(1), data, args_[2], args_[3])
        t2 = time.perf_counter()
        print(
            f"d = {d:>4}: encode {t1 - t0:6.2f} s, decode {1e3 * (t2 - t1):6.1f} ms, "
            f"stream {8 * len(data) / d:.3f} × KL",
            flush=True,
        )
    ours = frontier_row(6, 10, 64)["Mcand/s"]
    base = numpy_pfr_rate(6, 2**16)
    print(
        f"\ncandidates/s (k = 6, N = 2^16, width 8): rdp-jax {ours:.2f} M, NumPy loop "
        f"{base:.2f} M, ratio {ours / base:.2f}x"
    )


if __name__ == "__main__":
    main()
