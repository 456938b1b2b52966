"""Distortion-perception under AWGN and the score-scaled PF-ODE's closed form (maths §6-§7)."""

import itertools
import math

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from exact import (
    UNIT_ROUNDOFF,
    mp_dp_awgn,
    mp_geodesic_rho,
    mp_linear_decoder,
    stable_error_bound,
)
from helpers import dp_awgn_brute, matches_digits
from hypothesis import given, settings, strategies as st
from strategies import (
    closed_form,
    open_unit,
    unit,
    variance,
    variance_vector,
    wide_noise_ratio,
    wide_rho,
    wide_variance_vector,
)

import theory

REL = 1e-12  # two closed forms of the same quantity: round-off only (measured ≤ 1e-15)
# dp_awgn_brute: SLSQP (ftol 1e-16) on a quadratic objective with one constraint, repaired to
# exact feasibility, so an upper bound on D(P) that lands within ~1e-15 of it (measured ≤ 4e-15).
SLSQP_TOL = 1e-10


def wiener_gain(v, noise):
    return np.asarray(v) / (np.asarray(v) + noise)


def test_reference_values():
    # maths §9: s = σ = 1.
    assert float(theory.mmse_awgn(1.0, 1.0)) == pytest.approx(0.5, rel=REL)
    D0 = float(theory.dp_awgn(0.0, 1.0, 1.0))
    assert matches_digits(D0, "0.585786")
    assert D0 == pytest.approx(2 - math.sqrt(2), rel=REL)
    posterior_sampling = 2 * float(theory.mmse_awgn(1.0, 1.0))  # X* plus independent N(0, D*)
    assert posterior_sampling == pytest.approx(1.0, rel=REL)
    assert D0 < posterior_sampling  # posterior sampling is not optimal
    assert float(theory.dp_awgn(math.inf, 1.0, 1.0)) == pytest.approx(0.5, rel=REL)


@given(var=variance, noise=variance, u=st.one_of(st.just(0.0), st.floats(0.0, 1.5)))
def test_dp_awgn_matches_brute_force_scalar(var, noise, u):
    P = u * float(theory.mmse_perception_awgn(var, noise))
    # SLSQP over (gain, extra noise), multi-start, repaired to feasibility: measured ≤ 4e-15.
    assert float(theory.dp_awgn(P, var, noise)) == pytest.approx(
        dp_awgn_brute(P, var, noise), abs=1e-8
    )


@settings(max_examples=10)
@given(v=variance_vector(3), noise=variance, u=st.floats(0.0, 1.2))
def test_dp_awgn_matches_brute_force_vector(v, noise, u):
    P = u * float(theory.mmse_perception_awgn(jnp.array(v), noise))
    expected = dp_awgn_brute(P, v, noise)
    assert float(theory.dp_awgn(P, jnp.array(v), noise)) == pytest.approx(expected, abs=1e-8)


@given(var=variance, noise=variance)
def test_mmse_is_the_unconstrained_brute_force(var, noise):
    assert float(theory.mmse_awgn(var, noise)) == pytest.approx(
        dp_awgn_brute(math.inf, var, noise),
        abs=1e-10,  # SLSQP on a quadratic: exact to ~1e-15
    )


@given(v=variance_vector(3), noise=st.one_of(variance, variance_vector(3)))
def test_awgn_closed_forms(v, noise):
    v, noise_arr = np.array(v), np.asarray(noise)
    a = wiener_gain(v, noise_arr)
    # I(X; Y) = ½ ln det Cov(Y) / det Cov(Y|X).
    rate = 0.5 * math.log(np.prod(v + noise_arr) / np.prod(np.broadcast_to(noise_arr, v.shape)))
    assert float(theory.awgn_rate(v, noise)) == pytest.approx(rate, rel=REL)
    # D* = Σ E(X - aY)² and W2(p_X, p_X*)² = Σ (s_i - a_i √(s_i² + σ²))² (maths §6).
    mmse = np.sum(v - 2 * a * v + a**2 * (v + noise_arr))
    assert float(theory.mmse_awgn(v, noise)) == pytest.approx(mmse, rel=1e-10)
    w2 = np.sum((np.sqrt(v) - a * np.sqrt(v + noise_arr)) ** 2)
    assert float(theory.mmse_perception_awgn(v, noise)) == pytest.approx(w2, rel=1e-9)


