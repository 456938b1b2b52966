"""Diagonal Gaussian vector R(D, P) with total MSE and W2² budgets: the KKT solver (maths §5)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exact import (
    UNIT_ROUNDOFF,
    central_differences,
    mp_rate_distortion,
    mp_rdp_perfect_realism,
    mp_rdp_scalar,
    stable_error_bound,
)
from helpers import matches_digits, rdp_vector_brute, rdp_vector_perfect_realism
from hypothesis import assume, given, settings, strategies as st
from strategies import (
    closed_form,
    unit,
    variance,
    variance_vector,
    w2_ratio,
    wide_distortion_ratio,
    wide_variance,
    wide_variance_vector,
    wide_w2_ratio,
)

import theory

# Called eagerly: theory jit-compiles the solver once per shape and dtype, shared by every test
# in the process. The tests keep n = N and few batch shapes so that they share compilations.
vec = theory.rdp_w2_vector
N = 3  # components in the property tests

# The solver bisects to round-off; rates of order 1-10 nats agree with closed forms and with each
# other to a few hundred ulps (measured ≤ 2e-14 absolute).
SOLVER_TOL = 1e-12

THEORY_VARIANCES = np.array([4.0, 1.0, 0.25, 0.04])


@pytest.mark.parametrize(
    ("P", "reference"), [(math.inf, "1.728785"), (0.05, "1.812024"), (0.0, "1.977928")]
)
def test_reference_values(P, reference):
    R = float(vec(1.0, P, THEORY_VARIANCES))
    assert matches_digits(R, reference)  # maths §9 to its 6 decimals (1e-6)


def test_reference_values_match_brute_force():
    for P in (0.05, 0.0):
        brute = rdp_vector_brute(1.0, P, THEORY_VARIANCES)
        assert float(vec(1.0, P, THEORY_VARIANCES)) == pytest.approx(brute, abs=1e-9)


@settings(max_examples=10)  # each brute force is 8 SLSQP runs (~0.1 s)
@given(v=variance_vector(N), d=st.floats(0.03, 1.5), p=w2_ratio)
def test_kkt_solution_is_optimal_against_multistart_slsqp(v, d, p):
    v = np.array(v)
    D, P = d * v.sum(), p * v.sum()
    kkt = float(vec(D, P, v))
    brute = rdp_vector_brute(D, P, v)  # feasible end points only: a true upper bound
    # Never beaten: the brute force is exactly feasible, so it can only undercut a wrong KKT
    # solution, up to round-off (1e-9 is far above the measured ~1e-14).
    assert brute >= kkt - 1e-9
    # ... and the optimiser reaches it: SLSQP (ftol 1e-15) measured ≤ 3e-14 from the KKT value.
    assert brute == pytest.approx(kkt, abs=1e-9)


@given(v=variance_vector(N), d=st.floats(0.02, 1.99))
def test_zero_budget_matches_perfect_realism_formula(v, d):
    v = np.array(v)
    D = d * v.sum()  # below 2Σs²: positive rate
    expected = rdp_vector_perfect_realism(D, v)  # maths §5, P = 0, λ bisected in numpy
    assert float(vec(D, 0.0, v)) == pytest.approx(expected, rel=SOLVER_TOL, abs=SOLVER_TOL)


@given(v=variance_vector(N), d=st.floats(0.02, 1.5))
def test_infinite_budget_is_reverse_water_filling(v, d):
    v = np.array(v)
    D = d * v.sum()
    expected = float(theory.rate_distortion(D, v))
    assert float(vec(D, math.inf, v)) == pytest.approx(expected, rel=SOLVER_TOL, abs=SOLVER_TOL)


@given(var=variance, d=st.floats(0.02, 2.5), p=w2_ratio)
def test_one_component_is_the_scalar_rdp(var, d, p):
    D, P = d * var, p * var
    expected = float(theory.rdp_w2(D, P, var))
    assert float(vec(D, P, np.array([var]))) == pytest.approx(
        expected, rel=SOLVER_TOL, abs=SOLVER_TOL
    )


@given(var=variance, d=st.floats(0.02, 2.5), p=w2_ratio)
def test_identical_components_split_the_budgets_evenly(var, d, p):
    D, P = N * d * var, N * p * var
    expected = N * float(theory.rdp_w2(D / N, P / N, var))  # n·R(D/n, P/n)
    assert float(vec(D, P, np.full(N, var))) == pytest.approx(
        expected, rel=SOLVER_TOL, abs=SOLVER_TOL
    )


@closed_form
@given(
    v=wide_variance_vector(N), d=wide_distortion_ratio, p=st.one_of(st.just(0.0), st.just(math.inf))
)
def test_extreme_budgets_are_accurate_over_wide_ranges(v, d, p):
    """P = 0 (perfect realism) and P = ∞ (reverse water-filling) against mpmath, at rates up to
    ~30 nats and variances 1e6 apart, within the solver's bound plus the reference's own."""
    v = np.array(v)
    D = d * v.sum()
    reference = mp_rdp_perfect_realism if p == 0 else mp_rate_distortion
    exact, bound = stable_error_bound(lambda D, *v: reference(D, v), (D, *v), budgets=1)
    got, solver = _solver_error(D, p, v)
    assert got == pytest.approx(exact, abs=bound + solver)


@closed_form
@given(var=wide_variance, d=wide_distortion_ratio, p=wide_w2_ratio)
def test_one_and_identical_components_are_the_exact_scalar_rdp(var, d, p):
    """One component is the scalar R(D, P); N identical ones split both budgets evenly, N·R(D/N,
    P/N) (maths §3 in mpmath)."""
    D, P = d * var, p * var
    exact, bound = stable_error_bound(mp_rdp_scalar, (D, P, var), budgets=2)
    got, solver = _solver_error(D, P, np.array([var]))
    assert got == pytest.approx(exact, abs=bound + solver)
    got, solver = _solver_error(N * D, N * P, np.full(N, var))
    assert got == pytest.approx(N * exact, abs=N * bound + solver)


@given(v=variance_vector(N), p=w2_ratio, margin=st.floats(1e-6, 1.0))
def test_zero_rate_region(v, p, margin):
    v = np.array(v)
    P = p * v.sum()
    norm = math.sqrt(v.sum())
    boundary = v.sum() + max(norm - math.sqrt(P), 0.0) ** 2  # Σs² + (‖s‖ - √P)₊²
    R = np.asarray(vec(boundary * np.array([1 + 1e-12, 1 + margin, 1 - margin]), P, v))
    assert R[0] == 0.0  # 1e-12 relative clears the boundary's rounding
    assert R[1] == 0.0
    assert R[2] > 0.0


@given(
    v=variance_vector(N),
    d=st.lists(st.floats(0.02, 2.5), min_size=2, max_size=2),
    p=st.lists(w2_ratio, min_size=2, max_size=2),
)
def test_non_increasing_in_D_and_P(v, d, p):
    v = np.array(v)
    D_lo, D_hi = sorted(x * v.sum() for x in d)
    P_lo, P_hi = sorted(x * v.sum() for x in p)
    R = np.asarray(vec(np.array([D_lo, D_hi, D_lo]), np.array([P_lo, P_lo, P_hi]), v))
    assert R[0] >= R[1] - SOLVER_TOL
    assert R[0] >= R[2] - SOLVER_TOL


@given(v=variance_vector(N), d=st.lists(st.floats(0.02, 2.5), min_size=2, max_size=2), p=w2_ratio)
def test_convex_in_D(v, d, p):
    v = np.array(v)
    D1, D2 = (x * v.sum() for x in d)
    R = np.asarray(vec(np.array([D1, (D1 + D2) / 2, D2]), p * v.sum(), v))
    assert R[1] <= (R[0] + R[2]) / 2 + SOLVER_TOL


@given(v=variance_vector(N), d=st.floats(0.02, 1.5), p=w2_ratio)
def test_allocation_is_consistent(v, d, p):
    v = np.array(v)
    D, P = d * v.sum(), p * v.sum()
    R, alloc = vec(D, P, v, return_allocation=True)
    assume(float(R) > 0)
    s, r, s_hat = np.sqrt(v), np.asarray(alloc.correlation), np.asarray(alloc.recon_std)
    assert float(jnp.sum(alloc.rate)) == pytest.approx(float(R), rel=SOLVER_TOL)
    # ln(q(2 - q)) near q = 1 is good to ~eps absolute, not relative, hence the atol.
    np.testing.assert_allclose(alloc.rate, -0.5 * np.log1p(-(r**2)), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(alloc.distortion, v + s_hat**2 - 2 * r * s * s_hat, atol=1e-12)
    np.testing.assert_allclose(alloc.perception, (s - s_hat) ** 2, atol=1e-12)
    # The distortion budget is always tight at positive rate; perception within its budget.
    assert float(jnp.sum(alloc.distortion)) == pytest.approx(D, rel=1e-12)
    assert float(jnp.sum(alloc.perception)) <= P * (1 + 1e-9) + 1e-15
    assert np.all((r >= 0) & (r < 1)) and np.all((s_hat >= 0) & (s_hat <= s))


def test_zero_budget_allocation_keeps_every_std():
    _, alloc = vec(1.0, 0.0, THEORY_VARIANCES, return_allocation=True)
    np.testing.assert_array_equal(alloc.recon_std, np.sqrt(THEORY_VARIANCES))
    assert float(alloc.perception_multiplier) == math.inf


grad_vec = jax.jit(jax.grad(theory.rdp_w2_vector, argnums=(0, 1, 2)))


@given(v=variance_vector(N), d=st.floats(0.05, 0.9), p=w2_ratio)
def test_gradient_in_D_is_finite_and_negative(v, d, p):
    v = np.array(v)
    dD = float(grad_vec(d * v.sum(), p * v.sum(), v)[0])
    assert math.isfinite(dD)
    assert dD < 0


def _solver_error(D, P, v):
    """A bound on the float64 error of one `rdp_w2_vector` evaluation, with its value.

    16u(|R| + Σ_j |x_j ∂R/∂x_j|) for a backward-stable closed form, plus 2|ln λ|u·|D ∂R/∂D| for
    the bisection, which resolves ln λ to one ulp (so λ, and D(λ) with it, to 2|ln λ|u). R is
    homogeneous of degree 0 in (D, P, s²), so Euler's relation gives Σ_j |x_j ∂R/∂x_j| =
    2(Dλ + Pμ) (every term has one sign: more variance or less budget never lowers the rate).
    """
    R, alloc = vec(D, P, v, return_allocation=True)
    lam, mu = float(alloc.distortion_multiplier), float(alloc.perception_multiplier)
    condition = 2 * (D * lam + (P * mu if 0 < P < math.inf else 0.0))
    bisection = 2 * abs(math.log(lam)) if 0 < lam < math.inf else 0.0
    return float(R), (16 + bisection) * UNIT_ROUNDOFF * (abs(float(R)) + condition)


def _smooth_piece(D, P, v):
    """Which smooth piece of R(D, P) (maths §5) a point is on.

    P binds iff it is below the W2² of the reverse water-filling optimum (D_i = min(θ, s_i²),
    ŝ_i = √(s_i² - D_i)); then every component is sent until the zero-rate boundary
    Σ s² + (‖s‖ - √P)₊² (test_zero_rate_region). Otherwise R is Shannon's, smooth while no
    component sits at the water level θ.
    """
    v = np.sort(v)
    below = np.concatenate([[0.0], np.cumsum(v[:-1])])
    levels = (D - below) / np.arange(len(v), 0, -1)
    theta = levels[np.argmax(levels)] if D < v.sum() else np.inf
    shannon_P = np.sum((np.sqrt(v) - np.sqrt(v - np.minimum(theta, v))) ** 2)
    if P < shannon_P:
        return "P binds", D >= v.sum() + max(math.sqrt(v.sum()) - math.sqrt(P), 0.0) ** 2
    return "Shannon", tuple(v > theta)


@settings(max_examples=60)  # each example solves 31 points (~0.2 s)
@given(v=wide_variance_vector(N), d=wide_distortion_ratio, p=st.floats(-8.0, 0.0))
def test_custom_jvp_matches_central_differences(v, d, p):
    v = np.array(v)
    x = np.array([d * v.sum(), 10.0**p * v.sum(), *v])
    value, fd, truncation, steps, stencil = central_differences(
        lambda pts: np.asarray(vec(pts[:, 0], pts[:, 1], pts[:, 2:])), x
    )
    assume(value > 0)  # in the zero-rate region every slope is 0
    # The stencil (x ± 200h) must lie on one smooth piece: across a seam (P starts to bind, a
    # component reaches the water level) R is only C¹ and a difference errs by O(h).
    pieces = {_smooth_piece(pt[0], pt[1], pt[2:]) for pt in stencil.reshape(-1, len(x))}
    assume(len(pieces) == 1)
    _, evaluation = _solver_error(x[0], x[1], v)
    dD, dP, dv = grad_vec(x[0], x[1], v)
    for g, f, t, h in zip([dD, dP, *dv], fd, truncation, steps, strict=True):
        assert abs(float(g) - f) <= t + evaluation / h + 16 * UNIT_ROUNDOFF * abs(float(g))


@jax.jit
def _jvp(D, P, tD, tP):
    return jax.jvp(lambda D, P: theory.rdp_w2_vector(D, P, THEORY_VARIANCES), (D, P), (tD, tP))[1]


def _forward_tangent(D, P, tangent):
    return float(_jvp(D, P, *tangent))


def test_jvp_at_zero_perception_budget():
    """At P = 0, μ = ∞. The tangents stay linear (a zero tangent gives 0, not ∞·0 = NaN), dR/dD
    is the central difference along D at P = 0, and the slope in P is steeper than any
    difference quotient: R(D, h) falls like R(D, 0) - c√h, the perception floor ŝ ≥ s - √h."""
    assert _forward_tangent(1.0, 0.0, (0.0, 0.0)) == 0.0
    value, fd, truncation, steps, _ = central_differences(
        lambda pts: np.asarray(vec(pts[:, 0], 0.0, THEORY_VARIANCES)), [1.0]
    )
    _, evaluation = _solver_error(1.0, 0.0, THEORY_VARIANCES)
    slope_D = _forward_tangent(1.0, 0.0, (1.0, 0.0))
    assert abs(slope_D - fd[0]) <= truncation[0] + evaluation / steps[0]
    slope_P = _forward_tangent(1.0, 0.0, (0.0, 1.0))
    h = 10.0 ** -np.arange(6, 15, 2)
    quotients = (value - np.asarray(vec(1.0, h, THEORY_VARIANCES))) / h
    assert not math.isnan(slope_P) and np.all(slope_P <= -quotients)
    # Each factor 100 in h multiplies the quotient by 10: the exponent is -1/2, up to the next
    # term of R(D, h) = R(D, 0) - c√h + O(h), a relative O(√h) ≤ 1e-3 here; a finite slope would
    # give 0.
    exponents = np.log10(quotients[1:] / quotients[:-1]) / 2
    np.testing.assert_allclose(exponents, 0.5, atol=0.01)


def test_jvp_at_zero_distortion():
    """At D = 0, R = ∞ and λ = ∞: a zero tangent gives 0, and the slope in D is steeper than at
    any D > 0, where it is -λ = -n/(2D) once D/n is below every variance (each component at
    D/n, Shannon's ½ ln(s²/(D/n)))."""
    assert _forward_tangent(0.0, 0.5, (0.0, 0.0)) == 0.0
    slope = _forward_tangent(0.0, 0.5, (1.0, 0.0))
    assert not math.isnan(slope)
    for D in (1e-100, 1e-200, 1e-300):
        lam = len(THEORY_VARIANCES) / (2 * D)
        # The bisection resolves ln λ (≤ 700) to one ulp: λ to 2|ln λ|u relative.
        assert _forward_tangent(D, 0.5, (1.0, 0.0)) == pytest.approx(
            -lam, rel=2 * math.log(lam) * UNIT_ROUNDOFF + 16 * UNIT_ROUNDOFF
        )
        assert slope <= -lam


@pytest.mark.parametrize(
    ("D", "P", "expected"),
    [
        (0.0, 0.0, math.inf),
        (0.0, 0.5, math.inf),
        (0.0, math.inf, math.inf),
        (5.29, math.inf, 0.0),  # D = Σs²
        (10.58, 0.0, 0.0),  # D = Σs² + ‖s‖²
        (math.inf, 0.0, 0.0),
        (1.0, math.inf, "1.728785"),
        (1.0, 0.0, "1.977928"),
    ],
)
def test_edge_values_are_exact(D, P, expected):
    R = float(vec(D, P, THEORY_VARIANCES))
    assert not math.isnan(R)
    if isinstance(expected, str):
        assert matches_digits(R, expected)
    else:
        assert R == expected


@given(v=variance_vector(N), u=unit)
def test_edge_values_are_exact_for_random_sources(v, u):
    v = np.array(v)
    P = u * v.sum()
    R = np.asarray(vec(np.array([0.0, v.sum() * (2 + 1e-12), math.inf]), P, v))
    assert R.tolist() == [math.inf, 0.0, 0.0]


@pytest.mark.parametrize("D", [1e-12, 1e-10, 1e-6])
def test_high_rate_with_a_loose_budget_is_shannon(D):
    # At D far below every variance the water level is D/n for each component, and a W2² budget
    # of 10 does not bind, so R = Σ ½ ln(v_i n / D) (rates to ~29 nats; 16 roundings of ulp size
    # in each log: 1e-14 relative). The bisection must centre on ln(n / 2D) to get there.
    v = np.array([1.0, 2.0])
    expected = float(np.sum(0.5 * np.log(v * v.size / D)))
    got = float(theory.rdp_w2_vector(D, 10.0, jnp.asarray(v)))
    assert got == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    ("dtype", "exponents"), [(np.float64, (-500, -75, 75, 500)), (np.float32, (-58, -30, 30, 60))]
)
def test_rate_and_allocation_do_not_depend_on_the_scale(dtype, exponents):
    """Scaling D, P and the variances by 4ʲ (exact) leaves the rate and correlations bit for bit
    and scales the stds by 2ʲ, the budgets by 4ʲ: the solve runs on one normalised copy.
    Unscaled, float32 at s² ≈ 1e-35 lost D_i = s²·q_i to underflow (12.0 nats came out 10.4)."""
    v = np.array([4.0, 0.25, 1.0], dtype)
    for D, P in [(0.5, 0.3), (0.01, 0.001), (1e-3, 0.0), (2.0, 0.1)]:
        D, P = dtype(D), dtype(P)
        base, alloc = vec(D, P, v, return_allocation=True)
        for j in exponents:
            c, c_std = dtype(2.0 ** (2 * j)), dtype(2.0**j)
            rate, scaled = vec(D * c, P * c, v * c, return_allocation=True)
            assert rate == base, (j, float(rate), float(base))
            np.testing.assert_array_equal(scaled.correlation, alloc.correlation)
            np.testing.assert_array_equal(scaled.recon_std, alloc.recon_std * c_std)
            np.testing.assert_array_equal(scaled.distortion, alloc.distortion * c)
