"""Rate of RCC + score-scaled PF-ODE against R(D, P), and the parameters that close the gap
(maths §8).

The references share no code with `theory`: the framework's rate I(X; Y), distortion and
perception are written out from the decoder's linear gain g_i = a_i^{(1+ρ_i)/2} in mpmath
(`exact.mp_linear_decoder`), and R(D, P) comes from brute-force optimisers (`helpers`) or from
the exact formulas of `exact`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exact import (
    UNIT_ROUNDOFF,
    mp_linear_decoder,
    mp_rate_distortion,
    mp_rdp_perfect_realism,
    mp_rdp_scalar,
    stable_error_bound,
)
from helpers import matches_digits, rdp_scalar_brute, rdp_vector_brute
from hypothesis import assume, example, given, settings, strategies as st
from strategies import (
    closed_form,
    open_unit,
    unit,
    variance,
    variance_vector,
    wide_noise_ratio,
    wide_rho,
    wide_variance,
    wide_variance_vector,
)

import theory

N = 3
# Eager: the vector solver inside is compiled once per shape by theory itself.
gap = theory.framework_gap
# Jitted: eagerly its few dozen array operations would cost more than the solve.
optimal = jax.jit(theory.rdp_optimal_framework)
vec = theory.rdp_w2_vector

# The brute forces of `helpers` against R(D, P) at rates ≤ 3 nats (the moderate strategies):
# their optimisers stop within 1e-13 of the minimiser, where the rate is flat, or on the exact
# end point of the floor, and their own 1 - r² loses eps·e^{2R} ≤ 1e-13 (`rdp_scalar_brute`);
# SLSQP over (r_i, ŝ_i) with ftol 1e-15 lands within 3e-14 of the KKT value (test_vector.py).
BRUTE_TOL = 1e-12
SLSQP_TOL = 1e-9
# mpmath works at 50 digits; the closed form's 1 - r² cancels e^{2R} ≤ 1e18 of them (R ≤ 20).
MP_TOL = 1e-25


def _decoder_bounds(rho, v, noise):
    """Exact (rate, D, P) of the decoder written out, each with its float64 error bound."""
    n = len(v)
    rho = np.broadcast_to(np.asarray(rho, float), (n,))
    noise = np.broadcast_to(np.asarray(noise, float), (n,))

    def fields(*a):
        return mp_linear_decoder(a[:n], a[n : 2 * n], a[2 * n :])

    return stable_error_bound(fields, (*rho, *v, *noise))


def _solve(D, P, v):
    """R(D, P) of `rdp_w2_vector`, its allocation, and a bound on its float64 error.

    The bound is 16u(|R| + Σ_j |x_j ∂R/∂x_j|), and 2|ln λ|u more for the bisection, which
    resolves ln λ to one ulp (so λ, and D(λ) with it, to 2|ln λ|u relative). The condition sum
    needs no derivatives: R is homogeneous of degree 0 in (D, P, s²), so by Euler's relation
    Σ_i s_i² ∂R/∂s_i² = -D ∂R/∂D - P ∂R/∂P = Dλ + Pμ, every term of which is ≥ 0 (more variance
    or less budget never lowers the rate); the sum is 2(Dλ + Pμ), with Pμ = 0 at P ∈ {0, ∞}.
    """
    R, alloc = vec(D, P, v, return_allocation=True)
    lam, mu = float(alloc.distortion_multiplier), float(alloc.perception_multiplier)
    condition = 2 * (D * lam + (P * mu if 0 < P < math.inf else 0.0))
    return float(R), alloc, _operations(alloc) * UNIT_ROUNDOFF * (abs(float(R)) + condition)


def _operations(alloc):
    """16 roundings of a closed form, plus the bisection's 2|ln λ| (none at zero rate, λ = 0)."""
    lam = float(alloc.distortion_multiplier)
    return 16 + (2 * abs(math.log(lam)) if 0 < lam < math.inf else 0)