def _wide_source(v, noise):
    """Variances, and the noise from ratios: one ratio is an isotropic σ² = ratio·s_1², a list
    gives σ_i² = ratio_i·s_i²."""
    v = np.array(v)
    return v, (np.asarray(noise) * v if np.ndim(noise) else noise * v[0])


@closed_form
@given(
    v=wide_variance_vector(3),
    noise=st.one_of(wide_noise_ratio, st.lists(wide_noise_ratio, min_size=3, max_size=3)),
    rho=st.one_of(unit, wide_rho, st.lists(wide_rho, min_size=3, max_size=3)),
)
def test_score_scaled_dp_is_the_gain_estimators_dp(v, noise, rho):
    """x̂ = g·Y with g = a^{(1+ρ)/2}: D, P and I(X; Y) written out in mpmath (maths §7-§8), to
    what the inputs' rounding allows (`exact.stable_error_bound`), at any noise level and ρ."""
    v, noise = _wide_source(v, noise)
    rho = np.asarray(rho, dtype=float)
    D, P = theory.score_scaled_dp(rho, v, noise, allow_any_rho=True)
    n = len(v)
    rho_n, noise_n = np.broadcast_to(rho, (n,)), np.broadcast_to(noise, (n,))
    fields = stable_error_bound(
        lambda *a: mp_linear_decoder(a[:n], a[n : 2 * n], a[2 * n :]), (*rho_n, *v, *noise_n)
    )
    got = (theory.awgn_rate(v, noise), D, P)
    for name, value, (exact, bound) in zip(("rate", "D", "P"), got, fields, strict=True):
        assert abs(float(value) - exact) <= bound, (name, float(value), exact, bound)
    g = np.asarray(theory.score_scaled_gain(rho, v, noise, allow_any_rho=True))
    for gi, vi, ni, ri in zip(g, v, noise_n, rho_n, strict=True):
        exact, bound = stable_error_bound(
            lambda s, t, r: (s / (s + t)) ** ((1 + r) / 2), (vi, ni, ri)
        )
        assert abs(float(gi) - exact) <= bound


@closed_form
@given(
    v=wide_variance_vector(3),
    noise=st.one_of(wide_noise_ratio, st.lists(wide_noise_ratio, min_size=3, max_size=3)),
    u=st.one_of(st.just(0.0), unit, st.floats(1.0, 3.0)),
)
def test_mmse_and_dp_awgn_match_the_definitions(v, noise, u):
    """D* (= D at ρ = 1), W2²(p_X, p_X*) (= P at ρ = 1) and D(P) of Freirich et al. (maths §6)."""
    v, noise = _wide_source(v, noise)
    n = len(v)
    noise_n = np.broadcast_to(noise, (n,))
    w2 = float(theory.mmse_perception_awgn(v, noise))
    mmse, mmse_bound = stable_error_bound(
        lambda *a: mp_linear_decoder(1.0, a[:n], a[n:])[1], (*v, *noise_n)
    )
    assert float(theory.mmse_awgn(v, noise)) == pytest.approx(mmse, abs=mmse_bound)
    w2_exact, w2_bound = stable_error_bound(
        lambda *a: mp_linear_decoder(1.0, a[:n], a[n:])[2], (*v, *noise_n)
    )
    assert w2 == pytest.approx(w2_exact, abs=w2_bound)
    P = u * w2
    exact, bound = stable_error_bound(lambda p, *a: mp_dp_awgn(p, a[:n], a[n:]), (P, *v, *noise_n))
    assert float(theory.dp_awgn(P, v, noise)) == pytest.approx(exact, abs=bound)


