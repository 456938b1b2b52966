"""The score-source protocol: a noisy score and its Tweedie denoiser, in VE coordinates."""

import equinox as eqx
from jaxtyping import Array, ArrayLike, Float


class ScoreSource(eqx.Module):
    """∇ log p_σ and E[X | X_σ = x] for X_σ = X + σε, one sample at a time.

    Subclasses override `denoise` or `score` (or both); each determines the other by Tweedie,
    E[X | X_σ = x] = x + σ² ∇ log p_σ(x) (maths §7). Inputs are one sample of any event shape
    and a scalar σ > 0; callers `vmap` over batches. Being an `equinox.Module`, a source is a
    pytree: passing a new one of the same structure to a jitted function does not retrace.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Each default is defined by the other: with neither overridden they would recurse.
        if cls.score is ScoreSource.score and cls.denoise is ScoreSource.denoise:
            raise TypeError(f"{cls.__name__} must override `score` or `denoise`.")

    @property
    def event_shape(self) -> tuple[int, ...] | None:
        """The shape of one sample, or `None` when the source cannot tell (batched callers such
        as `rdp_jax.decode` need it to tell one sample from a batch)."""
        return None

    def score(
        self, x: Float[Array, "*event"], sigma: Float[ArrayLike, ""]
    ) -> Float[Array, "*event"]:
        """∇_x log p_σ(x)."""
        return (self.denoise(x, sigma) - x) / sigma**2

    def denoise(
        self, x: Float[Array, "*event"], sigma: Float[ArrayLike, ""]
    ) -> Float[Array, "*event"]:
        """E[X | X_σ = x], the MMSE (Tweedie) denoiser."""
        return x + sigma**2 * self.score(x, sigma)
