"""Argument checks shared across `rdp_jax`: its schedules, score sources, decoder, rcc and codec.

Concrete bad input raises `ValueError` at once, naming the argument; traced input (under `jit`,
`vmap`, `grad`) gets an `equinox.error_if`, which raises at run time instead of letting a NaN
through. (`theory` keeps its own checks: it knows nothing of `rdp_jax`.) The run-time errors go
through `theory`'s `error_if`, so that `rdp_jax.jit` re-raises them as the eager `ValueError`.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, PyTree

from theory._validate import branched_error_if, error_if


def is_whole(value) -> bool:
    """Whether `value` equals an integer (8 and 8.0 do; 8.5, None and "8" do not)."""
    try:
        return int(value) == value
    except (TypeError, ValueError, OverflowError):
        return False


def check_real(dtype, name: str, where: str) -> None:
    """Raises `ValueError` naming `name` unless `dtype` is a float or integer dtype: a complex
    array would lose its imaginary part to a cast, a string or object one fail obscurely."""
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ValueError(f"{where}: `{name}` must hold real numbers; got dtype {dtype}.")


def as_key(key: object, where: str) -> Array:
    """A JAX PRNG key: typed (`jax.random.key`) or legacy raw (`jax.random.PRNGKey`)."""
    if isinstance(key, jax.Array | np.ndarray):
        typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()
        raw = key.dtype == np.uint32 and key.shape == (2,)
        if typed or raw:
            return key
    raise ValueError(
        f"{where}: `key` must be a single PRNG key from `jax.random.key(seed)`; got {key!r}."
    )


def as_float(x: ArrayLike) -> Array:
    """An array of `x`, promoting integers to the default float (floats keep their dtype)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check(x: PyTree, *checks: tuple[Bool[ArrayLike, "..."], str]) -> PyTree:
    """Returns `x`, raising `ValueError(message)` for the first `(bad, message)` where `bad` holds.

    **Arguments:**

    - `x`: the value to pass through, any pytree. Under tracing it must be used downstream, or
      the check is dropped with it.
    - `checks`: pairs of a boolean array, true where the input is invalid, and a message naming
      the argument and what was wrong.

    **Returns:** `x`, unchanged.

    **Raises:** `ValueError` at once for concrete `bad`; for traced `bad` (under `jit`, `vmap`,
    `grad`) the run-time error of `equinox.error_if` with the same message, since a NaN would
    otherwise pass silently. Traced checks share one `branched_error_if`: each `error_if` is a
    host callback, and compiling them one by one was a good part of a small source's compile time.
    """
    traced = []
    for bad, message in checks:
        if isinstance(bad, jax.core.Tracer):
            traced.append((bad, message))
        elif np.any(np.asarray(bad)):
            raise ValueError(message)
    if not traced:
        return x
    if len(traced) == 1:
        return error_if(x, traced[0][0], traced[0][1])
    flags = jnp.stack([jnp.any(bad) for bad, _ in traced])
    return branched_error_if(x, jnp.any(flags), jnp.argmax(flags), [m for _, m in traced])


# ---------------------------------------------------------------------------------------------
# Schedules.
# ---------------------------------------------------------------------------------------------
