"""Calibration of every estimator's standard error: over independent repeats, the spread of the
value must match the reported `stderr`, within the sampling error of that comparison.

For R independent repeats (fixed seeds) with values θ_r and standard errors se_r, the ratio

    ρ̂ = sd(θ) / √mean(se²)

is 1 for a calibrated error bar: se² is unbiased for Var θ (`mse`, `w2_exact` with disjoint
sub-samples) or nearly so (the delete-a-block jackknife, which Efron-Stein makes conservative by
O(1/n)). The root mean square, not the mean, of se: E se < √(E se²), by the factor c₄ = 0.92 for
`w2_exact`'s 4 repeats. The sampling error of ln ρ̂ combines that of the sample variance of θ
(≈ √((κ - 1)/(4R)), κ the kurtosis of θ) with the noise of mean(se²) (19 degrees of freedom per
jackknife), correlated with it; rather than model them, its standard deviation is estimated by
a bootstrap over the R pairs (θ_r, se_r) (Efron & Tibshirani, *An Introduction to the Bootstrap*,
1993, §6.2), and the check is |ln ρ̂| ≤ 4 sd: for the near-normal ln ρ̂ of R ≥ 200 repeats a
false-failure rate of 6.3e-5 per estimator. With R = 200 the band is about ±20%; every test also
asserts that it rejects the same error bars inflated or deflated 2× and 10×, the smallest
miscalibration it must catch (ln 2 = 0.69, about three band half-widths).

The distributions differ (N(0, Σ) against N(0, 1.5² Σ), or a paired y = 0.6x + 0.5z) as the
metrics' docstrings require: for equal distributions the estimates are degenerate, O(1/n) and
skewed, and their jackknife error bars only a scale. The fast versions (n = 200, R = 200) run in
CI; the slow ones (n = 1000, R = 1000, `-m slow`) resolve ρ̂ to about ±9%. Measured (fast,
slow): mse 0.99, 0.98; w2_gaussian 0.93, 1.00 (debiased alike, paired 0.95, 1.00); w2_1d 1.05,
0.99 (paired 0.88, 1.00); sliced_w2 0.86, 0.95; w2_exact 0.93, 1.00.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rdp_jax.metrics import mse, sliced_w2, w2_1d, w2_exact, w2_gaussian

S, T = 1.0, 1.5  # the standard deviations of the two samples
Z = 4.0  # band half-width in bootstrap standard deviations of ln ρ̂
BOOTSTRAP = 2000
FAST = {"n": 200, "repeats": 200}
SLOW = {"n": 1000, "repeats": 1000}
ANISOTROPY = jnp.sqrt(jnp.array([4.0, 1.0, 0.25]))  # the axes' standard deviations for sliced_w2


def calibration(values, stderrs, seed=0):
    """(ln ρ̂, band): ln(sd(θ)/√mean(se²)) and Z bootstrap standard deviations of it."""
    values = np.asarray(values, dtype=float)
    squares = np.asarray(stderrs, dtype=float) ** 2

    def log_ratio(index):
        variance = values[index].var(axis=-1, ddof=1)
        return 0.5 * (np.log(variance) - np.log(squares[index].mean(axis=-1)))

    repeats = values.size
    resamples = np.random.default_rng(seed).integers(0, repeats, (BOOTSTRAP, repeats))
    return float(log_ratio(np.arange(repeats))), Z * float(log_ratio(resamples).std(ddof=1))


def assert_calibrated(values, stderrs):
    log_ratio, band = calibration(values, stderrs)
    assert math.isfinite(band) and band < math.log(2) / 2  # the comparison resolves 2×
    assert abs(log_ratio) <= band, (math.exp(log_ratio), math.exp(band))
    for factor in (2.0, 0.5, 10.0, 0.1):
        wrong, wrong_band = calibration(values, factor * np.asarray(stderrs))
        assert abs(wrong) > wrong_band, factor  # a miscalibrated error bar fails


def _normal_pairs(seed, repeats, n, d, paired=False):
    rng = np.random.default_rng(seed)
    x = S * rng.normal(size=(repeats, n, d))
    y = 0.6 * x + 0.5 * rng.normal(size=x.shape) if paired else T * rng.normal(size=x.shape)
    return jnp.asarray(x), jnp.asarray(y)


def _mse(seed, repeats, n):
    # Laplace errors: heavy-tailed squared errors, so the check is not only about Gaussians.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(repeats, n, 3))
    return jax.vmap(mse)(x, 0.8 * x + 0.3 * rng.laplace(size=x.shape))


def _w2_gaussian(debias, paired):
    def run(seed, repeats, n):
        x, y = _normal_pairs(seed, repeats, n, 2, paired)
        return jax.vmap(lambda a, b: w2_gaussian(a, b, debias=debias))(x, y)

    return run


def _w2_1d(paired):
    def run(seed, repeats, n):
        x, y = _normal_pairs(seed, repeats, n, 1, paired)
        return jax.vmap(w2_1d)(x, y)

    return run


def _sliced(seed, repeats, n):
    # Anisotropic, so that the directions' own spread is real: for isotropic samples every
    # direction has the same W2², the s_θ²/P term of the error bar counts only data noise
    # twice, and the bar is conservative by up to 1/P of a direction's data variance, as
    # `sliced_w2` documents (measured ratio 0.91 at P = 16, 0.96 at P = 64; here 0.95-0.97).
    x, y = _normal_pairs(seed, repeats, n, 3)
    x, y = x * ANISOTROPY, y * ANISOTROPY
    keys = jax.random.split(jax.random.key(seed), repeats)
    # lax.map in batches bounds the memory of (repeats × projections × blocks × samples).
    return jax.lax.map(lambda a: sliced_w2(a[0], a[1], a[2], 16), (keys, x, y), batch_size=50)


def _exact(seed, repeats, n):
    # Four disjoint sub-samples of n/4 points (4·n/4 ≤ n): i.i.d. repeats, a fair error bar.
    x, y = (np.asarray(a) for a in _normal_pairs(seed, repeats, n, 2))
    keys = jax.random.split(jax.random.key(seed), repeats)
    runs = [
        w2_exact(a, b, max_samples=n // 4, num_repeats=4, key=k)
        for a, b, k in zip(x, y, keys, strict=True)
    ]
    return np.array([r.value for r in runs]), np.array([r.stderr for r in runs])


ESTIMATORS = {
    "mse": _mse,
    "w2_gaussian": _w2_gaussian(debias=False, paired=False),
    "w2_gaussian-debiased": _w2_gaussian(debias=True, paired=False),
    "w2_gaussian-paired": _w2_gaussian(debias=False, paired=True),
    "w2_1d": _w2_1d(paired=False),
    "w2_1d-paired": _w2_1d(paired=True),
    "sliced_w2": _sliced,
    "w2_exact": _exact,
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_stderr_matches_the_spread_over_repeats(name):
    values, stderrs = ESTIMATORS[name](seed=1, **FAST)
    assert_calibrated(values, stderrs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ESTIMATORS)
def test_stderr_matches_the_spread_over_many_repeats(name):
    values, stderrs = ESTIMATORS[name](seed=2, **SLOW)
    assert_calibrated(values, stderrs)
