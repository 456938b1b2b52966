"""Noise schedules: exact t ↔ σ conversions and VP ↔ VE consistency (maths §7)."""

import dataclasses
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from hypothesis import given, strategies as st

from rdp_jax._schedules import VE, AbstractSchedule, VPCosine, VPLinear

# Harmless once tests/conftest.py enables x64 for the whole suite; needed before it did.
jax.config.update("jax_enable_x64", True)

SCHEDULES = [
    VE(),
    VPLinear(),
    VPLinear(beta_min=0.0, beta_max=5.0),  # β_min = 0: the quadratic's degenerate root
    VPLinear(beta_min=2.0, beta_max=2.0),  # constant β: the linear term alone
    VPCosine(),
    VPCosine(s=0.0),  # σ = tan(πt/2)
]
IDS = ["VE", "VPLinear", "VPLinear-bmin0", "VPLinear-const", "VPCosine", "VPCosine-s0"]
# The defaults only, where the degenerate variants add compilation time but no coverage.
MAIN, MAIN_IDS = [VE(), VPLinear(), VPCosine()], ["VE", "VPLinear", "VPCosine"]

# Both directions are closed forms of a few ulp each: 1e-12 leaves a factor ~1000 of headroom.
ROUND_TRIP_RTOL = 1e-12


def sigma_max(schedule: AbstractSchedule) -> float:
    """The largest σ tested: σ(t_max) for VPLinear (≈ 151 by default), else 1e3.

    VPCosine has σ ≈ 1/(h(1 - t)) near t = 1, so the ulp of t alone moves σ by a relative
    ε/(1 - t) ≈ εσ: at σ = 1e3 that is ~1e-13, inside ROUND_TRIP_RTOL; at 1e4 it is not.
    """
    return float(schedule.sigma(1.0)) if isinstance(schedule, VPLinear) else 1e3


def alpha_bar(schedule: AbstractSchedule, t):
    """ᾱ(t) straight from the papers' definitions, sharing no code with the module."""
    if isinstance(schedule, VPLinear):  # Song et al. 2021
        b0, b1 = schedule.beta_min, schedule.beta_max
        return np.exp(-b0 * t - 0.5 * (b1 - b0) * t**2)
    s = schedule.s  # Nichol & Dhariwal 2021, eq. 17

    def f(u):
        return np.cos((u + s) / (1 + s) * np.pi / 2) ** 2

    return f(t) / f(0.0)


# ---------------------------------------------------------------------------------------------
# Round trips.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_sigma_round_trip_on_a_log_grid(schedule):
    # Down to σ = 1e-30, where 1 - ᾱ = σ²/(1 + σ²) is far below float64's ulp of 1.
    sigma = jnp.logspace(-30, math.log10(sigma_max(schedule)), 400)
    back = schedule.sigma(schedule.t_of_sigma(sigma))
    np.testing.assert_allclose(back, sigma, rtol=ROUND_TRIP_RTOL, atol=0)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_time_round_trip_on_a_grid(schedule):
    t_top = 1e3 if isinstance(schedule, VE) else 1 - 1e-6
    t = jnp.concatenate([jnp.logspace(-15, -1, 50), jnp.linspace(0.1, t_top, 200)])
    back = schedule.t_of_sigma(schedule.sigma(t))
    np.testing.assert_allclose(back, t, rtol=ROUND_TRIP_RTOL, atol=0)


@pytest.mark.parametrize("schedule", MAIN, ids=MAIN_IDS)
@given(log_sigma=st.floats(-12.0, 2.0))
def test_sigma_round_trip_property(schedule, log_sigma):
    sigma = min(10.0**log_sigma, sigma_max(schedule))
    assert float(schedule.sigma(schedule.t_of_sigma(sigma))) == pytest.approx(
        sigma, rel=ROUND_TRIP_RTOL
    )


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_end_points(schedule):
    assert float(schedule.sigma(0.0)) == 0.0
    assert float(schedule.scale(0.0)) == pytest.approx(1.0, abs=1e-15)
    if isinstance(schedule, VPLinear):
        # σ(1) maps back to t = 1 exactly, although the root rounds to 1 + ulp.
        assert float(schedule.t_of_sigma(schedule.sigma(1.0))) == pytest.approx(1.0, abs=1e-15)


