"""`load(name, split)`: the offline datasets, with fixed splits and documented scalings."""

from importlib import resources
from typing import Literal, NamedTuple

import numpy as np

Split = Literal["train", "test"]
SPLITS = ("train", "test")

# gmm2d: four anisotropic components, close enough that the noisy posterior is multimodal for
# σ around 0.3 to 2, where a denoiser has the most to learn.
GMM2D_WEIGHTS = np.array([0.35, 0.25, 0.25, 0.15])
GMM2D_MEANS = np.array([[-2.0, 0.0], [1.0, 1.5], [1.5, -1.0], [-0.5, -2.0]])
GMM2D_VARIANCES = np.array([[0.15, 0.3], [0.2, 0.1], [0.1, 0.25], [0.3, 0.1]])
_GMM2D_SIZES = {"train": 50_000, "test": 10_000}
_GMM2D_SEEDS = {"train": 2026, "test": 2027}

PATCH = 8
# Training patches overlap (stride 4, four times as many); test patches tile their photographs.
_PATCH_STRIDES = {"train": 4, "test": 8}
# The photographs bundled with scikit-image (no download), by split: whole pictures are held
# out. Training: every bundled 8-bit photograph of an everyday scene or object under a stated
# free licence, except the two held out (microscopy, astronomy and fundus images, graphics, and
# moon and page, whose licences are not stated, are left out). Four photographs alone taught the
# model their own brightness histograms, which the held-out pictures do not share (maths §14).
PHOTOGRAPHS = {
    "train": (
        "camera",
        "astronaut",
        "coffee",
        "rocket",
        "brick",
        "grass",
        "gravel",
        "clock",
        "text",
    ),
    "test": ("chelsea", "coins"),
}


class DatasetInfo(NamedTuple):
    """What a dataset is: its event shape, sizes, scaling, source and licence."""

    name: str
    event_shape: tuple[int, ...]
    sizes: dict[str, int]
    scaling: str
    source: str
    licence: str


INFO = {
    "gmm2d": DatasetInfo(
        "gmm2d",
        (2,),
        dict(_GMM2D_SIZES),
        "none: draws of the mixture `gmm2d_parameters()` (scores.gaussian_mixture is exact)",
        "rdp-jax: numpy PCG64 draws from fixed seeds (train 2026, test 2027)",
        "Apache-2.0 (this package)",
    ),
    "digits": DatasetInfo(
        "digits",
        (8, 8),
        {"train": 1438, "test": 359},
        "pixel counts 0..16 mapped to x / 8 - 1, in [-1, 1]; test = every 5th image "
        "(index % 5 == 4), train = the rest",
        "scikit-learn `load_digits` (Alpaydin & Kaynak, UCI Optical Recognition of Handwritten "
        "Digits, test part), 1,797 images of 8×8",
        "CC BY 4.0 (UCI Machine Learning Repository)",
    ),
    "patches": DatasetInfo(
        "patches",
        (PATCH, PATCH),
        {"train": 124_079, "test": 3_848},
        "8-bit grey levels mapped to x / 127.5 - 1, in [-1, 1]; 8×8 patches, stride 4 in the "
        "nine training photographs (camera, astronaut, coffee, rocket, brick, grass, gravel, "
        "clock, text), stride 8 in the two held-out test photographs (chelsea, coins)",
        "photographs bundled with scikit-image (`skimage.data`), colour ones as ITU-R BT.709 "
        "luma (`skimage.color.rgb2gray`)",
        "camera, coffee, chelsea: CC0 (L. Varshney, R. Michetti, S. van der Walt); brick, "
        "gravel: CC0 (CC0Textures); grass: CC0 (linolafett, DeviantArt); clock: public domain "
        "(S. van der Walt); astronaut, rocket: public domain (NASA); text (Wikimedia "
        "Commons), coins (Brooklyn Museum): no known copyright restrictions",
    ),
}
NAMES = tuple(INFO)


