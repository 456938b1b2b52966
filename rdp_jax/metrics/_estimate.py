"""The `Estimate` result type, argument checks and the block jackknife shared by the metrics.

Checks follow `theory`: bad input raises `ValueError` naming the argument, at once on concrete
input and through `equinox.error_if` at run time under `jit`, never a silent NaN.
"""

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from theory._validate import error_if


class Estimate(NamedTuple):
    """A point estimate and its standard error, both scalar arrays of the inputs' float dtype.

    `stderr` is the estimated standard deviation of `value` over repeated sampling (each metric's
    docstring says of what, and by which method). It is not a bound on the bias: several
    estimators here are biased at rates their docstrings state. It is `+inf` when the sample is
    too small to estimate it, never NaN (and 0 from `w2_exact` when nothing is sub-sampled).
    """

    value: Float[Array, ""]
    stderr: Float[Array, ""]


def float_dtype(where: str, **samples: ArrayLike) -> jnp.dtype:
    """The common floating dtype of the named sample arrays.

    float64 under x64; float32 inputs stay float32 and float16/bfloat16 become float32. Complex
    input raises `ValueError` naming the
    argument: a squared distance of complex samples would silently drop the imaginary part.
    """
    arrays = []
    for name, a in samples.items():
        a = jnp.asarray(a) if isinstance(a, list | tuple) else a
        if jnp.iscomplexobj(a):
            raise ValueError(f"{where}: `{name}` must be real; got a complex array.")
        arrays.append(a)
    # Half precision cannot hold a squared distance summed over thousands of samples.
    return jnp.promote_types(jnp.result_type(float, *arrays), jnp.float32)


# One small compiled reduction per input shape, rather than several eager ops.
_all_finite = jax.jit(lambda x: jnp.all(jnp.isfinite(x)))


def as_samples(x: ArrayLike, name: str, where: str, dtype: jnp.dtype) -> Array:
    """Validates a sample array with a leading sample axis and casts it to `dtype`.

    On concrete input a NaN or inf raises `ValueError` at once; traced (the caller wrapped the
    metric in `jax.jit` or `vmap`) it attaches an `equinox.error_if`, which raises at run time
    instead of letting a NaN through. Shapes are static, so shape errors raise eagerly always.

    **Arguments:**

    - `x`: samples, shape `(n,)` or `(n, d)`.
    - `name`, `where`: the argument and function named in error messages.
    - `dtype`: the floating dtype to cast to.

    **Returns:** `x` as a `(n, d)` array of `dtype`; `(n,)` becomes `(n, 1)`.

    **Raises:** `ValueError` naming `name` for a wrong rank, fewer than 2 samples, an empty
    feature axis, or a NaN/inf entry (under `jit`: the `equinox` runtime error, same message).
    """
    if not isinstance(x, jax.Array | np.ndarray):
        x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"{where}: `{name}` must have shape (n,) or (n, d); got {x.shape}.")
    if x.shape[0] < 2:
        raise ValueError(
            f"{where}: `{name}` needs at least 2 samples on its leading axis; got {x.shape[0]}."
        )
    if x.ndim == 2 and x.shape[1] == 0:
        raise ValueError(f"{where}: `{name}` has an empty feature axis, shape {x.shape}.")
    message = f"{where}: `{name}` must be finite (no NaN or inf)."
    # Reshaped here, eagerly, so that `(n,)` and `(n, 1)` share one compiled core.
    shape = (x.shape[0], -1)
    if isinstance(x, jax.core.Tracer):
        x = x.astype(dtype).reshape(shape)
        return error_if(x, ~jnp.all(jnp.isfinite(x)), message)
    if isinstance(x, np.ndarray):
        x = np.asarray(x, dtype=dtype).reshape(shape)
        finite = bool(np.isfinite(x).all())
    else:
        x = x.astype(dtype).reshape(shape)
        finite = bool(_all_finite(x))
    if not finite:
        raise ValueError(message)
    return jnp.asarray(x)


def check_same_features(x: Array, y: Array, where: str) -> None:
    """Raises `ValueError` naming `y` unless the `(n, d)` arrays have the same d."""
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{where}: `y` must have d = {x.shape[1]} features like `x`; got {y.shape[1]}."
        )


def as_int(value: object, name: str, where: str, minimum: int) -> int:
    """A Python int ≥ `minimum` (these arguments fix array shapes, so they must be static)."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(
            f"{where}: `{name}` fixes array shapes; under `jit` mark it static (static_argnames)."
        )
    if isinstance(value, bool):
        raise ValueError(f"{where}: `{name}` must be an int >= {minimum}; got {value!r}.")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{where}: `{name}` must be an int >= {minimum}; got {value!r}.") from None
    if value < minimum:
        raise ValueError(f"{where}: `{name}` must be an int >= {minimum}; got {value}.")
    return value


def num_blocks_for(num_blocks: int, *sample_sizes: int) -> int:
    """The number of jackknife blocks actually used: at most `num_blocks`, at least 2 per block.

    Blocks of at least two samples keep every delete-a-block replicate defined (a covariance
    needs two points). A result below 2 means the jackknife is impossible.
    """
    return min(num_blocks, *(n // 2 for n in sample_sizes))


def block_bounds(n: int, num_blocks: int) -> np.ndarray:
    """Boundaries `0 = b_0 < ... < b_B = n` of `B` contiguous blocks whose sizes differ by ≤ 1.

    Sample i is in block ⌊iB/n⌋. Static (numpy): block structure is part of the compiled code.
    """
    return np.searchsorted((np.arange(n) * num_blocks) // n, np.arange(num_blocks + 1))


def block_ids(n: int, num_blocks: int) -> np.ndarray:
    """The block ⌊iB/n⌋ of each sample i, shape `(n,)`."""
    return (np.arange(n) * num_blocks) // n


def jackknife(
    full: Float[Array, ""], replicates: Float[Array, " B"]
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Delete-a-block jackknife standard error and bias-corrected estimate.

    With θ̂ the full-sample estimate and θ̂₍b₎ the estimate without block b (b = 1..B):

    .. math::
        \\mathrm{se}^2 = \\frac{B-1}{B} \\sum_b (θ̂_{(b)} - \\bar θ)^2, \\qquad
        θ̂_{\\mathrm{jack}} = B θ̂ - (B-1) \\bar θ,

    Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), §11.2-11.5; the block form
    is Künsch (1989). If E θ̂ = θ + a/n + O(1/n²), each replicate has n(B-1)/B samples (a
    block holds a fraction 1/B of every sample) and the correction cancels the a/n term; blocks
    whose sizes differ by one sample leave O(a/n³). With B = 20 the variance estimate has about
    19 degrees of freedom, so z-scores against it follow roughly a t_19 law.

    **Arguments:**

    - `full`: θ̂ on all samples.
    - `replicates`: θ̂₍b₎, shape `(B,)`; B < 2 gives an infinite standard error.

    **Returns:** `(stderr, corrected)`.
    """
    B = replicates.shape[0]
    if B < 2:
        return jnp.asarray(jnp.inf, full.dtype), full
    mean = jnp.mean(replicates)
    stderr = jnp.sqrt((B - 1) / B * jnp.sum((replicates - mean) ** 2))
    return stderr, B * full - (B - 1) * mean
