"""The score-scaled PF-ODE decoder against the closed form of maths §7."""

import itertools
import math
import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import roundoff_bound
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


# decode's adaptive controller defaults.
_RTOL, _ATOL = 1e-8, 1e-10


@pytest.mark.parametrize(
    ("schedule", "method"),
    [(VPLinear(), "tsit5"), (VPCosine(), "tsit5"), (VPLinear(), "heun")],
    ids=["vp-linear-tsit5", "vp-cosine-tsit5", "vp-linear-heun"],
)
def test_vp_and_ve_decode_the_same(schedule, method):
    """Both integrate the same ODE (maths §7), so they differ by their solver errors alone."""
    variances = jnp.array([0.3, 1.0, 3.0])
    model = _diag_gaussian(variances)
    y = jax.random.normal(jax.random.key(1), (5, 3)) * 2
    sigma, rho = 1.5, 0.3

    def run(schedule, num_steps=None):
        x_hat, info = decode(
            y,
            sigma,
            rho,
            model,
            method=method,
            num_steps=num_steps,
            schedule=schedule,
            return_info=True,
        )
        return np.asarray(x_hat), np.asarray(info.nfe)

    if method == "tsit5":
        (ve, ve_nfe), (vp, vp_nfe) = run(None), run(schedule)
        # Each run's global error is at most its accepted steps (≤ NFE/6) times the controller's
        # local tolerance √d (rtol |x| + atol), the max norm of its RMS norm over d = 3 (on a
        # Gaussian the flow does not amplify relative errors, and VP's atol acts on √ᾱ x with
        # √ᾱ ≥ 0.55 here: negligible beside rtol |x| ~ 1e-8).
        scale = np.max(np.abs(ve), axis=1)
        tolerance = (ve_nfe + vp_nfe) / 6 * math.sqrt(3) * (_RTOL * scale + _ATOL)
        assert np.all(np.max(np.abs(vp - ve), axis=1) <= tolerance)
        return
    # The VE end point is known in closed form, so VP's Heun is judged against that directly
    # (VE's Heun against it in test_fixed_step_methods_converge_at_their_order). 401 NFE: 200
    # Heun steps of 2 evaluations, then the final Tweedie step; 801: 400 steps. Heun is second
    # order, e_N = C/N² + o(1/N²), so e_N - e_2N ≈ (3/4) e_N and the Richardson estimate is
    # e_N ≈ (4/3)|x_N - x_2N|. Twice it, (8/3)|x_N - x_2N|, still bounds e_N while the error
    # falls by ≥ 1.6x per doubling; a VP path converging to another end point has ratio → 1.
    exact = np.asarray(y * theory.score_scaled_gain(rho, variances, sigma**2))
    coarse, fine = run(schedule, 401)[0], run(schedule, 801)[0]
    assert np.max(np.abs(coarse - exact)) <= 8 / 3 * np.max(np.abs(coarse - fine))


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
    # The very same compiled program on the same input: the same bits.
    np.testing.assert_array_equal(decode(y, 0.7, 0.4, model, num_steps=12), batch)
    # One sample, or one σ per sample, compiles another program of the same arithmetic, which
    # XLA may fuse, vectorise or contract (FMA) differently: each is within the round-off bound
    # of the exact value (12 evaluations), so the two are within twice it.
    tolerance = 2 * roundoff_bound(np.float64, 12) * float(jnp.max(jnp.abs(batch)))
    single = decode(y[1], 0.7, 0.4, model, num_steps=12)
    np.testing.assert_allclose(single, batch[1], rtol=0, atol=tolerance)
    per_sample = decode(y, jnp.array([0.7, 0.7]), 0.4, model, num_steps=12)
    np.testing.assert_allclose(per_sample, batch, rtol=0, atol=tolerance)


def test_nfe_is_reported_and_counted():
    counter = []

    class Counting(scores.Gaussian):
        def denoise(self, x, sigma):
            jax.debug.callback(lambda: counter.append(1), ordered=True)
            return super().denoise(x, sigma)

    base = _diag_gaussian([0.5, 2.0])
    model = Counting(base.mean, base.eigenvalues, base.eigenvectors)
    # float32 under tsit5's default rtol also rejects steps after the first accepted one, which
    # reuse their first stage (counting every rejection as one more evaluation said 392 for 388).
    single = Counting(*(jnp.asarray(a, jnp.float32) for a in (base.mean, base.eigenvalues)), None)
    y = jnp.array([[0.3, -1.2]])
    cases = [(model, y, method, steps) for method, steps in (("tsit5", None), ("exp4", 13))]
    cases += [(model, y, "heun", 9), (single, jnp.array([[3.0, -1.2]], jnp.float32), "tsit5", None)]
    for model, y, method, steps in cases:
        jax.effects_barrier()
        counter.clear()
        _, info = decode(y, 1.0, 0.5, model, method=method, num_steps=steps, return_info=True)
        jax.effects_barrier()
        # One count per sample for the adaptive tsit5; one for the batch on a fixed grid.
        assert info.nfe.shape == ((1,) if steps is None else ()), method
        assert int(info.nfe.max()) == len(counter), (method, y.dtype)
        if steps is not None:
            assert int(info.nfe) <= steps


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


