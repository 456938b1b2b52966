"""R(D, P) of a diagonal Gaussian vector under total MSE and total W2² budgets (maths §5).

The KKT conditions of

.. math::
    \\min \\sum_i -\\tfrac12 \\ln(1 - r_i^2) \\ \\text{s.t.}\\
    \\sum_i s_i^2 + ŝ_i^2 - 2 r_i s_i ŝ_i \\le D, \\quad \\sum_i (s_i - ŝ_i)^2 \\le P

with multipliers λ (distortion) and μ = λν (perception) give, per component,
ŝ_i = s_i (r_i + ν)/(1 + ν) and r_i/(1 - r_i²) = 2λ s_i² (r_i + ν)/(1 + ν) (Zhang et al.,
NeurIPS 2021; Qian et al., JSAIT 2025). We write ω = 1/(1 + ν) ∈ [0, 1] (ω = 1 is reverse
water-filling, ω = 0 perfect realism) and q_i = 1 - r_i, which keeps full relative precision as
r_i → 1:

.. math::
    G(q) = a_i\\, q (2 - q)(1 - ω q) - (1 - q) = 0, \\quad a_i = 2 λ s_i^2,
    \\qquad ŝ_i = s_i (1 - ω q_i).

G is concave with G(0) = -1, so Newton from q = 0 climbs monotonically onto its root in (0, 1].
λ is bisected (in ln λ) to make D tight for each ω, and ω is bisected to make P tight: every
loop has a fixed trip count, so the solve is one jit-able computation.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from theory._float import power_of_two_scale
from theory._validate import as_float, check_broadcast, check_components, check_nonnegative

# Newton converges quadratically except near the triple root at a = 1, ω = 1 (a component
# exactly at the water level), where it is linear with ratio 2/3; 40 steps leave < 3e-15 nats
# there (measured over a ∈ [1e-30, 1e30], ω ∈ [0, 1] against 300 steps).
_NEWTON_STEPS = 40
_LOG_LAMBDA_STEPS = 96
_OMEGA_STEPS = 64
# D(λ) lies between D(∞) = 0 and n/(2λ), so ln λ is bracketed by ln(n/2D) ± this margin.
_LOG_LAMBDA_MARGIN = 40.0


class VectorRDPAllocation(NamedTuple):
    """The optimal per-component allocation behind `rdp_w2_vector`.

    **Fields** (each of shape `(..., n)` unless noted):

    - `correlation`: r_i, the correlation of X_i and X̂_i.
    - `recon_std`: ŝ_i, the reconstruction's std.
    - `distortion`: D_i = s_i² + ŝ_i² - 2 r_i s_i ŝ_i.
    - `perception`: P_i = (s_i - ŝ_i)².
    - `rate`: R_i = -½ ln(1 - r_i²), in nats.
    - `distortion_multiplier`: λ = -∂R/∂D, shape `(...)`.
    - `perception_multiplier`: μ = -∂R/∂P, shape `(...)`; +∞ at P = 0.
    """

    correlation: Array
    recon_std: Array
    distortion: Array
    perception: Array
    rate: Array
    distortion_multiplier: Array
    perception_multiplier: Array


def _complementary_correlation(a: Array, omega: Array) -> Array:
    """q = 1 - r, the root of G in (0, 1] (module docstring), by monotone Newton from 0."""

    def newton(_, q):
        g = a * q * (2 - q) * (1 - omega * q) - (1 - q)
        dg = a * ((2 - 2 * q) * (1 - omega * q) - omega * q * (2 - q)) + 1
        return jnp.minimum(q - g / dg, 1.0)

    return jax.lax.fori_loop(0, _NEWTON_STEPS, newton, jnp.zeros_like(a))


def _distortion_perception(a: Array, omega: Array, s: Array) -> tuple[Array, Array, Array]:
    """Per-component q, D_i and P_i at multipliers (a_i = 2λ s_i², ω)."""
    q = _complementary_correlation(a, omega)
    gap = s * omega * q  # s_i - ŝ_i
    # D_i = (s - ŝ)² + 2 s ŝ (1 - r): no cancellation as r → 1.
    return q, gap**2 + 2 * s * (s - gap) * q, gap**2


def _multiplier_for_distortion(D: Array, omega: Array, v: Array) -> Array:
    """λ ≥ 0 that makes Σ D_i = D at this ω; 0 when even λ = 0 (zero rate) meets D."""
    s = jnp.sqrt(v)
    center = jnp.log(v.shape[-1] / (2 * D))

    def total_distortion(log_lam):
        return jnp.sum(_distortion_perception(2 * jnp.exp(log_lam) * v, omega, s)[1])

    def bisect(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        too_much = total_distortion(mid) > D  # D(λ) falls as λ grows
        return jnp.where(too_much, mid, lo), jnp.where(too_much, hi, mid)

    lo, hi = jax.lax.fori_loop(
        0,
        _LOG_LAMBDA_STEPS,
        bisect,
        (center - _LOG_LAMBDA_MARGIN, center + _LOG_LAMBDA_MARGIN),
    )
    zero_rate = D >= jnp.sum(v * (1 + (1 - omega) ** 2))  # λ → 0: r → 0, ŝ → (1 - ω) s
    return jnp.where(zero_rate, 0.0, jnp.exp((lo + hi) / 2))


def _solve(D: Array, P: Array, v: Array) -> tuple[Array, ...]:
    """Rate and allocation for scalar D, P and one variance vector `v` of shape (n,).

    Solved on D·c², P·c², v·c², an exact power-of-two rescaling (`power_of_two_scale` of the
    largest variance) that changes no rate and keeps D_i ~ s_i²·q_i and (s_i ω q_i)² in the
    float range at any scale; the stds, budgets and multipliers are scaled back.
    """
    c = power_of_two_scale(jnp.max(v))
    R, r, s_hat, D_i, P_i, rate_i, lam, mu, omega = _solve_normalized(
        D * c * c, P * c * c, v * c * c
    )
    return R, r, s_hat / c, D_i / c / c, P_i / c / c, rate_i, lam * c * c, mu * c * c, omega


def _solve_normalized(D: Array, P: Array, v: Array) -> tuple[Array, ...]:
    """`_solve` on variances of order 1."""
    s = jnp.sqrt(v)
    D_safe = jnp.where(D > 0, D, 1.0)  # D = 0 is answered separately below

    def perception_at(omega):
        lam = _multiplier_for_distortion(D_safe, omega, v)
        return jnp.sum(_distortion_perception(2 * lam * v, omega, s)[2])

    def bisect(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        feasible = perception_at(mid) <= P  # P(ω) grows with ω
        return jnp.where(feasible, mid, lo), jnp.where(feasible, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _OMEGA_STEPS, bisect, (jnp.zeros_like(D), jnp.ones_like(D)))
    # Keep the exact end points: ω = 1 when P does not bind, ω = 0 at P = 0.
    omega = jnp.where(hi == 1, hi, lo)
    lam = _multiplier_for_distortion(D_safe, omega, v)
    q, D_i, P_i = _distortion_perception(2 * lam * v, omega, s)
    q = jnp.where(D > 0, q, 0.0)
    D_i, P_i = jnp.where(D > 0, D_i, 0.0), jnp.where(D > 0, P_i, 0.0)
    lam = jnp.where(D > 0, lam, jnp.inf)
    # 1 - r² = q(2 - q) keeps its precision as q → 0 (high rate); as q → 1 it rounds to ~1 and
    # its logarithm to an absolute ~eps, all of a rate of ~r²/2, so there the rate is taken
    # from r = 1 - q (exact for q ≥ ½), which q resolves as finely as the inputs allow.
    r = 1 - q
    rate_i = jnp.where(q > 0.5, -0.5 * jnp.log1p(-(r**2)), -0.5 * jnp.log(q * (2 - q)))
    mu = jnp.where(D > 0, lam * (1 - omega) / omega, jnp.inf)  # λ = ∞ at D = 0
    return jnp.sum(rate_i), 1 - q, s - s * omega * q, D_i, P_i, rate_i, lam, mu, omega


def _unknown_tangent(dD: Array, dP: Array, dv: Array) -> Array:
    """NaN, linear in every input's tangent (so reverse mode carries it too): the derivative
    of what the root finding solves is not that of its fixed-count iterations."""
    return jnp.nan * (dD + dP + jnp.sum(dv))


@jax.custom_jvp
def _solved(D: Array, P: Array, v: Array) -> tuple[Array, ...]:
    return _solve(D, P, v)


@_solved.defjvp
def _solved_jvp(primals, tangents):
    out = _solved(*primals)
    unknown = _unknown_tangent(*tangents)
    return out, tuple(unknown * jnp.ones_like(o) for o in out)


@jax.custom_jvp
def _rate_and_allocation(D: Array, P: Array, v: Array) -> tuple[Array, ...]:
    return _solve(D, P, v)


@_rate_and_allocation.defjvp
def _rate_and_allocation_jvp(primals, tangents):
    """Envelope theorem: dR = -λ dD - μ dP + Σ_i ∂L/∂(s_i²) d(s_i²) at the optimum. The
    multipliers come from `_solved`, so that a second derivative (of λ, μ) is NaN, not the
    iterations' derivative."""
    out = _solved(*primals)
    dD, dP, dv = tangents
    _, r, s_hat, *_, lam, mu, _ = out
    s = jnp.sqrt(primals[2])
    # ∂L/∂(s_i²) = [λ (2 s_i - 2 r_i ŝ_i) + 2μ (s_i - ŝ_i)] / (2 s_i), with μ(1 - ŝ/s) finite
    # even where μ = ∞ (then ŝ = s).
    realism_term = jnp.where(s_hat < s, mu * (1 - s_hat / s), 0.0)
    # At D = 0 the rate is +∞ whatever the variances: no slope in them (and λ = ∞ times
    # 1 - r ŝ/s = 0 would be NaN).
    dR_dv = jnp.where(primals[0] > 0, lam * (1 - r * s_hat / s) + realism_term, 0.0)
    # The multipliers are +∞ at D = 0 or P = 0. Tangents must stay linear (a zero tangent must
    # give zero, never ∞·0 = NaN), so the infinite slope is reported as the largest float.
    big = jnp.finfo(lam.dtype).max
    dR = -jnp.minimum(lam, big) * dD - jnp.minimum(mu, big) * dP + jnp.sum(dR_dv * dv)
    # The allocation is not differentiated: NaN tangents, where zeros would be a silent wrong
    # derivative.
    unknown = _unknown_tangent(dD, dP, dv)
    return out, (dR, *(unknown * jnp.ones_like(o) for o in out[1:]))


