"""Multistep exponential integrators for the score-scaled PF-ODE, in u = ln σ (maths §7).

In VE coordinates with u = ln σ the decoder ODE is semi-linear,

.. math::
    \\frac{dx}{du} = κ\\,(x - D(x, e^u)), \\qquad κ = 1 + ρ,

so the linear part is integrated exactly and only the denoiser output D is approximated, by the
polynomial through the last k outputs (an exponential Adams-Bashforth method; Hochbruck &
Ostermann 2010; k = 2 is DPM-Solver++(2M)-like, Lu et al. 2022). With D(u_n + τ) ≈ Σ_m c_m τ^m:

.. math::
    x_{n+1} = e^{κh} x_n - κ \\sum_{m<k} m!\\, c_m\\, h^{m+1} φ_{m+1}(κh), \\qquad
    φ_j(z) = \\sum_{i \\ge 0} \\frac{z^i}{(i+j)!}.

k = 1 is the ρ-scaled DDIM step of maths §7. The last step, to σ = 0 where u = -∞, uses that
x(0) = lim D along the trajectory and extrapolates the last two outputs linearly in σ², in which
D is smooth at 0. The grid is fixed, so the method is a `lax.scan` with one denoiser call per
step: diffrax's step-size machinery would have nothing to adapt, and a multistep history does not
fit its one-step solver interface without hiding the data flow.
"""

import functools
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


def _step_weights(
    sigma: Float[Array, ""], kappa: Array, num_steps: int, order: int, sigma_min: float
) -> tuple[Array, Array, Array, Array]:
    """The grid and every step's coefficients for one σ: x_{n+1} = e^{κh} x_n - Σ_j w_nj D_{n-j}.

    They depend on σ and ρ only, never on x, so a batch with a shared σ computes them once.

    **Returns:** `(sigmas, decay, weights, final)`: σ_0..σ_{N-1} (N,), e^{κh_n} (N-1, *event),
    w (N-1, MAX_ORDER, *event), and the σ²-extrapolation weights of the last step (2,).
    """
    u = warped_log_grid(sigma, sigma_min, num_steps)
    n = jnp.arange(num_steps - 1)
    # nodes[n, j] = u_{n-j} - u_n, the history's offsets (unused slots are masked below).
    nodes = u[jnp.maximum(n[:, None] - jnp.arange(MAX_ORDER), 0)] - u[n, None]
    taylor = jax.vmap(_taylor_matrix)(nodes, jnp.minimum(n + 1, order))  # (N-1, m, j)
    h = (u[1:] - u[:-1]).reshape(-1, *([1] * kappa.ndim))
    z = kappa * h
    # b_m = -κ m! h^{m+1} φ_{m+1}(κh): the integral of the m-th Taylor term against e^{κ(·)}.
    b = jnp.stack(
        [-kappa * math.factorial(m) * h ** (m + 1) * _phi(m + 1, z) for m in range(MAX_ORDER)],
        axis=1,
    )  # (N-1, m, *event)
    # Only the first k_n = min(n + 1, order) Taylor terms exist at step n.
    used = jnp.arange(MAX_ORDER) < jnp.minimum(n + 1, order)[:, None]
    b = jnp.where(used.reshape(*used.shape, *([1] * kappa.ndim)), b, 0.0)
    weights = jnp.einsum("nmj,nm...->nj...", taylor, b)
    s_prev, s_last = jnp.exp(2 * u[-2]), jnp.exp(2 * u[-1])
    final = jnp.stack([-s_last / (s_prev - s_last), s_prev / (s_prev - s_last)])
    return jnp.exp(u), jnp.exp(z), weights, final


def exponential_decode(
    model: ScoreSource,
    y: Float[Array, "batch ..."],
    sigma: Float[Array, "*batch"],
    kappa: Float[Array, "*event"],
    *,
    num_steps: int,
    order: int,
    sigma_min: float,
) -> Float[Array, "batch ..."]:
    """Decodes a batch with `num_steps` denoiser calls per sample (the NFE).

    **Arguments:**

    - `model`: the score source.
    - `y`: observations X + σN, with a leading batch axis.
    - `sigma`: their noise level, one shared scalar or one per sample.
    - `kappa`: 1 + ρ, broadcastable to one sample.
    - `num_steps`: denoiser evaluations, ≥ 2.
    - `order`: k ∈ {1, 2, 3, 4}, the number of past outputs in the polynomial.
    - `sigma_min`: the last positive noise level before the final step to 0.

    **Returns:** x̂, the ODE's end point at σ = 0, shaped like `y`.
    """
    weights_of = functools.partial(
        _step_weights, kappa=kappa, num_steps=num_steps, order=order, sigma_min=sigma_min
    )
    shared = sigma.ndim == 0
    if shared:
        sigmas, decay, weights, final = weights_of(sigma)
        sigma_axis = None
    else:
        # Per-sample σ: the step axis goes first and the batch axis right after it.
        sigmas, decay, weights, final = jax.vmap(weights_of)(sigma)
        sigmas, decay, final = sigmas.T, jnp.moveaxis(decay, 0, 1), final.T
        weights = jnp.moveaxis(weights, 0, 2)  # (N-1, j, batch, *event)
        sigma_axis = 0
    denoise = jax.vmap(model.denoise, in_axes=(0, sigma_axis))
    # Shared coefficients broadcast over the batch; per-sample ones already carry its axis.
    expand = (lambda a: a[None]) if shared else (lambda a: a)

    def step(carry, inputs):
        x, history = carry
        sigma_n, decay_n, weights_n = inputs
        history = (denoise(x, sigma_n), *history[:-1])
        x = expand(decay_n) * x + sum(
            expand(w) * D for w, D in zip(weights_n, history, strict=True)
        )
        return (x, history), None

    history = (jnp.zeros_like(y),) * MAX_ORDER
    # Unrolled: a rolled loop copies the whole history in its carry every step, which made
    # this ~100x slower on CPU (benchmarks/decoder.py); the budget is a small static number.
    (x, history), _ = jax.lax.scan(step, (y, history), (sigmas[:-1], decay, weights), unroll=True)
    D_last = denoise(x, sigmas[-1])
    # Extrapolate D linearly in σ² from (σ_{N-2}, D_{N-2}) and (σ_{N-1}, D_last) to σ = 0.
    w_prev, w_last = final[0], final[1]
    if not shared:
        w_prev = w_prev.reshape(-1, *([1] * (y.ndim - 1)))
        w_last = w_last.reshape(-1, *([1] * (y.ndim - 1)))
    return w_prev * history[0] + w_last * D_last
