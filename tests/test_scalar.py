"""Scalar Gaussian R(D), R(D, P) with W2² and D(R, P) (maths §2-§3)."""

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from exact import (
    UNIT_ROUNDOFF,
    central_differences,
    mp_distortion_rate_perception,
    mp_rate_distortion,
    mp_rdp_scalar,
    stable_error_bound,
)
from helpers import (
    matches_digits,
    rate_distortion_brute,
    rdp_scalar_brute,
    rdp_scalar_perfect_realism,
)
from hypothesis import assume, given, strategies as st
from strategies import (
    closed_form,
    distortion_ratio,
    variance,
    variance_vector,
    w2_ratio,
    wide_distortion_ratio,
    wide_variance,
    wide_variance_vector,
    wide_w2_ratio,
)

import theory

# maths §9, s = 1, D = 0.5. The last budget is (1 - √0.5)² ≈ 0.0858, where P stops binding.
W2_REFERENCES = [
    (0.0, "0.413339"),
    (0.01, "0.377150"),
    (0.05, "0.350975"),
    ((1 - math.sqrt(0.5)) ** 2, "0.346574"),
    (0.0858, "0.346574"),
    (1.0, "0.346574"),
    (math.inf, "0.346574"),
]

# Jitted once: eager grad re-traces the whole formula on every call.
grad_w2 = jax.jit(jax.grad(theory.rdp_w2, argnums=(0, 1, 2)))
grad_rd = jax.jit(jax.grad(theory.rate_distortion))

# Round-off allowance for exact identities between two closed forms (a few float64 ulps).
ULPS = 1e-13


@pytest.mark.parametrize(("P", "reference"), W2_REFERENCES)
def test_rdp_w2_reference_values(P, reference):
    R = float(theory.rdp_w2(0.5, P, 1.0))
    assert matches_digits(R, reference)  # the digits maths §9 gives (1e-6)
    assert R == pytest.approx(float(reference), abs=1e-6)


def test_rdp_w2_unconstrained_reference_is_half_ln_2():
    assert float(theory.rdp_w2(0.5, 0.1, 1.0)) == pytest.approx(0.5 * math.log(2), rel=1e-15)


@given(var=variance, d=distortion_ratio, p=w2_ratio)
def test_rdp_w2_matches_brute_force(var, d, p):
    D, P = d * var, p * var
    # Brute force (grid + bounded Brent over ŝ) agrees to ~1e-14 nats; 1e-8 is the spec.
    assert float(theory.rdp_w2(D, P, var)) == pytest.approx(rdp_scalar_brute(D, P, var), abs=1e-8)


@given(var=variance, d=distortion_ratio)
def test_rate_distortion_scalar_matches_brute_force(var, d):
    D = d * var
    expected = rate_distortion_brute(D, [var])
    assert float(theory.rate_distortion(D, var)) == pytest.approx(expected, abs=1e-8)


@given(v=variance_vector(4), d=st.floats(0.01, 1.2))
def test_rate_distortion_vector_matches_water_filling_by_bisection(v, d):
    D = d * sum(v)
    expected = rate_distortion_brute(D, v)  # 300 bisection steps: θ exact to round-off
    assert float(theory.rate_distortion(D, jnp.array(v))) == pytest.approx(expected, abs=1e-8)


@given(var=variance, d=st.floats(0.02, 2.5), p=w2_ratio)
def test_rdp_w2_infinite_perception_budget_is_shannon(var, d, p):
    D = d * var
    shannon = float(theory.rate_distortion(D, var))
    assert float(theory.rdp_w2(D, math.inf, var)) == pytest.approx(shannon, rel=ULPS, abs=ULPS)
    # maths §3: the budget is inactive once √P ≥ s - √|s² - D|.
    s = math.sqrt(var)
    threshold = (s - math.sqrt(abs(var - D))) ** 2
    assert float(theory.rdp_w2(D, threshold * (1 + p) + 1e-300, var)) == pytest.approx(
        shannon,
        rel=1e-9,
        abs=1e-12,  # √ of the threshold is rounded: O(eps) relative slack
    )
    assert float(theory.rdp_w2(D, p * var, var)) >= shannon - ULPS


@given(var=variance, d=st.floats(0.02, 1.99))
def test_rdp_w2_perfect_realism_formula(var, d):
    D = d * var
    expected = rdp_scalar_perfect_realism(D, var)  # ½ ln(4s⁴ / (D(4s² - D)))
    assert float(theory.rdp_w2(D, 0.0, var)) == pytest.approx(expected, rel=ULPS, abs=ULPS)


