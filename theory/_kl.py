"""The smallest reconstruction std that a Gaussian KL budget allows (maths §4)."""

import functools
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from theory._validate import as_float, check_nonnegative

# Newton from a bracketing start converges monotonically and quadratically here; 8 steps reach
# float64 round-off for every P in [1e-300, 1e300] (tests/test_kl.py checks against
# scipy.special.lambertw). JAX has no Lambert W, and this one equation does not justify
# pulling in tensorflow-probability for `tfp.math.lambertw`.
_NEWTON_STEPS = 8


# 1/n! for n = 2 … 19: on |y| < 1 the series' remainder is below 1/20! ≈ 4e-19 of its value
# (≥ 0.37 at |y| = 1), under float64's half ulp.
_SERIES = tuple(1 / math.factorial(n) for n in range(2, 20))


def _expm1_minus_identity(y: Float[Array, "..."]) -> Float[Array, "..."]:
    """e^y - 1 - y without cancellation in any float dtype.

    expm1(y) - y loses about log2(2/|y|) bits to the subtraction as y → 0 (500 ulp at y = 2e-3),
    which Newton passes on to the root as a relative error, so the Taylor series is used on all
    of |y| < 1; beyond it the subtraction loses under 3 bits (at y = -1: e^-1 against 1).
    """
    small = jnp.abs(y) < 1
    t = jnp.where(small, y, 0.0)
    series = jnp.zeros_like(t)
    for coefficient in reversed(_SERIES):  # Horner, highest power first
        series = coefficient + t * series
    return jnp.where(small, t * t * series, jnp.expm1(y) - y)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _log_variance_ratio(P: Float[Array, "..."], upper: bool) -> Float[Array, "..."]:
    """Solves `expm1(y) - y = 2P` for y > 0 (`upper`) or y < 0, for finite P > 0.

    With z = e^y this is z - ln z = 1 + 2P, i.e. -z = W(-e^{-1-2P}) on the branch W₋₁ (z > 1)
    or W₀ (z < 1). Working in y = ln z keeps full relative precision at both ends: near P = 0,
    where z → 1 and W is not finite-safe at -1/e, and for large P, where z under- or overflows.
    Its derivative is the implicit function's, dy/dP = 2/expm1(y) (`_log_variance_ratio_jvp`),
    written in terms of y itself so that every higher derivative follows from it.
    """
    if upper:
        # Both are upper bounds on the root (expm1(y) - y ≥ y²/2 and e^y = 1 + 2P + y), so
        # Newton on this convex increasing function descends monotonically onto it.
        y = jnp.minimum(2 * jnp.sqrt(P), jnp.log1p(2 * P + 2 * jnp.sqrt(P)))
    else:
        # Lower bounds on the (negative) root, so Newton on this convex decreasing function
        # rises monotonically onto it: -(1 + 2P) always; -2√P - P below P = 1 (by the cubic
        # Taylor bound e^y ≥ 1 + y + y²/2 + y³/6).
        y = jnp.where(P < 1, -2 * jnp.sqrt(P) - P, -(1 + 2 * P))
    for _ in range(_NEWTON_STEPS + 1):
        y = y - (_expm1_minus_identity(y) - 2 * P) / jnp.expm1(y)
    return y


@_log_variance_ratio.defjvp
def _log_variance_ratio_jvp(upper, primals, tangents):
    (P,), (dP,) = primals, tangents
    y = _log_variance_ratio(P, upper)
    return y, 2 * dP / jnp.expm1(y)


def kl_std_deficit(P: ArrayLike, direction: str) -> Float[Array, "..."]:
    """1 - θ(P), where θ·s is the smallest std a KL budget P allows (maths §4).

    For X ~ N(μ, s²) and X̂ ~ N(μ, ŝ²) with ŝ ≤ s, KL ≤ P holds iff ŝ ≥ θ(P)·s, with

    .. math::
        θ^{-2} = -W_{-1}(-e^{-1-2P}) \\quad (\\text{forward, } KL(p_X \\| p_{\\hat X})), \\qquad
        θ^{2} = -W_0(-e^{-1-2P}) \\quad (\\text{reverse, } KL(p_{\\hat X} \\| p_X)).

    Serra, Stavrou & Kountouris (JSAIT 2024); Qian et al. (JSAIT 2025).

    **Arguments:**

    - `P`: KL budget in nats, ≥ 0 (+∞ allowed).
    - `direction`: `"forward"` or `"reverse"`.

    **Returns:** 1 - θ, computed without cancellation; 0 at P = 0 and 1 at P = ∞.

    **Raises:** `ValueError` naming `direction` when unknown, or `P` when negative or NaN
    (under `jit`, at run time).
    """
    where = "kl_std_deficit"
    if direction not in ("forward", "reverse"):
        raise ValueError(f"{where}: `direction` must be 'forward' or 'reverse', got {direction!r}.")
    (P,) = as_float(P)
    P = check_nonnegative(P, "P", where)
    regular = jnp.isfinite(P) & (P > 0)
    P_safe = jnp.where(regular, P, jnp.ones_like(P))
    y = _log_variance_ratio(P_safe, upper=direction == "forward")
    deficit = -jnp.expm1(-jnp.abs(y) / 2)
    # At P = 0, √P: the deficit's value there, with its infinite slope (it grows like √P).
    return jnp.where(regular, deficit, jnp.where(P == 0, jnp.sqrt(P), jnp.ones_like(P)))
