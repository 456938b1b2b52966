"""Tests of `rdp_jax.metrics`: exact values against closed forms and brute force, statistics.

Statistical checks draw from N(0, s²) vs N(0, t²) (truth W2² = (s - t)²) with fixed seeds and
accept |value - (truth + documented bias)| ≤ 4·stderr. With an exact normal error bar that is a
6.3e-5 false-failure rate per check (over seeds); the jackknife error bars (20 blocks) are
t-distributed with 19 degrees of freedom, which makes it 7.7e-4, and `w2_exact`'s with 16
repeats 1.2e-3. The distributions differ (s ≠ t) on purpose: when they are equal the estimates
are degenerate (O(1/n) and skewed) and z-scores have heavy right tails.
"""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import ot  # noqa: E402
import pytest  # noqa: E402
import scipy.linalg  # noqa: E402
from helpers import assignment_w2, bures_w2  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402
from scipy.special import gammaln  # noqa: E402

from rdp_jax.metrics import Estimate, mse, sliced_w2, w2_1d, w2_exact, w2_gaussian  # noqa: E402

S, T = 1.0, 1.5  # the two standard deviations of the statistical checks
TRUTH = (S - T) ** 2

# Compiling a metric for a new shape costs ~1 s, so tests share this pair where they can.
_RNG = np.random.default_rng(20)
X64 = _RNG.normal(size=(64, 2))
Y64 = np.array([0.3, -0.2]) + 1.4 * _RNG.normal(size=(64, 2))


def _order_stat_var(n):
    """v_n = (1/n) Σ Var Z_(i) for the standard normal, ≈ (ln ln n + 1.22)/n (see `w2_1d`)."""
    return (math.log(math.log(n)) + 1.22) / n


def _within(estimate, expected, k=4.0):
    value, stderr = float(estimate.value), float(estimate.stderr)
    assert math.isfinite(stderr) and stderr > 0
    assert abs(value - expected) <= k * stderr, (value, expected, stderr)


def _exact_moment_samples(rng, n, mean, cov):
    """n samples whose sample mean and (ddof = 1) sample covariance are exactly `mean`, `cov`."""
    mean, cov = np.asarray(mean, float), np.asarray(cov, float)
    z = rng.normal(size=(n, mean.size))
    z -= z.mean(axis=0)
    # Whiten to unit sample covariance, then colour with a square root of `cov`.
    z = scipy.linalg.solve_triangular(np.linalg.cholesky(z.T @ z / (n - 1)), z.T, lower=True).T
    return mean + z @ np.linalg.cholesky(cov).T


# ------------------------------------------------------------------------------------------------
# Exact values
# ------------------------------------------------------------------------------------------------


def test_estimate_is_a_value_stderr_pair():
    est = mse(jnp.zeros((3, 2)), jnp.ones((3, 2)))
    assert isinstance(est, Estimate)
    value, stderr = est
    assert float(value) == 2.0 and float(stderr) == 0.0


def test_mse_exact():
    x = np.array([[0.0, 1.0], [2.0, 2.0], [1.0, -1.0], [3.0, 0.5]])
    x_hat = np.array([[1.0, 1.0], [0.0, 2.0], [1.0, 1.0], [3.0, 0.0]])
    errors = ((x - x_hat) ** 2).sum(axis=1)  # 1, 4, 4, 0.25
    est = mse(x, x_hat)
    np.testing.assert_allclose(est.value, errors.mean(), rtol=1e-14)
    np.testing.assert_allclose(est.stderr, errors.std(ddof=1) / 2, rtol=1e-14)
    np.testing.assert_allclose(mse(x[:, 0], x_hat[:, 0]).value, np.mean((x - x_hat)[:, 0] ** 2))


def test_w2_gaussian_diagonal_closed_form():
    rng = np.random.default_rng(1)
    a, b = np.array([4.0, 1.0, 0.25]), np.array([1.0, 2.0, 0.04])
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    x = _exact_moment_samples(rng, 60, m1, np.diag(a))
    y = _exact_moment_samples(rng, 60, m2, np.diag(b))
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((m1 - m2) ** 2)
    np.testing.assert_allclose(w2_gaussian(x, y).value, expected, rtol=1e-10)