def test_vp_cosine_reaches_infinite_sigma_only_at_t_equal_one():
    schedule = VPCosine()
    t = 1 - 1e-9
    assert math.isfinite(float(schedule.sigma(t)))
    assert float(schedule.scale(t)) > 0
    assert float(schedule.t_of_sigma(1e8)) < 1


# ---------------------------------------------------------------------------------------------
# VP ↔ VE consistency and the SDE coefficients.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", SCHEDULES[1:], ids=IDS[1:])
def test_vp_sigma_is_the_ve_level_of_the_vp_channel(schedule):
    # Away from t = 0 the naive (1 - ᾱ)/ᾱ has no cancellation worth mentioning.
    t = np.linspace(0.05, 0.95, 37)
    ab = alpha_bar(schedule, t)
    np.testing.assert_allclose(schedule.sigma(t) ** 2, (1 - ab) / ab, rtol=1e-12)
    np.testing.assert_allclose(schedule.scale(t) ** 2, ab, rtol=1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES[1:], ids=IDS[1:])
@mpmath.workdps(50)
def test_vp_sigma_keeps_precision_at_tiny_t(schedule):
    for t in (1e-14, 1e-10, 1e-6, 1e-3):
        if isinstance(schedule, VPLinear):
            b0, b1 = schedule.beta_min, schedule.beta_max
            ab = mpmath.exp(-b0 * mpmath.mpf(t) - (b1 - b0) * mpmath.mpf(t) ** 2 / 2)
        else:
            s = mpmath.mpf(schedule.s)

            def f(u, s=s):
                return mpmath.cos((u + s) / (1 + s) * mpmath.pi / 2) ** 2

            ab = f(mpmath.mpf(t)) / f(0)
        exact = float(mpmath.sqrt((1 - ab) / ab))
        assert float(schedule.sigma(t)) == pytest.approx(exact, rel=1e-13)


# Harness functions run once or twice: compile them fast rather than optimised (the library code
# they call is unaffected). XLA's backend optimisation is about half of each compilation.
harness_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


@harness_jit
def sde_coefficients_and_marginal_derivatives(schedule, t):
    """(f, g², d ln s/dt, s² dσ²/dt) on a grid, the derivatives by autodiff: one compilation."""
    dlog_scale = jax.vmap(jax.grad(lambda u: jnp.log(schedule.scale(u))))(t)
    dsigma_sq = jax.vmap(jax.grad(lambda u: schedule.sigma(u) ** 2))(t)
    return (
        schedule.drift_coeff(t),
        schedule.diffusion_sq(t),
        dlog_scale,
        schedule.scale(t) ** 2 * dsigma_sq,
    )


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_sde_coefficients_match_the_marginals(schedule):
    # X_t = s(t)(X + σ(t)ε) solves dX = f X dt + g dW iff f = d ln s/dt and g² = s² dσ²/dt.
    t = jnp.linspace(0.05, 0.95, 19)
    f, g_sq, dlog_scale, g_sq_from_sigma = sde_coefficients_and_marginal_derivatives(schedule, t)
    np.testing.assert_allclose(f, dlog_scale, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_sq, g_sq_from_sigma, rtol=1e-12)


def test_ve_coefficients():
    t = jnp.array([0.0, 0.5, 80.0])
    np.testing.assert_array_equal(VE().sigma(t), t)
    np.testing.assert_array_equal(VE().scale(t), 1.0)
    np.testing.assert_array_equal(VE().drift_coeff(t), 0.0)
    np.testing.assert_array_equal(VE().diffusion_sq(t), 2 * t)


