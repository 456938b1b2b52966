"""EDM preconditioning (Karras et al. 2022) around a network, read as an x₀ model in VE."""

import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from rdp_jax.models._networks import MLP, UNet

# A dimension whose training values never vary (the border pixels of digits) keeps this floor
# as its σ_data, so that c_skip, c_out → 0 there and the denoiser returns its constant mean.
STD_FLOOR = 1e-3


class EDMDenoiser(nnx.Module):
    """D(x, σ) = μ + c_skip(σ)(x − μ) + c_out(σ) F(c_in(σ)(x − μ), c_noise(σ)), per dimension.

    Karras et al. (2022), Table 1 and eq. 7, with the data's mean μ and standard deviation
    σ_data taken per dimension rather than one scalar (maths §14):

    .. math::
        c_{skip} = \\frac{σ_d^2}{σ^2 + σ_d^2},\\quad
        c_{out} = \\frac{σ σ_d}{\\sqrt{σ^2 + σ_d^2}},\\quad
        c_{in} = \\frac{1}{\\sqrt{σ^2 + σ_d^2}},\\quad c_{noise} = \\tfrac14 \\ln σ.

    The skip path is the diagonal-Gaussian Wiener filter, so an untrained network (F = 0, the
    output layers start at zero) is already the best per-pixel linear denoiser, and F has unit
    target variance at every σ. Called on one sample `(x, σ)` it is an x₀ model in VE time
    (t = σ): `rdp_jax.scores.from_model(d, parametrization="x0", event_shape=d.event_shape)`.

    **Arguments:**

    - `network`: an `MLP` or `UNet` whose event shape is that of `mean`.
    - `mean`, `std`: μ and σ_data per dimension, of the event shape (`std` is floored at 1e-3).
    """

    def __init__(self, network: MLP | UNet, mean: ArrayLike, std: ArrayLike):
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        if mean.shape != std.shape:
            raise ValueError(
                f"EDMDenoiser: `mean` {mean.shape} and `std` {std.shape} must have one shape."
            )
        if mean.shape != network.event_shape:
            raise ValueError(
                f"EDMDenoiser: `mean` has shape {mean.shape} but `network` takes samples of "
                f"shape {network.event_shape}."
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std >= 0)):
            raise ValueError("EDMDenoiser: `mean` must be finite and `std` finite and >= 0.")
        self.network = network
        self.mean = nnx.Variable(jnp.asarray(mean))
        self.std = nnx.Variable(jnp.asarray(np.maximum(std, STD_FLOOR)))

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The shape of one sample."""
        return tuple(self.mean.get_value().shape)

    def coefficients(self, sigma: Float[Array, " batch"]) -> tuple[Array, Array, Array, Array]:
        """(c_skip, c_out, c_in) with a batch axis first and the event shape after, and
        c_noise of shape `(batch,)`."""
        s = self.std.get_value()
        sigma_b = sigma.reshape(sigma.shape + (1,) * s.ndim)
        total = jnp.sqrt(sigma_b**2 + s**2)
        return s**2 / total**2, sigma_b * s / total, 1 / total, jnp.log(sigma) / 4

    def network_and_target(
        self, x: Float[Array, "batch ..."], sigma: Float[Array, " batch"], x0: Array
    ) -> tuple[Array, Array]:
        """F(c_in(x − μ), c_noise) and its regression target (x₀ − μ − c_skip(x − μ))/c_out.

        ‖F − target‖² = ‖D − x₀‖²/c_out², EDM's loss weighting λ(σ) = 1/c_out² (their eq. 8).
        """
        c_skip, c_out, c_in, c_noise = self.coefficients(sigma)
        centred = x - self.mean.get_value()
        target = (x0 - self.mean.get_value() - c_skip * centred) / c_out
        return self.network(c_in * centred, c_noise), target

    def batched(
        self, x: Float[Array, "batch ..."], sigma: Float[Array, " batch"]
    ) -> Float[Array, "batch ..."]:
        """D(x, σ) for a batch, one σ per sample."""
        c_skip, c_out, c_in, c_noise = self.coefficients(sigma)
        mean = self.mean.get_value()
        centred = x - mean
        return mean + c_skip * centred + c_out * self.network(c_in * centred, c_noise)

    def __call__(self, x: Float[Array, "*event"], sigma: Float[ArrayLike, ""]) -> Array:
        """D(x, σ) for one sample and a scalar σ (the `from_model` convention, t = σ)."""
        x = jnp.asarray(x)
        sigma = jnp.asarray(sigma, x.dtype)
        return self.batched(x[None], sigma[None])[0]
