"""Denoising MSE of a learned source against a reference (the exact MMSE, or a baseline)."""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from rdp_jax.scores import ScoreSource


class DenoisingComparison(NamedTuple):
    """Test-set denoising MSE per dimension of `model` and `reference` at one σ, on the same
    noisy draws, and their ratio `model / reference − 1` with its standard error (delta method
    on the paired per-sample errors)."""

    sigma: float
    mse: float
    mse_stderr: float
    reference_mse: float
    reference_mse_stderr: float
    excess: float
    excess_stderr: float


@eqx.filter_jit
def _errors(model: ScoreSource, x: Array, y: Array, sigma: Array) -> Array:
    """Per-sample ‖D(y) − x‖²; a source whose event is the flattened one gets flat inputs."""
    event = tuple(model.event_shape)
    flat = y.reshape((len(y), *event))
    d = jax.vmap(model.denoise, in_axes=(0, None))(flat, sigma).reshape(y.shape)
    return jnp.sum((d - x).reshape(len(x), -1) ** 2, axis=1)


def compare_denoisers(
    key: PRNGKeyArray,
    model: ScoreSource,
    reference: ScoreSource,
    x: ArrayLike,
    sigma: float,
    *,
    repeats: int = 1,
    chunk: int = 4096,
) -> DenoisingComparison:
    """Denoises y = x + σε with both sources and compares their MSE per dimension.

    **Arguments:** `key` (the noise), `model` and `reference` (score sources; either may have
    the flattened event shape of the other), `x` (clean test samples, `(n, *event)`), `sigma`
    (> 0), `repeats` (independent noises per sample, ≥ 1), `chunk` (samples per compiled call).

    **Returns:** a `DenoisingComparison`. Its standard errors are those of a mean over the n
    independent test samples, each sample's errors averaged over its `repeats` noises first (its
    noises share the sample, so they are not independent observations).

    **Raises:** `ValueError` naming `sigma` (not finite and > 0), `x` (fewer than 2 samples) or
    `repeats` (not a positive integer).
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"compare_denoisers: `sigma` must be finite and > 0, got {sigma}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 1:
        raise ValueError(f"compare_denoisers: `repeats` must be an integer >= 1, got {repeats!r}.")
    x = jnp.asarray(x)
    if len(x) < 2:
        raise ValueError("compare_denoisers: `x` needs at least 2 samples.")
    n = len(x)
    x = jnp.tile(x, (repeats,) + (1,) * (x.ndim - 1))  # repeat r of sample i at r·n + i
    y = x + sigma * jax.random.normal(key, x.shape, x.dtype)
    s = jnp.asarray(sigma, x.dtype)
    a, b = (
        np.concatenate(
            [
                np.asarray(_errors(m, x[i : i + chunk], y[i : i + chunk], s))
                for i in range(0, len(x), chunk)
            ]
        )
        .reshape(repeats, n)
        .mean(0)
        for m in (model, reference)
    )
    d = math.prod(x.shape[1:])
    ratio = a.mean() / b.mean()
    ratio_se = np.std(a - ratio * b, ddof=1) / math.sqrt(n) / b.mean()
    return DenoisingComparison(
        float(sigma),
        float(a.mean() / d),
        float(a.std(ddof=1) / math.sqrt(n) / d),
        float(b.mean() / d),
        float(b.std(ddof=1) / math.sqrt(n) / d),
        float(ratio - 1),
        float(ratio_se),
    )