def _euler_maruyama_mse(variances, sigma, num_steps, sigma_min=2e-3):
    """E‖X - X̂‖² of `posterior_sample`'s chain on X ~ N(0, diag(v)), exactly, in numpy.

    On the EDM grid σ_0 = σ > … > σ_{N-1} (Karras et al. 2022, eq. 5) each step is linear in each
    dimension: x_{n+1} = c_n x_n + b_n z_n with c_n = 1 - (1 - σ_{n+1}²/σ_n²)(1 - g_n),
    g_n = v/(v + σ_n²) the Wiener gain, b_n² = σ_n² - σ_{n+1}², then x̂ = g_{N-1} x_{N-1}. So
    x̂ = A y + e with e independent of (X, Y), and E(X - x̂)² = v - 2Av + A²(v + σ²) + Var e.
    """
    t = np.linspace(0.0, 1.0, num_steps)
    low = min(sigma_min, sigma / 2)
    grid = (sigma ** (1 / 7) + t * (low ** (1 / 7) - sigma ** (1 / 7))) ** 7
    total = 0.0
    for v in np.asarray(variances, dtype=float):
        A, noise_var = 1.0, 0.0
        for s_now, s_next in itertools.pairwise(grid):
            c = 1 - (1 - (s_next / s_now) ** 2) * (1 - v / (v + s_now**2))
            A, noise_var = c * A, c * c * noise_var + s_now**2 - s_next**2
        g = v / (v + grid[-1] ** 2)
        A, noise_var = g * A, g * g * noise_var
        total += v - 2 * A * v + A * A * (v + sigma**2) + noise_var
    return total


def test_rho_one_is_tweedie_and_posterior_sampling_costs_twice_the_mmse():
    variances = jnp.array([1.0, 0.5])
    model = _diag_gaussian(variances)
    sigma = 1.0
    x = model.sample(jax.random.key(3), 2000)
    y = x + sigma * jax.random.normal(jax.random.key(4), x.shape)
    # On a Gaussian, ρ = 1 keeps D(x, σ) constant along the flow (maths §7), so every
    # exponential integrator is exact: agreement to the round-off of 20 evaluations and of one.
    mmse = tweedie_denoise(y, sigma, model)
    tolerance = (roundoff_bound(np.float64, 20) + roundoff_bound(np.float64, 1)) * float(
        jnp.max(jnp.abs(mmse))
    )
    np.testing.assert_allclose(decode(y, sigma, 1.0, model, num_steps=20), mmse, atol=tolerance)
    num_steps = 100
    samples = posterior_sample(jax.random.key(5), y, sigma, model, num_steps=num_steps)
    D = metrics.mse(x, samples)
    # Judged against the exact mean of the discretised chain, not against 2D*: Euler-Maruyama's
    # bias is O(1/N) and at this n not small beside the standard error, so a 5-SE test against
    # 2D* would fail more often than its nominal 6e-7.
    D_chain = _euler_maruyama_mse(variances, sigma, num_steps)
    assert abs(D.value - D_chain) <= 5 * D.stderr  # false-failure rate ~6e-7 (normal approx.)
    # In the limit the chain costs 2D* (maths §6). Euler-Maruyama is weak order 1: the bias
    # b_N = D_N - 2D* halves per doubling of N, so b_N ≈ 2(D_N - D_2N). 3(D_N - D_2N) bounds it
    # while b_N/b_2N ≥ 1.5; a chain converging anywhere else has b_N/b_2N → 1 and fails.
    D_star = float(jnp.sum(theory.mmse_awgn(variances, sigma**2)))
    bias = D_chain - 2 * D_star
    assert abs(bias) <= 3 * abs(D_chain - _euler_maruyama_mse(variances, sigma, 2 * num_steps))


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
        ({"sigma": jnp.array([1.0, -1.0])}, "sigma"),  # one bad σ among good ones
        # A bad σ_min or tolerance: a NaN or a silently coarser solve before these checks.
        ({"num_steps": 4, "sigma_min": 0.0}, "`sigma_min` must be finite and > 0"),
        ({"method": "tsit5", "sigma_min": -1.0}, "`sigma_min` must be finite and > 0"),
        ({"method": "tsit5", "rtol": -1.0}, "`rtol` must be finite and >= 0"),
        ({"method": "tsit5", "atol": jnp.nan}, "`atol` must be finite and >= 0"),
        ({"method": "tsit5", "rtol": 0.0, "atol": 0.0}, "cannot both be 0"),
        ({"y": jnp.zeros((0, 2))}, "`y` is an empty batch"),
        ({"y": jnp.array([[1 + 5j, 1 - 3j]])}, "`y` must hold real numbers"),
        # Complex σ and ρ were a TypeError from a cast deep in the solver.
        ({"sigma": 1 + 1j}, "`sigma` must hold real numbers"),
        ({"rho": jnp.array([0.5j, 0.5])}, "`rho` must hold real numbers"),
    ],
)
def test_bad_input_raises(kwargs, match):
    model = _diag_gaussian([0.5, 2.0])
    args = {"y": jnp.ones((2, 2)), "sigma": 1.0, "rho": 0.5} | kwargs
    options = ("method", "num_steps", "sigma_min", "rtol", "atol")
    rest = {k: v for k, v in kwargs.items() if k in options}
    with pytest.raises(ValueError, match=match):
        decode(args["y"], args["sigma"], args["rho"], model, **rest)


