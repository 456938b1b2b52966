"""Score sources: analytic Gaussian and mixture scores, and the model adapter (maths §7).

References are independent of the module: log-densities from `jax.scipy.stats` differentiated by
`jax.grad` (for a full covariance `multivariate_normal.logpdf`, which factorises Σ + σ²I by
Cholesky, not by our eigendecomposition; for diagonal ones sums of `norm.logpdf`, which compile
far faster), `jnp.linalg.solve`, and numpy closed forms.
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, strategies as st
from jax.scipy.special import logsumexp
from jax.scipy.stats import multivariate_normal, norm

from rdp_jax._schedules import VE, VPCosine, VPLinear
from rdp_jax.scores import (
    Gaussian,
    GaussianMixture,
    ModelScore,
    ScoreSource,
    from_model,
    gaussian,
    gaussian_mixture,
)

# Harmless once tests/conftest.py enables x64 for the whole suite; needed before it did.
jax.config.update("jax_enable_x64", True)

# Test harness functions run a few times each, so compile them fast rather than optimised: XLA's
# backend optimisation costs about half of each compilation, and compilation (one per dimension,
# per source structure) dominates this module's run time. The library code is unaffected.
harness_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})

dims = st.integers(1, 8)
seeds = st.integers(0, 2**32 - 1)
sigmas = st.floats(-3.0, 2.0).map(lambda e: 10.0**e)  # σ log-uniform in [1e-3, 1e2]


def _score_and_denoise(source, x, sigma):
    return source.score(x, sigma), source.denoise(x, sigma)


# Both outputs of a source, compiled once per structure and dimension.
score_and_denoise = harness_jit(_score_and_denoise)


@harness_jit
def batch_denoise(source, x, sigma):
    return jax.vmap(source.denoise, in_axes=(0, None))(x, sigma)


@harness_jit
def grid_score_and_denoise(source, x, sigma):
    """Score and denoiser at each pair (x[i], σ[i])."""
    return jax.vmap(lambda y, s: (source.score(y, s), source.denoise(y, s)))(x, sigma)


# The property tests draw d ∈ 1..8 and compilation, not evaluation, dominates their cost. So one
# jitted function builds all three random sources (constructors traced too) and their references:
# one compile per d, shared by the three tests.


def _diagonal_log_density(x, means, variances):
    """log N(x; μ, diag(v)) as a sum of scalar `jax.scipy.stats.norm` log-densities."""
    return jnp.sum(norm.logpdf(x, means, jnp.sqrt(variances)), axis=-1)


def _gaussian_outputs(mean, var, x, sigma):
    source = gaussian(mean, var)
    out = {"score": source.score(x, sigma), "denoise": source.denoise(x, sigma)}
    if var.ndim == 1:
        out["grad_log_density"] = jax.grad(_diagonal_log_density)(x, mean, var + sigma**2)
    else:
        noisy = var + sigma**2 * jnp.eye(mean.shape[0])
        # jax.scipy factorises Σ + σ²I by Cholesky, not by our eigendecomposition.
        out["grad_log_density"] = jax.grad(multivariate_normal.logpdf)(x, mean, noisy)
        out["solve_score"] = -jnp.linalg.solve(noisy, x - mean)
        out["solve_denoise"] = mean + var @ jnp.linalg.solve(noisy, x - mean)
    return out


def _mixture_outputs(weights, means, variances, x, sigma):
    source = gaussian_mixture(weights, means, variances)

    def log_density(y):  # log Σ_k w_k N(y; μ_k, diag(v_k + σ²))
        return logsumexp(_diagonal_log_density(y, means, variances + sigma**2), b=weights)

    return {
        "score": source.score(x, sigma),
        "denoise": source.denoise(x, sigma),
        "grad_log_density": jax.grad(log_density)(x),
    }


@harness_jit
def analytic_case(case):
    """Outputs and independent references for the sources in `random_case`."""
    sigma = case["sigma"]
    diag, full, mix = case["diagonal"], case["full"], case["mixture"]
    return {
        "diagonal": _gaussian_outputs(diag["mean"], diag["var"], diag["x"], sigma),
        "full": _gaussian_outputs(full["mean"], full["var"], full["x"], sigma),
        "mixture": _mixture_outputs(mix["weights"], mix["means"], mix["vars"], mix["x"], sigma),
    }


def random_case(d: int, seed: int, sigma: float) -> dict:
    """A diagonal and a full Gaussian and a 3-component mixture in d dims, each with a typical
    X_σ. K = 3 is fixed to keep one compilation per d; K = 1 has its own test."""
    rng = np.random.default_rng(seed)
    diag_mean, diag_var = random_gaussian(rng, d, full=False)
    full_mean, full_cov = random_gaussian(rng, d, full=True)
    weights, means, variances = random_mixture(rng, d, K=3)
    k = rng.choice(3, p=weights)
    return {
        "sigma": sigma,
        "diagonal": {
            "mean": diag_mean,
            "var": diag_var,
            "x": noisy_point(rng, diag_mean, diag_var, sigma),
        },
        "full": {
            "mean": full_mean,
            "var": full_cov,
            "x": noisy_point(rng, full_mean, np.diag(full_cov), sigma),
        },
        "mixture": {
            "weights": weights,
            "means": means,
            "vars": variances,
            "x": noisy_point(rng, means[k], variances[k], sigma),
        },
    }


def random_gaussian(rng: np.random.Generator, d: int, full: bool):
    mean = 2 * rng.normal(size=d)
    if full:  # eigenvalues spread over ~2 decades, random orientation
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        cov = (q * np.exp(rng.uniform(-2, 2, size=d))) @ q.T
        return mean, 0.5 * (cov + cov.T)
    return mean, np.exp(rng.uniform(-2, 2, size=d))


def random_mixture(rng: np.random.Generator, d: int, K: int):
    weights = rng.dirichlet(np.ones(K))
    return weights, 3 * rng.normal(size=(K, d)), np.exp(rng.uniform(-2, 1, size=(K, d)))


def noisy_point(rng, mean, var_diag, sigma):
    """A typical X_σ: drawn around `mean` with the per-axis spread of the noisy marginal."""
    return mean + rng.normal(size=mean.shape) * np.sqrt(var_diag + sigma**2)


def assert_close(actual, desired, rtol, scale=1.0):
    """allclose with an absolute floor of rtol·scale for entries that cancel to ~0."""
    np.testing.assert_allclose(
        np.asarray(actual), np.asarray(desired), rtol=rtol, atol=rtol * scale
    )


# ---------------------------------------------------------------------------------------------
# Gaussian.
# ---------------------------------------------------------------------------------------------


@given(d=dims, seed=seeds, sigma=sigmas)
def test_diagonal_gaussian(d, seed, sigma):
    case = random_case(d, seed, sigma)
    out = analytic_case(case)["diagonal"]
    mean, var, x = case["diagonal"]["mean"], case["diagonal"]["var"], case["diagonal"]["x"]
    scale = np.max(np.abs(x)) + np.max(np.abs(mean))
    # The Wiener filter, in numpy.
    assert_close(out["denoise"], mean + var / (var + sigma**2) * (x - mean), 1e-12, scale)
    assert_close(out["score"], -(x - mean) / (var + sigma**2), 1e-12, scale / sigma**2)
    assert_close(out["score"], out["grad_log_density"], 1e-10, scale / sigma**2)
    # Tweedie (maths §7): E[X | X_σ = x] = x + σ² ∇ log p_σ(x).
    assert_close(out["denoise"], x + sigma**2 * out["score"], 1e-12, scale)


@given(d=dims, seed=seeds, sigma=sigmas)
def test_full_covariance_gaussian(d, seed, sigma):
    case = random_case(d, seed, sigma)
    out = analytic_case(case)["full"]
    mean, x = case["full"]["mean"], case["full"]["x"]
    scale = np.max(np.abs(x)) + np.max(np.abs(mean))
    # cond(Σ + σ²I) ≤ e⁴ ≈ 55: solve and Cholesky are themselves good to ~1e-14.
    assert_close(out["denoise"], out["solve_denoise"], 1e-11, scale)
    assert_close(out["score"], out["solve_score"], 1e-11, scale / sigma**2)
    assert_close(out["score"], out["grad_log_density"], 1e-10, scale / sigma**2)
    assert_close(out["denoise"], x + sigma**2 * out["score"], 1e-12, scale)


def test_eager_construction_matches_traced_construction():
    rng = np.random.default_rng(1)
    mean, cov = random_gaussian(rng, 3, full=True)
    x = noisy_point(rng, mean, np.diag(cov), 0.4)
    eager = score_and_denoise(gaussian(mean, cov), x, 0.4)
    traced = harness_jit(lambda m, c: _score_and_denoise(gaussian(m, c), x, 0.4))(mean, cov)
    np.testing.assert_allclose(eager, traced, rtol=1e-13)


def test_scalar_arguments_broadcast():
    iso = gaussian(jnp.array([1.0, -1.0, 0.5]), 2.0)
    np.testing.assert_array_equal(iso.eigenvalues, [2.0, 2.0, 2.0])
    shifted = gaussian(0.5, jnp.array([1.0, 4.0]))
    np.testing.assert_array_equal(shifted.mean, [0.5, 0.5])
    full = gaussian(0.0, jnp.eye(2))
    assert full.mean.shape == (2,)
    one = gaussian(1.0, 2.0)
    assert one.mean.shape == (1,)
    assert float(one.denoise(jnp.array([3.0]), 1.0)[0]) == pytest.approx(1 + 2 / 3 * 2)


def test_gaussian_covariance_round_trips():
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    np.testing.assert_allclose(gaussian(np.zeros(3), cov).covariance, cov, atol=1e-14)
    np.testing.assert_allclose(
        gaussian(np.zeros(3), np.diag(cov)).covariance, np.diag(np.diag(cov))
    )


def test_gaussian_float32():
    rng = np.random.default_rng(0)
    mean, cov = random_gaussian(rng, 3, full=True)
    x = noisy_point(rng, mean, np.diag(cov), 0.3)
    source32 = gaussian(mean.astype(np.float32), cov.astype(np.float32))
    score32, denoise32 = score_and_denoise(source32, x.astype(np.float32), np.float32(0.3))
    assert score32.dtype == denoise32.dtype == jnp.float32
    # float64 at the same float32-rounded inputs: what is left is float32 arithmetic, a solve
    # with Σ + σ²I, whose relative error is bounded by a few ε·κ (measured ~3 ulp at κ ≈ 17).
    m64, c64 = (np.asarray(v, np.float32).astype(np.float64) for v in (mean, cov))
    x64 = x.astype(np.float32).astype(np.float64)
    s64 = float(np.float32(0.3))
    score64, denoise64 = score_and_denoise(gaussian(m64, c64), x64, s64)
    kappa = np.linalg.cond(c64 + s64**2 * np.eye(3))
    tol = 4 * kappa * np.finfo(np.float32).eps
    for got, want in ((score32, score64), (denoise32, denoise64)):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())


def test_gaussian_samples_have_the_right_moments():
    cov = np.array([[2.0, 0.8], [0.8, 1.0]])
    mean = np.array([1.0, -2.0])
    n = 40_000
    x = np.asarray(gaussian(mean, cov).sample(jax.random.key(0), n))
    assert x.shape == (n, 2)
    # Sample mean: 5 standard errors. Sample covariance: entries have sd ≤ √(2/n)·max var.
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(np.diag(cov) / n))
    np.testing.assert_allclose(np.cov(x.T), cov, atol=5 * np.sqrt(2 / n) * 2.0)


# ---------------------------------------------------------------------------------------------
# Mixture.
# ---------------------------------------------------------------------------------------------


@given(d=dims, seed=seeds, sigma=sigmas)
def test_mixture_score_is_grad_log_density_and_tweedie(d, seed, sigma):
    case = random_case(d, seed, sigma)
    out = analytic_case(case)
    x, means = case["mixture"]["x"], case["mixture"]["means"]
    scale = np.max(np.abs(x)) + np.max(np.abs(means))
    mixture = out["mixture"]
    assert_close(mixture["score"], mixture["grad_log_density"], 1e-9, scale / sigma**2)
    assert_close(mixture["denoise"], x + sigma**2 * mixture["score"], 1e-12, scale)


@pytest.mark.parametrize("d", [1, 4])
def test_one_component_mixture_is_the_gaussian(d):
    rng = np.random.default_rng(d)
    mean, var = random_gaussian(rng, d, full=False)
    sigma = np.logspace(-3, 2, 41)
    x = mean + rng.normal(size=(41, d)) * np.sqrt(var + sigma[:, None] ** 2)
    one = grid_score_and_denoise(gaussian_mixture([1.0], mean[None], var[None]), x, sigma)
    single = grid_score_and_denoise(gaussian(mean, var), x, sigma)
    for a, b in zip(one, single, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-300)


def test_isotropic_components_broadcast():
    rng = np.random.default_rng(2)
    weights, means, _ = random_mixture(rng, 3, K=2)
    iso = gaussian_mixture(weights, means, np.array([0.5, 2.0]))
    diag = gaussian_mixture(weights, means, np.array([[0.5] * 3, [2.0] * 3]))
    # Broadcasting repeats values, so the fields are bitwise equal; exact equality of the outputs
    # below is then legitimate because both calls run the very same compiled program (the same
    # leaf shapes: the cache does not grow) on equal inputs.
    np.testing.assert_array_equal(iso.variances, diag.variances)
    x = rng.normal(size=3)
    first = score_and_denoise(iso, x, 0.7)
    compiled = score_and_denoise._cache_size()
    second = score_and_denoise(diag, x, 0.7)
    assert score_and_denoise._cache_size() == compiled
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


# A clearly non-Gaussian source: three separated components in 2-D.
MC_WEIGHTS = np.array([0.5, 0.3, 0.2])
MC_MEANS = np.array([[-2.0, 0.0], [1.0, 1.5], [2.0, -1.0]])
MC_VARS = np.array([[0.3, 0.5], [0.2, 0.2], [0.6, 0.1]])
MC_N = 40_000
# |z| < 4 for a z-score that is N(0, 1) under the null fails with probability 6.3e-5: that is the
# false-failure rate of each check below, for a fresh key (the key here is fixed).
MC_Z = 4.0


def orthogonality_z_scores(denoise, x, h):
    """z-scores of E[(X - D(X_σ))_i h_j(X_σ)] = 0, one per (i, j): sample mean / standard error."""
    products = (x - denoise)[:, :, None] * h[:, None, :]
    mean = products.mean(0)
    standard_error = products.std(0, ddof=1) / math.sqrt(products.shape[0])
    return mean / standard_error


def test_mixture_denoiser_satisfies_the_orthogonality_principle():
    """E[X | X_σ] is the MMSE estimator iff X - D(X_σ) ⟂ every h(X_σ); here h = 1 and h = x.

    3 σ × (2 + 4) checks at a false-failure rate 6.3e-5 each: ~1e-3 for the whole test.
    """
    source = gaussian_mixture(MC_WEIGHTS, MC_MEANS, MC_VARS)
    key_x, key_noise = jax.random.split(jax.random.key(1234))
    x = source.sample(key_x, MC_N)
    noise = jax.random.normal(key_noise, x.shape)
    for sigma in (0.3, 1.0, 3.0):
        noisy = x + sigma * noise
        denoise = batch_denoise(source, noisy, sigma)
        h = jnp.concatenate([jnp.ones((MC_N, 1)), noisy], axis=1)
        z = orthogonality_z_scores(denoise, x, h)
        assert np.all(np.abs(z) < MC_Z), (sigma, z)


def test_orthogonality_check_has_power_against_the_linear_estimator():
    """The best LINEAR estimator passes h ∈ {1, x} by construction; a nonlinear h catches it.

    This validates the test above: the same statistic with h = tanh(x) accepts the mixture's
    denoiser and rejects the moment-matched Gaussian's Wiener filter by a wide margin.
    """
    sigma = 1.0
    source = gaussian_mixture(MC_WEIGHTS, MC_MEANS, MC_VARS)
    key_x, key_noise = jax.random.split(jax.random.key(99))
    x = source.sample(key_x, MC_N)
    noisy = x + sigma * jax.random.normal(key_noise, x.shape)
    mean = MC_WEIGHTS @ MC_MEANS
    centred = MC_MEANS - mean
    cov = np.diag(MC_WEIGHTS @ MC_VARS) + (MC_WEIGHTS[:, None] * centred).T @ centred
    linear = gaussian(mean, cov)  # the LMMSE estimator is its exact denoiser
    h = jnp.tanh(noisy)
    for estimator, accept in ((source, True), (linear, False)):
        denoise = batch_denoise(estimator, noisy, sigma)
        z = orthogonality_z_scores(denoise, x, h)
        assert bool(np.all(np.abs(z) < MC_Z)) == accept, z


def test_mixture_weights_are_normalised_and_samples_follow_them():
    source = gaussian_mixture([0.25, 0.75 + 5e-7], [[-10.0], [10.0]], [1.0, 1.0])
    assert float(source.weights.sum()) == pytest.approx(1.0, abs=1e-15)
    n = 20_000
    x = np.asarray(source.sample(jax.random.key(3), n))
    assert x.shape == (n, 1)
    assert source.sample(jax.random.key(4), np.int64(3)).shape == (3, 1)  # numpy ints are fine
    frequency = np.mean(x[:, 0] > 0)
    assert abs(frequency - 0.75) < 5 * math.sqrt(0.75 * 0.25 / n)


def test_zero_weight_component_is_ignored():
    x, sigma = jnp.array([0.3, -0.2]), 0.7
    with_zero = gaussian_mixture([0.0, 1.0], [[5.0, 5.0], [0.0, 1.0]], [[1.0, 1.0], [2.0, 0.5]])
    alone = gaussian(jnp.array([0.0, 1.0]), jnp.array([2.0, 0.5]))
    for a, b in zip(
        score_and_denoise(with_zero, x, sigma), score_and_denoise(alone, x, sigma), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-14)
        assert np.all(np.isfinite(a))


def test_mixture_is_finite_far_in_the_tails():
    source = gaussian_mixture([0.5, 0.5], [[-1.0], [1.0]], [0.01, 0.01])
    score, denoise = score_and_denoise(source, jnp.array([1e4]), 1e-3)
    assert np.isfinite(score).all() and np.isfinite(denoise).all()
    assert float(denoise[0]) == pytest.approx(1 + 0.01 / (0.01 + 1e-6) * (1e4 - 1), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Model adapter.
# ---------------------------------------------------------------------------------------------

ADAPTER_SOURCE = gaussian(
    np.array([0.5, -1.0, 2.0]),
    np.array([[1.5, 0.4, -0.2], [0.4, 0.8, 0.1], [-0.2, 0.1, 0.3]]),
)
SCHEDULES = {"VE": VE(), "VPLinear": VPLinear(), "VPCosine": VPCosine()}


def analytic_model(schedule, parametrization):
    """What a perfectly trained model of `ADAPTER_SOURCE` predicts at (x_t, t) under `schedule`.

    Each prediction is formed from the analytic quantity it is exactly equal to, never through a
    cancelling difference: ε = -σ ∇ log p_σ, and ∇_{x_t} log p_t = ∇ log p_σ / √ᾱ_t.
    """

    def fn(x_t, t):
        sigma, scale = schedule.sigma(t), schedule.scale(t)
        x = x_t / scale
        if parametrization == "eps":
            return -sigma * ADAPTER_SOURCE.score(x, sigma)
        if parametrization == "x0":
            return ADAPTER_SOURCE.denoise(x, sigma)
        return ADAPTER_SOURCE.score(x, sigma) / scale

    return fn


@harness_jit
def adapter_grid(sources, x, sigma):
    """`grid_score_and_denoise` for several sources in one compilation."""
    return [
        jax.vmap(lambda y, s, source=source: _score_and_denoise(source, y, s))(x, sigma)
        for source in sources
    ]


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_adapter_reproduces_the_analytic_gaussian(name):
    schedule = SCHEDULES[name]
    parametrizations = ("score", "eps", "x0")
    sources = [
        from_model(analytic_model(schedule, p), parametrization=p, schedule=schedule)
        for p in parametrizations
    ]
    assert all(isinstance(source, ScoreSource) for source in sources)
    # σ log-spaced over [1e-3, 1e2], one typical X_σ each: a grid covers the range evenly and
    # costs one compilation (hypothesis draws would each be a separate small call).
    n = 61
    sigma = np.logspace(-3, 2, n)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(n, 3)) * np.sqrt(2 + sigma[:, None] ** 2)
    x = np.asarray(ADAPTER_SOURCE.mean) + noise
    ref_score, ref_denoise = grid_score_and_denoise(ADAPTER_SOURCE, x, sigma)
    scale = np.max(np.abs(x), axis=1, keepdims=True) + 2.0
    outputs = adapter_grid(sources, x, sigma)
    for parametrization, (score, denoise) in zip(parametrizations, outputs, strict=True):
        assert np.all(np.abs(denoise - ref_denoise) <= 1e-10 * scale), parametrization
        # An x0 model's score is (x̂₀ - x)/σ²: the difference cancels at small σ whatever the
        # model, so it is compared on the scale of the residual σ²·score (= D - x) instead.
        weight = sigma[:, None] ** 2 if parametrization == "x0" else 1.0
        tolerance = 1e-10 * (np.abs(ref_score) + scale / sigma[:, None] ** 2) * weight
        assert np.all(np.abs(score - ref_score) * weight <= tolerance), parametrization


class TinyMLP(nnx.Module):
    """ε(x_t, t) for 3-D data: one tanh hidden layer on (x_t, t)."""

    def __init__(self, d: int, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(d + 1, 16, rngs=rngs)
        self.out = nnx.Linear(16, d, rngs=rngs)

    def __call__(self, x, t):
        inputs = jnp.concatenate([x, jnp.reshape(t, (1,)).astype(x.dtype)])
        return self.out(jnp.tanh(self.hidden(inputs)))


def test_flax_nnx_model_works_under_jit_and_vmap_without_retracing():
    schedule = VPCosine()
    first = from_model(TinyMLP(3, nnx.Rngs(0)), parametrization="eps", schedule=schedule)
    second = from_model(TinyMLP(3, nnx.Rngs(1)), parametrization="eps", schedule=schedule)
    assert len(jax.tree.leaves(first)) == 4  # the NNX weights are the source's leaves

    @jax.jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def denoise_batch(source, x, sigma):
        return jax.vmap(source.denoise, in_axes=(0, None))(x, sigma)

    x = jax.random.normal(jax.random.key(0), (5, 3))
    out_first = denoise_batch(first, x, 0.5)
    out_second = denoise_batch(second, x, 0.5)  # new weights, same structure: no retrace
    stepped = jax.tree.map(lambda w: w + 0.01, first)  # e.g. an optimiser step
    out_stepped = denoise_batch(stepped, x, 0.5)
    assert out_first.shape == (5, 3)
    assert not np.allclose(out_first, out_second) and not np.allclose(out_first, out_stepped)
    # ε-parametrisation: D = x - σ ε̂(x_t, t) with x_t = √ᾱ_t x and t = t(σ), row by row.
    t = schedule.t_of_sigma(0.5)
    eps = jax.vmap(first.model, in_axes=(0, None))(schedule.scale(t) * x, t)
    np.testing.assert_allclose(out_first, x - 0.5 * eps, rtol=1e-12, atol=1e-14)


def test_flax_nnx_model_eagerly_in_float32():
    mlp = TinyMLP(3, nnx.Rngs(0))
    source = from_model(mlp, parametrization="x0")
    x = jnp.linspace(-1, 1, 3, dtype=jnp.float32)
    out = source.denoise(x, jnp.float32(0.5))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, mlp(x, jnp.float32(0.5)), rtol=1e-6)  # VE: x_t = x, t = σ


def test_flax_nnx_model_decodes_by_every_method_family():
    """The decoder's trace-time dtype check must not break on an NNX model's traced weights."""
    from rdp_jax import decode

    source = from_model(
        TinyMLP(3, nnx.Rngs(0)), parametrization="eps", schedule=VPCosine(), event_shape=(3,)
    )
    y = jax.random.normal(jax.random.key(1), (4, 3))
    for method in ("exp4", "heun"):
        x_hat = decode(y, 0.5, 0.0, source, method=method, num_steps=4)
        assert x_hat.shape == (4, 3) and bool(jnp.all(jnp.isfinite(x_hat))), method


def test_analytic_sources_do_not_retrace_when_only_arrays_change():
    @jax.jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def f(source, x):
        return source.score(x, 0.5)

    rng = np.random.default_rng(0)
    x = rng.normal(size=3)
    for _ in range(3):
        f(gaussian(*random_gaussian(rng, 3, full=True)), x)

    @jax.jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def g(source, x):
        return source.denoise(x, 0.5)

    for _ in range(3):
        g(gaussian_mixture(*random_mixture(rng, 3, 2)), x)


def test_the_public_classes_and_event_shapes():
    assert issubclass(Gaussian, ScoreSource) and issubclass(GaussianMixture, ScoreSource)
    assert issubclass(ModelScore, ScoreSource)
    assert gaussian(np.zeros(3), 1.0).event_shape == (3,)
    assert gaussian_mixture([1.0], np.zeros((1, 2)), [1.0]).event_shape == (2,)
    assert from_model(lambda x, t: x, parametrization="x0").event_shape is None
    shaped = from_model(lambda x, t: x, parametrization="x0", event_shape=(np.int64(4),))
    assert shaped.event_shape == (4,)
    assert jax.tree.leaves(shaped) == []  # the shape is static


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------

SPD = np.array([[2.0, 0.5], [0.5, 1.0]])


@pytest.mark.parametrize(
    ("mean", "var", "name"),
    [
        (np.zeros((2, 2)), np.ones(2), "`mean`"),
        (np.zeros(3), np.ones(2), "`mean`"),
        (np.zeros(2), np.ones((2, 3)), "`var`"),
        (np.zeros(2), np.ones((2, 2, 2)), "`var`"),
        (np.zeros(2), np.array([1.0, 0.0]), "`var`"),
        (np.zeros(2), np.array([1.0, -1.0]), "`var`"),
        (np.zeros(2), np.array([1.0, np.nan]), "`var`"),
        (np.array([0.0, np.inf]), np.ones(2), "`mean`"),
        (np.zeros(2), np.array([[1.0, 0.5], [0.4, 1.0]]), "`var`.*symmetric"),
        (np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), "`var`.*positive definite"),
        (np.zeros(2), np.array([[1.0, 1.0], [1.0, 1.0]]), "`var`.*positive definite"),
        (np.zeros(0), np.ones(0), "at least one"),
    ],
)
def test_bad_gaussian_raises(mean, var, name):
    with pytest.raises(ValueError, match=name):
        gaussian(mean, var)


@pytest.mark.parametrize(
    ("weights", "means", "variances", "name"),
    [
        ([0.5, 0.5], np.zeros(2), np.ones(2), "`means`"),
        ([0.5, 0.5], np.zeros((0, 2)), np.ones(2), "`means`"),
        ([1.0], np.zeros((2, 2)), np.ones(2), "`weights`"),
        ([0.5, 0.5], np.zeros((2, 2)), np.ones(3), "`vars`"),
        ([0.5, 0.5], np.zeros((2, 2)), np.ones((2, 3)), "`vars`"),
        ([0.5, 0.5], np.zeros((2, 2)), np.array([1.0, 0.0]), "`vars`"),
        ([0.5, 0.5], np.full((2, 2), np.nan), np.ones(2), "`means`"),
        ([1.5, -0.5], np.zeros((2, 2)), np.ones(2), "`weights`"),
        ([0.5, 0.4], np.zeros((2, 2)), np.ones(2), "`weights`"),
        ([0.5, 0.5 + 1e-5], np.zeros((2, 2)), np.ones(2), "`weights`"),
        ([np.nan, 1.0], np.zeros((2, 2)), np.ones(2), "`weights`"),
    ],
)
def test_bad_mixture_raises(weights, means, variances, name):
    with pytest.raises(ValueError, match=name):
        gaussian_mixture(weights, means, variances)


SOURCES = {
    "gaussian": gaussian(np.zeros(2), SPD),
    "mixture": gaussian_mixture([0.5, 0.5], np.zeros((2, 2)), np.ones(2)),
    "adapter": from_model(lambda x, t: -x, parametrization="eps", schedule=VPLinear()),
}


@pytest.mark.parametrize("name", list(SOURCES))
@pytest.mark.parametrize("method", ["score", "denoise"])
def test_bad_query_raises(name, method):
    call = getattr(SOURCES[name], method)
    for sigma in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="`sigma`"):
            call(jnp.zeros(2), sigma)
    with pytest.raises(ValueError, match="`sigma`"):
        call(jnp.zeros(2), jnp.ones(2))
    if name != "adapter":  # the adapter takes any event shape its model does
        with pytest.raises(ValueError, match="`x`"):
            call(jnp.zeros(3), 1.0)
    # Under jit σ is traced: `equinox.error_if` fails the computation at run time instead of
    # returning NaN, which `jax.jit` raises as JaxRuntimeError carrying the message.
    with pytest.raises(jax.errors.JaxRuntimeError, match="`sigma` must be"):
        jax.block_until_ready(jax.jit(lambda x, sigma: call(x, sigma))(jnp.zeros(2), 0.0))


def test_sigma_beyond_the_models_schedule_raises():
    with pytest.raises(ValueError, match="`sigma`"):
        SOURCES["adapter"].score(jnp.zeros(2), 1e3)  # VPLinear ends at σ(1) ≈ 151


@pytest.mark.parametrize("n", [-1, 2.5, True, np.float64(3.0)])
def test_bad_sample_count_raises(n):
    for source in (SOURCES["gaussian"], SOURCES["mixture"]):
        with pytest.raises(ValueError, match="`n`"):
            source.sample(jax.random.key(0), n)


def test_bad_adapter_arguments_raise():
    with pytest.raises(ValueError, match="`parametrization`"):
        from_model(lambda x, t: x, parametrization="v")
    with pytest.raises(ValueError, match="`fn`"):
        from_model(3.0, parametrization="eps")
    with pytest.raises(ValueError, match="`schedule`"):
        from_model(lambda x, t: x, parametrization="eps", schedule="VE")
    for event_shape in ((2.5,), (-1,), 3):
        with pytest.raises(ValueError, match="`event_shape`"):
            from_model(lambda x, t: x, parametrization="eps", event_shape=event_shape)
    wrong_shape = from_model(lambda x, t: x[:1], parametrization="x0")
    with pytest.raises(ValueError, match="`fn`"):
        wrong_shape.denoise(jnp.zeros(2), 1.0)
