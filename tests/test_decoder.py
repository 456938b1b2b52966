"""The score-scaled PF-ODE decoder against the closed form of maths §7."""

import math
import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import theory
from rdp_jax import (
    VPCosine,
    VPLinear,
    decode,
    metrics,
    posterior_sample,
    scores,
    tweedie_denoise,
)

# Each fixed-step method's convergence order, and a pair of budgets in its asymptotic range
# (below it, large steps at σ = 10 dominate; above it, the σ_min floor of ~1e-5 does).
_ORDER = {
    "euler": (1, 64),
    "heun": (2, 32),
    "exp1": (1, 16),
    "exp2": (2, 16),
    "exp3": (3, 16),
    "exp4": (4, 16),
}


def _diag_gaussian(variances):
    variances = jnp.asarray(variances, dtype=jnp.float64)
    return scores.gaussian(jnp.zeros(variances.shape[0]), variances)


def _worst_gain_error(method, num_steps=None):
    variances = jnp.array([0.1, 0.5, 2.0, 10.0])
    model = _diag_gaussian(variances)
    worst = 0.0
    for sigma in (0.1, 1.0, 10.0):
        for rho in (0.0, 0.5, 1.0):
            gains = jnp.diag(
                decode(jnp.eye(4), sigma, rho, model, method=method, num_steps=num_steps)
            )
            exact = theory.score_scaled_gain(rho, variances, sigma**2)
            worst = max(worst, float(jnp.max(jnp.abs(gains / exact - 1))))
    return worst


def test_adaptive_endpoint_matches_closed_form_gain():
    # The controller's rtol is 1e-8; relative gain errors of 1e-6 leave a 100x margin.
    assert _worst_gain_error("tsit5") < 1e-6


@pytest.mark.parametrize("method", sorted(_ORDER))
def test_fixed_step_methods_converge_at_their_order(method):
    order, steps = _ORDER[method]
    coarse, fine = _worst_gain_error(method, steps), _worst_gain_error(method, 2 * steps)
    # Doubling the budget must cut the worst gain error by 2^order, up to 0.2 in the exponent
    # for the pre-asymptotic terms (measured: euler 0.93, heun 2.97, exp1 1.0, exp2 2.3,
    # exp3 3.4, exp4 6.6; exp4 outruns its order while its startup error decays).
    assert math.log2(coarse / fine) >= order - 0.2


@given(
    variances=st.lists(st.floats(0.1, 10.0), min_size=4, max_size=4),
    log_sigma=st.floats(math.log(0.1), math.log(10.0)),
    rho=st.floats(0.0, 1.0),
)
def test_default_decoder_matches_closed_form(variances, log_sigma, rho):
    # A fixed shape, (4, 4), keeps this to one compilation (the same as the test above).
    variances = jnp.array(variances)
    model = _diag_gaussian(variances)
    sigma = math.exp(log_sigma)
    y = jax.random.normal(jax.random.key(0), (4, 4)) * 2
    expected = y * theory.score_scaled_gain(rho, variances, sigma**2)
    # rtol 1e-8 in the adaptive controller: 1e-6 of the output scale is a 100x margin.
    np.testing.assert_allclose(decode(y, sigma, rho, model), expected, rtol=1e-6, atol=1e-6)


