"""Adapting a learned model (score, ε or x₀ prediction, any schedule) to a VE `ScoreSource`."""

import operator
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from rdp_jax._schedules import VE, AbstractSchedule
from rdp_jax._validate import as_float
from rdp_jax.scores._base import ScoreSource

Parametrization = Literal["score", "eps", "x0"]
_PARAMETRIZATIONS = ("score", "eps", "x0")


class ModelScore(ScoreSource):
    """A model `fn(x_t, t)` of a schedule's time t, read as a VE score source in σ.

    A query (x, σ) in VE coordinates becomes the model's input by t = t(σ) and
    x_t = √ᾱ(t)·x, since X_t = √ᾱ_t (X + σε) (maths §7). The output is then converted by its
    parametrization (x0 and eps need no Tweedie round trip for D):

    .. math::
        \\text{eps:}\\; D = x - σ \\hat ε,\\; ∇\\log p_σ = -\\hat ε / σ; \\qquad
        \\text{x0:}\\; D = \\hat x_0,\\; ∇\\log p_σ = (\\hat x_0 - x) / σ^2; \\qquad
        \\text{score:}\\; ∇\\log p_σ(x) = \\sqrt{\\bar α_t}\\, s_θ(x_t, t),\\;
        D = x + σ^2 ∇\\log p_σ.

    The score line is the chain rule for p_σ(x) = ᾱ_t^{d/2} p_t(√ᾱ_t x) (Song et al. 2021); the
    others are Tweedie, E[X | X_σ = x] = x + σ² ∇log p_σ(x), with ε = (X_σ - X)/σ.

    The model is a pytree field, so `jax.jit` over a function of this source does not retrace
    when only its weights change. Models with non-array leaves (plain functions, activation
    functions inside an `equinox` module) are split once, in `from_model`, into arrays and a
    static, hashable rest, so plain `jax.jit` works for them too. Build it with `from_model`.
    """

    dynamic: Any
    static: Any = eqx.field(static=True)
    parametrization: Parametrization = eqx.field(static=True)
    schedule: AbstractSchedule
    _event_shape: tuple[int, ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.parametrization not in _PARAMETRIZATIONS:
            raise ValueError(
                f"ModelScore: `parametrization` must be one of {_PARAMETRIZATIONS}, "
                f"got {self.parametrization!r}."
            )
        if not isinstance(self.schedule, AbstractSchedule):
            raise ValueError(
                f"ModelScore: `schedule` must be an AbstractSchedule, got {self.schedule!r}."
            )

    @property
    def event_shape(self) -> tuple[int, ...] | None:
        """The shape of one sample, as given to `from_model` (`None` if it was not)."""
        return self._event_shape

    @property
    def model(self) -> Callable:
        """The wrapped `fn`, reassembled from its array and static parts."""
        if self.static is None:
            return self.dynamic
        return eqx.combine(self.dynamic, self.static)

    def _evaluate(self, x: ArrayLike, sigma: ArrayLike, where: str) -> tuple[Array, ...]:
        x, sigma = as_float(x), as_float(sigma)
        if sigma.ndim != 0:
            raise ValueError(f"{where}: `sigma` must be a scalar, got shape {sigma.shape}.")
        event = () if self._event_shape is None else tuple(self._event_shape)
        if x.shape[x.ndim - len(event) :] != event:
            raise ValueError(
                f"{where}: `x` must end in the event shape {event} (one sample, or a batch for "
                f"a batch-agnostic `fn`), got {x.shape}."
            )
        # t_of_sigma rejects σ ≤ 0 and σ beyond the schedule, so t is in range: the unchecked
        # `_scale` saves a second run-time check per call under jit.
        t = self.schedule.t_of_sigma(sigma)
        scale = self.schedule._scale(t)
        out = jnp.asarray(self.model(scale * x, t))
        if out.shape != x.shape:
            raise ValueError(
                f"{where}: `fn` must return the shape of its input {x.shape}, got {out.shape}."
            )
        return x, sigma, scale, out

    def score(
        self, x: Float[ArrayLike, "*event"], sigma: Float[ArrayLike, ""]
    ) -> Float[Array, "*event"]:
        """∇ log p_σ(x) in VE coordinates, from one model evaluation.

        **Arguments:**

        - `x`: one sample of the model's event shape (or a batch, if `fn` is batch-agnostic).
        - `sigma`: the scalar noise level σ > 0, within the schedule's range.

        **Returns:** the score, the shape of `x`.

        **Raises:** `ValueError` naming `x` (it does not end in `event_shape`, when that is
        known), `sigma` (not > 0 or beyond the schedule) or `fn` (its output shape differs from
        its input's).
        """
        x, sigma, scale, out = self._evaluate(x, sigma, "ModelScore.score")
        if self.parametrization == "score":
            return scale * out
        if self.parametrization == "eps":
            return -out / sigma
        return (out - x) / sigma**2

    def denoise(
        self, x: Float[ArrayLike, "*event"], sigma: Float[ArrayLike, ""]
    ) -> Float[Array, "*event"]:
        """E[X | X_σ = x] in VE coordinates, from one model evaluation.

        **Arguments / Raises:** as `score`.

        **Returns:** the denoised estimate, the shape of `x`.
        """
        x, sigma, scale, out = self._evaluate(x, sigma, "ModelScore.denoise")
        if self.parametrization == "score":
            return x + sigma**2 * scale * out
        if self.parametrization == "eps":
            return x - sigma * out
        return out


def from_model(
    fn: Callable[[Array, Array], Array],
    *,
    parametrization: Parametrization,
    schedule: AbstractSchedule = VE(),  # noqa: B008 - immutable, fieldless
    event_shape: tuple[int, ...] | None = None,
) -> ModelScore:
    """Wraps a learned model as a VE `ScoreSource`.

    **Arguments:**

    - `fn`: `fn(x_t, t)` for ONE sample x_t (or batch-agnostic) and a scalar time t of
      `schedule`, returning an array of x_t's shape. Any callable: a function, an `equinox`
      module, a flax NNX module (a pytree in flax ≥ 0.11, stored as such).
    - `parametrization`: what `fn` predicts: `"score"` (∇ log p_t at x_t), `"eps"` (the noise ε
      with x_t = √ᾱ_t x₀ + √(1 - ᾱ_t) ε) or `"x0"` (the clean sample).
    - `schedule`: the schedule `fn` was trained with; `VE()` (t = σ) by default.
    - `event_shape`: the shape of one sample, if known. Batched callers such as
      `rdp_jax.decode` need it to tell one sample from a batch; the adapter checks that every
      `x` ends in it.

    **Returns:** a `ModelScore`.

    **Raises:** `ValueError` naming `parametrization` (not one of the three), `schedule` (not an
    `AbstractSchedule`), `fn` (not callable) or `event_shape` (not a tuple of ints ≥ 0).
    """
    if not callable(fn):
        raise ValueError(f"from_model: `fn` must be callable, got {fn!r}.")
    if event_shape is not None:
        try:
            event_shape = tuple(operator.index(n) for n in event_shape)
        except TypeError:
            raise ValueError(
                f"from_model: `event_shape` must be a tuple of ints, got {event_shape!r}."
            ) from None
        if any(n < 0 for n in event_shape):
            raise ValueError(f"from_model: `event_shape` must be >= 0, got {event_shape}.")
    if all(eqx.is_array(leaf) for leaf in jax.tree.leaves(fn)):
        # Flax NNX modules land here: their leaves are all arrays, and partitioning would
        # rebuild them with None leaves and hash them by identity (one retrace per instance).
        dynamic, static = fn, None
    else:
        dynamic, static = eqx.partition(fn, eqx.is_array)
    return ModelScore(
        dynamic=dynamic,
        static=static,
        parametrization=parametrization,
        schedule=schedule,
        _event_shape=event_shape,
    )
