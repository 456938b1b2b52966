"""The Gaussian framework with real bits: σ × ρ sweeps of the codec against R(D, P)."""

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

import theory
from rdp_jax import codec, metrics, scores
from rdp_jax._validate import is_whole

NOISES = ("isotropic", "matched")
# A component that spectrum-matched noise sends at zero rate gets this noise std, in units of
# its own std: its rate is ½ log2(1 + 1e-8) bits, 7e-9.
_ZERO_RATE_NOISE = 1e4


class CodecPoint(NamedTuple):
    """One (σ, ρ) point of `codec_sweep`, measured on real files.

    - `noise`: "isotropic" (σ for every component) or "matched" (maths §8: per component, from
      `theory.rdp_optimal_framework` at the isotropic point's (D, P)).
    - `sigma`, `rho`: the isotropic σ and the scalar ρ the point is indexed by; `noise_std`,
      `rho_used`: what was coded and decoded (per eigen-direction for "matched").
    - `bits_per_dim`: 8 × bytes / (n·d) over the files, header included, mean ± SE over the
      files (the items are split into `blocks` files).
    - `kl_bits_per_dim`: KL(q‖p) of the coded messages per dimension, the bits ideal channel
      simulation would spend on these very items (its mean over items is I(X; X_σ)).
    - `header_bits_per_dim`: the files' headers (the codec's container and the rcc header).
    - `distortion`: D = E‖X − X̂‖² per item (`metrics.mse`), ± SE.
    - `perception`: W2²(p_X, p_X̂) per item by `perception_estimator`, ± SE.
    - `information_rate`: I(X; X_σ) of the coded noise in bits per dimension.
    - `optimal_rate`: R(D, P) from `theory` at the measured (D, P), bits per dimension (P
      clipped at 0).
    - `theory_distortion`, `theory_perception`: the framework's (D, P) at this point (maths §7).
    - `file_bits`: each file's total bits, in the order of the items' blocks; every point of a
      sweep codes the same items in the same blocks, so two points compare file by file.
    """

    noise: str
    sigma: float
    rho: float
    noise_std: tuple[float, ...]
    rho_used: tuple[float, ...]
    bits_per_dim: metrics.Estimate
    kl_bits_per_dim: float
    header_bits_per_dim: float
    distortion: metrics.Estimate
    perception: metrics.Estimate
    perception_estimator: str
    information_rate: float
    optimal_rate: float
    theory_distortion: float
    theory_perception: float
    file_bits: tuple[int, ...]


def _perception(x_hat: np.ndarray, x: np.ndarray) -> tuple[metrics.Estimate, str]:
    if x.shape[1] == 1:
        return metrics.w2_1d(x_hat[:, 0], x[:, 0]), "w2_1d (exact 1-D quantiles)"
    return metrics.w2_gaussian(x_hat, x, debias=True), "w2_gaussian (Fréchet, debiased)"


def _bits(files: Sequence[bytes], items: int, dim: int) -> metrics.Estimate:
    per_file = np.array([info.total_bits for _, info in files]) / (items * dim)
    se = per_file.std(ddof=1) / math.sqrt(len(files)) if len(files) > 1 else math.inf
    return metrics.Estimate(np.float64(per_file.mean()), np.float64(se))


