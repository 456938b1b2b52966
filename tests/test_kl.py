"""Scalar R(D, P) under a KL perception budget and the KL std floor (maths §4)."""

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from exact import mp_rdp_scalar, stable_error_bound
from helpers import matches_digits, rdp_scalar_brute, rdp_scalar_perfect_realism
from hypothesis import given, strategies as st
from strategies import (
    closed_form,
    direction,
    distortion_ratio,
    kl_budget,
    variance,
    wide_distortion_ratio,
    wide_kl_budget,
    wide_variance,
)

import theory

grad_kl = jax.jit(jax.grad(theory.rdp_kl), static_argnames="direction")

ULPS = 1e-13  # round-off allowance between two closed forms of rates of order 1


@pytest.mark.parametrize(
    ("direction", "reference"), [("forward", "0.35632"), ("reverse", "0.35214")]
)
def test_rdp_kl_reference_values(direction, reference):
    R = float(theory.rdp_kl(0.5, 0.05, 1.0, direction))
    # maths §9 gives 5 decimals, so "1e-6" means: rounds to them (|error| ≤ 5e-6) ...
    assert matches_digits(R, reference)
    # ... and the brute force pins the value itself to 1e-6 and beyond.
    assert R == pytest.approx(rdp_scalar_brute(0.5, 0.05, 1.0, direction), abs=1e-9)


@given(var=variance, d=distortion_ratio, P=kl_budget, direction=direction)
def test_rdp_kl_matches_brute_force(var, d, P, direction):
    D = d * var
    expected = rdp_scalar_brute(D, P, var, direction)  # brentq on the KL itself, then Brent on ŝ
    # Measured agreement ≤ 2e-14 nats; 1e-8 is the spec.
    assert float(theory.rdp_kl(D, P, var, direction)) == pytest.approx(expected, abs=1e-8)


@closed_form
@given(var=wide_variance, d=wide_distortion_ratio, P=wide_kl_budget, direction=direction)
def test_rdp_kl_is_accurate_over_wide_ranges(var, d, P, direction):
    """Against maths §4 in mpmath (its Lambert W), to what the inputs' rounding allows."""
    D = d * var
    exact, bound = stable_error_bound(
        lambda D, P, var: mp_rdp_scalar(D, P, var, direction), (D, P, var)
    )
    assert float(theory.rdp_kl(D, P, var, direction)) == pytest.approx(exact, abs=bound)


def _mpmath_deficit(P, direction):
    """1 - θ(P) from mpmath's Lambert W (maths §4), with digits to spare near the branch point."""
    with mpmath.workdps(100 + max(0, -int(math.log10(P)))):
        x = -mpmath.exp(-1 - 2 * mpmath.mpf(P))
        if direction == "forward":
            theta = 1 / mpmath.sqrt(-mpmath.lambertw(x, -1))
        else:
            theta = mpmath.sqrt(-mpmath.lambertw(x, 0))
        return 1 - theta


# The deficit's relative error: the Newton root carries about one rounding of its residual and
# the final -expm1(-y/2) one more, so a few ulp; measured ≤ 2.0 ulp in float64 on
# P ∈ [1e-300, 1e300] and ≤ 2.3 in float32 on [1e-37, 1e30] (e^y − 1 − y by its series on
# |y| < 1: the plain subtraction left 540 ulp in float64 and 1,400 in float32 at P ≈ 3e-7).
DEFICIT_ULPS = 8


@given(log10_P=st.floats(-40.0, 4.0), direction=direction)
def test_kl_std_deficit_matches_mpmath_lambertw(log10_P, direction):
    P = 10.0**log10_P
    expected = _mpmath_deficit(P, direction)
    got = float(theory.kl_std_deficit(jnp.asarray(P), direction))
    assert abs(mpmath.mpf(got) / expected - 1) <= DEFICIT_ULPS * np.finfo(np.float64).eps


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize(
    ("dtype", "Ps"),
    [
        (np.float64, np.logspace(-300, 300, 121)),  # the range the implementation's comment claims
        (np.float32, np.logspace(-37, 30, 135).astype(np.float32)),
    ],
)
def test_kl_std_deficit_full_range_matches_mpmath(direction, dtype, Ps):
    got = np.asarray(theory.kl_std_deficit(jnp.asarray(Ps, dtype), direction))
    assert got.dtype == dtype
    expected = [_mpmath_deficit(float(P), direction) for P in Ps]  # at the rounded inputs
    errors = [abs(mpmath.mpf(float(g)) / e - 1) for g, e in zip(got, expected, strict=True)]
    assert max(errors) <= DEFICIT_ULPS * np.finfo(dtype).eps


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_kl_std_deficit_end_points(direction):
    out = np.asarray(theory.kl_std_deficit(jnp.array([0.0, math.inf]), direction))
    assert out.tolist() == [0.0, 1.0]


@given(d=distortion_ratio, P=kl_budget, var=variance)
def test_reverse_kl_is_the_looser_budget(d, P, var):
    """Same KL value, smaller ŝ allowed in reverse (e^y - 1 - y grows faster for y > 0), so the
    reverse-KL rate is never above the forward one."""
    D = d * var
    forward = float(theory.rdp_kl(D, P, var, "forward"))
    assert float(theory.rdp_kl(D, P, var, "reverse")) <= forward + ULPS


