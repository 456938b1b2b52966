"""Where RCC + score-scaled PF-ODE reaches R(D, P), and what it pays where not (maths §8).

The seed paper's framework sends Y = X + σN at the ideal rate I(X; Y) and decodes with the
score-scaled PF-ODE. For a scalar Gaussian its (D, P) points lie on R(D, P) = I(X; Y) (Wang, Bi
& Zhang 2026, Thm. 4). For a vector source with isotropic noise they do not; per-component noise
and ρ taken from the KKT allocation of maths §5 close the gap.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from theory._awgn import _source_and_noise, awgn_rate, score_scaled_dp
from theory._float import log1p, power_of_two_scale
from theory._validate import as_float, check_rho
from theory._vector import checked_budgets, rdp_w2_vector


class FrameworkGap(NamedTuple):
    """The framework's operating point and its rate against R(D, P); fields of shape `(...)`.

    - `rate`: I(X; Y), what the framework spends (nats).
    - `distortion`, `perception`: the decoder's D and W2² P.
    - `optimal_rate`: R(D, P) at that (D, P).
    - `gap`: `rate - optimal_rate` ≥ 0 (Thm 4: 0 on the scalar framework), to the rounding of
      both rates: a zero gap may come out a few ulp of `rate` below 0.
    """

    rate: Array
    distortion: Array
    perception: Array
    optimal_rate: Array
    gap: Array


class FrameworkParameters(NamedTuple):
    """Per-component noise and score scale for which the framework attains R(D, P).

    - `noise_var`: σ_i² = s_i²(1 - r_i²)/r_i², shape `(..., n)`; +∞ for a component sent at
      zero rate.
    - `rho`: ρ_i = ln(ŝ_i/s_i) / ln r_i, shape `(..., n)`.
    - `rate`: Σ_i ½ ln(1 + s_i²/σ_i²) = R(D, P), shape `(...)`.
    """

    noise_var: Array
    rho: Array
    rate: Array


def framework_gap(
    rho: ArrayLike, variances: ArrayLike, noise_var: ArrayLike, *, allow_any_rho: bool = False
) -> FrameworkGap:
    """The rate the framework pays above R(D, P) at its own operating point.

    **Arguments:**

    - `rho`: the decoder's score scale, broadcastable to `variances`.
    - `variances`: s_i², shape `(..., n)`.
    - `noise_var`: σ², a scalar for the paper's isotropic channel or per component.
    - `allow_any_rho`: permit ρ outside [0, 1], as `score_scaled_dp`.

    **Returns:** a `FrameworkGap`. Example (maths §8): s² = (4, 0.25), σ² = 1, ρ = 1 costs
    0.916 nats where R(D, P) = 0.854.

    **Raises:** `ValueError` naming `rho`, `variances` or `noise_var`, as `score_scaled_dp`.
    """
    # Checked here, once and named for this function: the parts below would each check them
    # again, and under jit independent checks fire in no fixed order.
    (rho,) = as_float(rho)
    rho = check_rho(rho, "framework_gap", allow_any_rho)
    variances, noise_var = _source_and_noise(variances, noise_var, "framework_gap")
    D, P = score_scaled_dp(rho, variances, noise_var, allow_any_rho=True)
    rate = awgn_rate(variances, noise_var)
    optimal = rdp_w2_vector(D, P, variances)
    return FrameworkGap(rate, D, P, optimal, rate - optimal)


def rdp_optimal_framework(D: ArrayLike, P: ArrayLike, variances: ArrayLike) -> FrameworkParameters:
    """Noise and ρ per component that make the framework attain R(D, P) exactly.

    From the optimal allocation (r_i, ŝ_i) of `rdp_w2_vector`: noise σ_i² = s_i²(1 - r_i²)/r_i²
    makes corr(X_i, Y_i) = r_i, so I(X_i; Y_i) = -½ ln(1 - r_i²) = R_i, and the gain
    ŝ_i r_i / s_i = r_i^{1+ρ_i} gives the decoder output std ŝ_i (maths §8).

    **Arguments:** as `rdp_w2_vector`.

    **Returns:** a `FrameworkParameters`. Components at zero rate (possible only where P does
    not bind) get infinite noise and ρ = 1, the decoder's constant output; at D = 0 the noise
    is 0 and ρ = 1 (any ρ decodes the noiseless observation to itself).

    **Gradients:** `rate`'s, by the envelope theorem (as `rdp_w2_vector`). `noise_var` and
    `rho` come from the allocation, which is solved, not differentiated: its NaN tangents
    (`rdp_w2_vector`) make their derivatives NaN, rather than a silent 0.

    **Raises:** `ValueError` as `rdp_w2_vector`.
    """
    D, P, variances = checked_budgets(D, P, variances, "rdp_optimal_framework")
    # Solved on an exact power-of-two rescaling (`power_of_two_scale`), which changes no rate,
    # r_i or ρ_i: P_i = (s_i - ŝ_i)² of a tiny source would otherwise underflow and take ρ_i
    # with it. Only σ_i² is scaled back.
    c = power_of_two_scale(jnp.max(variances, axis=-1))
    c_i = c[..., None]
    rate, alloc = rdp_w2_vector(D * c * c, P * c * c, variances * c_i * c_i, return_allocation=True)
    r = alloc.correlation
    s = alloc.recon_std + jnp.sqrt(alloc.perception)
    sent = alloc.rate > 0
    finite = jnp.isfinite(alloc.rate)
    safe_rate = jnp.where(sent & finite, alloc.rate, 1.0)
    # 1 - r² from the rate keeps its precision as r → 1 (high rate), from r itself as r → 0.
    residual = jnp.where(r > 0.5, jnp.exp(-2 * safe_rate), (1 - r) * (1 + r))
    r_sq = jnp.where(r > 0.5, -jnp.expm1(-2 * safe_rate), r**2)
    noise_var = (
        jnp.where(
            sent, jnp.where(finite, s**2 * residual / jnp.where(sent, r_sq, 1.0), 0.0), jnp.inf
        )
        / c_i
        / c_i
    )
    # Both log1p arguments lie in (-1, 0), where jnp.log1p can be 240 ulps off (theory._float).
    log_r = 0.5 * jnp.where(
        r > 0.5, log1p(-jnp.exp(-2 * safe_rate)), jnp.log(jnp.where(sent, r_sq, 1.0))
    )
    rho = log1p(-jnp.sqrt(alloc.perception) / s) / jnp.where(sent & finite, log_r, 1.0)
    # Zero rate: the decoder outputs a constant (ρ = 1); infinite rate (D = 0): σ_i = 0 and
    # every ρ gives the identity, so report ρ = 1 too. Elsewhere ρ_i ∈ [0, 1] exactly, but the
    # quotient rounds to 1 + ε where P does not bind, which `score_scaled_dp`, `framework_gap`
    # and `decode` would reject.
    rho = jnp.where(sent & finite, jnp.clip(rho, 0.0, 1.0), 1.0)
    return FrameworkParameters(noise_var, rho, rate)
