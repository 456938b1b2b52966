"""Rebuilds the shipped data files from scikit-learn and scikit-image (`pip install ".[data]"`).

The package ships the data as compact uint8 `.npz` files, so that `rdp_jax.datasets.load` needs
neither library and never downloads anything. This script is how those files were made; run
`python -m rdp_jax.datasets._build` to rebuild them, and `tests/test_datasets.py` checks (when
the libraries are installed) that it reproduces the shipped bytes' contents.
"""

from pathlib import Path

import numpy as np

from rdp_jax.datasets._load import PHOTOGRAPHS

DATA = Path(__file__).parent / "data"


def digits_arrays() -> dict[str, np.ndarray]:
    """scikit-learn's `load_digits`: 1,797 images of 8×8 integers in 0..16, and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return {"images": bunch.images.astype(np.uint8), "labels": bunch.target.astype(np.uint8)}


def grey(name: str) -> np.ndarray:
    """A scikit-image photograph as 8-bit grey levels (colour ones by `skimage.color.rgb2gray`:
    0.2125 R + 0.7154 G + 0.0721 B, the ITU-R BT.709 luma weights)."""
    import skimage.color
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 3:
        image = np.round(255 * skimage.color.rgb2gray(image[..., :3]))
    return image.astype(np.uint8)


def photograph_arrays() -> dict[str, np.ndarray]:
    return {name: grey(name) for names in PHOTOGRAPHS.values() for name in names}


def main() -> None:
    DATA.mkdir(exist_ok=True)
    np.savez_compressed(DATA / "digits.npz", **digits_arrays())
    np.savez_compressed(DATA / "photographs.npz", **photograph_arrays())
    for path in sorted(DATA.glob("*.npz")):
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
