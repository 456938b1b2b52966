"""Multistep exponential integrators for the score-scaled PF-ODE, in u = ln σ (THEORY §7).

In VE coordinates with u = ln σ the decoder ODE is semi-linear,

.. math::
    \\frac{dx}{du} = κ\\,(x - D(x, e^u)), \\qquad κ = 1 + ρ,

so the linear part is integrated exactly and only the denoiser output D is approximated, by the
polynomial through the last k outputs (an exponential Adams-Bashforth method; Hochbruck &
Ostermann 2010; k = 2 is DPM-Solver++(2M)-like, Lu et al. 2022). With D(u_n + τ) ≈ Σ_m c_m τ^m:

.. math::
    x_{n+1} = e^{κh} x_n - κ \\sum_{m<k} m!\\, c_m\\, h^{m+1} φ_{m+1}(κh), \\qquad
    φ_j(z) = \\sum_{i \\ge 0} \\frac{z^i}{(i+j)!}.

k = 1 is the ρ-scaled DDIM step of THEORY §7. The last step, to σ = 0 where u = -∞, uses that
x(0) = lim D along the trajectory and extrapolates the last two outputs linearly in σ², in which
D is smooth at 0. The grid is fixed, so the method is a `lax.scan` with one denoiser call per
step: diffrax's step-size machinery would have nothing to adapt, and a multistep history does not
fit its one-step solver interface without hiding the data flow.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from rdp_jax._decoder._grids import warped_log_grid
from rdp_jax.scores import ScoreSource

MAX_ORDER = 4
_SERIES_TERMS = 18  # |z| < ½: the 18-term tail is below 1e-20


def _phi(j: int, z: Array) -> Array:
    """φ_j(z), by its series where the closed form would cancel (|z| < ½)."""
    small = jnp.abs(z) < 0.5
    zs = jnp.where(small, 1.0, z)
    closed = (jnp.expm1(zs) - sum(zs**i / math.factorial(i) for i in range(1, j))) / zs**j
    series = jnp.zeros_like(z)
    for i in reversed(range(_SERIES_TERMS)):  # Horner
        series = series * z + 1.0 / math.factorial(i + j)
    return jnp.where(small, series, closed)


def _taylor_matrix(nodes: Array, order: Array) -> Array:
    """V⁻¹ with V_jm = τ_j^m, restricted to the first `order` nodes (identity beyond)."""
    m = jnp.arange(MAX_ORDER)
    used = m < order
    V = jnp.where(used[:, None] & used[None, :], nodes[:, None] ** m[None, :], 0.0)
    V = V + jnp.diag(jnp.where(used, 0.0, 1.0))
    return jnp.linalg.inv(V)


def exponential_decode(
    model: ScoreSource,
    y: Float[Array, "*event"],
    sigma: Float[Array, ""],
    kappa: Float[Array, "*event"],
    *,
    num_steps: int,
    order: int,
    sigma_min: float,
) -> Float[Array, "*event"]:
    """Decodes one observation with `num_steps` denoiser calls (the NFE).

    **Arguments:**

    - `model`: the score source.
    - `y`: one observation X + σN.
    - `sigma`: its noise level.
    - `kappa`: 1 + ρ, broadcastable to `y`.
    - `num_steps`: denoiser evaluations, ≥ 2.
    - `order`: k ∈ {1, 2, 3, 4}, the number of past outputs in the polynomial.
    - `sigma_min`: the last positive noise level before the final step to 0.

    **Returns:** x̂, the ODE's end point at σ = 0.
    """
    u = warped_log_grid(sigma, sigma_min, num_steps)
    history = jnp.zeros((MAX_ORDER, *y.shape), y.dtype)  # D at u_n, u_{n-1}, ...
    nodes = jnp.zeros(MAX_ORDER, y.dtype)  # u_{n-j} - u_n once shifted below

    def step(carry, n):
        x, history, past_u = carry
        D = model.denoise(x, jnp.exp(u[n]))
        history = jnp.roll(history, 1, axis=0).at[0].set(D)
        past_u = jnp.roll(past_u, 1).at[0].set(u[n])
        k = jnp.minimum(n + 1, order)
        coeffs = jnp.tensordot(_taylor_matrix(past_u - u[n], k), history, axes=1)  # c_m
        h = u[n + 1] - u[n]
        x_next = jnp.exp(kappa * h) * x
        for m in range(MAX_ORDER):
            weight = math.factorial(m) * h ** (m + 1) * _phi(m + 1, kappa * h)
            x_next = x_next - jnp.where(m < k, kappa * weight * coeffs[m], 0.0)
        return (x_next, history, past_u), None

    (x, history, _), _ = jax.lax.scan(step, (y, history, nodes), jnp.arange(num_steps - 1))
    D_last = model.denoise(x, jnp.exp(u[-1]))
    # Extrapolate D linearly in σ² from (σ_{N-2}, D_{N-2}), (σ_{N-1}, D_last) to σ = 0.
    s_prev, s_last = jnp.exp(2 * u[-2]), jnp.exp(2 * u[-1])
    return D_last + (D_last - history[0]) * s_last / (s_prev - s_last)
