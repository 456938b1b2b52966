"""`rdp_jax.codec`: files that round-trip, reject what they must, and depend on ρ only at decode.

The reference decoder is the closed form of maths §7: on a Gaussian source the score-scaled
PF-ODE ends at x̂ = μ + a^((1+ρ)/2) (y − μ) per eigen-direction, a = λ/(λ + σ²). The codec
decodes with `exp4` at 20 evaluations here, whose own error is ~1e-4 of the output scale
(`rdp_jax.decode`'s docstring), so reconstructions are compared at 1e-3 of it.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings, strategies as st

from rdp_jax import codec, datasets, decode, models, rcc, scores
from rdp_jax.codec import _container, _steps

DECODE = {"method": "exp4", "num_steps": 20}
# Where only X_σ is compared, the cheapest decode (the learned model's ODE is the cost).
CHEAP_DECODE = {"method": "exp2", "num_steps": 4}
# Few candidates and small chunks keep each example's channel search cheap; the container and
# the round trip do not depend on them.
FAST = {"num_candidates": 2**12, "chunk_bits": 6.0}
VARIANCES = np.array([4.0, 1.0, 0.25])


def closed_form(model: scores.Gaussian, y, sigma, rho):
    """x̂ = μ + U diag(a^((1+ρ)/2)) Uᵀ (y − μ), a = λ/(λ + σ²)."""
    lam = np.asarray(model.eigenvalues, np.float64)
    gain = (lam / (lam + np.asarray(sigma, np.float64) ** 2)) ** ((1 + np.asarray(rho)) / 2)
    u = np.eye(lam.size) if model.eigenvectors is None else np.asarray(model.eigenvectors)
    y = np.asarray(y, np.float64)
    return np.asarray(model.mean) + ((y - np.asarray(model.mean)) @ u * gain) @ u.T


def _models(dtype):
    # The decoder compiles once per (items, d): one item of 6 dimensions, batches of 2 of 3.
    six = scores.gaussian(np.zeros(6, dtype), np.tile(VARIANCES, 2).astype(dtype))
    three = scores.gaussian(np.array([1.0, -1.0, 0.5], dtype), VARIANCES.astype(dtype))
    return {"single": (six, (6,)), "batch": (three, (2, 3))}


@settings(max_examples=8)
@given(
    dtype=st.sampled_from(["float32", "float64"]),
    layout=st.sampled_from(["single", "batch"]),
    sigma=st.floats(0.4, 3.0),
    per_dim=st.booleans(),
    rho=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_round_trip(dtype, layout, sigma, per_dim, rho, seed):
    model, shape = _models(dtype)[layout]
    x = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    d = model.dim
    sigma = sigma * np.linspace(0.8, 1.2, d) if per_dim else sigma
    data, info = codec.compress(jax.random.key(seed), x, model, sigma, return_info=True, **FAST)
    x_hat, out = codec.decompress(data, model, rho, return_info=True, **DECODE)
    assert x_hat.shape == out.noisy.shape == info.noisy.shape == shape
    assert x_hat.dtype == info.noisy.dtype == dtype
    np.testing.assert_array_equal(out.noisy, info.noisy)  # the same X_σ, bit for bit
    scale = np.max(np.abs(info.noisy)) + 1
    expected = closed_form(model, np.asarray(info.noisy).reshape(-1, d), sigma, rho)
    np.testing.assert_allclose(np.asarray(x_hat).reshape(-1, d), expected, atol=1e-3 * scale)
    meta = codec.inspect(data)
    assert (meta.mode, meta.dtype, meta.shape, meta.items) == ("oneshot", dtype, shape, x.size // d)
    assert meta.total_bits == info.total_bits == 8 * len(data)
    assert meta.header_bits == info.container_bits


def test_progressive_round_trip():
    model, shape = _models("float64")["batch"]
    x = np.random.default_rng(0).normal(size=shape)
    data, info = codec.compress(
        jax.random.key(1), x, model, 0.8, mode="progressive", steps=8, return_info=True, **FAST
    )
    assert codec.inspect(data).mode == "progressive" and len(codec.inspect(data).grid) == 8
    # The file stores S and σ_max; the grid rebuilt from them is geometric (portable log and
    # exp within 2 ulp each, so within 16 eps of NumPy's) and exact at both ends.
    grid = np.array(codec.inspect(data).grid)
    assert grid[-1] == 0.8
    np.testing.assert_allclose(grid, np.geomspace(grid[0], 0.8, 8), rtol=16 * np.finfo(float).eps)
    x_hat, out = codec.decompress(data, model, 0.3, return_info=True, **DECODE)
    np.testing.assert_array_equal(out.noisy, info.noisy)
    expected = closed_form(model, np.asarray(info.noisy), 0.8, 0.3)
    np.testing.assert_allclose(x_hat, expected, atol=1e-3 * (np.max(np.abs(info.noisy)) + 1))


def test_the_step_kls_of_a_grid_are_the_gaussian_expectation():
    """For N(0, I) items the codec's first prior is the exact marginal and the denoiser the
    Wiener filter, so each step's KL has the closed-form expectation of
    `rcc.progressive_expected_kl_bits`. The estimate is exact for the items at step 0 (its
    deviation ½ Σ (x² − 1)/f², sd ½√(2N)/f²) and one noise draw later (a χ²_N of relative sd
    √(2/N)); on the reference levels themselves (S = 64), so nothing is interpolated. Within
    5 SE at each of the 64 steps: a false failure once in ~3·10⁴ runs."""
    n, d, sigma, top = 256, 16, 0.6, 20.0
    model = scores.gaussian(np.zeros(d), np.ones(d))
    x = np.asarray(model.sample(jax.random.key(4), n))
    grid = _container.geometric_grid(sigma, top, _steps.MAX_STEPS, "float64")
    error = _steps.DenoisingError(model, x, sigma, top, "float64")
    got = _steps.step_kl_bits(grid, x, 1.0, error)
    want = rcc.progressive_expected_kl_bits(np.ones(n * d), grid)
    size = n * d
    se = np.concatenate(
        [
            [0.5 * math.sqrt(2 * size) / (1 + grid[0] ** 2) / math.log(2)],
            want[1:] * math.sqrt(2 / size),
        ]
    )
    assert np.all(np.abs(got - want) <= 5 * se), np.max(np.abs(got - want) / se)


def test_the_default_grid_has_the_fewest_expected_bits():
    """steps=None: the S of `_steps.best_steps`, here 1 (N(0, I) items with the exact first
    prior: more steps only add excess KL and headers, `rcc.progressive_grid`), whose file is
    far smaller than a 32-step one (4.0 × I measured at 16 × 16)."""
    model = scores.gaussian(np.zeros(16), np.ones(16))
    x = np.asarray(model.sample(jax.random.key(0), 16))
    sigma = math.sqrt(1 / 3)
    data = codec.compress(jax.random.key(1), x, model, sigma, mode="progressive", **FAST)
    chosen = len(codec.inspect(data).grid)
    assert chosen == _steps.best_steps(model, x, sigma, 20.0, 1.0, FAST["chunk_bits"], "float64")
    assert chosen == 1
    fine = codec.compress(jax.random.key(1), x, model, sigma, mode="progressive", steps=32, **FAST)
    assert len(data) < 0.6 * len(fine)


def test_the_default_grid_does_not_depend_on_the_scale_and_skips_merged_levels():
    """x → c·x (with σ and the prior) changes no step's KL: the same S at c = 1e±150 (an
    absolute floor on the denoising error made every grid look uncodable at 1e-150). A
    σ_max one float32 ulp-pair above σ leaves grids whose levels round together: skipped,
    not refused, when the caller did not ask for them."""
    v = np.logspace(-3, 1, 16)
    chosen = set()
    for c in (1.0, 1e-150, 1e150):
        model = scores.gaussian(np.zeros(16), v * c**2)
        x = np.asarray(model.sample(jax.random.key(1), 8))
        top = 20 * c * math.sqrt(float(v.mean()))
        scale = c * math.sqrt(float(v.mean()))
        chosen.add(_steps.best_steps(model, x, 0.05 * c, top, scale, 8.0, "float64"))
    assert len(chosen) == 1, chosen
    model = scores.gaussian(np.zeros(4, np.float32), np.ones(4, np.float32))
    x = np.asarray(model.sample(jax.random.key(0), 3))
    data = codec.compress(jax.random.key(0), x, model, 1.0, mode="progressive", sigma_max=1 + 2e-6)
    assert np.all(np.diff(codec.inspect(data).grid) < 0)
    with pytest.raises(ValueError, match=r"^compress: `progress` must be None or a callable"):
        codec.compress(jax.random.key(0), x, model, 1.0, mode="progressive", progress=3)


def test_the_default_grid_is_one_rcc_can_code():
    """Three steps down to σ = 1 put 15.7 bits in one dimension here, above what `encode` can
    sample without bias (14.3), and it refuses; the chosen grid is checked against that limit
    before its bits are weighed, so the default codes."""
    model = scores.gaussian(np.zeros(3), np.array([4.0, 1.0, 0.25]))
    x = np.random.default_rng(0).normal(size=(6, 3)) * np.array([2.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="cannot be sampled without bias"):
        codec.compress(jax.random.key(0), x, model, 1.0, mode="progressive", steps=3)
    scale = math.sqrt(float(np.mean([4.0, 1.0, 0.25])))  # the first prior's √m₂
    error = _steps.DenoisingError(model, x, 1.0, 20 * scale, "float64")
    grid = _container.geometric_grid(1.0, 20 * scale, 3, "float64")
    assert not _steps.codable(grid, x, scale, error)
    data, info = codec.compress(
        jax.random.key(0), x, model, 1.0, mode="progressive", return_info=True
    )
    chosen = np.array(codec.inspect(data).grid)
    assert _steps.codable(chosen, x, scale, error)
    _, out = codec.decompress(data, model, 0.5, return_info=True, **DECODE)
    np.testing.assert_array_equal(out.noisy, info.noisy)


def test_full_covariance_codes_in_its_portable_eigenbasis():
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))
    model = scores.gaussian_full(np.ones(3), (q * VARIANCES) @ q.T)
    x = np.asarray(model.sample(jax.random.key(0), 2))
    sigma = np.array([0.5, 1.0, 2.0])  # per eigen-direction, in the order of `eigenvalues`
    data, info = codec.compress(jax.random.key(2), x, model, sigma, return_info=True, **FAST)
    assert codec.inspect(data).prior == "model"  # the portable spectrum of Σ: nothing stored
    x_hat, out = codec.decompress(data, model, 0.7, return_info=True, **DECODE)
    np.testing.assert_array_equal(out.noisy, info.noisy)
    expected = closed_form(model, np.asarray(info.noisy), sigma, 0.7)
    np.testing.assert_allclose(x_hat, expected, atol=1e-3 * (np.max(np.abs(info.noisy)) + 1))


class _Fitted(scores.ScoreSource):
    """A non-Gaussian source that offers a Gaussian fit of its data (the learned-model protocol)."""

    mixture: scores.GaussianMixture
    fit: scores.Gaussian

    @property
    def event_shape(self):
        return self.mixture.event_shape

    def denoise(self, x, sigma):
        return self.mixture.denoise(x, sigma)

    def gaussian_fit(self):
        return self.fit


def test_gaussian_fit_and_caller_priors_for_other_models():
    means = np.array([[-1.0, 0.0], [1.0, 0.0]])
    mixture = scores.gaussian_mixture(np.array([0.5, 0.5]), means, np.array([0.5, 0.5]))
    model = _Fitted(mixture, scores.gaussian(np.zeros(2), np.array([1.5, 0.5])))
    x = np.random.default_rng(0).normal(size=(4, 2))
    for kwargs, prior in (({}, "stored"), ({"prior": scores.gaussian(0.0, np.ones(2))}, "caller")):
        data, info = codec.compress(
            jax.random.key(0), x, model, 1.0, mode="oneshot", return_info=True, **FAST, **kwargs
        )
        assert codec.inspect(data).prior == prior
        x_hat, out = codec.decompress(data, model, 0.5, return_info=True, **DECODE)
        np.testing.assert_array_equal(out.noisy, info.noisy)
        np.testing.assert_array_equal(x_hat, decode(info.noisy, 1.0, 0.5, model, **DECODE))
    with pytest.raises(ValueError, match="one-shot coding needs a Gaussian prior"):
        codec.compress(jax.random.key(0), x, mixture, 1.0, mode="oneshot")
    with pytest.raises(ValueError, match="`prior` must be a diagonal"):
        codec.compress(jax.random.key(0), x, mixture, 1.0, prior=scores.gaussian(0, np.eye(2)))


@pytest.fixture(scope="module")
def coded():
    model, shape = _models("float64")["batch"]
    x = np.random.default_rng(5).normal(size=shape)
    return model, x, codec.compress(jax.random.key(7), x, model, 1.0, **FAST)


def test_same_key_same_bytes_and_another_key_other_bytes(coded):
    model, x, data = coded
    assert codec.compress(jax.random.key(7), x, model, 1.0, **FAST) == data
    assert codec.compress(jax.random.key(8), x, model, 1.0, **FAST) != data
    # A raw PRNGKey is the same key.
    assert codec.compress(jax.random.PRNGKey(7), x, model, 1.0, **FAST) == data
    # A key with both words large round-trips through the header's varint.
    key = jax.random.fold_in(jax.random.key(7), 3)
    other, info = codec.compress(key, x, model, 1.0, return_info=True, **FAST)
    assert codec.inspect(other).key == tuple(int(w) for w in jax.random.key_data(key))
    _, decoded = codec.decompress(other, model, 0.5, return_info=True, **DECODE)
    np.testing.assert_array_equal(decoded.noisy, info.noisy)


def test_progress_reaches_one_and_changes_no_bit(coded):
    model, x, data = coded
    for mode, extra in (("oneshot", {}), ("progressive", {"steps": 3})):
        seen = []
        out = codec.compress(
            jax.random.key(7), x, model, 1.0, mode=mode, progress=seen.append, **extra, **FAST
        )
        assert seen[-1] == 1.0 and np.all(np.diff(seen) > 0)
        assert out == codec.compress(jax.random.key(7), x, model, 1.0, mode=mode, **extra, **FAST)
    assert out != data and mode == "progressive"


def test_two_rhos_change_only_the_decoder_output(coded):
    model, _, data = coded
    a, info_a = codec.decompress(data, model, 0.0, return_info=True, **DECODE)
    b, info_b = codec.decompress(data, model, 1.0, return_info=True, **DECODE)
    np.testing.assert_array_equal(info_a.noisy, info_b.noisy)
    assert not np.allclose(a, b)


def test_corrupted_truncated_and_foreign_files_raise(coded):
    model, _, data = coded
    for at in (0, 4, 5, 9, len(data) // 2, len(data) - 5, len(data) - 1):
        bad = bytearray(data)
        bad[at] ^= 0x10
        with pytest.raises(ValueError, match="decompress: `data`"):
            codec.decompress(bytes(bad), model, 0.5)
    for size in (0, 3, 8, len(data) // 2, len(data) - 1):
        with pytest.raises(ValueError, match="decompress: `data`"):
            codec.decompress(data[:size], model, 0.5)
    # `inspect` reads the header alone (the stream's CRC needs the model): a cut header raises.
    with pytest.raises(ValueError, match="inspect: `data` is truncated"):
        codec.inspect(data[: codec.inspect(data).header_bits // 8 - 1])
    with pytest.raises(ValueError, match="format version 9"):
        codec.inspect(data[:4] + b"\x09" + data[5:])
    with pytest.raises(ValueError, match="not an rdp-jax codec file"):
        codec.decompress(b"RDPx" + data[4:], model, 0.5)


def test_every_header_byte_is_covered(coded):
    """The file has no CRC of its own: the rcc stream's key is a digest of the header, so a
    flipped bit anywhere in it must still raise (each bit below misses with probability 2⁻³²,
    through the stream's CRC32)."""
    model, _, data = coded
    header = codec.inspect(data).header_bits // 8
    for at in range(header):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[at] ^= bit
            with pytest.raises(ValueError, match="decompress: `data`"):
                codec.decompress(bytes(bad), model, 0.5, **DECODE)


def test_an_older_format_version_raises_clearly(coded):
    _, _, data = coded
    old = data[:4] + bytes([codec.FORMAT_VERSION - 1]) + data[5:]
    version = codec.FORMAT_VERSION
    match = f"format version {version - 1}; this rdp-jax reads version {version} only"
    with pytest.raises(ValueError, match=match):
        codec.decompress(old, coded[0], 0.5)


def test_a_second_decompress_compiles_nothing(coded, caplog):
    """The same shapes, another file and another ρ: the decoder's compilation is reused."""
    model, x, data = coded
    codec.decompress(data, model, 0.5, **DECODE)
    other = codec.compress(jax.random.key(8), x[::-1].copy(), model, 1.0, **FAST)
    with caplog.at_level("WARNING"), jax.log_compiles():
        codec.decompress(other, model, 0.25, **DECODE)
    assert not [r.message for r in caplog.records if "Compiling" in r.message]


def test_wrong_model_raises(coded):
    model, _, data = coded
    other = scores.gaussian(model.mean, model.eigenvalues * 1.01)
    with pytest.raises(ValueError, match="not the model the file was coded against"):
        codec.decompress(data, other, 0.5)
    with pytest.raises(ValueError, match="wrong model"):
        codec.decompress(data, scores.gaussian(np.zeros(4), 1.0), 0.5)


def test_noise_is_the_channel():
    """X_σ − X ~ N(0, σ²): the mean of ((X_σ − X)/σ)² over m = 512 components is within
    5 SE (√(2/m)) of 1; false-failure rate 6e-7 for an unbiased channel. k = 6, N = 2^16 is
    a configuration `rcc.encode` documents as unbiased."""
    model = scores.gaussian(np.zeros(4), 1.0)
    x = np.asarray(model.sample(jax.random.key(0), 128))
    _, info = codec.compress(
        jax.random.key(1), x, model, 2.0, return_info=True, num_candidates=2**16, chunk_bits=6
    )
    ratio = np.mean(((np.asarray(info.noisy) - x) / 2.0) ** 2)
    assert abs(ratio - 1) < 5 * np.sqrt(2 / x.size)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.zeros((2, 4))}, "`x` must be one item of shape \\(3,\\)"),
        ({"sigma": np.ones(2)}, "`sigma` must be a scalar or one per dimension"),
        ({"sigma": -1.0}, "`sigma` must be finite and > 0"),
        ({"mode": "fast"}, "unknown `mode`"),
        ({"sigma": np.ones(3), "mode": "progressive"}, "per-dimension `sigma` needs"),
        ({"key": np.zeros(3, np.uint32)}, "`key` must be a jax.random key \\(threefry2x32"),
        ({"mode": "progressive", "steps": 0}, "`steps` must be an integer >= 1"),
        ({"mode": "progressive", "sigma_max": 0.5}, "`sigma_max` must be > sigma"),
        ({"mode": "progressive", "sigma_max": np.inf}, "`sigma_max` must be > sigma"),
        ({"mode": "progressive", "sigma": 1e-305}, "a progressive grid needs `sigma` >="),
        ({"mode": "progressive", "steps": 2.5}, "`steps` must be an integer >= 1"),
        ({"x": np.zeros((2, 3), complex)}, "`x` must hold real numbers"),
        ({"x": np.array([["a"] * 3] * 2)}, "`x` must hold real numbers"),
        ({"sigma": "a"}, "`sigma` must be a number"),
        ({"sigma": 1e300}, "`sigma` is too large: the noisy prior's std"),
        ({"mode": "progressive", "sigma_max": "a"}, "`sigma_max` must be a number"),
        ({"mode": "progressive", "sigma_max": 1e300}, "the grid's first σ .* is too large"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    model, _ = _models("float64")["batch"]
    args = {"key": jax.random.key(0), "x": np.zeros((2, 3)), "sigma": 1.0} | kwargs
    key, x, sigma = args.pop("key"), args.pop("x"), args.pop("sigma")
    with pytest.raises(ValueError, match=match):
        codec.compress(key, x, model, sigma, **args)


def test_a_float64_batch_without_x64_raises():
    """Without x64 the stream could not hold float64: refused, never a float32 file labelled
    float64."""
    model, _ = _models("float32")["batch"]
    with jax.enable_x64(False), pytest.raises(ValueError, match="`x` is float64; enable"):
        codec.compress(jax.random.key(0), np.zeros((2, 3)), model, 1.0, **FAST)


def test_a_scalar_model_is_refused_by_name():
    class Scalar(scores.ScoreSource):
        event_shape = ()

        def denoise(self, x, sigma):
            return x / (1 + sigma**2)

    with pytest.raises(ValueError, match="scalar event shape"):
        codec.compress(jax.random.key(0), np.zeros(2), Scalar(), 0.5, mode="progressive")


def _forged(data: bytes, **fields) -> bytes:
    """`data` with its header rewritten (fields of `_container.FileHeader`), stream kept."""
    header, _, stream = _container.unpack(data)
    return _container.header_bytes(header._replace(**fields)) + stream


def test_forged_headers_raise_before_any_allocation(coded):
    """Shapes and σ that no compress writes: a clear ValueError from `inspect` and from
    `decompress`, not an IndexError, an overflow or a huge allocation."""
    model, _, data = coded
    forged = [
        _forged(data, shape=(2**40, 3)),  # 2^40 items: terabytes of zeros before the CRC
        _forged(data, shape=(1, 2**62, 4)),  # the product overflows int64
    ]
    for bad in forged:
        for read in (codec.inspect, lambda b: codec.decompress(b, model, 0.5)):
            with pytest.raises(ValueError, match="corrupted \\(a shape of more than"):
                read(bad)
    tiny = _forged(
        data, mode="progressive", sigma=np.asarray(1e-310), grid=np.array([1e-310]), first_std=1.0
    )
    with pytest.raises(ValueError, match="corrupted \\(a bad σ grid\\)"):
        codec.inspect(tiny)


def test_bad_rho_raises(coded):
    model, _, data = coded
    with pytest.raises(ValueError, match="`rho` must be a number"):
        codec.decompress(data, model, "0.5x")
    with pytest.raises(ValueError, match="`rho` of shape \\(2,\\)"):
        codec.decompress(data, model, np.ones(2))
    with pytest.raises(ValueError, match="`rho` must lie in \\[0, 1\\]"):
        codec.decompress(data, model, 1.5, **DECODE)


def test_identity_ignores_the_eigendecomposition_of_a_full_gaussian():
    model = scores.gaussian_full(np.zeros(2), np.array([[2.0, 0.5], [0.5, 1.0]]))
    flipped = eqx.tree_at(lambda m: m.eigenvectors, model, -model.eigenvectors)
    assert codec.identity(model) == codec.identity(flipped)
    assert codec.identity(model) != codec.identity(scores.gaussian(np.zeros(2), np.ones(2)))


def _relabelled(model, eigenvalues, eigenvectors):
    """`model` as another machine's LAPACK might build it: the same μ and Σ (the same
    `codec.identity`), another valid eigendecomposition."""
    return eqx.tree_at(
        lambda m: (m.eigenvalues, m.eigenvectors),
        model,
        (jnp.asarray(eigenvalues), jnp.asarray(eigenvectors)),
    )


def test_a_full_gaussian_file_decodes_whatever_eigenvectors_the_decoder_holds():
    """Σ = I + vvᵀ has a 3-fold eigenvalue: any rotation of its eigenspace is as valid, and
    scipy's "evr" driver picks another than jax's eigh (as another machine's LAPACK may), as
    does a sign flip. The file is coded in `portable_eigh`'s coordinates of Σ, so every
    decoder rebuilds the same X_σ; in the decoder's own eigenbasis it came out rotated."""
    v = np.random.default_rng(0).normal(size=4)
    model = scores.gaussian_full(np.zeros(4), np.eye(4) + np.outer(v, v))
    x = np.asarray(model.sample(jax.random.key(1), 2))
    data, info = codec.compress(jax.random.key(0), x, model, 0.2, return_info=True, **FAST)
    others = [
        _relabelled(model, *scipy.linalg.eigh(np.asarray(model.cov), driver="evr")),
        _relabelled(model, model.eigenvalues, -model.eigenvectors),
    ]
    for other in others:
        assert codec.identity(other) == codec.identity(model)
        _, out = codec.decompress(data, other, 0.5, return_info=True, **DECODE)
        np.testing.assert_array_equal(out.noisy, info.noisy)


def test_a_stored_prior_in_other_coordinates_raises(monkeypatch):
    """A model's `gaussian_fit` whose eigenvectors differ at the decoder (its LAPACK's) would
    rebuild X_σ in other coordinates: the stream's key covers them, so it raises instead."""
    means = np.array([[-1.0, 0.0], [1.0, 0.0]])
    mixture = scores.gaussian_mixture(np.array([0.5, 0.5]), means, np.array([0.5, 0.5]))
    fit = scores.gaussian(np.zeros(2), np.array([[1.5, 0.3], [0.3, 0.5]]))
    model, x = _Fitted(mixture, fit), np.asarray(mixture.sample(jax.random.key(0), 3))
    data = codec.compress(jax.random.key(1), x, model, 0.5, mode="oneshot", **FAST)
    assert codec.inspect(data).prior == "stored"
    codec.decompress(data, model, 0.5, **DECODE)
    # The same model (the same identity) computing its fit on a machine with another LAPACK.
    flipped = _relabelled(fit, fit.eigenvalues, -fit.eigenvectors)
    monkeypatch.setattr(_Fitted, "gaussian_fit", lambda self: flipped)
    with pytest.raises(ValueError, match="corrupted or truncated, or `model` is not the model"):
        codec.decompress(data, model, 0.5, **DECODE)


@pytest.fixture(scope="module")
def pretrained_file():
    """Two digits items one-shot against the shipped model's Gaussian fit, float32, coded with
    `jax_enable_x64` off (the decoders below run with it on: the prior must not change)."""
    model = models.pretrained("digits")
    x = datasets.load("digits", "test")[:2]
    with jax.enable_x64(False):
        data, info = codec.compress(
            jax.random.key(3), x, model, 0.4, mode="oneshot", return_info=True, **FAST
        )
    return model, x, data, info


def test_a_pretrained_model_prior_comes_from_the_model(pretrained_file):
    """The file stores no prior: the decoder recomputes it from the model's portable fit."""
    model, x, data, info = pretrained_file
    meta = codec.inspect(data)
    assert meta.prior == "model"
    # The same items and key against a diagonal Gaussian of 64 dimensions: the header differs
    # by the event shape's one more axis only (8, 8 against 64), not by d floats.
    flat = scores.gaussian(np.zeros(64, np.float32), np.ones(64, np.float32))
    other = codec.compress(jax.random.key(3), x.reshape(2, 64), flat, 0.4, **FAST)
    assert meta.header_bits == codec.inspect(other).header_bits + 8
    _, out = codec.decompress(data, model, 0.5, return_info=True, **CHEAP_DECODE)
    np.testing.assert_array_equal(out.noisy, info.noisy)
    moved = eqx.tree_at(lambda m: m.data_cov, model, model.data_cov * 1.001)
    with pytest.raises(ValueError, match="not the model the file was coded against"):
        codec.decompress(data, moved, 0.5)


_PORTABLE = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from rdp_jax import codec, models, scores
gaussian = scores.gaussian(np.array([1.0, -1.0, 0.5]), np.array([4.0, 1.0, 0.25]))
for model, data in zip((gaussian, models.pretrained("digits")), sys.argv[1:], strict=True):
    _, info = codec.decompress(bytes.fromhex(data), model, 0.5, return_info=True,
                               method="exp2", num_steps=4)
    print(np.asarray(info.noisy).tobytes().hex())
"""


def test_a_file_decodes_to_the_same_bits_with_other_cpu_kernels(coded, pretrained_file):
    """X_σ is rebuilt bit for bit in a process with NumPy's SIMD kernels off and XLA at
    SSE4.2 (tests/portability.py): nothing that steers decoding depends on them, neither for
    a diagonal Gaussian nor for a pretrained model (its prior from `portable_eigh` of the
    stored covariance, X_σ = μ + Uz summed in a fixed order)."""
    from portability import all_cpu_changes, run_python

    files = (coded[0], coded[2]), (pretrained_file[0], pretrained_file[2])
    want = []
    for model, data in files:
        _, info = codec.decompress(data, model, 0.5, return_info=True, **CHEAP_DECODE)
        want.append(np.asarray(info.noisy).tobytes().hex())
    env = all_cpu_changes()
    assert run_python(_PORTABLE, env, *(data.hex() for _, data in files)).split() == want
