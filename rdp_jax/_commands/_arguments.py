"""Argument checks the verbs share: a seed type for argparse, and output paths checked before
the work that would write them."""

import argparse
from pathlib import Path

# jax.random.key takes a seed that fits int64 (it is hashed into the two Threefry words).
_SEED_LIMIT = 2**63


def seed(text: str) -> int:
    """argparse `type` of `--seed`: an integer in [0, 2^63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < _SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 2^63)")
    return value


def check_writable(
    path: str | Path | None, flag: str, *, not_input: str | None = None, figure: bool = False
) -> None:
    """Raises `ValueError` naming `flag` when `path`'s directory does not exist or `path` is a
    directory, so that a long run does not end in a failed write; also when `path` is the file
    `not_input` (an input it would overwrite), or, with `figure`, when matplotlib cannot write
    its extension (a name without one gets matplotlib's default format)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a directory; give a file name.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: the directory {str(parent)!r} does not exist.")
    if not_input is not None and path.exists() and path.samefile(not_input):
        raise ValueError(f"{flag} {str(path)!r} is the input file; give another name.")
    if figure:
        from matplotlib.backend_bases import FigureCanvasBase

        kinds = FigureCanvasBase.get_supported_filetypes()
        suffix = path.suffix.lstrip(".").lower()
        if suffix and suffix not in kinds:  # no suffix: matplotlib writes its default, PNG
            known = ", ".join("." + kind for kind in sorted(kinds))
            raise ValueError(f"{flag} {str(path)!r}: not a figure format; use one of {known}.")


def load_array(path: str, flag: str):
    """A numeric array from a .npy file, or `ValueError` naming `flag`: an empty, truncated or
    foreign file (NumPy raises EOFError or ValueError), or an array of strings or objects."""
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (EOFError, ValueError) as error:
        raise ValueError(f"{flag} {path!r}: not a NumPy .npy array ({error}).") from None
    if not isinstance(array, np.ndarray) or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        kind = getattr(array, "dtype", type(array).__name__)
        raise ValueError(f"{flag} {path!r}: an array of numbers is needed, got {kind}.")
    return array