def test_w2_gaussian_noncommuting_matches_sqrtm():
    rng = np.random.default_rng(2)
    d = 3
    q1, q2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = q1 @ q1.T + 0.1 * np.eye(d), q2 @ q2.T + 0.1 * np.eye(d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    x = _exact_moment_samples(rng, 60, m1, c1)
    y = _exact_moment_samples(rng, 60, m2, c2)
    est = w2_gaussian(x, y)
    np.testing.assert_allclose(est.value, bures_w2(m1, c1, m2, c2), rtol=1e-9)
    assert 0 < float(est.stderr) < math.inf


def test_w2_gaussian_singular_and_tiny():
    rng = np.random.default_rng(3)
    # d > n: singular covariances, still finite (the eigenvalue clipping).
    x, y = rng.normal(size=(6, 10)), rng.normal(size=(6, 10))
    big = w2_gaussian(x, y)
    assert np.isfinite(big.stderr)
    # Against scipy's sqrtm of the rank-5 sample covariances, whose zero eigenvalues come out
    # as ±1e-16 of rounding with square roots of ~1e-8: 1e-7 relative allows that.
    reference = bures_w2(x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))
    np.testing.assert_allclose(big.value, reference, rtol=1e-7)
    # Too few samples to jackknife: an infinite error bar, not NaN.
    tiny = w2_gaussian(rng.normal(size=3), rng.normal(size=3))
    assert np.isfinite(tiny.value) and tiny.stderr == jnp.inf


@pytest.mark.parametrize("n", [2, 64])
def test_w2_1d_equal_sizes_is_the_assignment(n):
    x, y = X64[:n, 0], np.round(Y64[:n, 0])  # ties in y
    np.testing.assert_allclose(w2_1d(x, y).value, assignment_w2(x, y), rtol=1e-12, atol=1e-14)


@given(
    arrays(np.float64, 6, elements=st.integers(-20, 20).map(float)),  # many exact ties
    arrays(np.float64, 9, elements=st.floats(-1e3, 1e3, allow_subnormal=False)),
)
def test_w2_1d_unequal_sizes_is_emd(x, y):
    # Unequal sizes: the exact piecewise integral of the quantile functions against the LP.
    expected = ot.emd2([], [], (x[:, None] - y[None, :]) ** 2)
    est = w2_1d(x, y)
    np.testing.assert_allclose(est.value, expected, rtol=1e-10, atol=1e-9)
    assert np.isfinite(est.stderr)


def test_sliced_w2_in_one_dim_is_w2_1d():
    x, y = X64[:, 0], Y64[:, 0]
    expected = w2_1d(x, y)
    for xs, ys in ((x, y), (x[:, None], y[:, None])):
        est = sliced_w2(jax.random.key(0), xs, ys, num_projections=8)
        np.testing.assert_allclose(est.value, expected.value, rtol=1e-12)
        np.testing.assert_allclose(est.stderr, expected.stderr, rtol=1e-9)
    one = sliced_w2(jax.random.key(1), X64, Y64, num_projections=1)
    assert np.isfinite(one.value) and one.stderr == jnp.inf  # one direction in 2-D: no spread


def test_w2_exact_is_the_assignment():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 3)), 1.0 + rng.normal(size=(60, 3))
    est = w2_exact(x, y)
    np.testing.assert_allclose(est.value, assignment_w2(x, y), rtol=1e-10)
    assert float(est.stderr) == 0.0  # no sub-sampling, nothing in the error bar
    # Unequal sizes in 1-D: the network simplex agrees with the quantile formula.
    x1, y1 = rng.normal(size=30), 3.0 * rng.normal(size=47)
    np.testing.assert_allclose(w2_exact(x1, y1).value, w2_1d(x1, y1).value, rtol=1e-10)


def test_w2_exact_subsampling():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(50, 2)), rng.normal(size=(40, 2))
    key = jax.random.key(7)
    disjoint = w2_exact(x, y, max_samples=10, num_repeats=4, key=key)
    assert disjoint == w2_exact(x, y, max_samples=10, num_repeats=4, key=key)  # reproducible
    overlapping = w2_exact(x, y, max_samples=30, num_repeats=4, key=key)
    for est in (disjoint, overlapping):
        assert 0 < float(est.value) and 0 < float(est.stderr) < math.inf
    assert w2_exact(x, y, max_samples=10, num_repeats=1, key=key).stderr == jnp.inf


# ------------------------------------------------------------------------------------------------
# Statistics: each estimator against (s - t)² and its documented bias
# ------------------------------------------------------------------------------------------------


def _normal_pair(seed, n, d=1):
    rng = np.random.default_rng(seed)
    return S * rng.normal(size=(n, d)), T * rng.normal(size=(n, d))