@given(
    variance=st.floats(0.2, 5.0),
    sigma=st.floats(0.2, 3.0),
    rho=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_empirical_dp_reaches_the_curve(variance, sigma, rho, seed):
    """Monte Carlo (D, P) of the scalar decoder sit on dp_awgn.

    D̂ and the output's second moment (which fixes P for a Gaussian) are means of n = 4000
    i.i.d. terms, compared to the curve point within 5 standard errors: a false-failure rate of
    ~6e-7 per comparison (normal approximation), ~4e-5 over a 30-example CI run; CI
    derandomises the examples, so a given commit passes or fails deterministically.
    """
    model = _diag_gaussian([variance])
    n = 4000
    key_x, key_n = jax.random.split(jax.random.key(seed))
    x = model.sample(key_x, n)
    y = x + sigma * jax.random.normal(key_n, x.shape)
    x_hat = decode(y, sigma, rho, model, num_steps=20)[:, 0]
    D_hat = metrics.mse(x[:, 0], x_hat)
    D, P = theory.score_scaled_dp(rho, jnp.array([variance]), sigma**2)
    assert abs(D - theory.dp_awgn(P, jnp.array([variance]), sigma**2)) < 1e-12
    assert abs(D_hat.value - D) <= 5 * D_hat.stderr
    # In 1-D, W2²(N(0, s²), N(0, ŝ²)) = (s - ŝ)², so P is pinned by the output variance ŝ²:
    # check that (its W2 estimators have no usable standard error near P = 0).
    s_hat_sq = (math.sqrt(variance) - math.sqrt(P)) ** 2
    squares = x_hat**2
    assert abs(jnp.mean(squares) - s_hat_sq) <= 5 * jnp.std(squares) / math.sqrt(n)


@pytest.mark.parametrize(
    ("schedule", "method"),
    [(VPLinear(), "tsit5"), (VPCosine(), "tsit5"), (VPLinear(), "heun")],
    ids=["vp-linear-tsit5", "vp-cosine-tsit5", "vp-linear-heun"],
)
def test_vp_and_ve_decode_the_same(schedule, method):
    variances = jnp.array([0.3, 1.0, 3.0])
    model = _diag_gaussian(variances)
    y = jax.random.normal(jax.random.key(1), (5, 3)) * 2
    kwargs = {} if method == "tsit5" else {"num_steps": 401}
    ve = decode(y, 1.5, 0.3, model, method=method, **kwargs)
    vp = decode(y, 1.5, 0.3, model, method=method, schedule=schedule, **kwargs)
    # Both are the same ODE; they differ by each run's discretisation error (~rtol for tsit5,
    # O(h²) for Heun on 200 steps).
    tol = 1e-6 if method == "tsit5" else 1e-3
    np.testing.assert_allclose(vp, ve, rtol=tol, atol=tol)


def test_per_dimension_rho():
    variances = jnp.array([4.0, 1.0, 0.05])
    model = _diag_gaussian(variances)
    rho = theory.geodesic_rho(0.05, variances, 0.5)
    gains = jnp.diag(decode(jnp.eye(3), math.sqrt(0.5), rho, model))
    np.testing.assert_allclose(gains, theory.score_scaled_gain(rho, variances, 0.5), rtol=1e-6)


def test_single_sample_and_batch_agree():
    model = _diag_gaussian([0.5, 2.0])
    y = jnp.array([[0.3, -1.2], [2.0, 0.1]])
    batch = decode(y, 0.7, 0.4, model, num_steps=12)
    single = decode(y[1], 0.7, 0.4, model, num_steps=12)
    np.testing.assert_array_equal(single, batch[1])
    per_sample = decode(y, jnp.array([0.7, 0.7]), 0.4, model, num_steps=12)
    np.testing.assert_array_equal(per_sample, batch)


def test_nfe_is_reported_and_counted():
    counter = []

    class Counting(scores.Gaussian):
        def denoise(self, x, sigma):
            jax.debug.callback(lambda: counter.append(1), ordered=True)
            return super().denoise(x, sigma)

    base = _diag_gaussian([0.5, 2.0])
    model = Counting(base.mean, base.eigenvalues, base.eigenvectors)
    y = jnp.array([[0.3, -1.2]])
    for method, steps in (("tsit5", None), ("exp4", 13), ("heun", 9)):
        jax.effects_barrier()
        counter.clear()
        _, info = decode(y, 1.0, 0.5, model, method=method, num_steps=steps, return_info=True)
        jax.effects_barrier()
        assert int(info.nfe[0]) == len(counter), method
        if steps is not None:
            assert int(info.nfe[0]) <= steps


def test_no_retrace_when_data_or_rho_change():
    from rdp_jax._decoder import _decode

    model = _diag_gaussian([0.5, 2.0])
    # Two signatures: a shared σ and one σ per sample (a different shape), each compiled once.
    decode(jnp.ones((4, 2)), 1.0, 0.2, model, num_steps=10)
    decode(jnp.ones((4, 2)), jnp.ones(4), 0.2, model, num_steps=10)
    before = _decode._decode_batch._cached._cache_size()
    for i in range(3):
        other = _diag_gaussian([0.5 + i, 2.0])
        decode(jnp.full((4, 2), float(i)), 1.0 + i, 0.1 * i, other, num_steps=10)
        decode(jnp.ones((4, 2)), jnp.full(4, 2.0), jnp.array([0.3, 0.9]), other, num_steps=10)
    assert _decode._decode_batch._cached._cache_size() == before


def test_rho_one_is_tweedie_and_posterior_sampling_costs_twice_the_mmse():
    variances = jnp.array([1.0, 0.5])
    model = _diag_gaussian(variances)
    sigma = 1.0
    x = model.sample(jax.random.key(3), 2000)
    y = x + sigma * jax.random.normal(jax.random.key(4), x.shape)
    # On a Gaussian, ρ = 1 keeps D(x, σ) constant along the flow (maths §7), so every
    # exponential integrator is exact: agreement to round-off.
    np.testing.assert_allclose(
        decode(y, sigma, 1.0, model, num_steps=20), tweedie_denoise(y, sigma, model), atol=1e-12
    )
    samples = posterior_sample(jax.random.key(5), y, sigma, model, num_steps=100)
    D = metrics.mse(x, samples)
    D_star = theory.mmse_awgn(variances, sigma**2)
    # Euler-Maruyama at 100 EDM steps is biased by well under 2% of D* here; the rest is
    # sampling error, allowed 5 standard errors (false-failure rate ~6e-7).
    assert abs(D.value - 2 * D_star) <= 5 * D.stderr + 0.02 * D_star


def test_float32_decoding_is_accurate_to_float32():
    variances = jnp.array([0.3, 3.0], dtype=jnp.float32)
    model = scores.gaussian(jnp.zeros(2, jnp.float32), variances)
    y = jnp.array([[1.0, -2.0]], dtype=jnp.float32)
    out = decode(y, 1.0, 0.5, model, num_steps=20)
    assert out.dtype == jnp.float32
    exact = y * theory.score_scaled_gain(0.5, variances.astype(jnp.float64), 1.0)
    # exp4 at 20 steps is good to ~1e-4 here (float64); float32 adds ~1e-6.
    np.testing.assert_allclose(out, exact, rtol=2e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"y": jnp.array([[jnp.nan, 0.0]])}, "y"),
        ({"y": jnp.ones((2, 3))}, "y"),
        ({"rho": 1.5}, "rho"),
        ({"rho": -0.1}, "rho"),
        ({"rho": jnp.nan}, "rho"),
        ({"rho": jnp.ones(3)}, "rho"),
        ({"method": "rk4"}, "method"),
        ({"method": "exp4", "num_steps": 1}, "num_steps"),
        ({"method": "tsit5", "num_steps": 10}, "num_steps"),
        ({"sigma": jnp.ones(5)}, "sigma"),
    ],
)
def test_bad_input_raises(kwargs, match):
    model = _diag_gaussian([0.5, 2.0])
    args = {"y": jnp.ones((2, 2)), "sigma": 1.0, "rho": 0.5} | kwargs
    rest = {k: v for k, v in kwargs.items() if k in ("method", "num_steps")}
    with pytest.raises(ValueError, match=match):
        decode(args["y"], args["sigma"], args["rho"], model, **rest)


