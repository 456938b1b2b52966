"""Floating-point helpers that XLA's own functions do not provide to working accuracy."""

import jax.numpy as jnp
from jaxtyping import Array, Float


def log1p(x: Float[Array, "..."]) -> Float[Array, "..."]:
    """ln(1 + x), within 3 ulps for x > -1, by Goldberg's identity.

    XLA's float64 `log1p` (CPU, jax 0.10) errs by up to 240 ulps for x in [-0.4142, -0.3547]
    (float32 and numpy's are within 3). With u = fl(1 + x),

    .. math::
        \\ln(1 + x) = x \\, \\frac{\\ln u}{u - 1}

    to a few ulps, since u - 1 is exact and ln u / (u - 1) varies slowly (Goldberg, *What every
    computer scientist should know about floating-point arithmetic*, ACM Comput. Surv. 1991,
    Thm. 4): measured against mpmath within 2.7 ulps in float64 and 3.1 in float32 over
    [-0.999, 3] and ±[1e-20, 1]. Where u rounds to 1, ln(1 + x) = x to working precision.
    """
    u = 1 + x
    exact = u == 1
    u_safe = jnp.where(exact, 2.0, u)  # keeps the branch not taken, and its gradient, finite
    return jnp.where(exact, x, x * (jnp.log(u_safe) / (u_safe - 1)))
