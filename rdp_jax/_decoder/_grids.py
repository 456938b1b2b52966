"""Time grids for the fixed-budget decoders, from the observation's σ down to σ_min > 0."""

import jax.numpy as jnp
from jaxtyping import Array, Float

# Fraction of the ln σ range given to the quadratic term of the warped grid. Larger values make
# the first steps, which a multistep method takes with little history, shorter. 0.75 minimised
# the worst D error of the order-4 method on the decoder benchmark (0.6 to 0.9 are within 2x).
WARP = 0.75


def warped_log_grid(sigma: Float[Array, ""], sigma_min: float, num: int) -> Float[Array, " num"]:
    """`num` values of ln σ from ln σ to ln σ_min, short steps first.

    .. math::
        u_k = u_0 + (u_{min} - u_0)\\,((1 - β) t_k + β t_k^2), \\quad t_k = k/(num - 1).

    The exponential integrator starts without derivative history, so its early steps carry the
    largest error; a quadratic warp shrinks them and lengthens the late ones, where the denoiser
    output barely moves.
    """
    t = jnp.linspace(0.0, 1.0, num, dtype=sigma.dtype)
    u0 = jnp.log(sigma)
    u1 = jnp.log(jnp.minimum(sigma_min, sigma / 2))
    return u0 + (u1 - u0) * ((1 - WARP) * t + WARP * t**2)


def edm_sigma_grid(
    sigma: Float[Array, ""], sigma_min: float, num: int, power: float = 7.0
) -> Float[Array, " num"]:
    """`num` noise levels from σ to σ_min, uniform in σ^{1/power} (Karras et al. 2022, eq. 5)."""
    t = jnp.linspace(0.0, 1.0, num, dtype=sigma.dtype)
    lo = jnp.minimum(sigma_min, sigma / 2)
    return (sigma ** (1 / power) + t * (lo ** (1 / power) - sigma ** (1 / power))) ** power