# One compiled solve per shape and dtype: called eagerly, the nested fori_loops would otherwise
# be traced and compiled afresh on every call.
_solve_broadcast = jax.jit(
    jnp.vectorize(_rate_and_allocation, signature="(),(),(n)->(),(n),(n),(n),(n),(n),(),(),()")
)


def checked_budgets(
    D: ArrayLike, P: ArrayLike, variances: ArrayLike, where: str
) -> tuple[Array, ...]:
    """`rdp_w2_vector`'s arguments as float arrays, a scalar variance as one component;
    `ValueError` naming the argument (under jit, at run time) as `rdp_w2_vector` documents."""
    D, P, variances = as_float(D, P, variances)
    D = check_nonnegative(D, "D", where)
    P = check_nonnegative(P, "P", where)
    variances = check_components(variances, where)
    check_broadcast(
        where,
        ("`D`", D.shape),
        ("`P`", P.shape),
        ("`variances` (but its last axis)", variances.shape[:-1]),
    )
    return D, P, variances


def rdp_w2_vector(
    D: ArrayLike, P: ArrayLike, variances: ArrayLike, *, return_allocation: bool = False
) -> Float[Array, "..."] | tuple[Float[Array, "..."], VectorRDPAllocation]:
    """R(D, P) of a Gaussian with independent components, total MSE and total W2² budgets.

    Solves the KKT system of maths §5 (module docstring) by nested one-dimensional root
    finding with fixed iteration counts: jit-, vmap- and grad-compatible. Gradients come from the
    envelope theorem (dR/dD = -λ, dR/dP = -μ), not from differentiating the iterations; second
    derivatives, which would need dλ and dμ, are NaN.

    **Arguments:**

    - `D`: total MSE budget, shape `(...)`, ≥ 0.
    - `P`: total W2² budget, shape `(...)`, ≥ 0 (+∞ gives `rate_distortion`).
    - `variances`: s_i², shape `(..., n)`; a scalar is one component.
    - `return_allocation`: also return the per-component `VectorRDPAllocation`. It is not
      differentiated: its derivatives are NaN, not a silent 0.

    **Returns:** R(D, P) in nats, shape `(...)`; with `return_allocation`, `(R, allocation)`.

    **Raises:** `ValueError` naming `D`, `P` or `variances` for negative or NaN budgets or
    non-positive variances; under `jit`, the same message at run time.
    """
    D, P, variances = checked_budgets(D, P, variances, "rdp_w2_vector")
    R, r, s_hat, D_i, P_i, R_i, lam, mu, _ = _solve_broadcast(D, P, variances)
    if not return_allocation:
        return R
    return R, VectorRDPAllocation(r, s_hat, D_i, P_i, R_i, lam, mu)
