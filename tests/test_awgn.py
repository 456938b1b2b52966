"""Distortion-perception under AWGN and the score-scaled PF-ODE's closed form (maths §6-§7)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import dp_awgn_brute, matches_digits
from hypothesis import given, settings, strategies as st
from strategies import open_unit, unit, variance, variance_vector

import theory

REL = 1e-12  # two closed forms of the same quantity: round-off only (measured ≤ 1e-15)


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


@given(v=variance_vector(3), noise=variance, rho=st.floats(-1.0, 3.0))
def test_score_scaled_dp_is_the_gain_estimators_dp(v, noise, rho):
    """x̂ = g·Y with g = a^{(1+ρ)/2}: D = Σ E(X - gY)², P = Σ (s - g√(s²+σ²))²."""
    v = np.array(v)
    g = np.asarray(theory.score_scaled_gain(rho, v, noise))
    np.testing.assert_allclose(g, wiener_gain(v, noise) ** ((1 + rho) / 2), rtol=REL)
    D, P = theory.score_scaled_dp(rho, v, noise)
    assert float(D) == pytest.approx(np.sum(v - 2 * g * v + g**2 * (v + noise)), rel=1e-10)
    assert float(P) == pytest.approx(
        np.sum((np.sqrt(v) - g * np.sqrt(v + noise)) ** 2), rel=1e-8, abs=1e-14
    )


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
    D, P = theory.score_scaled_dp(rho, v, noise)
    assert float(D) >= float(theory.dp_awgn(P, v, noise)) * (1 - REL)


def test_constant_rho_is_above_the_dp_curve_for_anisotropic_sources():
    v = jnp.array([4.0, 1.0, 0.05])  # maths §7: gap ≈ 5e-4 in D at ρ = 0.2-0.4, σ² = 0.5
    for rho in (0.2, 0.3, 0.4):
        D, P = theory.score_scaled_dp(rho, v, 0.5)
        gap = float(D - theory.dp_awgn(P, v, 0.5))
        assert 4e-4 < gap < 7e-4  # measured 5.5e-4, 6.0e-4, 5.5e-4


@given(v=variance_vector(3), noise=variance, rho=st.floats(1.0, 3.0))
def test_rho_outside_the_unit_interval_is_worse_in_both(v, noise, rho):
    v = jnp.array(v)
    D_mmse, P_mmse = theory.score_scaled_dp(1.0, v, noise)
    D, P = theory.score_scaled_dp(rho, v, noise)
    assert float(D) >= float(D_mmse) * (1 - REL)
    assert float(P) >= float(P_mmse) * (1 - REL)
    D_transport = theory.score_scaled_dp(0.0, v, noise)[0]
    D_neg, P_neg = theory.score_scaled_dp(1.0 - rho, v, noise)  # ρ ≤ 0
    assert float(D_neg) >= float(D_transport) * (1 - REL)
    assert float(P_neg) >= 0.0


@given(v=variance_vector(3), noise=variance, u=unit)
def test_geodesic_rho_lands_on_the_dp_curve(v, noise, u):
    v = jnp.array(v)
    w2 = float(theory.mmse_perception_awgn(v, noise))
    P = u * w2
    rho = theory.geodesic_rho(P, v, noise)
    assert np.all((np.asarray(rho) >= 0) & (np.asarray(rho) <= 1 + 1e-12))  # XLA round-off
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


def test_dp_awgn_edge_values():
    v = jnp.array([1.0, 4.0])
    mmse = float(theory.mmse_awgn(v, 1.0))
    w2 = float(theory.mmse_perception_awgn(v, 1.0))
    assert float(theory.dp_awgn(math.inf, v, 1.0)) == mmse
    assert float(theory.dp_awgn(w2, v, 1.0)) == pytest.approx(mmse, rel=REL)
    assert float(theory.dp_awgn(0.0, v, 1.0)) == pytest.approx(mmse + w2, rel=REL)
    for f in (theory.awgn_rate, theory.mmse_awgn, theory.mmse_perception_awgn):
        assert np.all(np.isfinite(np.asarray(f(v, 1.0))))
