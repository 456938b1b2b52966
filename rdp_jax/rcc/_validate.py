"""Argument checks shared by `encode`, `decode` and the progressive coder (eager, host side)."""

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from rdp_jax._validate import check_real
from rdp_jax.rcc._bitstream import ALGORITHMS, MAX_CANDIDATES


def key_words(key, where: str) -> np.ndarray:
    """The two uint32 words of a threefry key (`jax.random.key`, or raw `jax.random.PRNGKey`
    data), from which `_candidates` derives all of a stream's randomness.

    **Raises:** `ValueError` for anything else, keys of another PRNG implementation included:
    streams record their PRNG, and only Threefry-2x32 is specified.
    """
    key = np.asarray(key) if not isinstance(key, jax.Array) else key  # no device copy
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{where}: `key` must be a single key; got shape {key.shape}.")
        impl = jax.random.key_impl(key)
        if impl != jax.random.key_impl(jax.random.key(0, impl="threefry2x32")):
            raise ValueError(
                f"{where}: `key` must be a threefry2x32 key (streams specify their randomness "
                f"through it); got a {impl!r} key."
            )
        key = jax.random.key_data(key)
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise ValueError(
            f"{where}: `key` must be a jax.random key (threefry2x32, two uint32 words); got "
            f"{key.dtype}{key.shape}."
        )
    return np.asarray(key, dtype=np.uint32)


def vector(
    x: ArrayLike, name: str, dtype, dim: int | None, where: str, positive=False
) -> np.ndarray:
    """`x` as a checked 1-D NumPy array of `dtype` (a canonical dtype: float64 only with x64).

    Host side: every consumer (the layout, the CRC context, the regeneration) works in NumPy, so
    a device copy would only be copied back."""
    x = np.asarray(x)
    check_real(x.dtype, name, where)
    x = x.astype(dtype)
    if x.ndim != 1 or x.shape[0] < 1 or (dim is not None and x.shape[0] != dim):
        want = "a non-empty 1-D array" if dim is None else f"shape ({dim},)"
        raise ValueError(f"{where}: `{name}` must be {want}; got shape {x.shape}.")
    if not np.all(np.isfinite(x)) or (positive and not np.all(x > 0)):
        raise ValueError(f"{where}: `{name}` must be finite" + (" and > 0." if positive else "."))
    return x


def common_dtype(*args: ArrayLike, where: str, names: tuple[str, ...]):
    """The arrays' common float dtype (float32 or float64), or `ValueError` naming the first
    argument that is not an array of numbers."""
    arrays = []
    for name, a in zip(names, args, strict=True):
        try:
            arrays.append(jnp.asarray(a))
        except (TypeError, ValueError):
            raise ValueError(
                f"{where}: `{name}` must be an array of real numbers; got {type(a).__name__}."
            ) from None
    dtype = jnp.result_type(float, *arrays)
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"{where}: the arrays must be float32 or float64; got {dtype}.")
    return dtype


def _positive_real(value) -> bool:
    """A finite real > 0 that a float holds (Python or NumPy scalars; not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        value = float(value)
    except OverflowError:
        return False
    return math.isfinite(value) and value > 0


def coding_args(algorithm, chunk_bits, num_candidates, where: str):
    """Checks the algorithm, the chunk KL target k > 0 and the count N in [2, MAX_CANDIDATES]
    (or None: the default, chosen per message)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{where}: unknown `algorithm` {algorithm!r}; choose one of {ALGORITHMS}.")
    if not _positive_real(chunk_bits):
        shown = f"{chunk_bits!r:.40}"
        raise ValueError(f"{where}: `chunk_bits` must be a finite number > 0; got {shown}.")
    if num_candidates is None:
        return algorithm, float(chunk_bits), None
    if not (isinstance(num_candidates, int | np.integer) and 2 <= num_candidates <= MAX_CANDIDATES):
        raise ValueError(
            f"{where}: `num_candidates` must be an integer in [2, {MAX_CANDIDATES}]; "
            f"got {num_candidates!r}."
        )
    return algorithm, float(chunk_bits), int(num_candidates)


def progress_callback(progress, where: str):
    """None, or a callable to be told the fraction of the search done (checked before any work,
    so that a typo does not surface after minutes of search)."""
    if progress is not None and not callable(progress):
        raise ValueError(
            f"{where}: `progress` must be None or a callable taking the fraction done; "
            f"got {type(progress).__name__}."
        )
    return progress


def canonical_bytes(*arrays) -> bytes:
    """The arrays' values as little-endian bytes of their own dtypes (key words, priors, σ
    grids), for seeding a stream's CRC identically on machines of either byte order."""
    arrays = [np.asarray(a) for a in arrays]
    return b"".join(a.astype(a.dtype.newbyteorder("<")).tobytes() for a in arrays)
