"""`rdp_jax.datasets`: shapes, scalings, fixed splits, bad input, and the shipped files' origin."""

import numpy as np
import pytest

from rdp_jax import datasets


@pytest.mark.parametrize("name", datasets.NAMES)
@pytest.mark.parametrize("split", datasets.SPLITS)
def test_splits_have_the_documented_shape_size_and_range(name, split):
    info = datasets.info(name)
    x = datasets.load(name, split)
    assert x.shape == (info.sizes[split], *info.event_shape) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    if name != "gmm2d":
        assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(x, datasets.load(name, split))  # fixed, not redrawn
    assert datasets.load(name, split, dtype=np.float64).dtype == np.float64


def test_digits_scaling_labels_and_split():
    x, labels = datasets.load("digits", "test", return_labels=True)
    levels = np.unique(np.round((x + 1) * 8, 6))
    assert set(levels) <= set(range(17))  # pixel counts 0..16, mapped to x / 8 - 1
    assert labels.shape == (359,) and set(np.unique(labels)) == set(range(10))
    train = datasets.load("digits", "train").reshape(-1, 64)
    # Every 5th image is held out: no test image is a training row (the UCI images are unique).
    assert not np.isin(x.reshape(-1, 64).view("V256"), train.view("V256")).any()


def test_patches_tile_held_out_photographs():
    x = datasets.load("patches", "test")
    grey = np.round((x + 1) * 127.5)
    np.testing.assert_allclose(grey, np.round(grey))  # 8-bit levels, scaled exactly
    train = datasets.load("patches", "train").reshape(-1, 64)
    # Whole photographs are held out: no test patch is a training patch.
    assert not np.isin(x.reshape(-1, 64).view("V256"), train.view("V256")).any()


def test_gmm2d_matches_its_mixture():
    weights, means, variances = datasets.gmm2d_parameters()
    x = datasets.load("gmm2d", "train").astype(np.float64)
    mean = weights @ means
    var = weights @ (variances + means**2) - mean**2
    n = len(x)
    # Sample mean within 4 standard errors (false-failure rate 6e-5 per coordinate).
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 4 * np.sqrt(var / n))
    assert not np.array_equal(x[:100], datasets.load("gmm2d", "test")[:100])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mnist"}, "name"),
        ({"name": "digits", "split": "valid"}, "split"),
        ({"name": "digits", "dtype": np.int32}, "dtype"),
        ({"name": "patches", "return_labels": True}, "return_labels"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.load(**kwargs)
    with pytest.raises(ValueError, match="name"):
        datasets.info("mnist")


@pytest.mark.slow
def test_the_shipped_files_are_what_the_build_script_makes():
    from rdp_jax.datasets import _build  # needs the `data` extra: scikit-learn, scikit-image

    shipped = np.load(_build.DATA / "digits.npz")
    for key, value in _build.digits_arrays().items():
        np.testing.assert_array_equal(shipped[key], value)
    shipped = np.load(_build.DATA / "photographs.npz")
    for key, value in _build.photograph_arrays().items():
        np.testing.assert_array_equal(shipped[key], value)
