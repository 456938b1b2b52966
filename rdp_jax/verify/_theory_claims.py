"""The theory's own cross-checks: closed forms against brute force and against each other."""

import jax.numpy as jnp
import numpy as np

import theory
from rdp_jax.verify._reference import (
    dp_linear_bruteforce,
    perception_kl,
    perception_w2,
    rdp_bruteforce,
)
from rdp_jax.verify._registry import Measurement, claim

# SLSQP (ftol 1e-15) stops with a KKT residual that leaves up to ~1e-8 nats in R on these grids
# (the largest seen is 6e-9, at P = 0 where √P has a kink); the closed forms are exact to ~1e-15.
_OPTIMISER_TOL = 1e-7
# Exact identities evaluated in float64 through a handful of logs and square roots.
_ROUNDOFF_TOL = 1e-12

_SCALAR_GRID = [
    (D, P, var)
    for var in (0.3, 4.0)
    for D in (0.1, 0.5, 0.9, 1.5)
    for P in (0.0, 0.01, 0.05, 0.3, np.inf)
]
_VECTORS = [
    np.array(v)
    for v in ([4.0, 1.0, 0.25, 0.04], [2.0, 0.5], [1.0, 1.0, 0.1], [9.0, 3.0, 1.0, 0.3, 0.1])
]


def _worst(errors: list[float], points: list) -> tuple[float, str]:
    i = int(np.argmax(errors))
    return float(errors[i]), f"{len(points)} points, worst at {points[i]}"


def _scalar_against_bruteforce(closed_form, slack) -> Measurement:
    errors, points = [], []
    for D, P, var in _SCALAR_GRID:
        D_abs = D * var
        s = np.sqrt(np.array([var]))
        brute = rdp_bruteforce(D_abs, s**2, slack(P, s), starts=4, seed=0)
        errors.append(abs(float(closed_form(D_abs, P, var)) - brute))
        points.append((D_abs, P, var))
    worst, where = _worst(errors, points)
    return Measurement(worst, 0.0, _OPTIMISER_TOL, detail=f"max |closed - brute|; {where}")


@claim(
    "rdp_w2 = brute force",
    "Zhang et al. 2021, Gaussian RDP closed form (maths §3)",
    group="theory",
    evidence="brute force",
)
def _rdp_w2_bruteforce() -> Measurement:
    return _scalar_against_bruteforce(theory.rdp_w2, perception_w2)


def _rdp_kl_bruteforce(direction: str):
    def measure() -> Measurement:
        return _scalar_against_bruteforce(
            lambda D, P, v: theory.rdp_kl(D, P, v, direction),
            lambda P, s: perception_kl(P, s, direction),
        )

    return measure


for _direction in ("forward", "reverse"):
    claim(
        f"rdp_kl {_direction} = brute force",
        "Serra et al. 2024, Gaussian RDP with KL (maths §4)",
        group="theory",
        evidence="brute force",
    )(_rdp_kl_bruteforce(_direction))


@claim(
    "rdp_w2_vector (KKT) = multi-start optimiser",
    "Qian et al. 2025, vector Gaussian RDP, KKT solution (maths §5)",
    group="theory",
    evidence="brute force",
)
def _vector_kkt_bruteforce() -> Measurement:
    errors, points = [], []
    for v in _VECTORS:
        total = float(v.sum())
        for D in (0.1 * total, 0.3 * total):
            for P in (0.0, 0.02 * total, 0.1 * total, np.inf):
                kkt = float(theory.rdp_w2_vector(D, P, v))
                brute = rdp_bruteforce(D, v, perception_w2(P, np.sqrt(v)), starts=4, seed=1)
                errors.append(abs(kkt - brute))
                points.append((len(v), round(D, 4), P))
    worst, where = _worst(errors, points)
    return Measurement(worst, 0.0, _OPTIMISER_TOL, detail=f"max |KKT - best of 4 starts|; {where}")


@claim(
    "R(D(R,P),P) = R",
    "Zhang et al. 2021, distortion-rate-perception inverse (maths §3)",
    group="theory",
    evidence="consistency",
)
def _inverse_round_trip() -> Measurement:
    R = jnp.linspace(0.05, 4.0, 40)[:, None, None]
    P = jnp.array([0.0, 0.01, 0.1, 0.5, jnp.inf])[None, :, None]
    var = jnp.array([0.3, 1.0, 5.0])[None, None, :]
    error = jnp.abs(theory.rdp_w2(theory.distortion_rate_perception(R, P, var), P, var) - R)
    return Measurement(
        float(error.max()), 0.0, _ROUNDOFF_TOL, detail=f"max |error| over {error.size} (R, P, var)"
    )