def test_rho_outside_unit_interval_on_request():
    model = _diag_gaussian([0.5, 2.0])
    out = decode(jnp.eye(2), 1.0, 1.5, model, allow_any_rho=True)
    np.testing.assert_allclose(
        jnp.diag(out), theory.score_scaled_gain(1.5, jnp.array([0.5, 2.0]), 1.0), rtol=1e-6
    )


def test_bad_input_raises_under_jit():
    model = _diag_gaussian([0.5, 2.0])

    @jax.jit
    def run(y, sigma):
        return decode(y, sigma, 0.5, model, num_steps=8)

    with pytest.raises(Exception, match="sigma"):
        jax.block_until_ready(run(jnp.ones((2, 2)), -1.0))
    with pytest.raises(Exception, match="y"):
        jax.block_until_ready(run(jnp.full((2, 2), jnp.nan), 1.0))


def test_assert_max_traces_on_the_compiled_path():
    model = _diag_gaussian([0.5, 2.0])

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def run(y, sigma, rho):
        return decode(y, sigma, rho, model, num_steps=8)

    for i in range(3):
        run(jnp.full((3, 2), float(i)), jnp.asarray(1.0 + i), jnp.asarray(0.25 * i))


_SHARDED_SCRIPT = """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import theory
from rdp_jax import decode, scores

assert len(jax.devices()) == 2
mesh = Mesh(np.array(jax.devices()), ("batch",))
sharding = NamedSharding(mesh, PartitionSpec("batch"))
variances = jnp.array([0.5, 2.0])
model = scores.gaussian(jnp.zeros(2), variances)
y = jax.device_put(jnp.arange(16.0).reshape(8, 2), sharding)
out = decode(y, 1.0, 0.3, model, num_steps=20)
assert out.sharding.is_equivalent_to(sharding, out.ndim), out.sharding
np.testing.assert_allclose(out, decode(np.asarray(y), 1.0, 0.3, model, num_steps=20), rtol=1e-12)
np.testing.assert_allclose(out, y * theory.score_scaled_gain(0.3, variances, 1.0), rtol=1e-3)
print("ok")
"""


def test_batch_sharded_over_two_devices_stays_sharded():
    # Two host devices must be requested before JAX starts, hence a fresh interpreter.
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