@given(v=variance_vector(3), noise=variance)
def test_score_scaled_gain_end_points(v, noise):
    a = wiener_gain(v, noise)
    np.testing.assert_allclose(theory.score_scaled_gain(1.0, v, noise), a, rtol=REL)  # MMSE
    np.testing.assert_allclose(theory.score_scaled_gain(0.0, v, noise), np.sqrt(a), rtol=REL)


@given(v=variance_vector(3), noise=variance)
def test_score_scaled_dp_end_points_lie_on_the_dp_curve(v, noise):
    v = jnp.array(v)
    for rho in (0.0, 1.0):
        D, P = theory.score_scaled_dp(rho, v, noise)
        assert float(D) == pytest.approx(float(theory.dp_awgn(P, v, noise)), rel=REL)
    D1, P1 = theory.score_scaled_dp(1.0, v, noise)
    assert float(D1) == pytest.approx(float(theory.mmse_awgn(v, noise)), rel=REL)
    assert float(P1) == pytest.approx(float(theory.mmse_perception_awgn(v, noise)), rel=REL)
    assert float(theory.score_scaled_dp(0.0, v, noise)[1]) == 0.0


@given(var=variance, noise=variance, rho=unit)
def test_scalar_score_scaled_dp_sweeps_the_dp_curve(var, noise, rho):
    D, P = theory.score_scaled_dp(rho, var, noise)  # Prop. 2 of the seed paper
    assert float(D) == pytest.approx(float(theory.dp_awgn(P, var, noise)), rel=1e-10)


@given(v=variance_vector(3), noise=variance, rho=st.floats(-1.0, 3.0))
def test_constant_rho_never_beats_the_dp_curve(v, noise, rho):
    v = jnp.array(v)
    D, P = theory.score_scaled_dp(rho, v, noise, allow_any_rho=True)
    assert float(D) >= float(theory.dp_awgn(P, v, noise)) * (1 - REL)


def test_constant_rho_is_above_the_dp_curve_for_anisotropic_sources():
    """maths §7: s² = (4, 1, 0.05), σ² = 0.5, a constant ρ ∈ {0.2, 0.3, 0.4} misses D(P).

    The gap D(ρ) - D(P(ρ)) is computed three ways: by `theory`; in mpmath from the gain written
    out and Freirich et al.'s D(P); and against the brute-force D(P), whose exactly feasible
    optimum bounds D(P) from above, so that D(ρ) - brute is a lower bound on the gap.
    """
    v = [4.0, 1.0, 0.05]
    for rho, stated in ((0.2, "5.55e-4"), (0.3, "5.99e-4"), (0.4, "5.52e-4")):
        D, P = theory.score_scaled_dp(rho, jnp.array(v), 0.5)
        gap = float(D - theory.dp_awgn(P, jnp.array(v), 0.5))
        (_, D_exact, P_exact), (_, D_bound, P_bound) = zip(
            *stable_error_bound(lambda r, n, *s: mp_linear_decoder(r, s, n), (rho, 0.5, *v)),
            strict=True,
        )
        curve, curve_bound = stable_error_bound(
            lambda p, n, *s: mp_dp_awgn(p, s, n), (P_exact, 0.5, *v)
        )
        # theory's D(P) is taken at its own P, which is within P_bound of P_exact: add the
        # slope |dD/dP| = W2/√P - 1 of the curve times that (maths §6).
        slope = math.sqrt(float(theory.mmse_perception_awgn(jnp.array(v), 0.5)) / P_exact) - 1
        exact_gap = D_exact - curve
        assert abs(gap - exact_gap) <= D_bound + curve_bound + slope * P_bound
        lower = D_exact - dp_awgn_brute(P_exact, v, 0.5)
        assert lower == pytest.approx(exact_gap, abs=SLSQP_TOL)
        assert lower > 5e-4  # the curve is missed, by at least the brute force's margin
        assert float(f"{exact_gap:.2e}") == float(stated)  # maths §7 to its 3 digits