@claim(
    "dp_awgn = optimised linear estimators",
    "Freirich et al. 2021, DP tradeoff under AWGN (maths §6)",
    group="theory",
    evidence="brute force",
)
def _dp_awgn_bruteforce() -> Measurement:
    errors, points = [], []
    for v in ([1.0], [4.0, 1.0, 0.05], [2.0, 0.3]):
        v = np.array(v)
        for noise_var in (0.1, 0.5, 2.0):
            w2sq = float(theory.mmse_perception_awgn(v, noise_var))
            for P in (0.0, 0.25 * w2sq, 0.7 * w2sq, 2 * w2sq):
                brute = dp_linear_bruteforce(P, v, noise_var, starts=4, seed=2)
                errors.append(abs(float(theory.dp_awgn(P, v, noise_var)) - brute))
                points.append((len(v), noise_var, round(P, 5)))
    worst, where = _worst(errors, points)
    return Measurement(worst, 0.0, _OPTIMISER_TOL, detail=f"max |closed - brute| MSE; {where}")


@claim(
    "score-scaled endpoints on the DP curve",
    "theory.score_scaled_dp at ρ ∈ {0, 1} against theory.dp_awgn (maths §6-§7)",
    group="theory",
    evidence="consistency",
)
def _score_scaled_endpoints() -> Measurement:
    v = jnp.array([4.0, 1.0, 0.05])
    noise = jnp.array([0.05, 0.5, 5.0])[:, None]
    errors = []
    for rho in (0.0, 1.0):
        D, P = theory.score_scaled_dp(rho, v, noise)
        errors.append(jnp.max(jnp.abs(D - theory.dp_awgn(P, v, noise))))
    return Measurement(
        float(max(errors)),
        0.0,
        _ROUNDOFF_TOL,
        detail="max |D - D(P)| at ρ ∈ {0, 1}, anisotropic source, 3 noise levels",
    )


@claim(
    "constant ρ misses the anisotropic DP curve",
    "maths §7 (s² = (4, 1, 0.05), σ² = 0.5: gap ≈ 5e-4 at ρ = 0.2-0.4)",
    group="theory",
    evidence="consistency",
)
def _constant_rho_gap() -> Measurement:
    v, noise = jnp.array([4.0, 1.0, 0.05]), 0.5
    rho = jnp.linspace(0.2, 0.4, 21)
    D, P = theory.score_scaled_dp(rho[:, None] * jnp.ones(3), v, noise)
    gap = D - theory.dp_awgn(P, v, noise)
    return Measurement(
        float(gap.min()),
        5e-4,
        0.0,
        "at_least",
        detail=f"min D - D(P) over ρ ∈ [0.2, 0.4]; max {float(gap.max()):.3e}",
    )


@claim(
    "geodesic ρ_i reaches the DP curve",
    "theory.geodesic_rho through theory.score_scaled_dp against theory.dp_awgn (maths §7)",
    group="theory",
    evidence="consistency",
)
def _geodesic_rho_on_curve() -> Measurement:
    v, noise = jnp.array([4.0, 1.0, 0.05]), 0.5
    P = jnp.linspace(0.0, 1.0, 41) * theory.mmse_perception_awgn(v, noise)
    D, P_reached = theory.score_scaled_dp(theory.geodesic_rho(P, v, noise), v, noise)
    error = jnp.maximum(jnp.abs(D - theory.dp_awgn(P, v, noise)), jnp.abs(P_reached - P))
    return Measurement(
        float(error.max()),
        0.0,
        _ROUNDOFF_TOL,
        detail="max error in (D, P) over 41 budgets in [0, W2²]",
    )


@claim(
    "scalar framework attains R(D,P)",
    "theory.framework_gap of a scalar source (maths §8)",
    group="theory",
    evidence="consistency",
)
def _scalar_framework_tight() -> Measurement:
    rho = jnp.linspace(0.0, 1.0, 11)[:, None, None]
    noise = jnp.array([0.1, 1.0, 10.0])[None, :, None]
    gap = theory.framework_gap(rho, jnp.ones((1, 1, 1)) * 2.0, noise).gap
    return Measurement(
        float(jnp.max(jnp.abs(gap))), 0.0, 1e-10, detail="max |I(X;Y) - R(D,P)| over 11 ρ × 3 σ²"
    )


@claim(
    "isotropic framework gap (s² = (4, 0.25), σ² = 1, ρ = 1)",
    "maths §8: 0.916 nats where R(D,P) = 0.854",
    group="theory",
    evidence="consistency",
)
def _isotropic_gap() -> Measurement:
    gap = theory.framework_gap(1.0, jnp.array([4.0, 0.25]), 1.0)
    return Measurement(
        float(gap.gap),
        0.916 - 0.854,
        1e-3,
        detail=f"rate {float(gap.rate):.6f}, R(D,P) {float(gap.optimal_rate):.6f}",
    )