@given(var=variance, p=w2_ratio, margin=st.floats(1e-6, 1.0))
def test_rdp_w2_zero_rate_region(var, p, margin):
    P = p * var
    s = math.sqrt(var)
    boundary = var + max(s - math.sqrt(P), 0.0) ** 2  # R = 0 iff D ≥ s² + (s - √P)₊²
    # 1e-12 relative clears the boundary's own rounding on both sides.
    assert float(theory.rdp_w2(boundary * (1 + 1e-12), P, var)) == 0.0
    assert float(theory.rdp_w2(boundary * (1 + margin), P, var)) == 0.0
    assert float(theory.rdp_w2(boundary * (1 - margin), P, var)) > 0.0


@given(var=variance, d=st.lists(distortion_ratio, min_size=2, max_size=2), p=w2_ratio, q=w2_ratio)
def test_rdp_w2_non_increasing_in_D_and_P(var, d, p, q):
    D_lo, D_hi = sorted(x * var for x in d)
    P_lo, P_hi = sorted((p * var, q * var))
    # Monotone up to rounding: a few ulps of the rates (≤ ~3 nats).
    assert float(theory.rdp_w2(D_lo, P_lo, var)) >= float(theory.rdp_w2(D_hi, P_lo, var)) - ULPS
    assert float(theory.rdp_w2(D_lo, P_lo, var)) >= float(theory.rdp_w2(D_lo, P_hi, var)) - ULPS


@given(var=variance, d=st.lists(distortion_ratio, min_size=2, max_size=2), p=w2_ratio)
def test_rdp_w2_convex_in_D(var, d, p):
    D1, D2 = (x * var for x in d)
    P = p * var
    R = np.asarray(theory.rdp_w2(jnp.array([D1, (D1 + D2) / 2, D2]), P, var))
    # Midpoint convexity, with a float64 rounding allowance on rates of order 1.
    assert R[1] <= (R[0] + R[2]) / 2 + ULPS


@given(var=variance, R=st.floats(1e-4, 3.0), p=w2_ratio)
def test_distortion_rate_perception_inverts_rdp_w2_in_D(var, R, p):
    P = p * var
    D = float(theory.distortion_rate_perception(R, P, var))
    assert 0 < D <= var + var
    # R(D(R)) = R: error ≈ eps · (dR/dD)·D / R, measured ≤ 4e-15 relative.
    assert float(theory.rdp_w2(D, P, var)) == pytest.approx(R, rel=1e-10)


@given(var=variance, d=distortion_ratio, p=w2_ratio)
def test_rdp_w2_inverts_distortion_rate_perception_in_R(var, d, p):
    D, P = d * var, p * var
    R = float(theory.rdp_w2(D, P, var))
    assume(R > 0)
    # D(R(D)) = D; measured ≤ 1.1e-14 relative.
    assert float(theory.distortion_rate_perception(R, P, var)) == pytest.approx(D, rel=1e-10)


@given(var=variance, R=st.floats(0.0, 3.0), p=w2_ratio)
def test_distortion_rate_perception_is_universal(var, R, p):
    """D(R, P) = D* + (W2(p_X, p_X*) - √P)₊² with D* = s² e^{-2R} (maths §3)."""
    P = p * var
    s, r = math.sqrt(var), math.sqrt(1 - math.exp(-2 * R))
    expected = var * math.exp(-2 * R) + max(s * (1 - r) - math.sqrt(P), 0.0) ** 2
    got = float(theory.distortion_rate_perception(R, P, var))
    assert got == pytest.approx(expected, rel=1e-12)  # 1 - r cancels in the test's formula
    assert float(theory.distortion_rate_perception(R, math.inf, var)) == pytest.approx(
        var * math.exp(-2 * R), rel=ULPS
    )


@given(var=variance, d=st.floats(0.05, 0.98), p=w2_ratio)
def test_gradients_are_finite_and_negative_in_D(var, d, p):
    D, P = d * var, p * var  # D < s²: positive rate for every P
    for g in (float(grad_w2(D, P, var)[0]), float(grad_rd(D, var))):
        assert math.isfinite(g)
        assert g < 0


def _smooth_piece(D, P, var):
    """Which smooth piece of R(D, P) (maths §3) a point is on: (floor binds, zero rate)."""
    s = math.sqrt(var)
    s_min = max(s - math.sqrt(P), 0.0)
    floor = s_min > math.sqrt(max(var - D, 0.0))
    return floor, D >= var + s_min**2 if floor else D >= var