@given(v=variance_vector(3), noise=variance, rho=st.floats(1.0, 3.0))
def test_rho_outside_the_unit_interval_is_worse_in_both(v, noise, rho):
    v = jnp.array(v)
    D_mmse, P_mmse = theory.score_scaled_dp(1.0, v, noise)
    D, P = theory.score_scaled_dp(rho, v, noise, allow_any_rho=True)
    assert float(D) >= float(D_mmse) * (1 - REL)
    assert float(P) >= float(P_mmse) * (1 - REL)
    D_transport = theory.score_scaled_dp(0.0, v, noise)[0]
    D_neg, P_neg = theory.score_scaled_dp(1.0 - rho, v, noise, allow_any_rho=True)  # ρ ≤ 0
    assert float(D_neg) >= float(D_transport) * (1 - REL)
    assert float(P_neg) >= 0.0


@given(v=variance_vector(3), noise=variance, u=unit)
def test_geodesic_rho_lands_on_the_dp_curve(v, noise, u):
    v = jnp.array(v)
    w2 = float(theory.mmse_perception_awgn(v, noise))
    P = u * w2
    rho = theory.geodesic_rho(P, v, noise)
    assert np.all((np.asarray(rho) >= 0) & (np.asarray(rho) <= 1))  # round-off clipped
    D_out, P_out = theory.score_scaled_dp(rho, v, noise)
    assert float(P_out) == pytest.approx(P, rel=1e-10, abs=1e-15 * w2)
    assert float(D_out) == pytest.approx(float(theory.dp_awgn(P, v, noise)), rel=1e-12)


@given(v=variance_vector(3), noise=variance)
def test_geodesic_rho_end_points_are_exact(v, noise):
    v = jnp.array(v)
    w2 = float(theory.mmse_perception_awgn(v, noise))
    assert np.asarray(theory.geodesic_rho(0.0, v, noise)).tolist() == [0.0] * 3
    for P in (w2 * 1.5, math.inf):
        # 2 log1p(expm1(h)) / (2h) is 1 only up to XLA's log1p/expm1 round-off (measured up to
        # 2.1e-14 at s² = 8, σ² = 15); the docstring's "ρ = 1" holds to that.
        np.testing.assert_allclose(theory.geodesic_rho(P, v, noise), 1.0, rtol=1e-12)


@given(v=variance_vector(3), noise=variance, u=open_unit)
def test_geodesic_rho_equals_a_constant_rho_for_a_scalar_source(v, noise, u):
    var = v[0]
    P = u * float(theory.mmse_perception_awgn(var, noise))
    rho = float(theory.geodesic_rho(P, var, noise)[0])
    assert float(theory.score_scaled_dp(rho, var, noise)[1]) == pytest.approx(P, rel=1e-10)


@closed_form
@given(
    v=wide_variance_vector(3),
    noise=wide_noise_ratio,
    u=st.one_of(st.just(0.0), unit, st.just(1.0)),
)
def test_geodesic_rho_reaches_the_dp_curve_over_wide_ranges(v, noise, u):
    """Per-direction ρ_i from the W2 geodesic put the gain on D(P) (maths §7): exactly, in
    mpmath, and `theory.geodesic_rho` computes those ρ_i to what its inputs' rounding allows."""
    v, noise = _wide_source(v, noise)
    P = u * float(theory.mmse_perception_awgn(v, noise))
    rho = np.asarray(theory.geodesic_rho(P, v, noise))
    exact = stable_error_bound(lambda p, n, *s: mp_geodesic_rho(p, s, n), (P, noise, *v))
    for got, (value, bound) in zip(rho, exact, strict=True):
        bound += 1e-45  # mpmath's own rounding of ρ ~ 1 at 50 digits (0 may come out as 1e-51)
        assert abs(got - value) <= bound, (got, value, bound)
        assert -bound <= got <= 1 + bound  # between the transport (0) and the MMSE (1)
    # The geodesic's gains, written out, reach (D(P), P) up to mpmath's own 50 digits (less the
    # cancellation in s(1 - a^{ρ/2}) as a → 1, ≤ 1e8 of them at σ²/s² ≥ 1e-8).
    _, D_reached, P_reached = mp_linear_decoder(mp_geodesic_rho(P, v, noise), v, noise)
    _, _, w2 = mp_linear_decoder(1.0, v, noise)  # P ≥ W2² does not bind: ρ = 1 reaches W2²
    scale = float(np.sum(v))
    assert abs(P_reached - min(P, w2)) <= 1e-35 * scale
    assert abs(D_reached - mp_dp_awgn(P, v, noise)) <= 1e-35 * scale


