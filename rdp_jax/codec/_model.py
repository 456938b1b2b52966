"""What the codec needs of a model: its event shape, its identity, and a batch as one vector."""

import math

import equinox as eqx
import jax

from rdp_jax import scores


class Flat(scores.ScoreSource):
    """A batch of items as one flat vector, for one progressive stream over the whole batch."""

    model: scores.ScoreSource
    shape: tuple[int, ...] = eqx.field(static=True)

    @property
    def event_shape(self) -> tuple[int]:
        return (math.prod(self.shape),)

    def denoise(self, x, sigma):
        items = x.reshape(self.shape)
        return jax.vmap(self.model.denoise, in_axes=(0, None))(items, sigma).reshape(-1)


def identity(model) -> bytes:
    """The model's 16-byte fingerprint as files record it: of `model.definition` where the
    source has one (`scores.gaussian_full`, whose eigendecomposition is machine-dependent),
    else of the model (`scores.fingerprint`)."""
    return scores.fingerprint(getattr(model, "definition", model))


def event_shape(model, where: str) -> tuple[int, ...]:
    event = getattr(model, "event_shape", None)
    if event is None:
        raise ValueError(f"{where}: `model` must know its `event_shape`.")
    if len(event) == 0:
        raise ValueError(
            f"{where}: `model` has the scalar event shape (); the codec codes items of one or "
            "more axes (give the model an event shape (1,))."
        )
    return tuple(int(s) for s in event)
