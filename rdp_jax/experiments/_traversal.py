"""The seed paper's experiment on a learned model: one set of files per σ, decoded across ρ.

Wang, Bi & Zhang 2026 (arXiv 2603.04005), §5: a pre-trained diffusion model, with no
retraining, traverses the rate-distortion-perception surface at decode time. Each σ fixes
the rate (the files hold X_σ = X + σN, maths §8, §10); ρ moves the decoder along the DP
curve from the same bytes (the score-scaled PF-ODE, maths §7).
"""

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from rdp_jax import codec, metrics, scores
from rdp_jax._decoder import decode, posterior_sample
from rdp_jax.experiments._codec_report import rate_fields
from rdp_jax.experiments._codec_sweep import _bits

DECODERS = ("learned", "gaussian fit", "tweedie", "posterior")
PERCEPTION_ESTIMATOR = "sliced_w2 (64 directions) to the reference set"
_PROJECTIONS = 64


class TraversalPoint(NamedTuple):
    """One (mode, decoder, σ, ρ) point of `traversal_sweep`.

    - `mode`: the files' coding, "oneshot" (against the model's Gaussian fit) or "progressive"
      (DiffC along a σ grid against the model's reverse steps).
    - `decoder`: "learned" (the score-scaled PF-ODE at ρ with the learned score, from the file:
      `codec.decompress`), "gaussian fit" (the same PF-ODE at ρ with the training data's
      Gaussian, the Gaussian-optimal decoder, on the same X_σ), "tweedie" (the learned denoiser
      E[X | X_σ] in one call) or "posterior" (a reverse-SDE posterior sample from X_σ); the last
      two have ρ = NaN.
    - `bits_per_dim`: 8 × bytes / (n·d) of the files, header included, mean ± SE over files;
      every decoder of a (mode, σ) reads the same files, hence the same bits.
    - `kl_bits_per_dim`: KL(q‖p) of the coded messages per dimension.
    - `header_bits_per_dim`: the files' headers (the codec's container and the rcc header),
      paid once per file.
    - `mse`: E‖X − X̂‖² / d per dimension, ± SE over items.
    - `perception`: `PERCEPTION_ESTIMATOR` of X̂ against the reference, ± SE.
    - `samples`: the first `keep` reconstructions (for image grids), shaped like the items.
    - `noisy`: the X_σ they were decoded from (the first `keep` items'), decoded from the file
      and shared by every decoder of the (mode, σ).
    """

    mode: str
    decoder: str
    sigma: float
    rho: float
    bits_per_dim: metrics.Estimate
    kl_bits_per_dim: float
    header_bits_per_dim: float
    mse: metrics.Estimate
    perception: metrics.Estimate
    samples: np.ndarray
    noisy: np.ndarray


