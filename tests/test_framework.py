"""Rate of RCC + score-scaled PF-ODE against R(D, P), and the parameters that close the gap
(maths §8)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import matches_digits
from hypothesis import assume, given, strategies as st
from strategies import open_unit, unit, variance, variance_vector

import theory

N = 3
# Eager: the vector solver inside is compiled once per shape by theory itself.
gap = theory.framework_gap
optimal = theory.rdp_optimal_framework
vec = theory.rdp_w2_vector

# R(D, P) comes from the bisection solver: exact to ~1e-14 nats (see test_vector.py).
SOLVER_TOL = 1e-11


def test_isotropic_noise_example():
    out = theory.framework_gap(1.0, jnp.array([4.0, 0.25]), 1.0)
    assert matches_digits(out.rate, "0.916")  # maths §8 to the digits it gives
    assert matches_digits(out.optimal_rate, "0.854")
    assert float(out.rate) == pytest.approx(0.5 * math.log(5 * 1.25), rel=1e-14)  # Σ ½ ln(1+s²/σ²)
    assert float(out.gap) == float(out.rate - out.optimal_rate)
    assert float(out.gap) > 0.05


@given(
    v=variance_vector(N),
    noise=st.one_of(variance, variance_vector(N)),
    rho=st.one_of(unit, st.floats(-0.5, 2.0)),
)
def test_gap_is_never_negative(v, noise, rho):
    v, noise = np.array(v), np.broadcast_to(np.asarray(noise, dtype=float), (N,))
    out = gap(rho, v, noise)
    assert float(out.gap) >= -SOLVER_TOL
    # The fields are the same computations as the public functions: equal to a few ulps.
    assert float(out.rate) == pytest.approx(float(theory.awgn_rate(v, noise)), rel=1e-13)
    D, P = theory.score_scaled_dp(rho, v, noise)
    assert float(out.distortion) == pytest.approx(float(D), rel=1e-13)
    assert float(out.perception) == pytest.approx(float(P), rel=1e-13)


@given(var=variance, noise=variance, rho=unit)
def test_scalar_source_has_no_gap(var, noise, rho):
    out = gap(rho, np.array([var]), noise)  # Theorem 4 of the seed paper
    assert float(out.gap) == pytest.approx(0.0, abs=SOLVER_TOL)


@given(v=variance_vector(N), d=st.floats(0.03, 0.9), frac=open_unit)
def test_optimal_parameters_close_the_gap_when_P_binds(v, d, frac):
    v = np.array(v)
    D = d * v.sum()
    _, shannon = vec(D, math.inf, v, return_allocation=True)
    P = frac * float(jnp.sum(shannon.perception))  # below the Shannon optimum's W2²: P binds
    R = float(vec(D, P, v))
    assume(R > float(theory.rate_distortion(D, v)) + 1e-9)
    params = optimal(D, P, v)
    assert np.all(np.isfinite(np.asarray(params.noise_var)))  # every component is sent
    assert np.all((np.asarray(params.rho) >= 0) & (np.asarray(params.rho) <= 1 + 1e-12))
    assert float(params.rate) == pytest.approx(R, rel=1e-13)
    out = gap(params.rho, v, params.noise_var)
    # Round trip through r_i → σ_i² → a_i → g_i: a few hundred ulps (measured ≤ 2.4e-14).
    assert float(out.gap) == pytest.approx(0.0, abs=1e-9)
    assert float(out.rate) == pytest.approx(R, rel=1e-10)
    assert float(out.distortion) == pytest.approx(D, rel=1e-10)
    assert float(out.perception) == pytest.approx(P, rel=1e-8)


@given(v=variance_vector(N), d=st.floats(0.03, 1.5))
def test_optimal_parameters_without_perception_budget(v, d):
    v = np.array(v)
    D = d * v.sum()
    params = optimal(D, math.inf, v)
    _, alloc = vec(D, math.inf, v, return_allocation=True)
    # ρ = 1, the MMSE decoder. ρ_i = ln(ŝ_i/s_i)/ln r_i loses relative precision ~eps/r_i as
    # r_i → 0 (a component at the water level), where its gain r_i^{1+ρ_i} is ~0 anyway: check
    # the components with rate > 1e-6 nats, to a few ulps (measured ≤ 1 ulp).
    clear = np.asarray(alloc.rate) > 1e-6
    np.testing.assert_allclose(np.asarray(params.rho)[clear], 1.0, rtol=1e-12)
    assert float(params.rate) == pytest.approx(float(theory.rate_distortion(D, v)), abs=1e-12)
    sent = np.isfinite(np.asarray(params.noise_var))
    assume(sent.any())
    rate = float(theory.awgn_rate(v[sent], np.asarray(params.noise_var)[sent]))
    assert rate == pytest.approx(float(params.rate), rel=1e-10)


@given(v=variance_vector(N), d=st.floats(0.03, 1.9))
def test_optimal_parameters_at_perfect_realism(v, d):
    v = np.array(v)
    D = d * v.sum()
    params = optimal(D, 0.0, v)
    np.testing.assert_array_equal(params.rho, 0.0)  # ρ = 0: the PF-ODE, perfect realism
    out = gap(params.rho, v, params.noise_var)
    assert float(out.perception) == 0.0
    assert float(out.distortion) == pytest.approx(D, rel=1e-10)
    assert float(out.gap) == pytest.approx(0.0, abs=1e-9)


def test_zero_rate_edge_values():
    params = theory.rdp_optimal_framework(100.0, 0.1, jnp.array([4.0, 0.25]))
    assert np.asarray(params.noise_var).tolist() == [math.inf, math.inf]
    assert np.asarray(params.rho).tolist() == [1.0, 1.0]
    assert float(params.rate) == 0.0


def test_zero_distortion_edge_values_are_not_nan():
    params = theory.rdp_optimal_framework(0.0, 0.1, jnp.array([4.0, 0.25]))
    assert np.asarray(params.noise_var).tolist() == [0.0, 0.0]
    assert float(params.rate) == math.inf
    assert not np.any(np.isnan(np.asarray(params.rho)))
