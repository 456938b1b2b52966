"""Distortion-perception under AWGN and the score-scaled PF-ODE's closed form (maths §6-§8).

The observation is Y = X + σN with X ~ N(μ, diag(s²)); `variances` has shape `(..., n)` with the
components on the last axis, and `noise_var` (σ², isotropic or per component) and `rho`
broadcast against it. Throughout, a_i = s_i²/(s_i² + σ_i²) is the Wiener gain, kept as ln a_i
so that a_i → 1 (little noise) loses no precision.
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from theory._float import log1p, power
from theory._validate import (
    as_float,
    check_broadcast,
    check_components,
    check_nonnegative,
    check_positive_finite,
    check_rho,
)


def _source_and_noise(variances: ArrayLike, noise_var: ArrayLike, where: str) -> tuple[Array, ...]:
    variances, noise_var = as_float(variances, noise_var)
    variances = check_components(variances, where)
    noise_var = check_positive_finite(noise_var, "noise_var", where)
    check_broadcast(where, ("`variances`", variances.shape), ("`noise_var`", noise_var.shape))
    return jnp.broadcast_arrays(variances, noise_var)


def _check_batch(where: str, name: str, x: Array, variances: Array) -> None:
    """A per-point argument (`P`) must broadcast with the batch axes of the source."""
    check_broadcast(
        where, ("`variances` (but its last axis)", variances.shape[:-1]), (f"`{name}`", x.shape)
    )


def _check_per_component(where: str, rho: Array, variances: Array) -> None:
    """ρ is per component: it must broadcast with `variances` (and σ²) whole."""
    check_broadcast(where, ("`variances`", variances.shape), ("`rho`", rho.shape))


def _log_wiener_gain(variances: Array, noise_var: Array) -> Array:
    """ln a_i = -ln(1 + σ_i²/s_i²); -(ln σ_i² - ln s_i²) where the quotient overflows (then
    s_i²/σ_i² < 1/max and ln(1 + s_i²/σ_i²) is below half an ulp of the difference)."""
    ratio = noise_var / variances
    return jnp.where(
        jnp.isfinite(ratio), -jnp.log1p(ratio), jnp.log(variances) - jnp.log(noise_var)
    )


def _powers(variances: Array, noise_var: Array, rho: Array, log_a: Array) -> tuple[Array, Array]:
    """(a^(ρ/2), a^((1+ρ)/2)): exp of ln a times the exponent where ln a ≥ -1, which keeps
    a → 1 exact. Below, exp would carry the rounding of ln a and of 1 + ρ (ε|ln a|/2 each: 440
    ulp at a = 1e-190), so there they are `power`(a, ρ/2) of the quotient a = s²/(s² + σ²)
    itself, ρ/2 being exact, and √a times it, while a is a normal float and |ρ| < 4."""
    a = variances / (variances + noise_var)
    direct = (log_a < -1) & (a >= jnp.finfo(a.dtype).tiny) & (jnp.abs(rho) < 4)
    safe = jnp.where(direct, a, 0.5)
    half = power(safe, jnp.where(direct, rho / 2, 0.0))
    return (
        jnp.where(direct, half, jnp.exp(0.5 * rho * log_a)),
        jnp.where(direct, jnp.sqrt(safe) * half, jnp.exp(0.5 * (1 + rho) * log_a)),
    )


def _minus_one(power_: Array, exponent: Array) -> Array:
    """e^x − 1 of `power_` = e^x: expm1(x) for |x| ≤ 1, where subtracting 1 would cancel;
    beyond, power_ − 1, which loses nothing (|e^x − 1| > 0.63) and keeps `_powers`' digits
    where exp(x) would carry ε|x| (140 ulp at ρ = −3.9, a = 1e-30)."""
    return jnp.where(jnp.abs(exponent) <= 1, jnp.expm1(exponent), power_ - 1)


def awgn_rate(variances: ArrayLike, noise_var: ArrayLike) -> Float[Array, "..."]:
    """I(X; Y) = Σ_i ½ ln(1 + s_i²/σ_i²), the ideal rate of sending Y = X + σN (maths §8).

    **Arguments:**

    - `variances`: s_i², shape `(..., n)`.
    - `noise_var`: σ², broadcastable to `variances`.

    **Returns:** the mutual information in nats, shape `(...)`.

    **Raises:** `ValueError` naming `variances` or `noise_var` when not finite and positive.
    """
    v, n = _source_and_noise(variances, noise_var, "awgn_rate")
    return 0.5 * jnp.sum(jnp.log1p(v / n), axis=-1)


def mmse_awgn(variances: ArrayLike, noise_var: ArrayLike) -> Float[Array, "..."]:
    """D* = Σ_i s_i² σ_i² / (s_i² + σ_i²), the MSE of X* = E[X | Y] (maths §6).

    **Arguments / Raises:** as `awgn_rate`.

    **Returns:** the minimum MSE, shape `(...)`.
    """
    v, n = _source_and_noise(variances, noise_var, "mmse_awgn")
    # lo/(1 + lo/hi) = vn/(v + n) without the product's overflow or underflow.
    lo, hi = jnp.minimum(v, n), jnp.maximum(v, n)
    return jnp.sum(lo / (1 + lo / hi), axis=-1)


def mmse_perception_awgn(variances: ArrayLike, noise_var: ArrayLike) -> Float[Array, "..."]:
    """W2²(p_X, p_X*) = Σ_i s_i² (1 - √a_i)², the perception index of the MMSE estimate.

    X* = a·Y has std s√a per component, and Gaussians with a common mean are W2-apart by the
    difference of their stds (Freirich, Michaeli & Meir, NeurIPS 2021; maths §6).

    **Arguments / Raises:** as `awgn_rate`.

    **Returns:** the squared 2-Wasserstein distance, shape `(...)`.
    """
    v, n = _source_and_noise(variances, noise_var, "mmse_perception_awgn")
    return jnp.sum(_scaled_square(v, jnp.expm1(0.5 * _log_wiener_gain(v, n))), axis=-1)


def _scaled_square(v: Array, m: Array) -> Array:
    """v m², squared after the scaling: m² alone goes subnormal (and XLA flushes it to 0) long
    before the product does, for v large and m small."""
    return (jnp.sqrt(v) * m) ** 2


def dp_awgn(P: ArrayLike, variances: ArrayLike, noise_var: ArrayLike) -> Float[Array, "..."]:
    """D(P), the least MSE of an estimator of X from Y whose output is within W2² ≤ P of p_X.

    .. math::
        D(P) = D^* + \\big[(W_2(p_X, p_{X^*}) - \\sqrt P)_+\\big]^2

    This holds for any source (Freirich, Michaeli & Meir, NeurIPS 2021, Thm. 4); here D* and W2
    are the Gaussian ones of `mmse_awgn` and `mmse_perception_awgn` (maths §6).

    **Arguments:**

    - `P`: W2² budget, shape `(...)`, ≥ 0.
    - `variances`, `noise_var`: as `awgn_rate`.

    **Returns:** D(P), shape `(...)`. D(0) is the MSE of the optimal transport T(X*); posterior
    sampling costs 2D*, which is worse.

    **Raises:** `ValueError` naming `P`, `variances` or `noise_var`.
    """
    (P,) = as_float(P)
    P = check_nonnegative(P, "P", "dp_awgn")
    v, n = _source_and_noise(variances, noise_var, "dp_awgn")
    _check_batch("dp_awgn", "P", P, v)
    w2 = jnp.sqrt(mmse_perception_awgn(v, n))
    return mmse_awgn(v, n) + jnp.maximum(w2 - jnp.sqrt(P), 0.0) ** 2


def score_scaled_gain(
    rho: ArrayLike, variances: ArrayLike, noise_var: ArrayLike, *, allow_any_rho: bool = False
) -> Float[Array, "... n"]:
    """The gain a_i^{(1+ρ)/2} of the score-scaled PF-ODE on a Gaussian source.

    Integrating dx/dσ = -(1 + ρ) σ ∇log p_σ(x) from σ down to 0 maps
    x̂ = μ + (y - μ)·a_i^{(1+ρ)/2} in each eigen-direction (maths §7; Wang, Bi & Zhang 2026,
    Lemma 1 and Prop. 2): ρ = 1 is the MMSE estimate, ρ = 0 the optimal transport T(X*).

    **Arguments:**

    - `rho`: the score scale in [0, 1], broadcastable to `variances` (per-direction ρ allowed).
    - `variances`, `noise_var`: as `awgn_rate`.
    - `allow_any_rho`: permit any finite ρ, as `rdp_jax.decode` does (outside [0, 1] both D
      and P are worse than at the nearer end, maths §7).

    **Returns:** the per-component gain, the broadcast shape of the arguments.

    **Raises:** `ValueError` naming `rho` (not finite, or outside [0, 1] without
    `allow_any_rho`), `variances` or `noise_var`.
    """
    where = "score_scaled_gain"
    (rho,) = as_float(rho)
    rho = check_rho(rho, where, allow_any_rho)
    v, n = _source_and_noise(variances, noise_var, where)
    _check_per_component(where, rho, v)
    return _powers(v, n, rho, _log_wiener_gain(v, n))[1]


def score_scaled_dp(
    rho: ArrayLike, variances: ArrayLike, noise_var: ArrayLike, *, allow_any_rho: bool = False
) -> tuple[Float[Array, "..."], Float[Array, "..."]]:
    """(D, P) of the score-scaled PF-ODE's output on a Gaussian source (maths §7).

    With gain g_i = a_i^{(1+ρ_i)/2}:

    .. math::
        D = \\sum_i (1 - g_i)^2 s_i^2 + g_i^2 σ_i^2, \\qquad
        P = \\sum_i s_i^2 (1 - a_i^{ρ_i/2})^2,

    since x̂_i has std g_i √(s_i² + σ_i²) = s_i a_i^{ρ_i/2}.

    **Arguments / Raises:** as `score_scaled_gain`.

    **Returns:** `(D, P)`, each of shape `(...)`.
    """
    where = "score_scaled_dp"
    (rho,) = as_float(rho)
    rho = check_rho(rho, where, allow_any_rho)
    v, n = _source_and_noise(variances, noise_var, where)
    _check_per_component(where, rho, v)
    log_a = _log_wiener_gain(v, n)
    half, gain = _powers(v, n, rho, log_a)
    # D = Σ s²(g − 1)² + g²σ², P = Σ s²(a^(ρ/2) − 1)², with g²σ² as (g σ)²: g² alone
    # underflows where the product does not (tiny a, huge σ²).
    bias = _minus_one(gain, 0.5 * (1 + rho) * log_a)
    D = jnp.sum(_scaled_square(v, bias) + (gain * jnp.sqrt(n)) ** 2, axis=-1)
    P = jnp.sum(_scaled_square(v, _minus_one(half, 0.5 * rho * log_a)), axis=-1)
    return D, P


def geodesic_rho(P: ArrayLike, variances: ArrayLike, noise_var: ArrayLike) -> Float[Array, "... n"]:
    """Per-direction ρ_i that puts the score-scaled PF-ODE on the DP curve at budget P.

    The optimal estimator is the W2 geodesic X̂ = X* + α (T(X*) - X*), α = 1 - √P / W2(p_X, p_X*)
    (Freirich et al. 2021), i.e. gain g_i = (1 - α) a_i + α √a_i. Matching a_i^{(1+ρ_i)/2}:

    .. math::
        ρ_i = \\frac{2 \\ln g_i}{\\ln a_i} - 1
            = \\frac{2 \\ln(1 - (1 - α)(1 - \\sqrt{a_i}))}{\\ln a_i}.

    A constant ρ reaches the curve only at ρ ∈ {0, 1} when the a_i differ (maths §7), so
    Theorem 3 of Wang, Bi & Zhang (2026) needs this per-direction form.

    **Arguments:**

    - `P`: W2² budget, shape `(...)`, ≥ 0; P ≥ W2² gives ρ = 1 (the MMSE estimate).
    - `variances`, `noise_var`: as `awgn_rate`.

    **Returns:** ρ_i ∈ [0, 1], shape `(..., n)`.

    **Raises:** `ValueError` naming `P`, `variances` or `noise_var`.
    """
    (P,) = as_float(P)
    P = check_nonnegative(P, "P", "geodesic_rho")
    v, n = _source_and_noise(variances, noise_var, "geodesic_rho")
    _check_batch("geodesic_rho", "P", P, v)
    w2 = jnp.sqrt(mmse_perception_awgn(v, n))
    # 1 - α; P ≥ W2² (also where W2² underflows to 0) is the MMSE estimate.
    binds = P < w2**2
    mmse_weight = jnp.where(binds, jnp.sqrt(P) / jnp.where(binds, w2, 1.0), 1.0)[..., None]
    log_a = _log_wiener_gain(v, n)
    # The argument lies in (-1, 0], where jnp.log1p can be 240 ulps off (see theory._float).
    rho = 2 * log1p(mmse_weight * jnp.expm1(0.5 * log_a)) / log_a
    # ρ_i ∈ [0, 1] exactly, but the quotient can round just above 1, which `decode` and
    # `score_scaled_dp` would reject.
    return jnp.where(
        mmse_weight == 1, 1.0, jnp.clip(rho, 0.0, 1.0)
    )  # exactly MMSE once P does not bind
