"""Codec benchmark: bits against I(X; X_σ), and end-to-end throughput against the parts.

Run: `python benchmarks/codec.py [--section rates|targets|speed] [--items 1000] [--quick]`.

- `rates`: bits/dim of whole files (header included) against I(X; X_σ) for an isotropic unit
  Gaussian at 1 bit/dim (σ² = 1/3), d ∈ {16, 64, 1024}, n·d = 4096 components per file, in
  both modes (progressive: 32 geometric steps from σ_max = 20).
- `targets`: the issue's two configurations: a file of `--items` 64-dim items at 1 bit/dim,
  and one 1024-dim item, one-shot; and the container's share of the first.
- `speed`: items/s of `codec.compress` against `rcc.encode` alone on the same message, and of
  `codec.decompress` against `rdp_jax.decode` alone at the same NFE (exp4, 20 steps), best of
  3 after a compiling run.

Every file is float32 (the faster channel search; the rates do not depend on it). The script
exposes every CPU core as a JAX device (JAX_NUM_CPU_DEVICES, unless already set).
"""

import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", str(os.cpu_count()))

import argparse
import math
import time

import jax
import numpy as np

from rdp_jax import codec, decode, rcc, scores

SIGMA = math.sqrt(1 / 3)  # ½ log2(1 + 1/σ²) = 1 bit per dimension of N(0, 1)
DECODE = {"method": "exp4", "num_steps": 20}


def _items(d: int, n: int, seed: int = 0) -> tuple[scores.Gaussian, np.ndarray]:
    model = scores.gaussian(np.zeros(d, np.float32), np.ones(d, np.float32))
    return model, np.asarray(model.sample(jax.random.key(seed), n))


def _row(label, info, n, d) -> str:
    ratio = info.bits_per_item / info.information_bits
    headers = info.container_bits + info.rcc_header_bits
    return (
        f"| {label} | {n} × {d} | {info.bits_per_dim:.4f} | {info.information_bits / d:.4f} | "
        f"**{ratio:.3f}** | {info.payload_bits / info.kl_bits:.3f} | {headers} "
        f"({headers / info.total_bits:.2%}) |"
    )


def rates(quick: bool) -> None:
    print("| mode | items × d | bits/dim | I bits/dim | file / I | payload / KL | headers |")
    print("|---|---|---|---|---|---|---|")
    total = 1024 if quick else 4096
    for mode in ("oneshot", "progressive"):
        for d in (16, 64, 1024):
            n = max(total // d, 1)
            model, x = _items(d, n)
            start = time.perf_counter()
            _, info = codec.compress(
                jax.random.key(1), x, model, SIGMA, mode=mode, return_info=True
            )
            print(_row(mode, info, n, d) + f" {time.perf_counter() - start:.1f} s", flush=True)


def targets(items: int) -> None:
    print("| file | bits/item | I bits/item | file / I | container share | target |")
    print("|---|---|---|---|---|---|")
    for n, d, target in ((items, 64, 1.45), (None, 1024, 1.35)):
        model, x = _items(d, n or 1)
        x = x if n else x[0]
        _, info = codec.compress(jax.random.key(2), x, model, SIGMA, return_info=True)
        ratio = info.bits_per_item / info.information_bits
        print(
            f"| {n or 1} × {d} | {info.bits_per_item:.1f} | {info.information_bits:.1f} | "
            f"**{ratio:.3f}** | {info.container_bits / info.total_bits:.3%} | ≤ {target} |",
            flush=True,
        )


def _best(f, repeats=3) -> float:
    f()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f())
        times.append(time.perf_counter() - start)
    return min(times)


def speed(quick: bool) -> None:
    n, d = (64, 16) if quick else (256, 16)
    model, x = _items(d, n)
    data = codec.compress(jax.random.key(3), x, model, SIGMA)
    q_mean, zeros = x.reshape(-1), np.zeros(n * d, np.float32)
    q_std = np.full(n * d, SIGMA, np.float32)
    p_std = np.full(n * d, math.sqrt(1 + SIGMA**2), np.float32)
    compress = _best(lambda: codec.compress(jax.random.key(3), x, model, SIGMA), 2)
    k = codec.ONESHOT_CHUNK_BITS  # the codec's one-shot chunk size, for the same search
    encode = _best(
        lambda: rcc.encode(jax.random.key(3), q_mean, q_std, zeros, p_std, chunk_bits=k), 2
    )
    noisy = codec.decompress(data, model, 0.5, return_info=True, **DECODE)[1].noisy
    decompress = _best(lambda: codec.decompress(data, model, 0.5, **DECODE))
    alone = _best(lambda: decode(noisy, SIGMA, 0.5, model, **DECODE))
    print("| stage | codec items/s | the part alone, items/s | ratio |")
    print("|---|---|---|---|")
    print(
        f"| compress ({n} × {d}) | {n / compress:.1f} | {n / encode:.1f} (rcc.encode) | "
        f"{compress / encode:.3f} |"
    )
    print(
        f"| decompress | {n / decompress:.0f} | {n / alone:.0f} (rdp_jax.decode, exp4 × 20) | "
        f"{decompress / alone:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=("rates", "targets", "speed"), action="append")
    parser.add_argument("--items", type=int, default=1000, help="items of the 64-dim file")
    parser.add_argument("--quick", action="store_true", help="smaller files, for a smoke run")
    args = parser.parse_args()
    sections = args.section or ["rates", "targets", "speed"]
    if "speed" in sections:
        speed(args.quick)
    if "targets" in sections:
        targets(100 if args.quick else args.items)
    if "rates" in sections:
        rates(args.quick)


if __name__ == "__main__":
    main()
