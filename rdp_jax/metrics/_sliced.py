"""Sliced W2²: the 1-D W2² of random projections, averaged over directions."""

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax._validate import as_key
from rdp_jax.metrics._estimate import (
    Estimate,
    as_int,
    as_samples,
    check_same_features,
    float_dtype,
    jackknife,
    num_blocks_for,
)
from rdp_jax.metrics._quantile import value_and_replicates

# Bound on the elements of one vmapped batch of projections × jackknife blocks × samples.
_BATCH_ELEMENTS = 2**24


def sliced_w2(
    key: PRNGKeyArray,
    x: Float[ArrayLike, " nx *d"],
    y: Float[ArrayLike, " ny *d"],
    num_projections: int = 128,
    *,
    num_blocks: int = 20,
) -> Estimate:
    """Sliced W2²: the mean over random unit directions θ of the 1-D W2² of θᵀX and θᵀY.

    .. math::
        SW_2^2 = \\int_{S^{d-1}} W_2^2(θ_\\# p_X, θ_\\# p_Y)\\, dσ(θ)
        \\approx \\frac1P \\sum_{p=1}^P \\hat W_2^2(θ_p^\\top x, θ_p^\\top y),

    with θ_p i.i.d. uniform on the sphere and each term computed exactly by `w2_1d`'s machinery
    (Rabin, Peyré, Delon & Bernot 2011; Bonneel et al. 2015). Note the normalisation: this is a
    mean, not d times it, so for N(μ, s²I_d) vs N(μ, t²I_d) it is (s - t)², while W2² is
    d(s - t)²; in general SW2² ≤ W2²/d. In 1-D every θ is ±1 and the result equals `w2_1d`.

    **Error bar:** by the law of total variance, Var = E Var(· | data) + Var E(· | data):

    .. math::
        \\mathrm{se}^2 = \\frac{s_θ^2}{P} + \\mathrm{se}_{\\mathrm{jack}}^2,

    s_θ² the sample variance of the P per-direction values (the Monte Carlo error over
    directions, given the data) and se_jack the block jackknife (see `w2_1d`) of the
    direction-averaged value, with the same θ_p in every replicate. The approximation: the
    jackknife measures the data variance of the average over these P directions, which exceeds
    that of the integral over the sphere by at most 1/P of the per-direction data variance, so
    the error bar errs, slightly, on the large side. Measured (N(0, I_3) vs N(0, 1.5² I_3),
    n = 2000, P = 64, 400 repeats): mean stderr 0.0169 against a spread of 0.0175 ± 0.0006.
    With P = 1 and d > 1, s_θ is unknown and the standard error is +inf; in 1-D, s_θ = 0.

    **Bias:** each term carries `w2_1d`'s upward O(ln ln n / n) bias (for Gaussians, exactly
    2 s_θ t_θ v_n with s_θ, t_θ the projected standard deviations); the average over directions
    has no further bias.

    **Arguments:**

    - `key`: a PRNG key, `jax.random.key(seed)`, drawing the directions.
    - `x`: samples, shape `(n_x, d)` or `(n_x,)`.
    - `y`: samples, shape `(n_y, d)` or `(n_y,)`, with the same d.
    - `num_projections`: the number P of directions, ≥ 1.
    - `num_blocks`: jackknife blocks, as in `w2_1d`.

    **Returns:** `Estimate(value, stderr)`.

    **Raises:** `ValueError` naming `key`, `x`, `y`, `num_projections` or `num_blocks` for: not
    a PRNG key, wrong rank or d mismatch, fewer than 2 samples, NaN/inf entries (at run time
    under `jit`), `num_projections` < 1, or `num_blocks` < 2.
    """
    where = "sliced_w2"
    key = as_key(key, where)
    dtype = float_dtype(where, x=x, y=y)
    x = as_samples(x, "x", where, dtype)
    y = as_samples(y, "y", where, dtype)
    check_same_features(x, y, where)
    num_projections = as_int(num_projections, "num_projections", where, 1)
    num_blocks = num_blocks_for(as_int(num_blocks, "num_blocks", where, 2), x.shape[0], y.shape[0])
    return _sliced_w2(key, x, y, num_projections, num_blocks)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _sliced_w2(
    key: PRNGKeyArray,
    x: Float[Array, "nx d"],
    y: Float[Array, "ny d"],
    num_projections: int,
    num_blocks: int,
) -> Estimate:
    d = x.shape[1]
    # Drawn in float32 whatever the data dtype, so one key gives the same directions in float32
    # and float64 (any unit vector is a valid direction; normalising is done in x.dtype).
    directions = jax.random.normal(key, (num_projections, d), jnp.float32).astype(x.dtype)
    directions = directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    highest = jax.lax.Precision.HIGHEST
    px = jnp.matmul(x, directions.T, precision=highest).T  # (P, n_x)
    py = jnp.matmul(y, directions.T, precision=highest).T

    # Batches of directions bound the memory at _BATCH_ELEMENTS; the batch divides P, so
    # lax.map compiles no separate remainder.
    work = (num_blocks + 1) * (x.shape[0] + y.shape[0])
    batch = max(
        b
        for b in range(1, num_projections + 1)
        if num_projections % b == 0 and b * work <= max(_BATCH_ELEMENTS, work)
    )
    full, replicates = jax.lax.map(
        lambda pair: value_and_replicates(pair[0], pair[1], num_blocks), (px, py), batch_size=batch
    )  # (P,), (P, B)

    value = jnp.mean(full)
    # The direction average without block b, for each b: its jackknife is the data part.
    data_se, _ = jackknife(value, jnp.mean(replicates, axis=0))
    if d == 1:
        direction_var = jnp.zeros((), value.dtype)  # θ = ±1: every direction gives the same value
    elif num_projections == 1:
        direction_var = jnp.asarray(jnp.inf, value.dtype)
    else:
        direction_var = jnp.var(full, ddof=1) / num_projections
    return Estimate(value, jnp.sqrt(data_se**2 + direction_var))