def test_dp_awgn_edge_values():
    v = jnp.array([1.0, 4.0])
    mmse = float(theory.mmse_awgn(v, 1.0))
    w2 = float(theory.mmse_perception_awgn(v, 1.0))
    assert float(theory.dp_awgn(math.inf, v, 1.0)) == mmse
    assert float(theory.dp_awgn(w2, v, 1.0)) == pytest.approx(mmse, rel=REL)
    assert float(theory.dp_awgn(0.0, v, 1.0)) == pytest.approx(mmse + w2, rel=REL)
    for f in (theory.awgn_rate, theory.mmse_awgn, theory.mmse_perception_awgn):
        assert np.all(np.isfinite(np.asarray(f(v, 1.0))))


@pytest.mark.parametrize(
    ("dtype", "v", "n"),
    [(np.float32, 1e19, 1e20), (np.float32, 4.7e4, 1e34), (np.float32, 1e-23, 1e-23),
     (np.float64, 1e155, 1e155)],
)  # fmt: skip
def test_mmse_does_not_overflow_in_its_product(dtype, v, n):
    v, n = dtype(v), dtype(n)
    want = float(mpmath.mpf(float(v)) * float(n) / (mpmath.mpf(float(v)) + float(n)))
    got = float(theory.mmse_awgn(v, n))
    assert abs(got / want - 1) <= 4 * np.finfo(dtype).eps


def test_geodesic_rho_is_the_mmse_estimate_where_w2_underflows():
    """W2² = s²(1 − √a)² ≈ σ⁴/(16 s²) flushes to 0 here; P = 0 ≥ W2² is then the MMSE
    estimate (ρ = 1), where √P/W2 was 0/0 = NaN."""
    v, n = jnp.array([1e-300]), 1e-307
    assert float(theory.mmse_perception_awgn(v, n)) == 0.0
    assert np.asarray(theory.geodesic_rho(0.0, v, n)).tolist() == [1.0]


@pytest.mark.parametrize("rho", [-1.0, 0.0, 1.0])
def test_gain_and_dp_where_the_noise_to_signal_ratio_overflows(rho):
    """σ²/s² = 1e400 overflows: ln a is then ln s² − ln σ², and a^((1+ρ)/2), D and P follow
    it (ln a = −∞ gave 0·∞ = NaN at ρ = −1 and P = ∞). Within 4 ulp per unit of |ln a|'s
    exponent against mpmath: exp(e·ln a) carries |e·ln a|·ε."""
    v, n = jnp.array([1e-200]), 1e200
    with mpmath.workdps(50):
        a = mpmath.mpf(1e-200) / (mpmath.mpf(1e-200) + mpmath.mpf(1e200))
        gain = a ** ((1 + mpmath.mpf(rho)) / 2)
        D = (1 - gain) ** 2 * mpmath.mpf(1e-200) + gain**2 * mpmath.mpf(1e200)
        P = mpmath.mpf(1e-200) * (1 - a ** (mpmath.mpf(rho) / 2)) ** 2
    got_gain = float(theory.score_scaled_gain(rho, v, n, allow_any_rho=True)[0])
    got_D, got_P = (float(x) for x in theory.score_scaled_dp(rho, v, n, allow_any_rho=True))
    bound = 4 * 921 * UNIT_ROUNDOFF  # |ln a| = 921
    if rho == 1:  # a = 1e-400 is below the float range; D = s² + a²σ² and P are not
        assert got_gain == 0.0
    else:
        assert abs(got_gain / float(gain) - 1) <= bound, (got_gain, float(gain))
    for got, want in ((got_D, D), (got_P, P)):  # P = 0 exactly at ρ = 0
        assert abs(got - float(want)) <= bound * float(want), (got, float(want))


