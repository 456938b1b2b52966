"""The estimators at the edges of their arguments: block counts, sub-sampling thresholds, solver
limits and empty inputs, each against an independent computation."""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import assignment_w2, bures_w2  # noqa: E402

import rdp_jax  # noqa: E402
from rdp_jax import metrics  # noqa: E402
from rdp_jax.metrics import mse, w2_1d, w2_exact, w2_gaussian  # noqa: E402


def _frechet(x, y) -> float:
    """W2² between Gaussians fitted with unbiased covariances."""
    return bures_w2(x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))


def test_two_block_jackknife_is_half_the_difference_of_the_halves():
    # With B = 2 contiguous blocks the jackknife's leave-one-out estimates are the two halves
    # alone, and its standard error √((B−1)/B Σ (θ_b − θ̄)²) is |θ_1 − θ_2| / 2. float64 sqrtm
    # on 3×3 matrices: agreement to 1e-10 relative.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) + 0.3
    estimate = w2_gaussian(x, y, num_blocks=2)
    halves = _frechet(x[20:], y[20:]), _frechet(x[:20], y[:20])
    np.testing.assert_allclose(float(estimate.value), _frechet(x, y), rtol=1e-10)
    np.testing.assert_allclose(float(estimate.stderr), abs(halves[0] - halves[1]) / 2, rtol=1e-10)
    with pytest.raises(ValueError, match="num_blocks"):
        w2_gaussian(x, y, num_blocks=1)


@pytest.mark.parametrize("estimator", [w2_gaussian, w2_1d])
def test_small_samples_use_as_many_blocks_as_fit(estimator):
    # Five samples hold two blocks of at least two: the default (20 blocks) must fall back to
    # exactly two, whole blocks, not 2.5.
    rng = np.random.default_rng(1)
    shape = (5, 2) if estimator is w2_gaussian else (5,)
    x, y = rng.normal(size=shape), rng.normal(size=shape)
    default, two = estimator(x, y), estimator(x, y, num_blocks=2)
    assert float(default.value) == float(two.value)
    assert float(default.stderr) == float(two.stderr)


def test_w2_exact_at_max_samples_needs_no_key():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
    estimate = w2_exact(x, y, max_samples=10)
    assert float(estimate.stderr) == 0.0
    np.testing.assert_allclose(float(estimate.value), assignment_w2(x, y), rtol=1e-12)


def test_w2_exact_repeats_five_sub_samples_by_default():
    # The documented default.
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    key = jax.random.key(0)
    default = w2_exact(x, y, max_samples=50, key=key)
    five = w2_exact(x, y, max_samples=50, num_repeats=5, key=key)
    assert float(default.value) == float(five.value)


def test_w2_exact_solves_a_hard_problem_to_optimality():
    # 2000 points in 32 dimensions take the network simplex past 100,000 iterations; the result
    # must still be the optimal assignment (float64 sums of 2000 costs: 1e-10 relative).
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 32)), rng.normal(size=(2000, 32))
    np.testing.assert_allclose(float(w2_exact(x, y).value), assignment_w2(x, y), rtol=1e-10)


def test_mse_rejects_an_empty_feature_axis():
    with pytest.raises(ValueError, match="empty feature axis"):
        mse(np.zeros((5, 0)), np.zeros((5, 0)))


@pytest.mark.parametrize(
    ("b", "message"),
    [
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "`b` must be symmetric"),
        (np.diag([1.0, -1e-3]), "`b` must be positive semi-definite"),
        (np.diag([np.nan, 1.0]), "`b` must be finite"),
        (np.eye(3), "`b` must have the shape of `a`"),
        (np.ones(2), "`b` must be a square"),
        (np.eye(2) * 1j, "`b` must be real"),
    ],
)
def test_gaussian_w2sq_refuses_what_is_not_a_covariance(b, message):
    """Each used to return a number: eigenvalues were clipped at 0 and asymmetry symmetrised away
    (a negative variance counted as 0), a NaN came out as NaN."""
    a = np.diag([1.0, 2.0])
    with pytest.raises(ValueError, match=message):
        metrics.gaussian_w2sq(a, b)
    if "shape of" not in message:  # a defect of either matrix is named as that one's
        with pytest.raises(ValueError, match=message.replace("`b`", "`a`")):
            metrics.gaussian_w2sq(b, a if b.shape == (2, 2) else b)
    if b.shape == (2, 2) and not np.iscomplexobj(b):
        with pytest.raises(ValueError, match=message):
            rdp_jax.jit(metrics.gaussian_w2sq)(a, b)


def test_gaussian_w2sq_accepts_the_round_off_of_a_congruence():
    """G Σ Gᵀ in float32 is asymmetric and indefinite by ~d·ε; it must pass, and agree with the
    float64 value to float32's precision: each of its three traces sums d terms computed from
    d-term products, so it errs by ~d·ε relative (Higham §3.1), d·ε·(tr A + tr B) in all.
    (Measured over five seeds: 0.4-7.5 ε·(tr A + tr B), against d = 64.)"""
    rng = np.random.default_rng(3)
    d = 64
    g = rng.normal(size=(d, d)) / np.sqrt(d)
    sigma = np.diag(np.exp(rng.normal(size=d)))
    b64 = g @ sigma @ g.T
    a64 = np.diag(np.exp(rng.normal(size=d)))
    want = float(metrics.gaussian_w2sq(a64, b64))
    g32, s32 = g.astype(np.float32), sigma.astype(np.float32)
    got = metrics.gaussian_w2sq(a64.astype(np.float32), g32 @ s32 @ g32.T)
    assert got.dtype == np.float32
    assert abs(float(got) - want) <= d * np.finfo(np.float32).eps * np.trace(a64 + b64)


def test_w2_gaussian_debias_under_jit_with_too_few_samples_raises():
    """Eagerly `debias=True` with 3 samples raised; a traced flag returned the plug-in instead."""
    x = np.arange(3.0)[:, None]
    debiased = rdp_jax.jit(lambda x, y, debias: w2_gaussian(x, y, debias=debias).value)
    with pytest.raises(ValueError, match="`debias` needs at least 4 samples"):
        debiased(x, x + 1, True)
    assert float(debiased(x, x + 1, False)) == pytest.approx(float(w2_gaussian(x, x + 1).value))
