"""`rdp_jax.models`: EDM preconditioning, the networks as score sources, weights files, and the
shipped models."""

from importlib import resources

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx, serialization

from rdp_jax import datasets, decode, models, scores
from rdp_jax.models import _spectrum


def _denoiser(kind: str, seed: int = 0) -> models.EDMDenoiser:
    rngs = nnx.Rngs(seed)
    if kind == "mlp":
        network = models.MLP(2, width=16, depth=1, rngs=rngs)
        mean, std = np.array([0.5, -1.0]), np.array([2.0, 0.3])
    else:
        network = models.UNet(8, channels=8, emb=8, rngs=rngs)
        rng = np.random.default_rng(seed)
        mean, std = rng.normal(size=(8, 8)), rng.uniform(0.2, 1.0, (8, 8))
        std[0, 0] = 0.0  # a pixel that never varies: floored, and returned as its mean
    return models.EDMDenoiser(network, mean, std)


@eqx.filter_jit
def _denoise_batch(source, x, sigma):
    """One compiled call per source structure (eager vmap of a U-Net is slow to dispatch)."""
    return jax.vmap(source.denoise, (0, None))(x, sigma)


def _randomise_output(denoiser: models.EDMDenoiser, seed: int = 1) -> models.EDMDenoiser:
    """The same denoiser with a random (not zero) output layer, so that F ≠ 0."""
    out = denoiser.network.out
    out.kernel.set_value(
        0.3 * jax.random.normal(jax.random.key(seed), out.kernel.shape, jnp.float32)
    )
    return denoiser


@pytest.mark.parametrize("kind", ["mlp", "unet"])
def test_an_untrained_denoiser_is_the_per_dimension_wiener_filter(kind):
    # Zero output layers give F = 0, so D = μ + σ_d²/(σ² + σ_d²)(x − μ): the exact denoiser of
    # N(μ, diag σ_d²), which scores.gaussian computes independently.
    d = _denoiser(kind)
    mean, std = np.asarray(d.mean.get_value()), np.asarray(d.std.get_value())
    if kind == "unet":
        assert std[0, 0] == 1e-3  # the floor, STD_FLOOR
    exact = scores.gaussian(mean.ravel().astype(np.float64), std.ravel().astype(np.float64) ** 2)
    x = np.random.default_rng(2).normal(size=(5, *d.event_shape)).astype(np.float32)
    source = models.score_source(d)
    for sigma in (0.01, 0.7, 30.0):
        got = _denoise_batch(source, jnp.asarray(x), jnp.float32(sigma))
        want = jax.vmap(exact.denoise, (0, None))(x.reshape(5, -1), sigma).reshape(x.shape)
        # float32 network against the float64 filter: a few float32 ulps.
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("kind", ["mlp", "unet"])
def test_the_training_target_is_edm_weighted_denoising_error(kind):
    # ‖F − target‖² c_out² = ‖D − x₀‖² per dimension (Karras et al. 2022, eq. 8 with λ = 1/c_out²).
    d = _randomise_output(_denoiser(kind))
    rng = np.random.default_rng(3)
    x0 = jnp.asarray(rng.normal(size=(4, *d.event_shape)), jnp.float32)
    sigma = jnp.asarray([0.02, 0.3, 2.0, 40.0], jnp.float32)
    x = x0 + sigma.reshape((4,) + (1,) * (x0.ndim - 1)) * jnp.asarray(
        rng.normal(size=x0.shape), jnp.float32
    )

    @eqx.filter_jit
    def both(d, x, sigma, x0):
        out, target = d.network_and_target(x, sigma, x0)
        weighted = (out - target) ** 2 * d.coefficients(sigma)[1] ** 2
        return weighted, (d.batched(x, sigma) - x0) ** 2, jnp.abs(out).max()

    weighted, error, largest = both(d, x, sigma, x0)
    np.testing.assert_allclose(weighted, error, rtol=1e-4, atol=1e-7)
    assert float(largest) > 0  # the output layer is not zero here