def test_isotropic_noise_example():
    """maths §8: s² = (4, 0.25), σ² = 1, ρ = 1, against the decoder written out by hand."""
    v = [4.0, 0.25]
    out = theory.framework_gap(1.0, jnp.array(v), 1.0)
    # ρ = 1 is the MMSE gain a = s²/(s² + 1) = (0.8, 0.2): rate ½ ln 5 + ½ ln 1.25 = ln 2.5,
    # D = Σ (1 - a)² s² + a² = 0.8 + 0.2 = 1, P = Σ (s - a √(s² + 1))².
    P = (2 - 0.8 * math.sqrt(5)) ** 2 + (0.5 - 0.2 * math.sqrt(1.25)) ** 2
    fields = _decoder_bounds(1.0, v, 1.0)
    for got, (exact, bound), by_hand in zip(
        (out.rate, out.distortion, out.perception), fields, (math.log(2.5), 1.0, P), strict=True
    ):
        assert abs(float(got) - exact) <= bound
        assert exact == pytest.approx(by_hand, rel=1e-14)  # the hand values, rounded a few times
    brute = rdp_vector_brute(1.0, P, v)  # exactly feasible: an upper bound on R(D, P)
    assert float(out.optimal_rate) <= brute + _solve(1.0, P, np.array(v))[2]
    assert float(out.optimal_rate) == pytest.approx(brute, abs=SLSQP_TOL)
    assert float(out.gap) == pytest.approx(math.log(2.5) - brute, abs=SLSQP_TOL)
    # maths §8 to the digits it gives.
    assert matches_digits(out.rate, "0.916291")
    assert matches_digits(out.optimal_rate, "0.853682")
    assert matches_digits(out.gap, "0.062608")


@closed_form
@given(
    v=wide_variance_vector(N),
    noise=st.one_of(wide_noise_ratio, st.lists(wide_noise_ratio, min_size=N, max_size=N)),
    rho=st.one_of(unit, wide_rho, st.lists(wide_rho, min_size=N, max_size=N)),
)
# A tiny ρ: the v = 100 component's (e^x − 1)² went subnormal and was flushed before its scaling.
@example(v=[10.0**-1.5, 1.0, 100.0], noise=0.01, rho=8.13424571731402e-149)
def test_fields_are_the_decoders_rate_distortion_and_perception(v, noise, rho):
    v = np.array(v)
    # One ratio: the paper's isotropic channel, σ² = ratio·s_1²; a list: σ_i² = ratio_i·s_i².
    noise = np.asarray(noise) * v if np.ndim(noise) else noise * v[0]
    out = gap(np.asarray(rho), v, noise, allow_any_rho=True)
    for got, (exact, bound) in zip(
        (out.rate, out.distortion, out.perception), _decoder_bounds(rho, v, noise), strict=True
    ):
        assert abs(float(got) - exact) <= bound, (float(got), exact, bound)
    # The decoder's output is one reconstruction within (D, P), at rate I(X; Y): R(D, P) ≤ I.
    bound = _solve(float(out.distortion), float(out.perception), v)[2]
    assert float(out.gap) >= -(bound + 16 * UNIT_ROUNDOFF * float(out.rate))


@given(var=variance, noise=variance, rho=unit)
def test_scalar_decoder_attains_the_brute_force_rdp(var, noise, rho):
    """Theorem 4 of the seed paper: at its own (D, P) the scalar framework's rate is R(D, P)."""
    rate, D, P = (float(x) for x in mp_linear_decoder(rho, [var], noise))
    assert rate == pytest.approx(rdp_scalar_brute(D, P, var), abs=BRUTE_TOL)
    out = gap(rho, np.array([var]), noise)
    assert float(out.optimal_rate) == pytest.approx(rdp_scalar_brute(D, P, var), abs=BRUTE_TOL)


@closed_form
@given(var=wide_variance, noise=wide_noise_ratio, rho=unit)
def test_scalar_decoder_attains_the_exact_rdp_over_wide_ranges(var, noise, rho):
    """Theorem 4 at rates up to 9 nats and beyond, against the closed form in mpmath."""
    noise = noise * var
    rate, D, P = mp_linear_decoder(rho, [var], noise)
    assert abs(rate - mp_rdp_scalar(D, P, var)) <= MP_TOL
    out = gap(rho, np.array([var]), noise)
    # The float64 R(D, P) at the float64 (D, P): the solver's bound, plus the slope of R times
    # the error of (D, P) (within 16u(|·| + condition) of the written-out values). At ρ = 0 the
    # decoder is the transport map, P = 0 exactly, and dR/dP = -∞ multiplies no error.
    (_, r_bound), (_, d_bound), (_, p_bound) = _decoder_bounds(rho, [var], noise)
    D_out, P_out = float(out.distortion), float(out.perception)
    _, alloc, solver_bound = _solve(D_out, P_out, np.array([var]))
    if rho == 0:
        assert P_out == 0.0
    slope_P = float(alloc.perception_multiplier) if P_out > 0 else 0.0
    slope_error = float(alloc.distortion_multiplier) * d_bound + slope_P * p_bound
    bound = solver_bound + r_bound + slope_error
    assert abs(float(out.gap)) <= bound, (float(out.gap), bound)