@pytest.mark.parametrize("num_steps", [1, 2.5, None])
def test_posterior_sample_rejects_bad_step_counts(num_steps):
    model = _diag_gaussian([0.5, 2.0])
    with pytest.raises(ValueError, match="num_steps"):
        posterior_sample(jax.random.key(0), jnp.ones((2, 2)), 1.0, model, num_steps=num_steps)
    with pytest.raises(ValueError, match="`sigma_min` must be finite and > 0"):
        posterior_sample(jax.random.key(0), jnp.ones((2, 2)), 1.0, model, sigma_min=-1.0)


@pytest.mark.parametrize("key", [0, np.zeros(3, np.uint32), jax.random.split(jax.random.key(0))])
def test_posterior_sample_names_a_bad_key(key):
    """An int, a 3-word array and two keys were TypeErrors from jax.random.split."""
    model = _diag_gaussian([0.5, 2.0])
    with pytest.raises(ValueError, match="posterior_sample: `key` must be a single PRNG key"):
        posterior_sample(key, jnp.ones((2, 2)), 1.0, model, num_steps=4)


def test_rho_outside_unit_interval_on_request():
    model = _diag_gaussian([0.5, 2.0])
    out = decode(jnp.eye(2), 1.0, 1.5, model, allow_any_rho=True)
    np.testing.assert_allclose(
        jnp.diag(out),
        theory.score_scaled_gain(1.5, jnp.array([0.5, 2.0]), 1.0, allow_any_rho=True),
        rtol=1e-6,
    )


def test_bad_input_raises_under_jit():
    model = _diag_gaussian([0.5, 2.0])

    @eqx.filter_jit
    def run(y, sigma):
        return decode(y, sigma, 0.5, model, num_steps=8)

    # Under equinox.filter_jit a failed check surfaces as its run-time error (`rdp_jax.jit`
    # turns it back into the eager ValueError: tests/test_errors.py).
    with pytest.raises(eqx.EquinoxRuntimeError, match="`sigma` must be finite and > 0"):
        jax.block_until_ready(run(jnp.ones((2, 2)), -1.0))
    with pytest.raises(eqx.EquinoxRuntimeError, match="`y` must be finite"):
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


_UNDER_JIT_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from rdp_jax import decode, scores
model = scores.gaussian(np.zeros(2), np.array([0.5, 2.0]))
y = jnp.ones((3, 2))
for method, steps in (("tsit5", None), ("heun", 9)):
    inside = jax.jit(lambda y, s: decode(y, s, 0.5, model, method=method, num_steps=steps))
    # One program against two: XLA may fuse them differently, and a rounding may move one of
    # tsit5's steps, so they agree to its tolerance (rtol 1e-8), not bit for bit.
    eager = decode(y, 1.0, 0.5, model, method=method, num_steps=steps)
    np.testing.assert_allclose(inside(y, 1.0), eager, rtol=1e-6)
print("ok")
"""


def test_decode_under_the_callers_jit_is_quiet_and_the_same():
    """A traced scalar σ broadcast inside the vmapped diffrax solve sent XLA's algebraic
    simplifier into a loop, which printed a screenful of errors to the C++ log (stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_JIT_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
    assert "simplifier" not in done.stderr, done.stderr[-2000:]