def test_a_denoiser_is_a_score_source_for_decode_and_fingerprint():
    d = _randomise_output(_denoiser("mlp"))
    source = models.score_source(d)
    assert source.event_shape == (2,)
    y = jnp.asarray(np.random.default_rng(4).normal(size=(3, 2)))
    x_hat = decode(y, 0.5, 0.5, source, num_steps=4)
    assert x_hat.shape == y.shape and bool(jnp.all(jnp.isfinite(x_hat)))
    # Untrained (F = 0) the source is the Wiener filter of N(μ, diag σ_d²): decode follows the
    # same ODE as with scores.gaussian, to float32 round-off over 4 steps (measured 5 ulp;
    # 32 allowed).
    untrained = _denoiser("mlp")
    mean, std = (np.asarray(v.get_value(), np.float64) for v in (untrained.mean, untrained.std))
    want = decode(y, 0.5, 0.5, scores.gaussian(mean, std**2), num_steps=4)
    got = decode(y.astype(jnp.float32), 0.5, 0.5, models.score_source(untrained), num_steps=4)
    np.testing.assert_allclose(got, want, rtol=32 * np.finfo(np.float32).eps)
    score = source.score(y[0], 0.5)
    np.testing.assert_allclose(source.denoise(y[0], 0.5), y[0] + 0.25 * score, rtol=1e-5, atol=1e-6)
    other = _randomise_output(_denoiser("mlp"), seed=2)
    assert scores.fingerprint(source) != scores.fingerprint(models.score_source(other))
    assert scores.fingerprint(source) == scores.fingerprint(models.score_source(d))
    with pytest.raises(ValueError, match="denoiser"):
        models.score_source(d.network)


def test_weights_files_round_trip_and_reject_other_files(tmp_path):
    d = _randomise_output(_denoiser("mlp"))
    data = np.random.default_rng(5).normal(size=(50, 2))
    path = tmp_path / "m.msgpack"
    models.save(path, d, data, {"steps": 3})
    loaded = models.load(path)
    x = jnp.asarray(data[:7])
    np.testing.assert_array_equal(
        _denoise_batch(loaded, x, 0.4), _denoise_batch(models.score_source(d), x, 0.4)
    )
    np.testing.assert_allclose(loaded.data_mean, data.mean(0))
    assert models.card(path) == {"steps": 3}
    blob = path.read_bytes()
    for bad in (
        blob[: len(blob) // 2],
        b"\x00" * 64,
        blob.replace(b"rdp-jax model", b"rdp-jax modem"),
    ):
        path.write_bytes(bad)
        with pytest.raises(ValueError, match="not an rdp-jax model file"):
            models.load(path)


@pytest.mark.parametrize("name", models.PRETRAINED)
def test_the_shipped_models_load_as_score_sources(name):
    source = models.pretrained(name)
    event = datasets.info(name).event_shape
    assert source.event_shape == event and isinstance(source, scores.ScoreSource)
    x = datasets.load(name, "test")[:16]
    d = _denoise_batch(source, jnp.asarray(x), jnp.float32(0.3))
    assert d.shape == x.shape and bool(jnp.all(jnp.isfinite(d)))
    mean, cov = models.data_moments(datasets.load(name, "train"))
    np.testing.assert_allclose(source.data_mean, mean, rtol=1e-12, atol=1e-12)
    fit = source.gaussian_fit()
    np.testing.assert_allclose(fit.covariance, cov, rtol=1e-9, atol=1e-9 * np.abs(cov).max())
    card = models.card(name)
    assert card["dataset"] == name and card["parameters"] == models.num_parameters(
        source.denoiser.network
    )
    assert card["command"].startswith(f"rdp-jax train --dataset {name}")


@pytest.mark.parametrize("name", ["digits", "patches"])
def test_the_gaussian_fit_builds_in_float32(name):
    # digits' constant border pixels have variance 1e-6 of the mean (the stored ridge), below
    # float32's resolution of the spectrum; the fit floors it at 4·d·ε₃₂·λ_max instead.
    # (`portable_eigh` is float64, so only the floor and the casts differ from the exact fit.)
    source = models.pretrained(name)
    with jax.enable_x64(False):
        fit = source.gaussian_fit()
        x = jnp.asarray(datasets.load(name, "test")[:8].reshape(8, -1))
        denoised = jax.vmap(fit.denoise, (0, None))(x, jnp.float32(0.3))
    assert fit.eigenvalues.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(denoised)))
    with jax.enable_x64(True):
        exact = scores.gaussian(source.data_mean, source.data_cov)
        want = jax.vmap(exact.denoise, (0, None))(jnp.asarray(x, jnp.float64), 0.3)
    cov = np.asarray(source.data_cov)
    eps, d, top = np.finfo(np.float32).eps, len(cov), np.linalg.eigvalsh(cov)[-1]
    # Flooring moves Σ by at most the floor in 2-norm; float32 rounding of U and λ and the
    # reassembly by a few ε·λ_max·d more, under a second floor's worth.
    np.testing.assert_allclose(fit.covariance, cov, rtol=0, atol=2 * 4 * d * eps * top)
    # The Wiener gains move by ≤ floor/σ² along floored directions, each of which carries
    # |x - μ| ≤ 2 (pixels in [-1, 1]); float32 round-off of the matmuls is far below that.
    tol = 4 * d * eps * top / 0.3**2 * 2 * np.sqrt(d)
    np.testing.assert_allclose(denoised, want, rtol=0, atol=tol)