def traversal_sweep(
    key: PRNGKeyArray,
    model: scores.ScoreSource,
    x: ArrayLike,
    sigmas: Sequence[float],
    rhos: Sequence[float] = (1.0, 0.75, 0.5, 0.25, 0.0),
    *,
    modes: Sequence[str] = codec.MODES,
    blocks: int = 2,
    steps: int = 8,
    reference: ArrayLike | None = None,
    posterior_steps: int = 100,
    keep: int = 8,
    progress: Callable[[int], None] | None = None,
    decode_options: dict | None = None,
) -> list[TraversalPoint]:
    """Compresses the items once per (mode, σ) and decodes the files at every ρ, with the
    baselines at the same rate on the same X_σ.

    **Arguments:**

    - `key`: a `jax.random.key`: every file's shared key and the posterior samples derive
      from it.
    - `model`: a learned score source with `gaussian_fit()` (`models.pretrained(...)`).
    - `x`: the items, `(n, *model.event_shape)`, n a multiple of `blocks`.
    - `sigmas`, `rhos`: the grid.
    - `modes`: of `codec.compress`, any of "oneshot", "progressive".
    - `blocks`: the items go into this many files per (mode, σ), for the SE of the bits.
    - `steps`: the progressive grid's levels (its cost is one rcc message and one batch of
      network calls per level).
    - `reference`: the samples the perception figure compares with (default: `x`).
    - `posterior_steps`: Euler-Maruyama steps of the posterior sampler.
    - `keep`: reconstructions kept per point for figures.
    - `progress`: called with the number of files coded after each one.
    - `decode_options`: passed to `codec.decompress` and `decode` (`method`, `num_steps`).

    **Returns:** the points, mode-major, then σ, then decoder (learned and Gaussian fit at
    every ρ, then Tweedie and posterior).

    **Raises:** `ValueError` naming the argument: a model without `gaussian_fit()`, items of
    the wrong shape, a `reference` of another event shape, an unknown mode, a bad n or block
    count.
    """
    where = "traversal_sweep"
    if not callable(getattr(model, "gaussian_fit", None)):
        raise ValueError(f"{where}: `model` must have `gaussian_fit()` (models.pretrained).")
    if unknown := [m for m in modes if m not in codec.MODES]:
        raise ValueError(f"{where}: unknown `modes` {unknown}; choose from {codec.MODES}.")
    x = np.asarray(x)
    event = tuple(model.event_shape)
    if x.ndim != len(event) + 1 or x.shape[1:] != event:
        raise ValueError(f"{where}: `x` must have shape (n, *{event}), got {x.shape}.")
    n, dim = len(x), math.prod(event)
    if int(blocks) != blocks or blocks < 1 or n < 2 * blocks or n % blocks:
        raise ValueError(
            f"{where}: `x` must hold a multiple of `blocks` items, >= 2 per file; "
            f"got {n} and {blocks}."
        )
    options = decode_options or {}
    fit = model.gaussian_fit()
    flat = x.reshape(n, dim)
    if reference is None:
        ref = flat
    else:
        ref = np.asarray(reference)
        if ref.ndim != len(event) + 1 or ref.shape[1:] != event or len(ref) < 2:
            raise ValueError(
                f"{where}: `reference` must have shape (m, *{event}) with m >= 2, got {ref.shape}."
            )
        ref = ref.reshape(len(ref), dim)
    file_key, perception_key, posterior_key = jax.random.split(key, 3)
    done = 0

    def point(mode, decoder, sigma, rho, files, x_hat, noisy):
        x_hat = np.asarray(x_hat).reshape(n, dim)
        d = metrics.mse(flat, x_hat)
        p = metrics.sliced_w2(perception_key, x_hat, ref, _PROJECTIONS)
        return TraversalPoint(
            mode,
            decoder,
            float(sigma),
            float(rho),
            _bits(files, n // blocks, dim),
            sum(info.kl_bits for _, info in files) / (n * dim),
            sum(i.container_bits + i.rcc_header_bits for _, i in files) / (n * dim),
            metrics.Estimate(d.value / dim, d.stderr / dim),
            p,
            x_hat[:keep].reshape(-1, *event),
            np.asarray(noisy)[:keep].reshape(-1, *event),
        )

    points = []
    for m, mode in enumerate(modes):
        for s, sigma in enumerate(sigmas):
            files = []
            for b, part in enumerate(np.split(x, blocks)):
                k = jax.random.fold_in(jax.random.fold_in(file_key, m * len(sigmas) + s), b)
                extra = {"steps": steps} if mode == "progressive" else {}
                files.append(
                    codec.compress(k, part, model, sigma, mode=mode, return_info=True, **extra)
                )
                done += 1
                if progress is not None:
                    progress(done)
            noisy = np.concatenate([np.asarray(info.noisy) for _, info in files])
            for rho in rhos:
                x_hat = np.concatenate(
                    [np.asarray(codec.decompress(f, model, rho, **options)) for f, _ in files]
                )
                points.append(point(mode, "learned", sigma, rho, files, x_hat, noisy))
                on_fit = noisy.reshape(n, dim).astype(fit.mean.dtype)
                gaussian = decode(on_fit, sigma, rho, fit, **options)
                points.append(point(mode, "gaussian fit", sigma, rho, files, gaussian, noisy))
            tweedie = _denoise(model, noisy, np.asarray(sigma, noisy.dtype))
            points.append(point(mode, "tweedie", sigma, math.nan, files, tweedie, noisy))
            k = jax.random.fold_in(posterior_key, m * len(sigmas) + s)
            sample = posterior_sample(k, noisy, sigma, model, num_steps=posterior_steps)
            points.append(point(mode, "posterior", sigma, math.nan, files, sample, noisy))
    return points


@eqx.filter_jit
def _denoise(model, x, sigma):
    return jax.vmap(model.denoise, (0, None))(x, sigma)


def traversal_rows(points: Sequence[TraversalPoint]) -> list[dict]:
    """One flat dict per point (for `write_sweep`): rates in bits/dim, MSE per dimension."""
    return [
        {
            "mode": p.mode,
            "decoder": p.decoder,
            "sigma": p.sigma,
            "rho": p.rho,
            **rate_fields(p),
            "mse": float(p.mse.value),
            "mse_se": float(p.mse.stderr),
            "P": float(p.perception.value),
            "P_se": float(p.perception.stderr),
            "P_estimator": PERCEPTION_ESTIMATOR,
        }
        for p in points
    ]


def traversal_table(rows: Sequence[dict]) -> str:
    """A plain-text table of `traversal_rows`."""
    head = f"{'mode':>11} {'decoder':>12} {'σ':>6} {'ρ':>5} {'bits/dim':>15} {'KL':>7} {'head':>6}"
    lines = [head + f" {'MSE/dim':>17} {'P (sliced W2²)':>17}"]
    for r in rows:
        rho = "—" if math.isnan(r["rho"]) else f"{r['rho']:.2f}"
        lines.append(
            f"{r['mode']:>11} {r['decoder']:>12} {r['sigma']:>6.3g} {rho:>5} "
            f"{r['bits_per_dim']:>7.4f} ± {r['bits_se']:<5.3f} {r['kl_bits_per_dim']:>7.4f} "
            f"{r['header_bits_per_dim']:>6.3f} {r['mse']:>8.5f} ± {r['mse_se']:<6.5f} "
            f"{r['P']:>8.5f} ± {r['P_se']:<6.5f}"
        )
    return "\n".join(lines)
