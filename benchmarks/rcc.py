"""RCC benchmark: the rate / bias / speed frontier of chunked PFR and ORC, and speed against NumPy.

Run: `python benchmarks/rcc.py [--chunks 10000] [--quick]`, or chosen rows with
`--row ALG K E [--row ...] [--family channel]`. For each (algorithm, chunk KL k, candidates
2^(k+e)) it codes one message of about `--chunks` chunks at 1 bit/dim: the chunks are
independent messages, which gives per-chunk statistics in one call. Two message families
(`_message`): "shift", q = N(Δ, I) against p = N(0, I), where all the KL is in the mean (the
worst case for the index cost and the bias), and "channel", the seed paper's encoder
X_t = √ᾱ X + √(1−ᾱ) ε, whose KL per dimension varies with x² (it exercises the layouts).

Columns: payload bits per chunk minus KL (as stored, trimmed coder, layout included), the same
under the plain Zipf law of maths §10 (ideal codelength: "without the index law"), payload / KL,
the mean log2 w deficit per chunk (± se), the KS p-value of the chunk projections on the linear
part of log w (n = chunks), and candidates/s. Then encode/decode wall time, payload / KL and
whole stream / KL for 64-, 784- and 2048-dim messages, and candidates/s against two NumPy
baselines per dtype: the plain PFR loop (one candidate per iteration) and a vectorised one.
`--section families [--families gauss-0.87,shift]`: messages whose KL varies between dimensions
(`_family`), payload and stream / KL under the old and the default layout, and the bias.

The script exposes every CPU core as a JAX device (JAX_NUM_CPU_DEVICES, unless already set);
`encode` deals chunk groups over the devices. The NumPy baselines run on one core.
"""

import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", str(os.cpu_count()))

import argparse
import math
import time

import jax
import numpy as np
import scipy.stats

jax.config.update("jax_enable_x64", True)

from rdp_jax import rcc  # noqa: E402
from rdp_jax.rcc import _plan  # noqa: E402
from rdp_jax.rcc._index_model import log_weight_variance, zipf_exponent  # noqa: E402
from rdp_jax.rcc._plan import _extra_bits  # noqa: E402


def _message(d, seed=0, dtype=np.float64, family="shift"):
    """(q_mean, q_std, p_mean, p_std) of a d-dim message at 1 bit/dim on average.

    "shift": q = N(Δ, I), p = N(0, I), Δ_i = ±√(2 ln 2): exactly 1 bit per dimension, all of it in
    the mean, so log w has its largest spread, Var = 2 KL (the worst case for the index cost).
    "channel": the seed paper's encoder, X_t = √ᾱ X + √(1−ᾱ) ε with X ~ N(0, I) and ᾱ = 3/4, so
    q = N(√ᾱ x, 1 − ᾱ), p = N(0, 1) and I(X; X_t) = ½ log2(1 + ᾱ/(1−ᾱ)) = 1 bit per dimension.
    """
    rng = np.random.default_rng(seed)
    if family == "shift":
        delta = rng.choice([-1.0, 1.0], d) * math.sqrt(2 * math.log(2))
        arrays = (delta, np.ones(d), np.zeros(d), np.ones(d))
    else:
        abar = 0.75
        x = rng.standard_normal(d)
        arrays = (math.sqrt(abar) * x, np.full(d, math.sqrt(1 - abar)), np.zeros(d), np.ones(d))
    return tuple(a.astype(dtype) for a in arrays)