@pytest.mark.parametrize("d", [1, 2, 5, 8])
def test_portable_eigh_is_an_eigendecomposition(d):
    """Against LAPACK: Jacobi is backward stable, each of its O(d) rotations per entry and sweep
    rounding by a few ε, so Σ = U diag(λ) Uᵀ, UᵀU = I and λ agree to 16·d·ε (of λ_max)."""
    rng = np.random.default_rng(d)
    b = rng.normal(size=(d, d))
    cov = b @ b.T - 0.5 * np.eye(d)  # symmetric, indefinite for d > 1
    eigenvalues, eigenvectors = _spectrum.portable_eigh(cov)
    top, tol = np.max(np.abs(np.linalg.eigvalsh(cov))), 16 * d * np.finfo(float).eps
    np.testing.assert_allclose(eigenvalues, np.linalg.eigvalsh(cov), rtol=0, atol=tol * top)
    np.testing.assert_allclose(eigenvectors.T @ eigenvectors, np.eye(d), rtol=0, atol=tol)
    reassembled = (eigenvectors * eigenvalues) @ eigenvectors.T
    np.testing.assert_allclose(reassembled, cov, rtol=0, atol=tol * top)
    assert np.all(np.diff(eigenvalues) >= 0)
    with pytest.raises(ValueError, match="`cov` must be a finite square matrix"):
        _spectrum.portable_eigh(cov[:, :-1] if d > 1 else np.full((1, 1), np.nan))


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="name"):
        models.pretrained("mnist")
    with pytest.raises(ValueError, match="config"):
        models.make_network({"kind": "transformer"})
    with pytest.raises(ValueError, match="size"):
        models.UNet(6, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="std"):
        models.EDMDenoiser(models.MLP(2, rngs=nnx.Rngs(0)), np.zeros(2), -np.ones(2))


def test_the_shipped_classifier_reads_digits():
    classifier = models.pretrained_classifier("digits")
    x, labels = datasets.load("digits", "test", return_labels=True)
    accuracy = float(np.mean(np.argmax(classifier(x), -1) == labels))
    # Its card records the accuracy measured when it was trained; the file reproduces it, to
    # one test item (a near-tie's argmax may flip under another machine's rounding).
    blob = resources.files("rdp_jax.models").joinpath("weights", "digits_classifier.msgpack")
    card = serialization.msgpack_restore(blob.read_bytes())["card"]
    assert card["test_accuracy"] > 0.9
    assert abs(accuracy - card["test_accuracy"]) <= 1 / len(x) + 1e-12
    assert classifier.features(x).shape == (len(x), 32)
    with pytest.raises(ValueError, match="name"):
        models.pretrained_classifier("patches")


def test_a_renamed_copy_of_a_weights_file_is_the_same_model(tmp_path):
    # The name is the card's dataset, not the file's: a copy under another name keeps the
    # fingerprint (it used to take the file's stem), so the codec accepts it for the same files.
    shipped = models.pretrained("digits")
    path = tmp_path / "my_copy.msgpack"
    path.write_bytes(
        resources.files("rdp_jax.models").joinpath("weights/digits.msgpack").read_bytes()
    )
    copy = models.load(path)
    assert copy.name == "digits"
    assert scores.fingerprint(copy) == scores.fingerprint(shipped)
    # A file whose card names no dataset is named by its stem.
    models.save(
        tmp_path / "plain.msgpack", _denoiser("mlp"), np.zeros((4, 2)) + np.arange(4)[:, None], {}
    )
    assert models.load(tmp_path / "plain.msgpack").name == "plain"


