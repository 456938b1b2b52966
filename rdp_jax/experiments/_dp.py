"""Distortion-perception measurements of the decoder: exact for Gaussians, Monte Carlo otherwise."""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax import metrics
from rdp_jax._decoder import decode, tweedie_denoise
from rdp_jax.scores import Gaussian, ScoreSource


def linear_decoder_dp(
    model: Gaussian, sigma: float, rho: ArrayLike, **decode_kwargs
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """The exact (D, P) of the numerical decoder on a Gaussian source, without sampling.

    On X ~ N(μ, Σ) every decoder here is affine in y (the adaptive one up to its step-size
    choice), x̂ = μ + G (y - μ). G is read off by decoding μ + e_i, so the solver's own error is
    measured, not Monte Carlo noise:

    .. math::
        D = \\operatorname{tr}((G - I) Σ (G - I)^⊤) + σ^2 \\operatorname{tr}(G G^⊤), \\qquad
        P = W_2^2\\big(N(μ, Σ), N(μ, G (Σ + σ^2 I) G^⊤)\\big).

    **Arguments:**

    - `model`: the Gaussian source.
    - `sigma`: the observation noise std.
    - `rho`: the score scale (scalar or per dimension).
    - `decode_kwargs`: passed to `rdp_jax.decode` (method, num_steps, ...).

    **Returns:** `(D, P)`.
    """
    mu, cov = model.mean, model.covariance
    d = mu.shape[0]
    probes = jnp.concatenate([mu[None], mu + jnp.eye(d, dtype=mu.dtype)])
    out = decode(probes, sigma, rho, model, **decode_kwargs)
    G = (out[1:] - out[0]).T
    eye = jnp.eye(d, dtype=mu.dtype)
    D = jnp.trace((G - eye) @ cov @ (G - eye).T) + sigma**2 * jnp.trace(G @ G.T)
    P = metrics.gaussian_w2sq(cov, G @ (cov + sigma**2 * eye) @ G.T)
    return D, P


class DPPoint(NamedTuple):
    """One decoder operating point measured on samples: D and P with standard errors."""

    rho: float
    distortion: metrics.Estimate
    perception: metrics.Estimate


Perception = Callable[[Array, Array], metrics.Estimate]


def empirical_dp(
    key: PRNGKeyArray,
    model: ScoreSource,
    sample: Callable[[PRNGKeyArray, int], Array],
    sigma: float,
    rhos: Sequence[float],
    num_samples: int,
    perception: Perception = metrics.w2_gaussian,
    **decode_kwargs,
) -> list[DPPoint]:
    """Monte Carlo (D, P) of the decoder at each ρ, with common random numbers across ρ.

    Draws X from `sample`, observes Y = X + σN, decodes at each ρ, and measures D = E‖X - X̂‖²
    by `metrics.mse` and P = W2²(p_X, p_X̂) by `perception(x_hat, x)`.

    **Arguments:**

    - `key`: a `jax.random.key`.
    - `model`: the score source the decoder uses.
    - `sample`: `(key, n) -> (n, *event)` draws of X (e.g. `model.sample` for analytic sources).
    - `sigma`: the noise std.
    - `rhos`: the score scales to measure.
    - `num_samples`: n.
    - `perception`: the W2² estimator (default the Gaussian-fit `metrics.w2_gaussian`).
    - `decode_kwargs`: passed to `rdp_jax.decode`.

    **Returns:** one `DPPoint` per ρ.
    """
    data_key, noise_key = jax.random.split(key)
    x = sample(data_key, num_samples)
    y = x + sigma * jax.random.normal(noise_key, x.shape, x.dtype)
    points = []
    for rho in rhos:
        x_hat = decode(y, sigma, rho, model, **decode_kwargs)
        points.append(DPPoint(float(rho), metrics.mse(x, x_hat), perception(x_hat, x)))
    return points


class DPBound(NamedTuple):
    """The general DP bound D(P) = D* + (W2(p_X, p_X*) - √P)₊², estimated on samples."""

    mmse: metrics.Estimate
    w2sq_mmse: metrics.Estimate


def empirical_dp_bound(
    key: PRNGKeyArray,
    model: ScoreSource,
    sample: Callable[[PRNGKeyArray, int], Array],
    sigma: float,
    num_samples: int,
    perception: Perception,
) -> DPBound:
    """D* = E‖X - E[X|Y]‖² and W2²(p_X, p_X*) by Monte Carlo (Freirich et al. 2021; maths §6).

    E[X|Y] is the model's Tweedie denoiser, exact for analytic sources.
    """
    data_key, noise_key = jax.random.split(key)
    x = sample(data_key, num_samples)
    y = x + sigma * jax.random.normal(noise_key, x.shape, x.dtype)
    x_star = tweedie_denoise(y, sigma, model)
    return DPBound(metrics.mse(x, x_star), perception(x_star, x))