def _family(name, d, seed=0):
    """(q_mean, q_std, p_mean, p_std) of a d-dim message whose KL varies between dimensions.

    - "gauss-b": a mean shift Δ_i ~ N(0, τ²) with τ² = 2 ln 2 · b, so b bits/dim on average
      (KL_i = Δ_i² / (2 ln 2) bits: a χ²₁ spread, like a real residual's), clipped at 14 bits a
      dimension (`encode` refuses one above 14.3 bits, maths §12; at 2 bits/dim one of 2048
      dimensions exceeds it almost surely).
    - "variance": q/p standard-deviation ratios e^{N(−0.35, 0.35²)} (mostly σ_q < σ_p, a few
      above) and mean shifts N(0, 0.5²): unequal variances, w bounded in most dimensions.
    - "image": a 32 × (d/32) grid of smooth regions (shift magnitudes constant per region,
      from 0.2 to 1.6) with a few edges (a one-pixel line of shift 3 along each region border),
      raster order: the KL profile of an image's latent, piecewise constant with spikes.
    - "shift" and "channel": `_message`'s uniform families (1 bit/dim).
    """
    rng = np.random.default_rng(seed)
    ones, zeros = np.ones(d), np.zeros(d)
    if name in ("shift", "channel"):
        return _message(d, seed, family=name)
    if name.startswith("gauss-"):
        tau = math.sqrt(2 * math.log(2) * float(name.split("-")[1]))
        top = math.sqrt(2 * math.log(2) * 14.0)
        return np.clip(tau * rng.standard_normal(d), -top, top), ones, zeros, ones
    if name == "variance":
        ratio = np.exp(rng.normal(-0.35, 0.35, d))
        return 0.5 * rng.standard_normal(d), ratio, zeros, ones
    height, width = 32, d // 32
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    region = (rows // 8) * 4 + cols * 4 // width
    level = rng.uniform(0.2, 1.6, region.max() + 1)[region]
    edge = (rows % 8 == 0) | (cols * 4 % width == 0)
    shift = np.where(edge, 3.0, level) * rng.choice([-1.0, 1.0], region.shape)
    return shift.ravel(), ones, zeros, ones


# family: d. The headline Gaussian-Δ shift at 2048 dimensions, the others at 1024 (the image
# family's edges need ~2^22 candidates in many chunks), the uniform shift at 800.
_FAMILIES = {
    "gauss-0.87": 2048, "gauss-0.25": 1024, "gauss-1": 1024, "gauss-2": 1024,
    "variance": 1024, "image": 1024, "shift": 800, "channel": 1024,
}  # fmt: skip


def _bias_z(info, args):
    """(ln w(x) − KL) / sd_q(ln w) of the decoded sample x, in nats: N(0, 1) under q. For a
    mean shift it is the projection of x − Δ on Δ/‖Δ‖; truncation moves it by −Σ deficit / sd
    (maths §12), what the bias budget bounds by one."""
    q_mean, q_std, p_mean, p_std = args
    x = np.asarray(info.sample, np.float64)
    log_w = scipy.stats.norm.logpdf(x, q_mean, q_std) - scipy.stats.norm.logpdf(x, p_mean, p_std)
    sd = math.sqrt(float(np.sum(log_weight_variance(*args))))
    return (float(np.sum(log_w)) - info.kl_bits * math.log(2)) / sd


def _families_row(name, d, seed, variant):
    """One encode of a family message under a layout variant; None if `encode` refuses it."""
    args = _family(name, d, seed)
    options = {"old": dict(num_candidates=2**18)}.get(variant, {})
    sizes = _plan.BASE_SIZES
    _plan.BASE_SIZES = (1.0,) if variant == "k" else sizes
    start = time.perf_counter()
    try:
        data, info = rcc.encode(jax.random.key(seed), *args, return_info=True, **options)
    except ValueError:
        return None
    finally:
        _plan.BASE_SIZES = sizes
    seconds = time.perf_counter() - start
    extra = np.log2(info.chunk_candidates // info.chunk_candidates.min()).astype(np.int64)
    sent = _extra_bits(extra, int(info.chunk_candidates.min())) if variant != "old" else 0.0
    return {
        "payload": info.payload_bits / info.kl_bits,
        "stream": 8 * len(data) / info.kl_bits,
        "sent": (info.payload_bits + sent) / info.kl_bits,
        "z": _bias_z(info, args),
        "chunks": info.num_chunks,
        "kl/chunk": info.kl_bits / info.num_chunks,
        "layout": info.layout,
        "Mcand": info.chunk_candidates.sum() / 1e6,
        "s": seconds,
    }


def _print_families(names, seeds=(0, 1, 2)):
    print(
        "\nheterogeneous families, 3 seeds each (the message and the key vary): payload / KL "
        "and stream / KL for the v6 layout (old: every chunk's risk capped at a k-bit chunk's, "
        "N = 2^18, the old default below 600 chunks), the budget layout with base chunks of k "
        "bits only (k, gauss-0.87 only), and the default (new: base chunks of k or 1.25 k, "
        "the cheaper estimate); 'sent' is the new payload had the counts been sent; z the sample's "
        "(ln w − KL)/sd, the mean projection on Δ in SE for mean shifts, pooled over seeds "
        "(× √3); candidates searched (millions) and seconds per encode"
    )
    rcc.encode(jax.random.key(0), *_family("shift", 64))  # compile
    for name in names:
        d = _FAMILIES[name]
        variants = ("old", "k", "new") if name == "gauss-0.87" else ("old", "new")
        rows = {v: [_families_row(name, d, s, v) for s in seeds] for v in variants}
        cells = []
        for variant, got in rows.items():
            ok = [r for r in got if r is not None]
            if not ok:
                cells.append(f"{variant}: refused")
                continue
            payload = "/".join(f"{r['payload']:.3f}" for r in ok)
            stream = "/".join(f"{r['stream']:.3f}" for r in ok)
            pooled = sum(r["z"] for r in ok) / math.sqrt(len(ok))
            sent = "/".join(f"{r['sent']:.3f}" for r in ok)
            cells.append(
                f"{variant}: pay {payload} stream {stream} z {pooled:+.2f}"
                + (f" (refused {len(got) - len(ok)})" if len(ok) < len(got) else "")
                + f" C {np.mean([r['chunks'] for r in ok]):.0f} of "
                f"{np.mean([r['kl/chunk'] for r in ok]):.1f} b ({ok[0]['layout']}), "
                f"{np.mean([r['Mcand'] for r in ok]):.0f} Mcand, "
                f"{np.mean([r['s'] for r in ok]):.0f} s"
                + (f", sent {sent}" if variant == "new" else "")
            )
        print(f"{name} (d = {d}):\n  " + "\n  ".join(cells), flush=True)


def _zipf_bits(indices, n, kbar):
    s = zipf_exponent(round(16 * kbar))
    log_p = -s * np.log1p(np.arange(n, dtype=np.float64))
    log_norm = np.log(np.sum(np.exp(log_p - log_p.max()))) + log_p.max()
    return float(np.sum(log_norm - log_p[indices]) / math.log(2))


def frontier_row(k, e, chunks, algorithm="pfr", dtype=np.float64, family="shift"):
    n = 2 ** (k + e)
    q_mean, q_std, p_mean, p_std = _message(k * chunks, dtype=dtype, family=family)
    key = jax.random.key(k * 100 + e)
    options = dict(algorithm=algorithm, chunk_bits=k, num_candidates=n)
    rcc.encode(key, *_message(k * 8, dtype=dtype, family=family), **options)  # compile
    start = time.perf_counter()
    _, info = rcc.encode(key, q_mean, q_std, p_mean, p_std, return_info=True, **options)
    seconds = time.perf_counter() - start
    c = info.num_chunks
    chunk = np.repeat(np.arange(c), info.chunk_dims)
    # log w is, in ε = (x − μ_q)/σ_q, a quadratic whose linear part is b·ε: under q each chunk's
    # b·ε / |b| is N(0, 1), and truncation bias moves it towards p.
    b = q_std * (q_mean - p_mean) / p_std**2
    eps = (np.asarray(info.sample, np.float64) - q_mean) / q_std
    proj = np.bincount(chunk, b * eps) / np.sqrt(np.bincount(chunk, b**2))
    ks = scipy.stats.kstest(proj, "norm").pvalue
    deficit = info.chunk_kl_bits - info.chunk_log2_weight
    kbar = info.kl_bits / c
    return {
        "alg": algorithm,
        "k": k,
        "N": f"2^{k + e}",
        "C": c,
        "bits-KL": info.payload_bits / c - kbar,
        "payload/KL": info.payload_bits / info.kl_bits,
        "zipf-KL": _zipf_bits(info.indices, n, kbar) / c - kbar,
        "deficit": deficit.mean(),
        "se": deficit.std() / math.sqrt(c),
        "KS p": ks,
        "Mcand/s": c * n / seconds / 1e6,
    }


def numpy_pfr_loop_rate(k, n, dtype):
    """The plain PFR loop (Li & El Gamal 2018; as in Theis & Yosri's reference notebook): one
    candidate per iteration, PCG64 normal and exponential draws, running argmin of log T − log w."""
    rng = np.random.default_rng(0)
    delta = np.full(k, math.sqrt(2 * math.log(2)), dtype=dtype)
    half = 0.5 * float(delta @ delta)
    start = time.perf_counter()
    t, best, best_j = 0.0, math.inf, 0
    for j in range(n):
        z = rng.standard_normal(k, dtype=dtype)
        t += rng.exponential()
        score = math.log(t) - (float(z @ delta) - half)
        if score < best:
            best, best_j = score, j
    seconds = time.perf_counter() - start
    assert 0 <= best_j < n
    return n / seconds / 1e6


def numpy_pfr_rate(k, n, dtype, chunks=8):
    """Vectorised NumPy PFR: per chunk, N candidates at once (PCG64 normals), argmin of
    log T − log w. A far stronger baseline than the loop: NumPy's C code does all the work."""
    rng = np.random.default_rng(0)
    delta = np.full(k, math.sqrt(2 * math.log(2)), dtype=dtype)
    start = time.perf_counter()
    for _ in range(chunks):
        z = rng.standard_normal((n, k), dtype=dtype)
        log_w = z @ delta - 0.5 * delta @ delta
        log_t = np.log(np.cumsum(rng.exponential(size=n).astype(dtype)))
        int(np.argmin(log_t - log_w))
    return chunks * n / (time.perf_counter() - start) / 1e6


def _print_frontier(rows, chunks, family="shift"):
    print(f"\nfrontier, {family} family at 1 bit/dim, ~{chunks} chunks per row (KS n = chunks)")
    print(
        f"{'alg':>4} {'k':>3} {'N':>5} {'bits-KL':>8} {'zipf-KL':>8} {'pay/KL':>7} "
        f"{'deficit':>15} {'KS p':>7} {'Mcand/s':>8}"
    )
    for algorithm, k, e in rows:
        r = frontier_row(k, e, chunks, algorithm, family=family)
        print(
            f"{r['alg']:>4} {r['k']:>3} {r['N']:>5} {r['bits-KL']:8.2f} {r['zipf-KL']:8.2f} "
            f"{r['payload/KL']:7.3f} {r['deficit']:7.3f} ± {r['se']:.3f} {r['KS p']:7.3f} "
            f"{r['Mcand/s']:8.2f}",
            flush=True,
        )


def _print_messages(dims, family="shift"):
    print(
        f"\nencode / decode, {family} family at 1 bit/dim, defaults (k = 8, N = 2^18); "
        "payload, stream / KL"
    )
    for d in dims:
        args_ = _message(d, 1, family=family)
        rcc.encode(jax.random.key(0), *args_)
        t0 = time.perf_counter()
        data, info = rcc.encode(jax.random.key(1), *args_, return_info=True)
        t1 = time.perf_counter()
        rcc.decode(jax.random.key(1), data, args_[2], args_[3])
        t2 = time.perf_counter()
        print(
            f"d = {d:>4}: encode {t1 - t0:6.2f} s, decode {1e3 * (t2 - t1):6.1f} ms, "
            f"payload {info.payload_bits / info.kl_bits:.3f} × KL, "
            f"stream {8 * len(data) / info.kl_bits:.3f} × KL ({len(data)} bytes), "
            f"{info.layout} layout",
            flush=True,
        )


def _print_speed():
    print(
        f"\ncandidates/s, defaults k = 8, N = 2^18; {jax.device_count()} JAX CPU devices; "
        "NumPy on one core"
    )
    for dtype in (np.float64, np.float32):
        ours = max(frontier_row(8, 10, 128, dtype=dtype)["Mcand/s"] for _ in range(3))
        loop = max(numpy_pfr_loop_rate(8, 2**16, dtype) for _ in range(3))
        vectorised = max(numpy_pfr_rate(8, 2**18, dtype) for _ in range(3))
        print(
            f"{np.dtype(dtype).name}: rdp-jax {ours:.2f} M; NumPy plain loop {loop:.3f} M "
            f"(ratio {ours / loop:.0f}x); NumPy vectorised {vectorised:.2f} M "
            f"(ratio {ours / vectorised:.2f}x)",
            flush=True,
        )


def _print_progressive(chunk_bits=8.0, d=1024, steps=8):
    """Progressive (DiffC) streams of a d-dim Gaussian, variances e^{N(0, 1)}, σ_target = 0.3,
    the exact score and first prior, at chunk KL k = `chunk_bits`: bits per step against KL per
    step (`ProgressiveInfo`), stream / Σ KL, and the encode time against a one-shot message of
    the same total KL under rcc's defaults."""
    from rdp_jax import scores

    rng = np.random.default_rng(0)
    var = np.exp(rng.normal(size=d))
    model, mean = scores.gaussian(np.zeros(d), var), np.zeros(d)
    mutual = 0.5 * np.sum(np.log2(1 + var / 0.09))
    # σ_max = 5: larger first steps put > 10.5 bits in single dimensions, which `encode` refuses.
    grid = np.geomspace(5.0, 0.3, steps)
    prior = {"prior_mean": mean, "prior_std": np.sqrt(var + grid[0] ** 2)}

    def draw(seed):
        return np.sqrt(var) * np.random.default_rng(100 + seed).normal(size=d)

    options = dict(chunk_bits=chunk_bits, **prior)
    rcc.progressive_encode(jax.random.key(0), draw(0), grid, model, **options)  # compile
    start = time.perf_counter()
    data, info = rcc.progressive_encode(
        jax.random.key(1), draw(1), grid, model, return_info=True, **options
    )
    progressive_s = time.perf_counter() - start
    print(
        f"\nprogressive, d = {d}, {steps} steps from σ = 5 to 0.3, k = {chunk_bits:g}, "
        f"I(X; X_σ) = {mutual:.0f} bits: "
        f"stream {8 * len(data)} bits = {8 * len(data) / info.kl_bits:.3f} × Σ KL "
        f"({info.kl_bits:.0f}), header {info.header_bits} bits"
    )
    print("step   KL bits  bits  header  chunks  candidates (M)")
    columns = (
        info.step_kl_bits,
        info.step_bits,
        info.step_header_bits,
        info.step_num_chunks,
        info.step_candidates / 1e6,
    )
    for s, (kl, bits, head, c, m) in enumerate(zip(*columns, strict=True)):
        print(f"{s:>4} {kl:9.1f} {bits:5.0f} {head:7.1f} {c:7d} {m:15.1f}")
    # One-shot of the same total KL under the same defaults: a uniform mean shift.
    delta = rng.choice([-1.0, 1.0], d) * math.sqrt(2 * math.log(2) * info.kl_bits / d)
    args_ = (delta, np.ones(d), np.zeros(d), np.ones(d))
    rcc.encode(jax.random.key(0), *args_)
    start = time.perf_counter()
    data, oneshot = rcc.encode(jax.random.key(1), *args_, return_info=True)
    oneshot_s = time.perf_counter() - start
    print(
        f"encode {progressive_s:.1f} s against {oneshot_s:.1f} s one-shot (same Σ KL, defaults;"
        f" stream {8 * len(data) / oneshot.kl_bits:.3f} × KL): ratio "
        f"{progressive_s / oneshot_s:.2f}; candidates searched "
        f"{np.sum(info.step_candidates) / np.sum(oneshot.chunk_candidates):.2f} × one-shot's",
        flush=True,
    )
    small = np.exp(np.random.default_rng(0).normal(size=64))
    grid = rcc.progressive_grid(small, 0.3, chunk_bits=chunk_bits)
    model = scores.gaussian(np.zeros(64), small)
    prior = {"prior_mean": np.zeros(64), "prior_std": np.sqrt(small + grid[0] ** 2)}
    mutual = 0.5 * np.sum(np.log2(1 + small / 0.09))
    ratios = []
    for seed in range(6):
        x = np.sqrt(small) * np.random.default_rng(100 + seed).normal(size=64)
        data = rcc.progressive_encode(
            jax.random.key(seed), x, grid, model, chunk_bits=chunk_bits, **prior
        )
        ratios.append(8 * len(data) / mutual)
    print(
        f"d = 64, `progressive_grid` ({len(grid)} steps): stream / I = {np.mean(ratios):.3f} ± "
        f"{np.std(ratios, ddof=1) / math.sqrt(len(ratios)):.3f} (6 draws, I = {mutual:.0f} bits)",
        flush=True,
    )


_CHANNEL_ROWS = [("pfr", 8, 10), ("pfr", 8, 8), ("orc", 8, 10), ("pfr", 10, 8), ("pfr", 6, 10)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000, help="chunks per frontier row")
    parser.add_argument("--quick", action="store_true", help="fewer rows, 300 chunks")
    parser.add_argument(
        "--row",
        nargs=3,
        action="append",
        metavar=("ALG", "K", "E"),
        help="frontier row (algorithm, k, e) only, repeatable; skips the other sections",
    )
    parser.add_argument(
        "--family",
        choices=("shift", "channel"),
        default="shift",
        help="message family of the --row rows (see _message)",
    )
    parser.add_argument(
        "--families",
        default=",".join(_FAMILIES),
        help=f"families of --section families, comma-separated (default: {','.join(_FAMILIES)})",
    )
    parser.add_argument(
        "--chunk-bits",
        type=float,
        default=8.0,
        help="k of every step in --section progressive (default: rcc's 8)",
    )
    parser.add_argument(
        "--section",
        choices=("frontier", "messages", "speed", "families", "progressive"),
        action="append",
        help="run only these sections (repeatable; default all)",
    )
    args = parser.parse_args()
    if args.row:
        rows = [(alg, int(k), int(e)) for alg, k, e in args.row]
        _print_frontier(rows, 300 if args.quick else args.chunks, args.family)
        return
    rows = [
        ("pfr", 6, 10),
        ("orc", 6, 10),
        ("pfr", 8, 8),
        ("pfr", 8, 10),
        ("orc", 8, 10),
        ("pfr", 10, 8),
        ("pfr", 14, 2),
    ]
    if args.quick:
        rows = [("pfr", 6, 10), ("orc", 6, 10), ("pfr", 14, 2)]
    chunks = 300 if args.quick else args.chunks
    sections = args.section or ("frontier", "messages", "speed", "families", "progressive")
    if "frontier" in sections:
        _print_frontier(rows, chunks)
        _print_frontier([("pfr", 8, 10)] if args.quick else _CHANNEL_ROWS, chunks, "channel")
    if "messages" in sections:
        _print_messages((64, 784) if args.quick else (64, 784, 2048))
        _print_messages((784,) if args.quick else (784, 2048), "channel")
    if "speed" in sections:
        _print_speed()
    if "families" in sections:
        _print_families(args.families.split(","))
    if "progressive" in sections:
        _print_progressive(args.chunk_bits)


if __name__ == "__main__":
    main()