@closed_form
@given(var=wide_variance, d=wide_distortion_ratio, p=st.floats(-8.0, math.log10(2.0)))
def test_rdp_w2_gradient_matches_central_differences(var, d, p):
    D, P = d * var, 10.0**p * var
    value, fd, truncation, steps, stencil = central_differences(
        lambda x: np.asarray(theory.rdp_w2(x[:, 0], x[:, 1], x[:, 2])), [D, P, var]
    )
    assume(value > 0)  # the zero-rate region's gradient is exactly 0 (tested below)
    # The stencil (x ± 200h) must lie on one smooth piece: at the seams where the floor starts to
    # bind, R is only C¹ and a difference across it errs by O(h).
    assume(len({_smooth_piece(*point) for point in stencil.reshape(-1, 3)}) == 1)
    # One evaluation errs by at most 16u(|R| + Σ_j |x_j ∂R/∂x_j|) (a backward-stable closed form
    # of ≤ 16 roundings, `exact.stable_error_bound`), so the difference by that over h; the
    # gradient itself by 16u|g|.
    evaluation = 16 * UNIT_ROUNDOFF * (value + np.sum(np.abs(np.array([D, P, var]) * fd)))
    for g, f, t, h in zip(grad_w2(D, P, var), fd, truncation, steps, strict=True):
        assert abs(float(g) - f) <= t + evaluation / h + 16 * UNIT_ROUNDOFF * abs(float(g))


@closed_form
@given(var=wide_variance, d=wide_distortion_ratio, p=wide_w2_ratio)
def test_rdp_w2_is_accurate_over_wide_ranges(var, d, p):
    """Against the closed form in mpmath, to what the inputs' rounding allows, up to ~9 nats."""
    D, P = d * var, p * var
    exact, bound = stable_error_bound(mp_rdp_scalar, (D, P, var), budgets=2)
    assert float(theory.rdp_w2(D, P, var)) == pytest.approx(exact, abs=bound)


@closed_form
@given(v=wide_variance_vector(4), d=wide_distortion_ratio)
def test_rate_distortion_is_accurate_over_wide_ranges(v, d):
    D = d * sum(v)
    exact, bound = stable_error_bound(lambda D, *v: mp_rate_distortion(D, v), (D, *v), budgets=1)
    assert float(theory.rate_distortion(D, jnp.array(v))) == pytest.approx(exact, abs=bound)