def test_dp_keeps_its_digits_for_rho_outside_the_unit_interval():
    """D and P at ρ ∈ [−3.9, 3.9] (`allow_any_rho`) and s²/σ² from 1e-100 to 1e3, against
    mpmath at the rounded inputs. The bound, 12 ulp: a^e − 1 is expm1(x) for |x| = |e ln a| ≤ 1
    (x carries ln a's ulp, and expm1 passes on at most 1.58 × x's relative error, plus its own
    half ulp: ≤ 3 ulp), else `power`'s few ulp (≤ 3) times at most e^x/|e^x − 1| ≤ 1.58, minus
    1 (≤ 5 ulp); squared, ≤ 10, and √s² times it then squared, ≤ 2 more. As exp(e ln a) − 1,
    P carried ε|e ln a|: 141 ulp at ρ = −3.9, s² = 1e-30 and 531 at ρ = −3, s² = 1e-100."""
    for rho, s2 in itertools.product(
        (-3.9, -3.0, -1.5, -0.5, 0.3, 1.7, 2.5, 3.9), (1e-100, 1e-30, 1e-8, 0.3, 1.0, 1e3)
    ):
        D, P = theory.score_scaled_dp(rho, np.array([s2]), 1.0, allow_any_rho=True)
        with mpmath.workdps(60):
            v = mpmath.mpf(s2)
            a = v / (v + 1)
            gain = a ** ((1 + mpmath.mpf(rho)) / 2)
            want_D = v * (1 - gain) ** 2 + gain**2
            want_P = v * (1 - a ** (mpmath.mpf(rho) / 2)) ** 2
        for got, want in ((D, want_D), (P, want_P)):
            want = float(want)
            assert abs(float(got) - want) <= 12 * np.spacing(want), (rho, s2, float(got), want)


@pytest.mark.parametrize(("dtype", "lowest"), [(np.float64, -300), (np.float32, -36)])
def test_score_scaled_gain_keeps_its_digits_at_any_snr(dtype, lowest):
    """a^((1+ρ)/2) within 4 ulp of mpmath at the rounded inputs, for s²/σ² from the bottom of
    the range to 100: one rounding of a = s²/(s² + σ²) (passed on times the exponent ≤ 1), the
    square root, `power`'s few and the product. As exp((1+ρ)/2 · ln a) it carried the rounding
    of ln a and of 1 + ρ: 740 ulp (float64) and 69 (float32) at the smallest ratios."""
    ratio = np.logspace(lowest, 2, 60).astype(dtype)
    for rho in (0.0, 0.3, 0.77, 1.0):
        got = np.asarray(theory.score_scaled_gain(dtype(rho), ratio, dtype(1.0)), np.float64)
        with mpmath.workdps(50):
            e = (1 + mpmath.mpf(float(dtype(rho)))) / 2
            want = [(mpmath.mpf(float(r)) / (mpmath.mpf(float(r)) + 1)) ** e for r in ratio]
        for g, w in zip(got, want, strict=True):
            if w < np.finfo(dtype).tiny:  # below the normal range: flushed
                continue
            ulp = float(np.spacing(dtype(float(w))))
            assert abs(g - float(w)) <= 4 * ulp, (rho, float(w), g)
