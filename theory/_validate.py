"""Argument checks that raise eagerly and stay checked under `jit`.

Every public function of `theory` validates its inputs with `check`. Called on concrete values
it raises `ValueError` at once, naming the argument; traced (under `jit`, `vmap`, `grad`) it
attaches an `equinox.error_if`, which raises at run time instead of letting a NaN through.

A run-time error surfaces through XLA, which wraps it: `jax.jit` raises a
`jax.errors.JaxRuntimeError` whose first line is XLA's ("INTERNAL: CpuCallback error ...") and
`equinox.filter_jit` an `equinox.EquinoxRuntimeError` that starts with its own stack. `jit`
below compiles like `equinox.filter_jit` and re-raises a failed check as the `ValueError` that
eager code raises, with the same one-line message and a traceback that ends at the call.
"""

import functools
import logging
import re
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Int, PyTree

# The messages of every traced check, registered at trace time, so that `jit` converts only
# these failures and passes any other run-time error (a solver's, say) through untouched.
_MESSAGES: set[str] = set()
_FAILED_CHECK = re.compile(r"EquinoxRuntimeError: (.*)")


def error_if(x: PyTree, bad: Bool[ArrayLike, "..."], message: str) -> PyTree:
    """`equinox.error_if` for a message that `jit` re-raises as `ValueError`."""
    _MESSAGES.add(message)
    return eqx.error_if(x, bad, message)


def branched_error_if(
    x: PyTree, bad: Bool[ArrayLike, ""], index: Int[ArrayLike, ""], messages: Sequence[str]
) -> PyTree:
    """`equinox.branched_error_if` for messages that `jit` re-raises as `ValueError`."""
    _MESSAGES.update(messages)
    return eqx.branched_error_if(x, bad, index, list(messages))


def _failed_check(text: str) -> str | None:
    """The message of a registered check that `text` (a run-time error's) reports, if any."""
    found = [m for m in _FAILED_CHECK.findall(text) if m in _MESSAGES]
    return found[-1] if found else None


class _QuietFailedChecks(logging.Filter):
    """Drops jax's log of a failed check's host callback ("jax.pure_callback failed" and its
    traceback, about 17 lines on stderr): the error that follows carries the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or _failed_check(f"EquinoxRuntimeError: {error}") is None


logging.getLogger("jax._src.callback").addFilter(_QuietFailedChecks())


def jit(fun: Callable, **jit_kwargs) -> Callable:
    """Compiles `fun` like `equinox.filter_jit`; a failed argument check raises `ValueError`.

    Under `jax.jit` a bad value can only be detected at run time, and XLA reports it as
    `jax.errors.JaxRuntimeError: INTERNAL: CpuCallback error ...` with the message inside.
    Through this wrapper the same bad value raises the `ValueError` that an eager call raises,
    first line and all (for instance "rdp_w2: `D` must be >= 0 and not NaN."), from the call.

    **Arguments:**

    - `fun`: the function to compile; array arguments are traced, all others static.
    - `jit_kwargs`: passed to `equinox.filter_jit` (`donate`).

    **Returns:** the compiled function.

    **Raises:** (when called) `ValueError` with the message of the failed argument check
    (any check made through `check` or `error_if` here, which `rdp_jax` uses too); any other
    run-time error as `equinox.filter_jit` raises it.
    """
    compiled = eqx.filter_jit(fun, **jit_kwargs)

    @functools.wraps(fun)
    def checked(*args, **kwargs):
        __tracebackhide__ = True
        try:
            return compiled(*args, **kwargs)
        except eqx.EquinoxRuntimeError as error:
            message = _failed_check(str(error))
            if message is None:
                raise
        # Raised outside the handler: the equinox error is neither chained nor printed.
        raise ValueError(message)

    return checked


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

    **Raises:** `ValueError` at once on concrete input; under tracing the run-time error of
    `equinox.error_if` with the same message (a `ValueError` again through `jit`).
    """
    if isinstance(bad, jax.core.Tracer):
        return error_if(x, bad, message)
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


def check_broadcast(where: str, *named: tuple[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The broadcast of the named shapes; `ValueError` naming the argument that does not fit.

    **Arguments:**

    - `where`: the public function, for the message.
    - `named`: `(description, shape)` pairs in argument order, e.g. ("`D`", D.shape).

    **Returns:** the broadcast shape.

    **Raises:** `ValueError` naming the first argument whose shape does not broadcast with those
    before it, and theirs.
    """
    for i, (name, shape) in enumerate(named):
        try:
            np.broadcast_shapes(*(s for _, s in named[: i + 1]))
        except ValueError:
            earlier = ", ".join(f"{n} of shape {s}" for n, s in named[:i])
            raise ValueError(
                f"{where}: {name} of shape {shape} does not broadcast with {earlier}."
            ) from None
    return np.broadcast_shapes(*(s for _, s in named))


def check_rho(rho: Array, where: str, allow_any_rho: bool) -> Array:
    """Rejects a non-finite ρ, and one outside [0, 1] unless `allow_any_rho` (as `decode`)."""
    rho = check_finite(rho, "rho", where)
    if allow_any_rho:
        return rho
    return check(
        rho,
        (rho < 0) | (rho > 1),
        f"{where}: `rho` must lie in [0, 1]; pass allow_any_rho=True to go outside.",
    )