def test_statistics_w2_gaussian():
    n = 20_000
    x, y = _normal_pair(10, n)
    # Exact 1-D bias (see `w2_gaussian`): s²/n + t²/n + 2st(1 - c(n)²), c(n) = E ŝ / s.
    c = math.exp(0.5 * math.log(2 / (n - 1)) + gammaln(n / 2) - gammaln((n - 1) / 2))
    _within(w2_gaussian(x, y), TRUTH + (S**2 + T**2) / n + 2 * S * T * (1 - c**2))
    _within(w2_gaussian(x, y, debias=True), TRUTH)


def test_statistics_w2_1d():
    n = 20_000
    x, y = _normal_pair(11, n)
    _within(w2_1d(x, y), TRUTH + 2 * S * T * _order_stat_var(n))


def test_statistics_sliced_w2():
    # Isotropic: every projection is N(0, s²) vs N(0, t²), so SW2² = (s - t)².
    n = 2000
    x, y = _normal_pair(12, n, d=3)
    est = sliced_w2(jax.random.key(13), x, y, num_projections=64)
    _within(est, TRUTH + 2 * S * T * _order_stat_var(n))


def test_statistics_w2_exact():
    # Disjoint sub-samples of m = 500 (16·500 ≤ 8000): i.i.d. repeats, bias that of size m.
    m = 500
    x, y = _normal_pair(14, 8000)
    est = w2_exact(x, y, max_samples=m, num_repeats=16, key=jax.random.key(15))
    _within(est, TRUTH + 2 * S * T * _order_stat_var(m))


def test_w2_gaussian_documented_bias_for_equal_distributions():
    # E Ŵ2² ≈ σ²(2d/n + d(d+1)/(2(n-1))) for N(0, σ²I_d) twice; the jackknife removes it.
    n, d, repeats = 500, 3, 300
    pairs = np.random.default_rng(16).normal(size=(repeats, 2, n, d))
    both = jax.vmap(lambda p: (w2_gaussian(p[0], p[1]), w2_gaussian(p[0], p[1], debias=True)))
    plug_in, debiased = (e.value for e in both(pairs))
    predicted = 2 * d / n + d * (d + 1) / (2 * (n - 1))
    se = lambda v: float(jnp.std(v)) / math.sqrt(repeats)  # noqa: E731
    # The formula is the O(1/n) term of the bias; what it leaves out is smaller by O(d/n)
    # relatively (in 1-D exactly: the Bures part is 2(1 - c(n)²) = 1/(n-1) - 1/(4(n-1)²) + ...,
    # c(n) as in `w2_gaussian`), so d/n of the prediction is allowed for it: 1.4e-4, a fifth of
    # the Monte Carlo standard error (7.0e-4), which with 4 of those puts the false-failure
    # rate at P(|Z| > 3.8) = 1.4e-4. The debiased mean has no O(1/n) term left: 4 standard errors.
    allowance = d / n * predicted
    assert abs(float(jnp.mean(plug_in)) - predicted) <= 4 * se(plug_in) + allowance
    assert abs(float(jnp.mean(debiased))) <= 4 * se(debiased)


# ------------------------------------------------------------------------------------------------
# jit, dtypes, bad input
# ------------------------------------------------------------------------------------------------


def test_jit_matches_eager_and_checks_at_run_time():
    x, y = jnp.asarray(X64), jnp.asarray(Y64)
    key = jax.random.key(9)
    pairs = [
        (jax.jit(w2_1d)(x[:, :1], y[:, :1]), w2_1d(x[:, :1], y[:, :1])),
        (jax.jit(sliced_w2, static_argnums=3)(key, x, y, 8), sliced_w2(key, x, y, 8)),
    ]
    for jitted, eager in pairs:
        np.testing.assert_allclose(jitted.value, eager.value, rtol=1e-12)
        np.testing.assert_allclose(jitted.stderr, eager.stderr, rtol=1e-12)
    with pytest.raises(Exception, match="`x` must be finite"):
        jax.block_until_ready(jax.jit(w2_1d)(x[:, :1].at[3].set(jnp.nan), y[:, :1]))