def _check_parameters(params, alloc, D, P, v, rate, rate_tol):
    """The decoder with the returned noise and ρ, written out: D and P as promised, and the rate
    R(D, P), which `rate` gives to within `rate_tol`.

    Components sent at zero rate (σ² = ∞, ρ = 1) output 0: they add D_i = P_i = s_i² and no rate.
    The parameters are a few roundings from the solver's allocation `alloc`, which carries its
    bisection's 2|ln λ|u, so each field gets the solver's operation count on its own condition.
    """
    sent = np.isfinite(np.asarray(params.noise_var))
    (got_rate, rate_bound), (got_D, D_bound), (got_P, P_bound) = _decoder_bounds(
        np.asarray(params.rho)[sent], v[sent], np.asarray(params.noise_var)[sent]
    )
    unsent = float(np.sum(v[~sent]))
    factor = _operations(alloc) / 16
    assert got_rate == pytest.approx(rate, abs=factor * rate_bound + rate_tol)
    assert got_D + unsent == pytest.approx(D, abs=factor * D_bound)
    if math.isfinite(P):
        assert got_P + unsent == pytest.approx(P, abs=factor * P_bound)


@closed_form
@given(v=wide_variance_vector(N), d=st.floats(-8.0, math.log10(0.9)), frac=open_unit)
def test_optimal_parameters_attain_rdp_when_P_binds(v, d, frac):
    v = np.array(v)
    D = 10.0**d * v.sum()
    _, shannon = vec(D, math.inf, v, return_allocation=True)
    P = frac * float(jnp.sum(shannon.perception))  # below the Shannon optimum's W2²: P binds
    R, alloc, bound = _solve(D, P, v)
    assume(R > float(mp_rate_distortion(D, v)) + 1e-9)
    params = optimal(D, P, v)
    assert np.all(np.isfinite(np.asarray(params.noise_var)))  # every component is sent
    # ρ_i = ln(1 - √P_i/s_i)/ln r_i ∈ [0, 1] (maths §8), exactly: the quotient's rounding
    # past 1 is clipped, so that every function of ρ takes it as it is.
    assert np.all((np.asarray(params.rho) >= 0) & (np.asarray(params.rho) <= 1))
    _check_parameters(params, alloc, D, P, v, R, bound)


@closed_form
@given(v=wide_variance_vector(N), d=st.floats(-8.0, -1e-4))  # D < Σs²: the budget is tight
def test_optimal_parameters_without_perception_budget(v, d):
    v = np.array(v)
    D = 10.0**d * v.sum()
    params = optimal(D, math.inf, v)
    _, alloc, solver_bound = _solve(D, math.inf, v)
    # ρ = 1, the MMSE decoder. ρ_i = ln(ŝ_i/s_i)/ln r_i loses relative precision ~eps/r_i as
    # r_i → 0 (a component at the water level), where its gain r_i^{1+ρ_i} is ~0 anyway: check
    # the components with rate > 1e-6 nats, to a few ulps (measured ≤ 1 ulp).
    clear = np.asarray(alloc.rate) > 1e-6
    np.testing.assert_allclose(np.asarray(params.rho)[clear], 1.0, rtol=1e-12)
    exact, bound = stable_error_bound(lambda D, *v: mp_rate_distortion(D, v), (D, *v), budgets=1)
    assert float(params.rate) == pytest.approx(exact, abs=bound + solver_bound)
    _check_parameters(params, alloc, D, math.inf, v, exact, _operations(alloc) / 16 * bound)


@closed_form
@given(v=wide_variance_vector(N), d=st.floats(-8.0, math.log10(1.9)))
def test_optimal_parameters_at_perfect_realism(v, d):
    v = np.array(v)
    D = 10.0**d * v.sum()
    params = optimal(D, 0.0, v)
    np.testing.assert_array_equal(params.rho, 0.0)  # ρ = 0: the PF-ODE, perfect realism
    _, alloc, solver_bound = _solve(D, 0.0, v)
    exact, bound = stable_error_bound(
        lambda D, *v: mp_rdp_perfect_realism(D, v), (D, *v), budgets=1
    )
    assert float(params.rate) == pytest.approx(exact, abs=bound + solver_bound)
    _check_parameters(params, alloc, D, 0.0, v, exact, _operations(alloc) / 16 * bound)


