"""RCC at scale: is the default encoder's sample unbiased for a 10⁵-dim message?

Run: `python benchmarks/rcc_scale.py [--dims 100000] [--families shift,channel] [--keys 0]
[--dtype float32] [--chunk-bits 8]`. For each family (`benchmarks/rcc.py`'s `_family`: "shift"
is the 1-bit/dim mean shift, "channel" the seed paper's encoder at 1 bit/dim) and key it codes
one d-dim message with the defaults (the bias-budget layout, maths §12) at chunks of k bits
(default 8, rcc's), decodes it, and prints the bias statistic
z = (ln w(x) − KL) / sd(ln w) of the decoded sample (N(0, 1) under q; for a mean shift, the
mean projection on Δ in standard errors) against the bias the plan predicts (Σ over chunks of
`theory.pfr_truncation_deficit` / sd), with the rate, the candidate counts and the search speed.

At d = 10⁵ the shift's search is ~4·10¹⁰ candidates: ~45 minutes of float32 on two CPU cores.
"""

import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", str(os.cpu_count()))

import argparse
import math
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rcc import _bias_z, _family  # noqa: E402  (benchmarks/rcc.py)

import theory  # noqa: E402
from rdp_jax import rcc  # noqa: E402
from rdp_jax.rcc import _budget  # noqa: E402
from rdp_jax.rcc._index_model import log_weight_variance  # noqa: E402
from rdp_jax.rcc._layout import DEFAULT_CANDIDATES, TailBound  # noqa: E402

_LN2 = math.log(2.0)


def _predicted_bias(info, args) -> float:
    """The plan's bias in standard errors of ln w (maths §12): Σ_c deficit(m_c, N_c) / sd(ln w),
    m_c the chunk's equivalent KL (its own KL for a mean shift), each deficit from
    `theory.pfr_truncation_deficit` rather than the encoder's interpolated table."""
    exponents = np.log2(info.chunk_candidates).astype(int)
    bound = TailBound(*args, DEFAULT_CANDIDATES)
    kl_eq = _budget.equivalent_kl(bound, info.chunk_dims)
    m_bits = kl_eq[np.arange(info.num_chunks), exponents - _budget.EXPONENTS[0]]
    total = sum(
        float(theory.pfr_truncation_deficit(m * _LN2, 2.0**j))
        for m, j in zip(m_bits.tolist(), exponents.tolist(), strict=True)
    )
    return total / math.sqrt(float(np.sum(log_weight_variance(*args))))


def _row(family: str, d: int, seed: int, dtype, chunk_bits: float) -> None:
    args = tuple(np.asarray(a, dtype) for a in _family(family, d, seed))
    t0 = time.perf_counter()
    data, info = rcc.encode(jax.random.key(seed), *args, chunk_bits=chunk_bits, return_info=True)
    seconds = time.perf_counter() - t0
    decoded = rcc.decode(jax.random.key(seed), data, args[2], args[3])
    if not np.array_equal(np.asarray(decoded), np.asarray(info.sample)):
        raise RuntimeError(f"{family}, key {seed}: the decoded sample differs from the encoder's")
    candidates = int(np.sum(info.chunk_candidates))
    exponents, counts = np.unique(np.log2(info.chunk_candidates).astype(int), return_counts=True)
    spread = ", ".join(f"{c} at 2^{e}" for e, c in zip(exponents, counts, strict=True))
    args64 = tuple(np.asarray(a, np.float64) for a in args)
    z, predicted = _bias_z(info, args64), -_predicted_bias(info, args64)
    print(
        f"{family:>7} d = {d}, k = {chunk_bits:g}, key {seed}: "
        f"z = {z:+.2f} (predicted {predicted:+.2f}), "
        f"payload {info.payload_bits / info.kl_bits:.4f} × KL, "
        f"stream {8 * len(data) / info.kl_bits:.4f} × KL, {info.num_chunks} chunks ({spread}), "
        f"{candidates / 1e9:.2f}e9 candidates in {seconds:.0f} s "
        f"({candidates / seconds / 1e6:.1f} M/s)",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=100_000)
    parser.add_argument("--families", default="shift,channel")
    parser.add_argument("--keys", default="0", help="comma-separated key seeds")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument(
        "--chunk-bits", type=float, default=8.0, help="rcc.encode's k (default: rcc's 8)"
    )
    args = parser.parse_args()
    print(f"devices: {jax.device_count()} × {jax.devices()[0].platform}, dtype {args.dtype}")
    for family in args.families.split(","):
        for seed in map(int, args.keys.split(",")):
            _row(family, args.dims, seed, np.dtype(args.dtype), args.chunk_bits)


if __name__ == "__main__":
    main()