def test_vp_linear_beta():
    schedule = VPLinear(beta_min=0.1, beta_max=20.0)
    t = jnp.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(schedule.diffusion_sq(t), [0.1, 10.05, 20.0], rtol=1e-15)
    np.testing.assert_allclose(schedule.drift_coeff(t), [-0.05, -5.025, -10.0], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# dtypes, pytrees, transforms.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", MAIN, ids=MAIN_IDS)
def test_float32_stays_float32_and_accurate(schedule):
    # Python-float hyperparameters are weakly typed: they must not promote float32 to float64.
    t32 = jnp.linspace(0.01, 0.9, 11, dtype=jnp.float32)
    t64 = t32.astype(jnp.float64)
    for method in ("sigma", "scale", "drift_coeff", "diffusion_sq"):
        out = getattr(schedule, method)(t32)
        assert out.dtype == jnp.float32, method
        ref = getattr(schedule, method)(t64)
        np.testing.assert_allclose(out, ref, rtol=2e-5, atol=1e-6, err_msg=method)
    back = schedule.t_of_sigma(schedule.sigma(t32))
    assert back.dtype == jnp.float32
    np.testing.assert_allclose(back, t32, rtol=2e-5)


def test_integer_input_is_promoted():
    assert jnp.issubdtype(VE().sigma(2).dtype, jnp.floating)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_schedules_are_frozen_leafless_pytrees_under_jit(schedule):
    assert jax.tree.leaves(schedule) == []
    with pytest.raises(dataclasses.FrozenInstanceError):  # an equinox Module is a frozen dataclass
        schedule.t_max = 2.0  # type: ignore[misc]

    @jax.jit
    def round_trip(s, sigma):
        return s.sigma(s.t_of_sigma(sigma))

    assert float(round_trip(schedule, 0.5)) == pytest.approx(0.5, rel=ROUND_TRIP_RTOL)


def test_no_retrace_for_equal_schedules():
    @jax.jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def sigma_of(schedule, t):
        return schedule.sigma(t)

    sigma_of(VPLinear(), 0.3)
    sigma_of(VPLinear(), 0.7)  # an equal, separately built schedule: same static data


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "t"),
    [
        (VE(), -1.0),
        (VE(), math.inf),
        (VE(), math.nan),
        (VPLinear(), -0.1),
        (VPLinear(), 1.1),
        (VPCosine(), 1.0),
        (VPCosine(), -1e-3),
    ],
)
def test_out_of_range_time_raises(schedule, t):
    for method in ("sigma", "scale", "drift_coeff", "diffusion_sq"):
        with pytest.raises(ValueError, match=f"{method}: `t`"):
            getattr(schedule, method)(t)
    with pytest.raises(ValueError, match="`t`"):  # one bad entry in an array is enough
        schedule.sigma(jnp.array([0.5, t]))


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf])
def test_nonpositive_sigma_raises(schedule, sigma):
    with pytest.raises(ValueError, match="`sigma`"):
        schedule.t_of_sigma(sigma)


def test_sigma_beyond_vp_linear_raises():
    with pytest.raises(ValueError, match="`sigma`"):
        VPLinear().t_of_sigma(1.01 * float(VPLinear().sigma(1.0)))


def test_bad_time_raises_under_jit_instead_of_nan():
    # Traced values cannot raise ValueError: `equinox.error_if` fails the computation at run time,
    # which under `jax.jit` surfaces as JaxRuntimeError carrying the message.
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"VPLinear.sigma: `t` must lie in"):
        jax.block_until_ready(jax.jit(VPLinear().sigma)(-0.5))
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"VPCosine.t_of_sigma: `sigma` must be"):
        jax.block_until_ready(jax.jit(VPCosine().t_of_sigma)(0.0))


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: VPLinear(beta_min=-0.1), "beta_min"),
        (lambda: VPLinear(beta_min=math.nan), "beta_min"),
        (lambda: VPLinear(beta_max=0.0, beta_min=0.0), "beta_max"),
        (lambda: VPLinear(beta_min=5.0, beta_max=1.0), "beta_max"),
        (lambda: VPCosine(s=-0.1), "`s`"),
        (lambda: VPCosine(s=math.inf), "`s`"),
    ],
)
def test_bad_hyperparameters_raise(make, name):
    with pytest.raises(ValueError, match=name):
        make()