def codec_sweep(
    key: PRNGKeyArray,
    model: scores.Gaussian,
    sigmas: Sequence[float],
    rhos: Sequence[float],
    num_items: int,
    *,
    noise: Sequence[str] = ("isotropic",),
    blocks: int = 4,
    dtype: str = "float64",
    progress: Callable[[int], None] | None = None,
    compress_options: dict | None = None,
    decode_options: dict | None = None,
) -> list[CodecPoint]:
    """Compresses n items of a Gaussian once per σ and decompresses them at every ρ.

    Isotropic noise: each σ gives one set of files, decoded at every ρ from the same bytes (the
    rate is fixed by σ; ρ moves along the DP curve, maths §7-§8). Spectrum-matched noise: each
    (σ, ρ) gives its own files, coded with the per-component noise and decoded with the per-
    component ρ that `theory.rdp_optimal_framework` assigns to the isotropic point's (D, P),
    where the framework attains R(D, P).

    **Arguments:**

    - `key`: a `jax.random.key`: the items and every file's shared key derive from it.
    - `model`: the Gaussian source (`scores.gaussian` or `gaussian_full`).
    - `sigmas`, `rhos`: the grid.
    - `num_items`: n, a multiple of `blocks`.
    - `noise`: which of "isotropic", "matched" to measure.
    - `blocks`: the items go into this many files of n/blocks items, for the SE of the bits.
    - `dtype`: of the items and files.
    - `progress`: called with the number of files coded after each one.
    - `compress_options`, `decode_options`: passed to `codec.compress` / `codec.decompress`.

    **Returns:** the points, isotropic first, σ-major.

    **Raises:** `ValueError` naming the argument: a non-Gaussian model, an unknown noise, a
    bad n or block count.
    """
    where = "codec_sweep"
    if not isinstance(model, scores.Gaussian):
        raise ValueError(f"{where}: `model` must be a scores Gaussian (the theory is Gaussian).")
    if unknown := [k for k in noise if k not in NOISES]:
        raise ValueError(f"{where}: unknown `noise` {unknown}; choose from {NOISES}.")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"{where}: `dtype` must be 'float32' or 'float64'; got {dtype!r}.")
    if not is_whole(num_items):
        raise ValueError(f"{where}: `num_items` must be an integer; got {num_items!r}.")
    num_items = int(num_items)
    if int(blocks) != blocks or blocks < 1 or num_items < 2 * blocks or num_items % blocks:
        raise ValueError(
            f"{where}: `num_items` must be a multiple of `blocks` with >= 2 items per file; "
            f"got {num_items} and {blocks}."
        )
    compress_options, decode_options = compress_options or {}, decode_options or {}
    lam = np.asarray(model.eigenvalues, np.float64)
    dim = lam.size
    data_key, file_key = jax.random.split(key)
    x = np.asarray(model.sample(data_key, num_items), dtype)
    parts = np.split(x, blocks)
    done = 0

    def measure(kind, sigma, rho, noise_std, rho_used, files, x_hat):
        nonlocal done
        D_th, P_th = theory.score_scaled_dp(rho_used, lam, np.asarray(noise_std) ** 2)
        D = metrics.mse(x, x_hat)
        P, estimator = _perception(x_hat, x)
        optimal = theory.rdp_w2_vector(float(D.value), max(float(P.value), 0.0), lam)
        return CodecPoint(
            kind,
            float(sigma),
            float(rho),
            tuple(float(s) for s in np.broadcast_to(noise_std, (dim,))),
            tuple(float(r) for r in np.broadcast_to(rho_used, (dim,))),
            _bits(files, num_items // blocks, dim),
            sum(info.kl_bits for _, info in files) / (num_items * dim),
            sum(i.container_bits + i.rcc_header_bits for _, i in files) / (num_items * dim),
            D,
            P,
            estimator,
            float(theory.awgn_rate(lam, np.asarray(noise_std) ** 2)) / math.log(2) / dim,
            float(optimal) / math.log(2) / dim,
            float(D_th),
            float(P_th),
            tuple(int(info.total_bits) for _, info in files),
        )

    def code(sigma, index):
        nonlocal done
        files = []
        for b, part in enumerate(parts):
            k = jax.random.fold_in(jax.random.fold_in(file_key, index), b)
            files.append(
                codec.compress(k, part, model, sigma, return_info=True, **compress_options)
            )
            done += 1
            if progress is not None:
                progress(done)
        return files

    def decoded(files, rho):
        return np.concatenate(
            [np.asarray(codec.decompress(f, model, rho, **decode_options)) for f, _ in files]
        )

    points, index = [], 0
    if "isotropic" in noise:
        for sigma in sigmas:
            files = code(float(sigma), index)
            index += 1
            for rho in rhos:
                x_hat = decoded(files, rho)
                points.append(measure("isotropic", sigma, rho, sigma, rho, files, x_hat))
    if "matched" in noise:
        for sigma in sigmas:
            for rho in rhos:
                D_th, P_th = theory.score_scaled_dp(rho, lam, float(sigma) ** 2)
                best = theory.rdp_optimal_framework(D_th, P_th, lam)
                std = np.minimum(
                    np.sqrt(np.asarray(best.noise_var)), _ZERO_RATE_NOISE * np.sqrt(lam)
                )
                rho_i = np.asarray(best.rho)
                files = code(std, index)
                index += 1
                points.append(
                    measure("matched", sigma, rho, std, rho_i, files, decoded(files, rho_i))
                )
    return points
