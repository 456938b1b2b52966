"""The theory's own cross-checks: closed forms against brute force and against each other."""

import jax
import jax.numpy as jnp
import numpy as np

import theory
from rdp_jax.verify._reference import (
    awgn_rate,
    dp_linear_bruteforce,
    linear_decoder,
    perception_kl,
    perception_w2,
    rdp_bruteforce,
    score_scaled_gain,
)
from rdp_jax.verify._registry import Measurement, claim

# SLSQP (ftol 1e-15) stops with a KKT residual that leaves up to ~1e-8 nats in R on these grids
# (the largest seen is 6e-9, at P = 0 where √P has a kink); the closed forms are exact to ~1e-15.
_OPTIMISER_TOL = 1e-7
# dp_linear_bruteforce minimises a convex quadratic (the MSE in the gains and noise levels) by
# SLSQP, which stops once it moves by < ftol = 1e-15, and repairs its end point to exact
# feasibility: within a few ftol of D(P) (measured ≤ 1.1e-15 on these grids).
_DP_OPTIMISER_TOL = 1e-12
# R(D(R, P), P) - R in float64: rdp_w2 errs by ≤ 16u(|R| + Σ|x ∂R/∂x|), plus |∂R/∂D| times the
# like bound on D(R, P) (u = 2⁻⁵³; tests/test_scalar.py holds both to these bounds against
# mpmath). On this grid (R ≤ 4 nats, condition sums ≤ 1) that is at most 1.8e-14.
_ROUNDOFF_TOL = 2e-14

# Each brute-force claim runs on a quick grid by default and on the whole grid under --full. The
# quick grid keeps every branch of the closed form: P = 0 (the kink of √P), a binding P, P = ∞
# (Shannon), and D below and above the zero-rate boundary.
_SCALAR_GRID = [
    (D, P, var)
    for var in (0.3, 4.0)
    for D in (0.1, 0.5, 0.9, 1.5)
    for P in (0.0, 0.01, 0.05, 0.3, np.inf)
]
_SCALAR_QUICK = [(D, P, var) for var in (0.3, 4.0) for D in (0.1, 1.5) for P in (0.0, 0.05, np.inf)]
_VECTORS = [
    np.array(v)
    for v in ([4.0, 1.0, 0.25, 0.04], [2.0, 0.5], [1.0, 1.0, 0.1], [9.0, 3.0, 1.0, 0.3, 0.1])
]
_VECTOR_GRID = [
    (v, D, P)
    for v in _VECTORS
    for D in (0.1 * v.sum(), 0.3 * v.sum())
    for P in (0.0, 0.02 * v.sum(), 0.1 * v.sum(), np.inf)
]
# One dimension only: each new n compiles the KKT solve again.
_VECTOR_QUICK = [
    (_VECTORS[0], D * _VECTORS[0].sum(), P * _VECTORS[0].sum())
    for D, P in ((0.1, 0.0), (0.1, 0.02), (0.3, 0.1))
]


def _tiered(name: str, source: str, measure, quick: list, whole: list) -> None:
    """Registers `measure(quick)` in the default run and `measure(whole)` under --full."""
    claim(name, source, group="theory", evidence="brute force")(lambda: measure(quick))
    claim(f"{name}, whole grid", source, group="theory", evidence="brute force", full=True)(
        lambda: measure(whole)
    )


def _worst(errors: list[float], points: list) -> tuple[float, str]:
    i = int(np.argmax(errors))
    return float(errors[i]), f"{len(points)} points, worst at {points[i]}"


def _scalar_against_bruteforce(closed_form, slack, grid) -> Measurement:
    errors, points = [], []
    for D, P, var in grid:
        D_abs = D * var
        s = np.sqrt(np.array([var]))
        brute = rdp_bruteforce(D_abs, s**2, slack(P, s), starts=4, seed=0)
        errors.append(abs(float(closed_form(D_abs, P, var)) - brute))
        points.append((D_abs, P, var))
    worst, where = _worst(errors, points)
    return Measurement(worst, 0.0, _OPTIMISER_TOL, detail=f"max |closed - brute|; {where}")


_tiered(
    "rdp_w2 = brute force",
    "Zhang et al. 2021, Gaussian RDP closed form (maths §3)",
    lambda grid: _scalar_against_bruteforce(theory.rdp_w2, perception_w2, grid),
    _SCALAR_QUICK,
    _SCALAR_GRID,
)


def _rdp_kl_bruteforce(direction: str):
    def measure(grid) -> Measurement:
        return _scalar_against_bruteforce(
            lambda D, P, v: theory.rdp_kl(D, P, v, direction),
            lambda P, s: perception_kl(P, s, direction),
            grid,
        )

    return measure


for _direction in ("forward", "reverse"):
    _tiered(
        f"rdp_kl {_direction} = brute force",
        "Serra et al. 2024, Gaussian RDP with KL (maths §4)",
        _rdp_kl_bruteforce(_direction),
        _SCALAR_QUICK,
        _SCALAR_GRID,
    )