@settings(max_examples=10)  # each brute force is 8 SLSQP runs (~0.1 s)
@given(v=variance_vector(N), d=st.floats(0.03, 0.9), frac=open_unit)
def test_optimal_parameters_reach_the_brute_force_rdp(v, d, frac):
    v = np.array(v)
    D = d * v.sum()
    _, shannon = vec(D, math.inf, v, return_allocation=True)
    P = frac * float(jnp.sum(shannon.perception))
    params = optimal(D, P, v)
    rate, D_out, P_out = (float(x) for x in mp_linear_decoder(params.rho, v, params.noise_var))
    assert rate == pytest.approx(rdp_vector_brute(D_out, P_out, v), abs=SLSQP_TOL)


def test_parameters_are_valid_inputs_of_the_decoders_functions():
    """At the MMSE decoder's own (D, P) the perception budget does not bind, and ρ = 1 exactly:
    the quotient rounded to 1 + 2ε for several of these σ, which `score_scaled_dp` and
    `framework_gap` refused (and `rdp-jax sweep --noise matched` with them)."""
    v = jnp.array([1.64004268])
    for sigma in np.linspace(0.1, 3.0, 30):
        D, P = theory.score_scaled_dp(1.0, v, sigma**2)
        params = theory.rdp_optimal_framework(D, P, v)
        assert 0.0 <= float(params.rho[0]) <= 1.0
        theory.framework_gap(params.rho, v, params.noise_var)  # ρ ∈ [0, 1]: no allow_any_rho
        theory.score_scaled_dp(params.rho, v, params.noise_var)


def test_only_the_rate_is_differentiated():
    """The rate's gradient is the envelope theorem's (against a central difference, within its
    truncation error h²·|R‴|/6 and rounding ε·|R|/h: below 1e-8 at h = 1e-5); the solved
    allocation's fields, and the noise and ρ from them, give NaN, not a silent 0, in both
    modes (their central differences are not 0: dρ/dD ≈ (−0.26, −0.38))."""
    v, P, h = jnp.array([4.0, 0.25]), 0.12, 1e-5

    def rate(D):
        return theory.rdp_optimal_framework(D, P, v).rate

    assert float(jax.grad(rate)(1.0)) == pytest.approx(
        (float(rate(1.0 + h)) - float(rate(1.0 - h))) / (2 * h), abs=1e-8
    )
    fields = {
        "rho": lambda D: theory.rdp_optimal_framework(D, P, v).rho,
        "noise_var": lambda D: theory.rdp_optimal_framework(D, P, v).noise_var,
        "recon_std": lambda D: vec(D, P, v, return_allocation=True)[1].recon_std,
    }
    # The rate's second derivative needs dλ/dD, which the iterations do not give: NaN (it
    # was a wrong finite number before).
    assert np.isnan(float(jax.hessian(rate)(1.0)))
    assert np.all(
        np.isnan(np.asarray(jax.hessian(lambda a: vec(a[0], a[1], v))(jnp.array([1.0, P]))))
    )
    for name, field in fields.items():
        assert np.all(np.isnan(np.asarray(jax.jacfwd(field)(1.0)))), name
        assert np.all(np.isnan(np.asarray(jax.jacrev(field)(1.0)))), name
        assert np.all(np.asarray(field(1.0 + h)) != np.asarray(field(1.0 - h))), name


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


@pytest.mark.parametrize(
    ("dtype", "exponents"), [(np.float64, (-500, -75, 75, 500)), (np.float32, (-58, -30, 30, 60))]
)
def test_optimal_parameters_do_not_depend_on_the_scale(dtype, exponents):
    """4ʲ times the budgets and variances (exact) gives the same ρ_i and rate bit for bit and
    4ʲ times the noise, wherever that noise is a normal float. Unscaled, float32 at s² ≈ 1e-35
    flushed P_i = (s_i − ŝ_i)² to 0, which set every ρ_i to 0 where the truth is 1."""
    v = np.array([4.0, 0.25, 1.0], dtype)
    for D, P in [(0.5, 0.3), (0.01, 0.001), (2.0, 0.1)]:
        D, P = dtype(D), dtype(P)
        base = theory.rdp_optimal_framework(D, P, v)
        for j in exponents:
            c = dtype(2.0 ** (2 * j))
            scaled = theory.rdp_optimal_framework(D * c, P * c, v * c)
            assert scaled.rate == base.rate, (j, float(scaled.rate), float(base.rate))
            np.testing.assert_array_equal(scaled.rho, base.rho)
            np.testing.assert_array_equal(scaled.noise_var, base.noise_var * c)