def gmm2d_parameters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights (4,), means (4, 2), variances (4, 2)) of the "gmm2d" mixture, float64: pass them
    to `rdp_jax.scores.gaussian_mixture` for the exact score and denoiser."""
    return GMM2D_WEIGHTS.copy(), GMM2D_MEANS.copy(), GMM2D_VARIANCES.copy()


def _npz(name: str) -> dict[str, np.ndarray]:
    with resources.files("rdp_jax.datasets").joinpath("data", f"{name}.npz").open("rb") as f:
        with np.load(f) as archive:
            return {key: archive[key] for key in archive.files}


def _gmm2d(split: str) -> np.ndarray:
    rng = np.random.default_rng(_GMM2D_SEEDS[split])
    n = _GMM2D_SIZES[split]
    k = rng.choice(len(GMM2D_WEIGHTS), size=n, p=GMM2D_WEIGHTS)
    z = rng.standard_normal((n, 2))
    return GMM2D_MEANS[k] + np.sqrt(GMM2D_VARIANCES[k]) * z


def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = _npz("digits")
    test = np.arange(len(arrays["labels"])) % 5 == 4
    keep = test if split == "test" else ~test
    return arrays["images"][keep] / 8.0 - 1.0, arrays["labels"][keep].astype(np.int32)


def patches_of(image: np.ndarray, stride: int) -> np.ndarray:
    """All PATCH×PATCH windows of a 2-D image at `stride`, shape (n, PATCH, PATCH), row-major."""
    windows = np.lib.stride_tricks.sliding_window_view(image, (PATCH, PATCH))
    return windows[::stride, ::stride].reshape(-1, PATCH, PATCH)


def _patches(split: str) -> np.ndarray:
    photographs = _npz("photographs")
    stride = _PATCH_STRIDES[split]
    cut = [patches_of(photographs[name], stride) for name in PHOTOGRAPHS[split]]
    return np.concatenate(cut) / 127.5 - 1.0


def load(
    name: str, split: Split = "train", *, dtype=np.float32, return_labels: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One split of an offline dataset, as a NumPy array with a leading batch axis.

    Nothing is downloaded: "gmm2d" is drawn from fixed seeds, "digits" and "patches" are read
    from compact uint8 files shipped in the package (`info(name)` gives the scaling, source and
    licence; `rdp_jax/datasets/_build.py` rebuilt them from scikit-learn and scikit-image).

    **Arguments:**

    - `name`: "gmm2d" (2-D mixture), "digits" (8×8 handwritten digits) or "patches" (8×8 grey
      patches of photographs; the test photographs are not in the training split).
    - `split`: "train" or "test".
    - `dtype`: the floating dtype of the result (float32 by default, as the models train in).
    - `return_labels`: also return the class labels, int32 (digits only).

    **Returns:** an array of shape `(n, *info(name).event_shape)`; with `return_labels`,
    `(data, labels)`.

    **Raises:** `ValueError` naming `name` (unknown), `split` (not train/test), `dtype` (not
    floating) or `return_labels` (the dataset has no labels).
    """
    if name not in INFO:
        raise ValueError(f"load: unknown dataset `name` {name!r}; choose one of {NAMES}.")
    if split not in SPLITS:
        raise ValueError(f"load: `split` must be one of {SPLITS}, got {split!r}.")
    try:
        floating = np.issubdtype(np.dtype(dtype), np.floating)
    except TypeError:
        floating = False
    if not floating:
        raise ValueError(f"load: `dtype` must be a floating dtype, got {dtype!r}.")
    if return_labels and name != "digits":
        raise ValueError(f"load: `return_labels` is only for 'digits', which {name!r} is not.")
    if name == "digits":
        data, labels = _digits(split)
        return (data.astype(dtype), labels) if return_labels else data.astype(dtype)
    data = _gmm2d(split) if name == "gmm2d" else _patches(split)
    return data.astype(dtype)


def info(name: str) -> DatasetInfo:
    """The `DatasetInfo` of a dataset. **Raises:** `ValueError` naming `name` when unknown."""
    if name not in INFO:
        raise ValueError(f"info: unknown dataset `name` {name!r}; choose one of {NAMES}.")
    return INFO[name]