def _vector_kkt_bruteforce(grid) -> Measurement:
    errors, points = [], []
    for v, D, P in grid:
        kkt = float(theory.rdp_w2_vector(D, P, v))
        brute = rdp_bruteforce(D, v, perception_w2(P, np.sqrt(v)), starts=4, seed=1)
        errors.append(abs(kkt - brute))
        points.append((len(v), round(float(D), 4), P))
    worst, where = _worst(errors, points)
    return Measurement(worst, 0.0, _OPTIMISER_TOL, detail=f"max |KKT - best of 4 starts|; {where}")


_tiered(
    "rdp_w2_vector (KKT) = multi-start optimiser",
    "Qian et al. 2025, vector Gaussian RDP, KKT solution (maths §5)",
    _vector_kkt_bruteforce,
    _VECTOR_QUICK,
    _VECTOR_GRID,
)


@claim(
    "R(D(R,P),P) = R",
    "theory.rdp_w2 of theory.distortion_rate_perception, a round trip (maths §3)",
    group="theory",
    evidence="consistency",
)
def _inverse_round_trip() -> Measurement:
    R = jnp.linspace(0.05, 4.0, 40)[:, None, None]
    P = jnp.array([0.0, 0.01, 0.1, 0.5, jnp.inf])[None, :, None]
    var = jnp.array([0.3, 1.0, 5.0])[None, None, :]
    # One compiled program rather than some sixty eager ops, each compiled on first use.
    error = jax.jit(
        lambda R, P, var: jnp.abs(
            theory.rdp_w2(theory.distortion_rate_perception(R, P, var), P, var) - R
        )
    )(R, P, var)
    return Measurement(
        float(error.max()), 0.0, _ROUNDOFF_TOL, detail=f"max |error| over {error.size} (R, P, var)"
    )


def _dp_awgn_bruteforce(grid) -> Measurement:
    """`grid`: (variances, noise_var, P as a fraction of W2²(p_X, p_X*)) triples."""
    errors, points = [], []
    for v, noise_var, fraction in grid:
        v = np.array(v)
        P = fraction * float(theory.mmse_perception_awgn(v, noise_var))
        brute = dp_linear_bruteforce(P, v, noise_var, starts=4, seed=2)
        errors.append(abs(float(theory.dp_awgn(P, v, noise_var)) - brute))
        points.append((len(v), noise_var, round(P, 5)))
    worst, where = _worst(errors, points)
    return Measurement(worst, 0.0, _DP_OPTIMISER_TOL, detail=f"max |closed - brute| MSE; {where}")


_tiered(
    "dp_awgn = optimised linear estimators",
    "Freirich et al. 2021, DP tradeoff under AWGN (maths §6)",
    _dp_awgn_bruteforce,
    [([4.0, 1.0, 0.05], 0.5, fraction) for fraction in (0.0, 0.25, 2.0)],
    [
        (v, noise_var, fraction)
        for v in ([1.0], [4.0, 1.0, 0.05], [2.0, 0.3])
        for noise_var in (0.1, 0.5, 2.0)
        for fraction in (0.0, 0.25, 0.7, 2.0)
    ],
)


def _decoder_against_dp_bruteforce(cases) -> tuple[float, float, str]:
    """max |D - brute-force D(P)| and max |theory's (D, P) - written out| over (ρ, s², σ²)."""
    curve_errors, code_errors, points = [], [], []
    for rho, v, noise in cases:
        D, P = linear_decoder(score_scaled_gain(rho, v, noise), v, noise)
        brute = dp_linear_bruteforce(P, v, noise, starts=4, seed=3)
        curve_errors.append(abs(D - brute))
        D_code, P_code = theory.score_scaled_dp(jnp.asarray(rho), jnp.asarray(v), noise)
        code_errors.append(max(abs(float(D_code) - D), abs(float(P_code) - P)))
        points.append((len(v), noise, np.round(rho, 3).tolist()))
    worst, where = _worst(curve_errors, points)
    return worst, max(code_errors), where


def _score_scaled_endpoints(cases) -> Measurement:
    worst, code, where = _decoder_against_dp_bruteforce(cases)
    return Measurement(
        max(worst, code),
        0.0,
        _DP_OPTIMISER_TOL,
        detail=f"max |D - brute-force D(P)| at the gain's (D, P); {where}; "
        f"theory.score_scaled_dp within {code:.1e} of the gain written out",
    )


_ANISOTROPIC = np.array([4.0, 1.0, 0.05])
_tiered(
    "score-scaled endpoints on the DP curve",
    "Wang, Bi & Zhang 2026, Lemma 1 and Prop. 2: gain a^{(1+ρ)/2} at ρ ∈ {0, 1}, and every "
    "ρ ∈ [0, 1] for a scalar source (maths §6-§7)",
    _score_scaled_endpoints,
    [(np.full(3, rho), _ANISOTROPIC, 0.5) for rho in (0.0, 1.0)]
    + [(np.array([0.5]), np.array([2.0]), 1.0)],
    [(np.full(3, rho), _ANISOTROPIC, noise) for rho in (0.0, 1.0) for noise in (0.05, 0.5, 5.0)]
    + [
        (np.array([rho]), np.array([2.0]), noise)
        for rho in (0.0, 0.25, 0.5, 0.75, 1.0)
        for noise in (0.1, 1.0, 10.0)
    ],
)