def test_portable_eigh_at_extreme_scales():
    # √|a_pp·a_qq| overflowed to ∞ beyond ~1e154 (no rotation was ever made: 33 % off).
    scale = 1e300
    eigenvalues, eigenvectors = _spectrum.portable_eigh(scale * np.array([[2.0, 1.0], [1.0, 2.0]]))
    np.testing.assert_allclose(eigenvalues / scale, [1.0, 3.0], rtol=4 * np.finfo(float).eps)
    np.testing.assert_allclose(np.abs(eigenvectors), np.sqrt(0.5), rtol=4 * np.finfo(float).eps)
    # The threshold's √|a_pp·a_qq| also where the product underflows (harmless to convergence,
    # but the helper promises the root), and exactly the product's root elsewhere.
    tiny = _spectrum._geometric_mean(np.array([2e-300]), np.array([2e-300]))[0]
    assert tiny == pytest.approx(2e-300, rel=4 * np.finfo(float).eps)  # two roots, one product
    assert _spectrum._geometric_mean(np.array([2.0]), np.array([8.0]))[0] == 4.0
    assert _spectrum._geometric_mean(np.array([0.0]), np.array([8.0]))[0] == 0.0


def test_mismatched_parts_are_rejected_where_they_are_put_together(tmp_path):
    mlp = models.MLP(3, width=8, depth=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="`network` takes samples of shape"):
        models.EDMDenoiser(mlp, np.zeros(2), np.ones(2))
    d = _denoiser("mlp")
    with pytest.raises(ValueError, match="`data`"):
        models.save(tmp_path / "m.msgpack", d, np.zeros((10, 3)), {})
    with pytest.raises(ValueError, match="`data`"):
        models.save(tmp_path / "m.msgpack", d, np.zeros((1, 2)), {})
    source = models.score_source(d)
    with pytest.raises(ValueError, match="`x` must end in the event shape"):
        source.denoise(jnp.zeros(3), 0.5)
    assert source.denoise(jnp.zeros((5, 2)), 0.5).shape == (5, 2)  # the MLP takes batches
    with pytest.raises(ValueError, match="`x` must end in the event shape"):
        models.pretrained("digits").denoise(jnp.zeros(64), 0.4)
    junk = tmp_path / "junk.msgpack"
    junk.write_bytes(b"\x93\x01\x02\x03 trailing")
    with pytest.raises(ValueError, match="not an rdp-jax model file"):
        models.card(junk)
    with pytest.raises(ValueError, match="dtype"):
        datasets.load("gmm2d", dtype="foo")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "int32", "foo"])
def test_the_gaussian_fit_takes_float32_or_float64_only(dtype):
    # float16's ε floors 57 of digits' 64 eigenvalues; bfloat16's all of them, above λ_max.
    with pytest.raises(ValueError, match="`dtype` must be float32 or float64"):
        models.pretrained("digits").gaussian_fit(dtype)


def test_compare_denoisers_counts_a_sample_once_whatever_its_repeats():
    # Repeated noises of one image are not independent: the SE is over the n samples, each one's
    # errors averaged over its noises first (a 4× tiled test set had been n = 4·359).
    model = scores.gaussian(np.zeros(2), np.array([1.0, 4.0]))
    reference = scores.gaussian(np.zeros(2), np.array([2.0, 2.0]))
    x = np.asarray(model.sample(jax.random.key(0), 50))
    got = models.compare_denoisers(jax.random.key(1), model, reference, x, 0.7, repeats=3)
    tiled = np.tile(x, (3, 1))
    y = tiled + 0.7 * np.asarray(jax.random.normal(jax.random.key(1), tiled.shape))

    def per_sample(source):
        err = np.sum((np.asarray(jax.vmap(source.denoise, (0, None))(y, 0.7)) - tiled) ** 2, 1)
        return err.reshape(3, 50).mean(0)

    a = per_sample(model)
    assert got.mse == pytest.approx(a.mean() / 2, rel=1e-12)
    assert got.mse_stderr == pytest.approx(a.std(ddof=1) / np.sqrt(50) / 2, rel=1e-12)
    with pytest.raises(ValueError, match="repeats"):
        models.compare_denoisers(jax.random.key(1), model, reference, x, 0.7, repeats=0)
