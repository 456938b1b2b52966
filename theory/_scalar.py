"""Scalar Gaussian rate-distortion(-perception) functions (maths §2-§4).

Conventions: nats; `D` is the MSE budget; `P` is a budget on W2² (or on a KL divergence in
`rdp_kl`); `var` is the source variance s². All functions broadcast elementwise.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from theory._float import power_of_two_scale
from theory._kl import kl_std_deficit
from theory._validate import (
    as_float,
    check_broadcast,
    check_components,
    check_nonnegative,
    check_positive_finite,
)


def _log_ratio(a: Array, b: Array) -> Array:
    """ln(a/b) for a > 0, b ≥ 0, to a few ulp at every scale.

    ln a − ln b loses eps·|ln a| to each logarithm, all of a small ratio's log (D near s²) and
    hundreds of ulp at large scales. Where b ≤ a ≤ 2b, a − b is exact (Sterbenz) and
    log1p((a − b)/b) costs ~2 ulp; elsewhere ln(a/b) ≥ ln 2 costs ~1. At b = 0 it is
    ln a − ln b = +∞, whose slope in b is −∞ rather than ln(a/b)'s NaN.
    """
    positive = b > 0
    safe = jnp.where(positive, b, 1.0)
    near = (a >= safe / 2) & (a <= 2 * safe)
    ratio = jnp.where(near, jnp.log1p((a - safe) / safe), jnp.log(a / safe))
    return jnp.where(positive, ratio, jnp.log(a) - jnp.log(b))


def rate_distortion(D: ArrayLike, variances: ArrayLike) -> Float[Array, "..."]:
    """Shannon's R(D) of a Gaussian source with independent components, by reverse water-filling.

    .. math::
        R(D) = \\sum_i \\tfrac12 \\ln \\frac{s_i^2}{\\min(θ, s_i^2)}, \\qquad
        \\sum_i \\min(θ, s_i^2) = D.

    Cover & Thomas, Thm. 10.3.3 (maths §2). The water level is exact, not iterated: the sum is
    concave and piecewise linear in θ, so θ is the largest root of its extended linear pieces.

    **Arguments:**

    - `D`: total MSE budget, shape `(...)`, ≥ 0.
    - `variances`: component variances s_i², shape `(..., n)`; a scalar is one component.

    **Returns:** R(D) in nats, shape `(...)`: +∞ at D = 0, 0 for D ≥ Σ s_i².

    **Raises:** `ValueError` naming `D` or `variances` when D is negative or NaN, or a variance
    is not finite and positive.
    """
    where = "rate_distortion"
    D, variances = as_float(D, variances)
    D = check_nonnegative(D, "D", where)
    variances = check_components(variances, where)
    check_broadcast(
        where, ("`D`", D.shape), ("`variances` (but its last axis)", variances.shape[:-1])
    )
    v = jnp.sort(variances, axis=-1)
    n = v.shape[-1]
    # Σ of the k smallest variances, k = 0..n-1, as an exclusive prefix sum: cumsum(v) - v would
    # subtract each variance from a sum that a larger one has already rounded, costing
    # eps·s_max² in the water level (1e-9 relative at variances 1e6 apart).
    below = jnp.concatenate([jnp.zeros_like(v[..., :1]), jnp.cumsum(v[..., :-1], axis=-1)], axis=-1)
    candidates = (D[..., None] - below) / jnp.arange(n, 0, -1, dtype=v.dtype)
    # Gather the winner rather than reduce with max: max's derivative multiplies the losers by
    # zero, which is NaN against the infinite d(ln θ)/dθ at D = 0.
    best = jnp.argmax(candidates, axis=-1, keepdims=True)
    theta = jnp.take_along_axis(candidates, best, axis=-1)[..., 0]
    v, theta = jnp.broadcast_arrays(v, theta[..., None])  # D batched over shared variances
    return 0.5 * jnp.sum(jnp.maximum(_log_ratio(v, theta), 0.0), axis=-1)


def _rate_with_std_floor(
    D: Array, var: Array, P: Array, deficit_of: Callable[[Array], Array]
) -> Array:
    """R(D) when perception only forces the reconstruction std ŝ ≥ s - deficit_of(P) (§3-§4).

    The optimal ŝ is max(s - deficit, √(s² - D)₊): the unconstrained Shannon choice when the
    floor is below it, else the floor. On the floor, with r the correlation needed for D,

    .. math::
        1 - r^2 = \\frac{(D - (s-ŝ)^2)\\,((s+ŝ)^2 - D)}{4 s^2 ŝ^2},

    which factors 4s²ŝ² - (s² + ŝ² - D)² and so stays accurate as r → 1. As r → 0 (D near the
    zero-rate boundary s² + ŝ²) the factors round to 1 - r² ≈ 1 and their logarithms cancel to
    an absolute error of ~eps, all of a rate of ~r²/2; there R = -½ ln(1 - r²) is computed from
    r = (s² + ŝ² - D)/(2sŝ) itself, whose one subtraction costs only what D's rounding does.
    """
    # The rate is homogeneous of degree 0: work on s²·c², D·c² and stds·c, an exact rescaling
    # that keeps 4s²ŝ² and (s + ŝ)² inside the float range at any s².
    c = jax.lax.stop_gradient(power_of_two_scale(var))
    var, D = var * c * c, D * c * c
    s = jnp.sqrt(var)
    # Branch masks carry no gradient; each branch then sees only inputs where it is finite, so
    # that neither values nor gradients pick up NaN from the branch not taken (0·∞ from √P at
    # P = 0 in the zero-rate region, say). `deficit_of` is in the caller's units.
    deficit = jax.lax.stop_gradient(deficit_of(P)) * c
    floor_binds = s - deficit > jnp.sqrt(jnp.maximum(var - D, 0.0))
    zero_rate = D >= var + (s - deficit) ** 2
    on_floor = floor_binds & ~zero_rate
    d_f = jnp.where(on_floor, deficit_of(jnp.where(on_floor, P, 0.0)) * c, 0.0)
    D_f = jnp.where(on_floor, D, var)
    s_hat_f = s - d_f
    factored_rate = 0.5 * (
        jnp.log(4 * var * s_hat_f**2) - jnp.log(D_f - d_f**2) - jnp.log((s + s_hat_f) ** 2 - D_f)
    )
    r = (var + s_hat_f**2 - D_f) / (2 * s * s_hat_f)  # 1/2 off the floor (D_f = s², ŝ = s)
    low = r < 0.5  # the factored form's relative error ~eps/r² exceeds this one's ~eps/r there
    r_low = jnp.where(low, r, 0.0)
    floor_rate = jnp.where(low, -0.5 * jnp.log1p(-(r_low**2)), factored_rate)
    shannon = jnp.maximum(0.5 * _log_ratio(var, jnp.where(floor_binds, var, D)), 0.0)
    return jnp.where(floor_binds, jnp.where(zero_rate, 0.0, floor_rate), shannon)


def rdp_w2(D: ArrayLike, P: ArrayLike, var: ArrayLike) -> Float[Array, "..."]:
    """R(D, P) of a scalar Gaussian under MSE distortion and a W2² perception budget.

    With ŝ_min = (s - √P)₊ (maths §3; Zhang, Qian, Chen & Khisti, NeurIPS 2021, Thm. 2):

    .. math::
        R(D,P) = \\begin{cases}
          \\max(\\tfrac12 \\ln \\frac{s^2}{D}, 0) & \\sqrt P \\ge s - \\sqrt{|s^2 - D|} \\\\
          \\tfrac12 \\ln \\frac{s^2 ŝ_{min}^2}{s^2 ŝ_{min}^2 - ((s^2 + ŝ_{min}^2 - D)/2)^2}
            & \\text{otherwise, and } 0 \\text{ once } D \\ge s^2 + ŝ_{min}^2.
        \\end{cases}

    **Arguments:**

    - `D`: MSE budget, ≥ 0.
    - `P`: W2² budget, ≥ 0 (+∞ gives Shannon's R(D)).
    - `var`: source variance s², finite and > 0.

    **Returns:** R(D, P) in nats, broadcast over the arguments; +∞ at D = 0.

    **Raises:** `ValueError` naming the argument for negative or NaN `D`/`P`, or a `var` that is
    not finite and positive; under `jit`, the same message at run time.
    """
    where = "rdp_w2"
    D, P, var = as_float(D, P, var)
    check_broadcast(where, ("`D`", D.shape), ("`P`", P.shape), ("`var`", var.shape))
    D = check_nonnegative(D, "D", where)
    P = check_nonnegative(P, "P", where)
    var = check_positive_finite(var, "var", where)
    return _rate_with_std_floor(D, var, P, lambda p: jnp.minimum(jnp.sqrt(p), jnp.sqrt(var)))


def rdp_kl(D: ArrayLike, P: ArrayLike, var: ArrayLike, direction: str) -> Float[Array, "..."]:
    """R(D, P) of a scalar Gaussian under MSE distortion and a KL perception budget.

    The KL budget only bounds ŝ from below, ŝ ≥ θ(P)·s (see `kl_std_deficit`), so the W2 formula
    holds with ŝ_min = θ(P)·s (maths §4; Serra, Stavrou & Kountouris, JSAIT 2024).

    **Arguments:**

    - `D`: MSE budget, ≥ 0.
    - `P`: KL budget in nats, ≥ 0.
    - `var`: source variance s², finite and > 0.
    - `direction`: `"forward"` bounds KL(p_X ‖ p_X̂); `"reverse"` bounds KL(p_X̂ ‖ p_X).

    **Returns:** R(D, P) in nats, broadcast over the arguments.

    **Raises:** `ValueError` for an unknown `direction`, and as `rdp_w2` for the others.
    """
    where = "rdp_kl"
    if direction not in ("forward", "reverse"):
        raise ValueError(f"{where}: `direction` must be 'forward' or 'reverse', got {direction!r}.")
    D, P, var = as_float(D, P, var)
    check_broadcast(where, ("`D`", D.shape), ("`P`", P.shape), ("`var`", var.shape))
    D = check_nonnegative(D, "D", where)
    P = check_nonnegative(P, "P", where)
    var = check_positive_finite(var, "var", where)
    return _rate_with_std_floor(D, var, P, lambda p: jnp.sqrt(var) * kl_std_deficit(p, direction))


def distortion_rate_perception(R: ArrayLike, P: ArrayLike, var: ArrayLike) -> Float[Array, "..."]:
    """D(R, P) of a scalar Gaussian under a W2² budget: the inverse of `rdp_w2` in D.

    .. math::
        D(R,P) = D^* + \\big[(W_2(p_X, p_{X^*}) - \\sqrt P)_+\\big]^2, \\qquad
        D^* = s^2 e^{-2R}, \\quad W_2(p_X, p_{X^*}) = s(1 - r), \\quad r = \\sqrt{1 - e^{-2R}}.

    One encoder of rate R serves every perception level (Zhang et al., NeurIPS 2021; maths §3).

    **Arguments:**

    - `R`: rate in nats, ≥ 0 (+∞ gives D = 0).
    - `P`: W2² budget, ≥ 0.
    - `var`: source variance s², finite and > 0.

    **Returns:** the least achievable MSE, broadcast over the arguments.

    **Raises:** `ValueError` naming `R`, `P` or `var` for invalid values; under `jit`, at run time.
    """
    where = "distortion_rate_perception"
    R, P, var = as_float(R, P, var)
    check_broadcast(where, ("`R`", R.shape), ("`P`", P.shape), ("`var`", var.shape))
    R = check_nonnegative(R, "R", where)
    P = check_nonnegative(P, "P", where)
    var = check_positive_finite(var, "var", where)
    r = jnp.sqrt(-jnp.expm1(-2 * R))
    # var·e^{−2R} and s·e^{−2R}/(1 + r) = s(1 − r) without cancellation; e^{−2R} alone
    # underflows (to 0: XLA flushes subnormals) while the products are still normal.
    mmse = _times_exp(var, -2 * R)
    w2_mmse = _times_exp(jnp.sqrt(var), -2 * R) / (1 + r)
    return mmse + jnp.maximum(w2_mmse - jnp.sqrt(P), 0.0) ** 2


def _times_exp(scale: Array, x: Array) -> Array:
    """scale · e^x: the product where e^x is a normal float (1 rounding each), else
    e^{ln scale + x}, which stays normal as long as the result does."""
    factor = jnp.exp(x)
    normal = factor >= jnp.finfo(factor.dtype).tiny
    return jnp.where(normal, scale * factor, jnp.exp(jnp.log(scale) + x))
