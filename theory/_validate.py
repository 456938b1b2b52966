"""Argument checks that raise eagerly and stay checked under `jit`.

Every public function of `theory` validates its inputs with `check`. Called on concrete values
it raises `ValueError` at once, naming the argument; traced (under `jit`, `vmap`, `grad`) it
attaches an `equinox.error_if`, which raises at run time instead of letting a NaN through.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool


def as_float(*args: ArrayLike) -> tuple[Array, ...]:
    """Converts the arguments to arrays of one common floating dtype.

    Python scalars are weakly typed, so they follow the arrays they are combined with: float32
    inputs stay float32 even when x64 is enabled.
    """
    args = tuple(jnp.asarray(a) if isinstance(a, list | tuple) else a for a in args)
    dtype = jnp.result_type(float, *args)
    return tuple(jnp.asarray(a, dtype=dtype) for a in args)


def check(x: Array, bad: Bool[ArrayLike, "..."], message: str) -> Array:
    """Returns `x`, raising `ValueError(message)` wherever `bad` holds.

    **Arguments:**

    - `x`: the value to pass through. Under tracing it must be used downstream, or the check is
      dropped with it.
    - `bad`: a boolean array, true where the input is invalid.
    - `message`: names the argument and what was wrong.

    **Returns:** `x`, unchanged.

    **Raises:** `ValueError` at once on concrete input; under `jit` the runtime error raised by
    `equinox.error_if` with the same message.
    """
    if isinstance(bad, jax.core.Tracer):
        return eqx.error_if(x, bad, message)
    if np.any(np.asarray(bad)):
        raise ValueError(message)
    return x


def check_nonnegative(x: Array, name: str, where: str) -> Array:
    """Rejects NaN and negative values (+∞ is allowed)."""
    return check(x, jnp.isnan(x) | (x < 0), f"{where}: `{name}` must be >= 0 and not NaN.")


def check_positive_finite(x: Array, name: str, where: str) -> Array:
    """Rejects NaN, infinite and non-positive values."""
    return check(x, ~(jnp.isfinite(x) & (x > 0)), f"{where}: `{name}` must be finite and > 0.")


def check_finite(x: Array, name: str, where: str) -> Array:
    """Rejects NaN and infinite values."""
    return check(x, ~jnp.isfinite(x), f"{where}: `{name}` must be finite (no NaN or inf).")


def check_components(variances: Array, where: str) -> Array:
    """Promotes a scalar to one component and rejects an empty component axis."""
    variances = jnp.atleast_1d(variances)
    if variances.shape[-1] == 0:
        raise ValueError(f"{where}: `variances` needs at least one component on its last axis.")
    return check_positive_finite(variances, "variances", where)
