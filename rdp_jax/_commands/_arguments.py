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


def check_writable(path: str | Path | None, flag: str) -> None:
    """Raises `ValueError` naming `flag` when `path`'s directory does not exist or `path` is a
    directory, so that a long run does not end in a failed write."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a directory; give a file name.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: the directory {str(parent)!r} does not exist.")
