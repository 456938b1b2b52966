"""The seed paper's baselines: the one-step Tweedie (MMSE) denoiser and posterior sampling."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from rdp_jax._decoder._grids import edm_sigma_grid
from rdp_jax.scores import ScoreSource


def reverse_sde_sample(
    model: ScoreSource,
    key: PRNGKeyArray,
    y: Float[Array, "*event"],
    sigma: Float[Array, ""],
    *,
    num_steps: int,
    sigma_min: float,
) -> Float[Array, "*event"]:
    """One approximate posterior sample X ~ p(x | y), by Euler-Maruyama on the reverse VE SDE.

    dx = -d(σ²) ∇log p_σ(x) + √(d(σ²)) dW̄ from σ down to σ_min on the EDM grid, then a Tweedie
    step (Song et al. 2021, eq. 6): each step is

    .. math::
        x_{n+1} = x_n + (σ_n^2 - σ_{n+1}^2)\\,∇\\log p_{σ_n}(x_n)
                  + \\sqrt{σ_n^2 - σ_{n+1}^2}\\; z_n.

    Its MSE tends to 2D*, the price of perfect realism without the optimal transport (maths §6).
    """
    grid = edm_sigma_grid(sigma, sigma_min, num_steps)
    noise = jax.random.normal(key, (num_steps - 1, *y.shape), y.dtype)

    def step(x, inputs):
        s_now, s_next, z = inputs
        # The score as (D - x)/σ² folded into a convex combination: no division by σ².
        shrink = 1 - (s_next / s_now) ** 2
        x = x + shrink * (model.denoise(x, s_now) - x) + jnp.sqrt(s_now**2 - s_next**2) * z
        return x, None

    x, _ = jax.lax.scan(step, y, (grid[:-1], grid[1:], noise))
    return model.denoise(x, grid[-1])