@given(var=variance, d=st.floats(0.02, 2.5), direction=direction)
def test_rdp_kl_limits(var, d, direction):
    D = d * var
    shannon = float(theory.rate_distortion(D, var))
    assert float(theory.rdp_kl(D, math.inf, var, direction)) == pytest.approx(shannon, rel=ULPS)
    # P = 0 forces ŝ = s in every divergence: the perfect-realism rate.
    assert float(theory.rdp_kl(D, 0.0, var, direction)) == pytest.approx(
        rdp_scalar_perfect_realism(D, var), rel=ULPS, abs=ULPS
    )


@given(
    var=variance,
    d=st.lists(distortion_ratio, min_size=2, max_size=2),
    P=st.lists(kl_budget, min_size=2, max_size=2),
    direction=direction,
)
def test_rdp_kl_non_increasing_in_D_and_P(var, d, P, direction):
    D_lo, D_hi = sorted(x * var for x in d)
    P_lo, P_hi = sorted(P)
    R = theory.rdp_kl(jnp.array([D_lo, D_hi, D_lo]), jnp.array([P_lo, P_lo, P_hi]), var, direction)
    R = np.asarray(R)
    assert R[0] >= R[1] - ULPS
    assert R[0] >= R[2] - ULPS


@given(var=variance, d=st.lists(distortion_ratio, min_size=2, max_size=2), P=kl_budget)
def test_rdp_kl_convex_in_D(var, d, P):
    D1, D2 = (x * var for x in d)
    for which in ("forward", "reverse"):
        R = np.asarray(theory.rdp_kl(jnp.array([D1, (D1 + D2) / 2, D2]), P, var, which))
        assert R[1] <= (R[0] + R[2]) / 2 + ULPS


@given(var=variance, d=st.floats(0.05, 0.98), P=kl_budget, direction=direction)
def test_rdp_kl_gradient_in_D_is_finite_and_negative(var, d, P, direction):
    g = float(grad_kl(d * var, P, var, direction=direction))
    assert math.isfinite(g)
    assert g < 0


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize(
    ("D", "P", "expected"),
    [
        (0.0, 0.0, math.inf),
        (0.0, 1.0, math.inf),
        (0.0, math.inf, math.inf),
        (0.5, math.inf, 0.5 * math.log(2.0)),
        (0.5, 0.0, 0.5 * math.log(4 / (0.5 * 3.5))),
        (2.0, 0.0, 0.0),
        (1.0, math.inf, 0.0),
        (5.0, 0.01, 0.0),
    ],
)
def test_rdp_kl_edge_values_are_exact(direction, D, P, expected):
    got = float(theory.rdp_kl(D, P, 1.0, direction))
    assert not math.isnan(got)
    assert got == pytest.approx(expected, rel=ULPS, abs=0)


def _mp_deficit(P, direction):
    """1 - θ(P) from mpmath's Lambert W (maths §4), at the caller's precision."""
    z = -mpmath.lambertw(-mpmath.exp(-1 - 2 * P), -1 if direction == "forward" else 0)
    return 1 - (1 / mpmath.sqrt(z) if direction == "forward" else mpmath.sqrt(z))


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("P", [0.05, 0.3, 3.0])
def test_kl_std_deficit_second_derivative_matches_lambert_w(direction, P):
    # The Newton solve's derivative is the implicit function's at every order (a custom JVP in
    # terms of the root); a last Newton step outside stop_gradient had d²/dP² off by 40-80 %.
    def f(p):
        return theory.kl_std_deficit(p, direction)

    with mpmath.workdps(40):
        want = float(mpmath.diff(lambda p: _mp_deficit(p, direction), mpmath.mpf(P), 2))
    got = float(jax.grad(jax.grad(f))(jnp.float64(P)))
    assert got == pytest.approx(want, rel=1e-10)  # a few ulps of the chained float64 steps


def test_rdp_kl_hessian_in_perception_matches_lambert_w():
    def rate(p):  # maths §4 at s² = 1, D = 0.5, where ŝ_min = θ(P) > √(s² − D) binds
        s_min = 1 - _mp_deficit(p, "forward")
        half_excess = (1 + s_min**2 - mpmath.mpf(0.5)) / 2
        return mpmath.log(s_min**2 / (s_min**2 - half_excess**2)) / 2

    with mpmath.workdps(40):
        assert 1 - _mp_deficit(mpmath.mpf(0.05), "forward") > mpmath.sqrt(0.5)
        want = float(mpmath.diff(rate, mpmath.mpf(0.05), 2))
    got = float(jax.hessian(lambda p: theory.rdp_kl(0.5, p, 1.0, "forward"))(0.05))
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_kl_slopes_are_infinite_at_perfect_realism(direction):
    # The deficit grows like √P, so perfect realism is infinitely costly at the margin; the
    # constant branch at P = 0 used to report a slope of 0.
    assert float(jax.grad(lambda p: theory.kl_std_deficit(p, direction))(0.0)) == math.inf
    assert float(jax.grad(lambda p: theory.rdp_kl(0.5, p, 1.0, direction))(0.0)) == -math.inf
    # Reverse mode keeps the distortion's slope there, as rdp_w2 does (theory's docstring).
    for rate in (
        lambda d, p: theory.rdp_kl(d, p, 1.0, direction),
        lambda d, p: theory.rdp_w2(d, p, 1.0),
    ):
        dD, dP = jax.jacrev(rate, argnums=(0, 1))(0.5, 0.0)
        # R(D, 0) = −½ ln(1 − u²), u = 1 − D/2 at s² = 1 (maths §3): dR/dD = −½ u / (1 − u²)
        u = 1 - 0.5 / 2
        assert float(dD) == pytest.approx(-0.5 * u / (1 - u**2), rel=1e-12)
        assert float(dP) == -math.inf