@closed_form
@given(var=wide_variance, R=st.floats(-6.0, math.log10(20.0)), p=wide_w2_ratio)
def test_distortion_rate_perception_is_accurate_over_wide_ranges(var, R, p):
    R, P = 10.0**R, p * var
    exact, bound = stable_error_bound(mp_distortion_rate_perception, (R, P, var))
    assert float(theory.distortion_rate_perception(R, P, var)) == pytest.approx(exact, abs=bound)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: theory.rdp_w2(0.0, 0.0, 2.0), math.inf),
        (lambda: theory.rdp_w2(0.0, math.inf, 2.0), math.inf),
        (lambda: theory.rdp_w2(0.0, 0.3, 2.0), math.inf),
        (lambda: theory.rdp_w2(2.0, math.inf, 2.0), 0.0),
        (lambda: theory.rdp_w2(3.0, 0.0, 2.0), 0.5 * math.log(16 / 15)),  # ½ ln(4s⁴/(D(4s²-D)))
        (lambda: theory.rdp_w2(4.0, 0.0, 2.0), 0.0),
        (lambda: theory.rdp_w2(7.0, 0.1, 2.0), 0.0),
        (lambda: theory.rdp_w2(math.inf, 0.0, 2.0), 0.0),
        (lambda: theory.rdp_w2(1.0, math.inf, 2.0), 0.5 * math.log(2.0)),
        (lambda: theory.rdp_w2(1.0, 0.0, 1.0), 0.5 * math.log(4 / 3)),
        (lambda: theory.rate_distortion(0.0, jnp.array([1.0, 2.0])), math.inf),
        (lambda: theory.rate_distortion(3.0, jnp.array([1.0, 2.0])), 0.0),
        (lambda: theory.rate_distortion(math.inf, jnp.array([1.0, 2.0])), 0.0),
        (lambda: theory.rate_distortion(1.0, jnp.array([1.0, 1.0])), math.log(2.0)),
        (lambda: theory.distortion_rate_perception(0.0, 0.0, 2.0), 4.0),
        (lambda: theory.distortion_rate_perception(0.0, math.inf, 2.0), 2.0),
        (lambda: theory.distortion_rate_perception(math.inf, 0.0, 2.0), 0.0),
        (lambda: theory.distortion_rate_perception(math.inf, math.inf, 2.0), 0.0),
    ],
)
def test_edge_values_are_exact(call, expected):
    got = float(call())
    assert not math.isnan(got)
    assert got == pytest.approx(expected, rel=ULPS, abs=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("var", [1e-30, 3.171028113946394e-08, 1.0, 3e30])
def test_a_rate_near_zero_keeps_its_digits(dtype, var):
    """½ ln(s²/D) with D a hair below s², and at D = s²/2 at any scale: a few ulp of the rate
    against mpmath at the rounded inputs (ln s² − ln D left 100 % error at D = s²(1 − 1e-16),
    and hundreds of ulp at large scales). Shannon's R(D), and rdp_w2/rdp_kl where P is loose."""
    eps = np.finfo(dtype).eps
    var32 = dtype(var)
    for ratio in (1 - eps, 1 - 1e3 * eps, 0.999, 0.5):
        D = dtype(var32 * ratio)
        with mpmath.workdps(50):
            want = 0.5 * mpmath.log(mpmath.mpf(float(var32)) / mpmath.mpf(float(D)))
        if want == 0:
            continue
        for got in (
            theory.rate_distortion(D, var32),
            theory.rdp_w2(D, dtype(np.inf), var32),
            theory.rdp_kl(D, dtype(np.inf), var32, "forward"),
        ):
            assert abs(float(got) / want - 1) <= 8 * eps, (ratio, float(got), float(want))


def test_rdp_w2_gradient_is_not_nan_at_zero_budget_in_the_zero_rate_region():
    grads = grad_w2(3.0, 0.0, 1.0)
    assert [float(g) for g in grads] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("P", [1.0, 2.0])
def test_rdp_w2_gradient_is_zero_in_the_zero_rate_region(P):
    grads = grad_w2(3.0, P, 1.0)
    assert [float(g) for g in grads] == [0.0, 0.0, 0.0]


def test_rate_distortion_broadcasts_budgets_over_shared_variances():
    variances = jnp.array([2.0, 1.0, 0.5, 0.25])
    budgets = jnp.linspace(0.05, 5.0, 7)
    one_by_one = [float(theory.rate_distortion(D, variances)) for D in budgets]
    # The same water level and logs either way, up to XLA's fusion of the batch: a few ulp.
    batched = theory.rate_distortion(budgets, variances)
    np.testing.assert_allclose(batched, one_by_one, rtol=8 * np.finfo(np.float64).eps)


@pytest.mark.parametrize(
    ("dtype", "R", "var"), [(np.float32, 46.75, 426284.125), (np.float64, 400.0, 1e300)]
)
def test_distortion_rate_perception_does_not_underflow_before_scaling(dtype, R, var):
    """var·e^{−2R} is normal though e^{−2R} is not (it was flushed to 0). The float32 exponent
    ln var − 2R carries ~|ln var − 2R|·ε of rounding: 16 × that, relative."""
    R, var = dtype(R), dtype(var)
    with mpmath.workdps(50):
        r = mpmath.sqrt(-mpmath.expm1(-2 * mpmath.mpf(float(R))))
        s = mpmath.sqrt(mpmath.mpf(float(var)))
        want = s**2 * mpmath.exp(-2 * mpmath.mpf(float(R))) + (s * (1 - r)) ** 2
    got = float(theory.distortion_rate_perception(R, dtype(0), var))
    bound = 16 * float(abs(mpmath.log(float(var))) + 2 * float(R)) * np.finfo(dtype).eps
    assert abs(got / float(want) - 1) <= bound


# Points where the perception floor binds, the last near the zero-rate boundary (r < ½).
_FLOOR_POINTS = [(0.5, 0.01, 1.0), (0.05, 1e-4, 1.0), (1.8, 1e-3, 1.0), (0.3, 0.002, 2.5)]


@pytest.mark.parametrize(
    ("dtype", "exponents"),
    [(np.float64, (-500, -250, -75, 75, 250, 500)), (np.float32, (-55, -30, 30, 60))],
)
@pytest.mark.parametrize("perception", ["w2", "forward", "reverse"])
def test_floor_rates_do_not_depend_on_the_scale(dtype, exponents, perception):
    """R(4ʲD, 4ʲP, 4ʲs²) = R(D, P, s²) bit for bit (P a KL budget is not scaled), out to
    s² ≈ 1e±301 (float64) and 1e±36 (float32): each scaling by 2^(2j) is exact, and the rate
    is computed on one normalised copy. Unscaled, 4s²ŝ² overflowed beyond s² ≈ 1e154 (float64)
    or 1e19 (float32), and cost up to ~1,000 ulp below 1e-150."""
    for D, P, var in _FLOOR_POINTS:
        D, P, var = dtype(D), dtype(P), dtype(var)
        if perception == "w2":
            assert float(theory.rdp_w2(D, dtype(np.inf), var)) < float(theory.rdp_w2(D, P, var))
            rate = theory.rdp_w2
        else:
            rate = lambda D, P, var: theory.rdp_kl(D, P, var, perception)  # noqa: E731
        base = rate(D, P, var)
        for j in exponents:
            c = dtype(2.0 ** (2 * j))
            scaled = rate(D * c, P * c if perception == "w2" else P, var * c)
            assert scaled == base, (j, float(scaled), float(base))
