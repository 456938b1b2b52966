"""`scores.gaussian_full`: the full-covariance source the codec whitens with (maths §6-§8).

References: `jnp.linalg.solve` for the Wiener filter and the score, numpy for the rotation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rdp_jax.scores import FullGaussian, fingerprint, gaussian, gaussian_full


def _random(d: int, seed: int):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    cov = (q * np.exp(rng.uniform(-2, 2, size=d))) @ q.T
    return 2 * rng.normal(size=d), 0.5 * (cov + cov.T), rng


@pytest.mark.parametrize("d", [1, 3, 8])
def test_score_and_denoiser_are_the_wiener_filter(d):
    mean, cov, rng = _random(d, d)
    source = gaussian_full(mean, cov)
    assert isinstance(source, FullGaussian) and source.event_shape == (d,)
    x, sigma = mean + 3 * rng.normal(size=d), 0.7
    marginal = cov + sigma**2 * np.eye(d)
    # cond(Σ + σ²I) ≤ e⁴: solve is good to ~1e-14, so 1e-11 leaves room for the eigh route.
    np.testing.assert_allclose(
        source.denoise(x, sigma), mean + cov @ np.linalg.solve(marginal, x - mean), rtol=1e-11
    )
    np.testing.assert_allclose(
        source.score(x, sigma), -np.linalg.solve(marginal, x - mean), rtol=1e-11
    )
    # The same filter as `gaussian` with the same matrix: one implementation, two entry points.
    np.testing.assert_array_equal(source.denoise(x, sigma), gaussian(mean, cov).denoise(x, sigma))


def test_eigenbasis_round_trips_and_decorrelates():
    mean, cov, rng = _random(4, 7)
    source = gaussian_full(mean, cov)
    np.testing.assert_array_equal(source.covariance, cov)
    x = rng.normal(size=(5, 4))
    z = source.to_eigenbasis(x)
    np.testing.assert_allclose(z, (x - mean) @ np.asarray(source.eigenvectors), rtol=1e-13)
    np.testing.assert_allclose(source.from_eigenbasis(z), x, rtol=1e-12, atol=1e-12)
    # In the eigenbasis Σ is diag(λ): Uᵀ Σ U.
    u = np.asarray(source.eigenvectors)
    np.testing.assert_allclose(u.T @ cov @ u, np.diag(source.eigenvalues), atol=1e-12)
    n = 20_000
    samples = source.to_eigenbasis(source.sample(jax.random.key(0), n))
    # Sample covariance entries have sd ≤ √(2/n)·max λ: 5 sd.
    np.testing.assert_allclose(
        np.cov(np.asarray(samples).T),
        np.diag(source.eigenvalues),
        atol=5 * np.sqrt(2 / n) * float(source.eigenvalues[-1]),
    )


def test_definition_identifies_the_source_without_its_eigendecomposition():
    mean, cov, _ = _random(3, 1)
    a = gaussian_full(mean, cov)
    # A different eigendecomposition of the same Σ (another LAPACK): flipped eigenvector signs.
    b = FullGaussian(a.mean, a.eigenvalues, -a.eigenvectors, a.cov)
    assert fingerprint(a.definition) == fingerprint(b.definition)
    assert fingerprint(a) != fingerprint(b)
    other = gaussian_full(mean, cov + 0.01 * np.eye(3))
    assert fingerprint(other.definition) != fingerprint(a.definition)


def test_float32_and_jit():
    mean, cov, _ = _random(3, 2)
    source = gaussian_full(mean.astype(np.float32), cov.astype(np.float32))
    assert source.cov.dtype == source.eigenvectors.dtype == jnp.float32
    out = jax.jit(lambda s, x: s.denoise(x, 0.5))(source, jnp.ones(3, jnp.float32))
    assert out.dtype == jnp.float32
    # The float64 source of the same float32-rounded Σ: float32 arithmetic in its
    # eigendecomposition and solve, a few ε·κ.
    cov64 = np.asarray(cov, np.float32).astype(np.float64)
    exact = gaussian_full(np.asarray(mean, np.float32).astype(np.float64), cov64)
    want = np.asarray(exact.denoise(jnp.ones(3), 0.5))
    kappa = np.linalg.cond(cov64 + 0.25 * np.eye(3))
    atol = 16 * kappa * np.finfo(np.float32).eps * np.abs(want).max()
    np.testing.assert_allclose(out, want, rtol=0, atol=atol)


@pytest.mark.parametrize(
    ("mean", "cov", "match"),
    [
        (np.zeros(2), np.ones(2), "`cov` must be a \\(d, d\\) matrix"),
        (np.zeros(3), np.eye(2), "`mean` .* and `cov` .* disagree"),
        (np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), "gaussian_full: `cov` must be symmetric"),
        (np.zeros(2), -np.eye(2), "gaussian_full: `cov` must be positive definite"),
        (np.array([np.nan, 0.0]), np.eye(2), "gaussian_full: `mean` must be finite"),
    ],
)
def test_bad_arguments_raise(mean, cov, match):
    with pytest.raises(ValueError, match=match):
        gaussian_full(mean, cov)


def test_eigenbasis_shape_is_checked():
    source = gaussian_full(np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="`x` must have a last axis of 2"):
        source.to_eigenbasis(np.zeros(3))
    with pytest.raises(ValueError, match="`z` must have a last axis of 2"):
        source.from_eigenbasis(np.zeros((4, 1)))