def test_float32_stays_float32():
    """float32 in, float32 out, and as accurate as float32 inputs allow.

    Each estimator is a backward-stable function of its inputs if float32 gives the float64
    result at inputs perturbed by at most γ_K = Ku/(1 - Ku) relatively, u = 2⁻²⁴ (Higham,
    *Accuracy and Stability of Numerical Algorithms*, §3.1): K = n + 16 counts a sum over the
    n = 64 samples and the ≤ 16 other roundings on any path (products, the d = 2 features, a
    square root, a 2×2 eigendecomposition's rotation). To first order the result then moves by
    γ_K (|f| + Σ |x_ij ∂f/∂x_ij|), the sensitivity computed by `jax.grad` in float64, for the
    value and for the standard error alike. Both runs see the same (float32) inputs.
    """
    key = jax.random.key(9)
    x32, y32 = X64.astype(np.float32), Y64.astype(np.float32)
    x64, y64 = jnp.asarray(x32, jnp.float64), jnp.asarray(y32, jnp.float64)
    K = X64.shape[0] + 16
    gamma = K * 2.0**-24 / (1 - K * 2.0**-24)
    for f in (
        mse,
        w2_gaussian,
        lambda a, b: w2_1d(a[:, :1], b[:, :1]),
        lambda a, b: sliced_w2(key, a, b, 8),
    ):
        lo, hi = f(x32, y32), f(x64, y64)
        assert lo.value.dtype == jnp.float32 and lo.stderr.dtype == jnp.float32
        assert hi.value.dtype == jnp.float64
        # Rows: the value, then the standard error; one compiled reverse pass for both.
        grads = jax.jit(jax.jacrev(lambda a, b, f=f: jnp.stack(f(a, b)), argnums=(0, 1)))(x64, y64)
        pairs = zip((x64, y64), grads, strict=True)
        condition = sum(jnp.sum(jnp.abs(z * g), axis=(1, 2)) for z, g in pairs)
        for i in range(2):
            bound = gamma * (abs(float(hi[i])) + float(condition[i]))
            assert abs(float(lo[i]) - float(hi[i])) <= bound, (f, i)
    # w2_exact solves on the host in float64 whatever the input: one rounding of its result.
    lo, hi = w2_exact(x32, y32), w2_exact(x64, y64)
    assert lo.value.dtype == jnp.float32 and lo.stderr.dtype == jnp.float32
    assert float(lo.value) == float(np.float32(hi.value)) and float(lo.stderr) == 0.0


_X = np.random.default_rng(12).normal(size=(10, 2))
_NAN = _X.copy()
_NAN[4, 1] = np.nan
_KEY = jax.random.key(0)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: mse(_X, _X[:, :1]), "x_hat"),
        (lambda: mse(_NAN, _X), "x"),
        (lambda: mse(_X, np.inf * _X), "x_hat"),
        (lambda: mse(_X[:1], _X[:1]), "x"),
        (lambda: mse(_X[None], _X[None]), "x"),
        (lambda: mse(_X, 1j * _X), "x_hat"),
        (lambda: w2_gaussian(_X, _X[:, :1]), "y"),
        (lambda: w2_gaussian(_X, _NAN), "y"),
        (lambda: w2_gaussian(_X[:1], _X), "x"),
        (lambda: w2_gaussian(_X, _X, num_blocks=1), "num_blocks"),
        (lambda: w2_gaussian(_X, _X, num_blocks=2.5), "num_blocks"),
        (lambda: w2_gaussian(_X[:3], _X[:3], debias=True), "debias"),
        (lambda: w2_1d(_X, _X), "x"),
        (lambda: w2_1d(_X[:, 0], _NAN[:, 1]), "y"),
        (lambda: w2_1d(_X[:1, 0], _X[:, 0]), "x"),
        (lambda: sliced_w2(_KEY, _X, _X, 0), "num_projections"),
        (lambda: sliced_w2(_KEY, _X, _X, True), "num_projections"),
        (lambda: sliced_w2(0, _X, _X, 4), "key"),
        (lambda: sliced_w2(_KEY, _X, _X[:, :1], 4), "y"),
        (lambda: sliced_w2(_KEY, _NAN, _X, 4), "x"),
        (lambda: w2_exact(_X, _X[:, :1]), "y"),
        (lambda: w2_exact(_NAN, _X), "x"),
        (lambda: w2_exact(_X, _X, max_samples=1), "max_samples"),
        (lambda: w2_exact(_X, _X, num_repeats=0), "num_repeats"),
        (lambda: w2_exact(_X, _X, max_samples=5), "key"),
        (lambda: w2_exact(_X, _X, max_samples=5, key=3), "key"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