@claim(
    "constant ρ misses the anisotropic DP curve",
    "maths §7 (s² = (4, 1, 0.05), σ² = 0.5: gap ≈ 5e-4 at ρ = 0.2-0.4)",
    group="theory",
    evidence="brute force",
)
def _constant_rho_gap() -> Measurement:
    # The brute force is an exactly feasible estimator, so D(P) ≤ brute and D - brute is a lower
    # bound on the gap D - D(P): the curve is missed by at least the minimum measured.
    v, noise = np.array([4.0, 1.0, 0.05]), 0.5
    gaps = []
    for rho in np.linspace(0.2, 0.4, 5):
        D, P = linear_decoder(score_scaled_gain(np.full(3, rho), v, noise), v, noise)
        gaps.append(D - dp_linear_bruteforce(P, v, noise, starts=4, seed=4))
    return Measurement(
        float(min(gaps)),
        5e-4,
        0.0,
        "at_least",
        detail=f"min D - brute-force D(P) over ρ ∈ [0.2, 0.4]; max {float(max(gaps)):.3e}",
    )


@claim(
    "geodesic ρ_i reaches the DP curve",
    "Wang, Bi & Zhang 2026, Thm. 3, with theory.geodesic_rho's per-direction ρ_i (maths §7)",
    group="theory",
    evidence="brute force",
)
def _geodesic_rho_on_curve() -> Measurement:
    v, noise = np.array([4.0, 1.0, 0.05]), 0.5
    w2sq = float(theory.mmse_perception_awgn(v, noise))
    errors, points = [], []
    for P in np.linspace(0.0, 1.0, 9) * w2sq:
        rho = np.asarray(theory.geodesic_rho(P, v, noise))
        D_reached, P_reached = linear_decoder(score_scaled_gain(rho, v, noise), v, noise)
        brute = dp_linear_bruteforce(P, v, noise, starts=4, seed=5)
        errors.append(max(abs(D_reached - brute), abs(P_reached - P)))
        points.append(round(P, 5))
    worst, where = _worst(errors, points)
    return Measurement(
        worst,
        0.0,
        _DP_OPTIMISER_TOL,
        detail=f"max of |D - brute-force D(P)| and |P reached - P|, gains written out; {where}",
    )


def _rdp_brute(D: float, P: float, v: np.ndarray, starts: int) -> float:
    return rdp_bruteforce(D, v, perception_w2(P, np.sqrt(v)), starts=starts, seed=6)


def _scalar_framework_tight(grid) -> Measurement:
    v = np.array([2.0])
    theorem, code, points = [], [], []
    for noise, rho in grid:
        D, P = linear_decoder(score_scaled_gain(rho, v, noise), v, noise)
        rate, brute = awgn_rate(v, noise), _rdp_brute(D, P, v, starts=4)
        theorem.append(abs(rate - brute))
        out = theory.framework_gap(rho, jnp.asarray(v), noise)
        code.append(max(abs(float(out.rate) - rate), abs(float(out.optimal_rate) - brute)))
        points.append((noise, round(float(rho), 2)))
    worst, where = _worst(theorem, points)
    return Measurement(
        max(worst, max(code)),
        0.0,
        _OPTIMISER_TOL,
        detail=f"max |I(X;Y) - brute-force R(D,P)|, gains written out; {where}; "
        f"theory.framework_gap within {max(code):.1e} of both",
    )


_tiered(
    "scalar framework attains R(D,P)",
    "Wang, Bi & Zhang 2026, Thm. 4: I(X;Y) = R(D, P) at the decoder's (D, P) (maths §8)",
    _scalar_framework_tight,
    [(noise, rho) for noise in (0.1, 10.0) for rho in (0.0, 0.6, 1.0)],
    [(noise, rho) for noise in (0.1, 1.0, 10.0) for rho in np.linspace(0.0, 1.0, 6)],
)


@claim(
    "isotropic framework gap (s² = (4, 0.25), σ² = 1, ρ = 1)",
    "maths §8: 0.916 nats where R(D,P) = 0.854",
    group="theory",
    evidence="brute force",
)
def _isotropic_gap() -> Measurement:
    v, noise = np.array([4.0, 0.25]), 1.0
    D, P = linear_decoder(score_scaled_gain(np.ones(2), v, noise), v, noise)
    rate, brute = awgn_rate(v, noise), _rdp_brute(D, P, v, starts=8)
    gap = theory.framework_gap(1.0, jnp.asarray(v), noise)
    return Measurement(
        float(gap.gap),
        rate - brute,
        _OPTIMISER_TOL,
        detail=f"theory.framework_gap against I(X;Y) {rate:.6f} - brute-force R(D,P) "
        f"{brute:.6f} at the MMSE gain's (D, P) = ({D:.6f}, {P:.6f})",
    )
