"""The denoiser networks: an MLP for vectors and a small U-Net for 8×8 images (flax NNX).

Both map a batch of preconditioned inputs and noise levels (c_in·x, c_noise) to the EDM
network output F (maths §14); `EDMDenoiser` wraps either. Each has its constructor arguments
as `config`, from which `make_network` rebuilds it to load weights.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float


class NoiseEmbedding(nnx.Module):
    """c_noise ↦ a `width`-vector: random Fourier features (fixed frequencies), then a layer.

    The frequencies are drawn once and kept as a non-trainable variable, as in EDM's
    `FourierEmbedding` (Karras et al. 2022, Table 7's "NCSN++" column).
    """

    def __init__(self, width: int, *, rngs: nnx.Rngs, num_frequencies: int = 16):
        self.frequencies = nnx.Variable(
            2 * math.pi * jax.random.normal(rngs.params(), (num_frequencies,), jnp.float32)
        )
        self.linear = nnx.Linear(2 * num_frequencies, width, rngs=rngs)

    def __call__(self, c_noise: Float[Array, " batch"]) -> Float[Array, "batch width"]:
        phase = c_noise[:, None] * self.frequencies.get_value()
        return nnx.silu(self.linear(jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], -1)))


class _Network(nnx.Module):
    # The constructor arguments as hashable pairs: NNX keeps them in the graph definition, which
    # must be hashable for the training step's compilation cache.
    spec: tuple[tuple[str, int | str], ...]

    @property
    def config(self) -> dict:
        """The constructor arguments and the kind, for `make_network`."""
        return dict(self.spec)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The shape of one sample the network takes: `(dim,)` or `(size, size)`."""
        config = self.config
        return (config["dim"],) if config["kind"] == "mlp" else (config["size"],) * 2


class MLP(_Network):
    """Residual MLP with the noise embedding added in every block, for event shape `(dim,)`.

    **Arguments:** `dim` (the event size), `width`, `depth` (residual blocks), `rngs`.
    """

    def __init__(self, dim: int, *, width: int = 128, depth: int = 3, rngs: nnx.Rngs):
        self.spec = (("kind", "mlp"), ("dim", dim), ("width", width), ("depth", depth))
        self.embed = NoiseEmbedding(width, rngs=rngs)
        self.inp = nnx.Linear(dim, width, rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(2 * depth)])
        self.film = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(depth)])
        # Zero-initialised output: the untrained denoiser is the preconditioning's skip path.
        self.out = nnx.Linear(width, dim, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(
        self, x: Float[Array, "batch dim"], c_noise: Float[Array, " batch"]
    ) -> Float[Array, "batch dim"]:
        emb = self.embed(c_noise)
        h = self.inp(x)
        for i, film in enumerate(self.film):
            r = self.blocks[2 * i](nnx.silu(h)) + film(emb)
            h = h + self.blocks[2 * i + 1](nnx.silu(r))
        return self.out(nnx.silu(h))


class _ResBlock(nnx.Module):
    """GroupNorm-SiLU-conv twice, the embedding as a per-channel shift, a 1×1 skip if needed."""

    def __init__(self, c_in: int, c_out: int, emb: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.GroupNorm(c_in, num_groups=min(8, c_in), rngs=rngs)
        self.conv1 = nnx.Conv(c_in, c_out, (3, 3), rngs=rngs)
        self.shift = nnx.Linear(emb, c_out, rngs=rngs)
        self.norm2 = nnx.GroupNorm(c_out, num_groups=min(8, c_out), rngs=rngs)
        self.conv2 = nnx.Conv(c_out, c_out, (3, 3), rngs=rngs)
        self.skip = nnx.Conv(c_in, c_out, (1, 1), rngs=rngs) if c_in != c_out else None

    def __call__(self, h: Array, emb: Array) -> Array:
        r = self.conv1(nnx.silu(self.norm1(h))) + self.shift(emb)[:, None, None, :]
        r = self.conv2(nnx.silu(self.norm2(r)))
        return (h if self.skip is None else self.skip(h)) + r


def _down(h: Array) -> Array:
    """2×2 average pooling."""
    b, height, width, c = h.shape
    return h.reshape(b, height // 2, 2, width // 2, 2, c).mean(axis=(2, 4))


def _up(h: Array) -> Array:
    """Nearest-neighbour 2× upsampling."""
    return jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)


class UNet(_Network):
    """A two-level U-Net for one-channel images of event shape `(size, size)`, size % 4 == 0.

    size×size with `channels`, then size/2 and size/4 with 2·`channels`; skip connections are
    concatenated on the way up.
    """

    def __init__(self, size: int = 8, *, channels: int = 32, emb: int = 64, rngs: nnx.Rngs):
        if size % 4:
            raise ValueError(f"UNet: `size` must be a multiple of 4, got {size}.")
        c1, c2 = channels, 2 * channels
        self.spec = (("kind", "unet"), ("size", size), ("channels", channels), ("emb", emb))
        self.embed = NoiseEmbedding(emb, rngs=rngs)
        self.inp = nnx.Conv(1, c1, (3, 3), rngs=rngs)
        self.enc1 = _ResBlock(c1, c1, emb, rngs=rngs)
        self.enc2 = _ResBlock(c1, c2, emb, rngs=rngs)
        self.mid = _ResBlock(c2, c2, emb, rngs=rngs)
        self.dec2 = _ResBlock(2 * c2, c2, emb, rngs=rngs)
        self.dec1 = _ResBlock(c2 + c1, c1, emb, rngs=rngs)
        self.norm = nnx.GroupNorm(c1, num_groups=min(8, c1), rngs=rngs)
        self.out = nnx.Conv(c1, 1, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(
        self, x: Float[Array, "batch h w"], c_noise: Float[Array, " batch"]
    ) -> Float[Array, "batch h w"]:
        emb = self.embed(c_noise)
        h1 = self.enc1(self.inp(x[..., None]), emb)  # size
        h2 = self.enc2(_down(h1), emb)  # size / 2
        h = self.mid(_down(h2), emb)  # size / 4
        h = self.dec2(jnp.concatenate([_up(h), h2], -1), emb)
        h = self.dec1(jnp.concatenate([_up(h), h1], -1), emb)
        return self.out(nnx.silu(self.norm(h)))[..., 0]


def make_network(config: dict, *, seed: int = 0) -> MLP | UNet:
    """Builds the network a `config` (a network's `config` attribute) describes.

    **Raises:** `ValueError` naming `config` when its kind is unknown.
    """
    config = dict(config)
    kind = config.pop("kind", None)
    rngs = nnx.Rngs(seed)
    if kind == "mlp":
        return MLP(**config, rngs=rngs)
    if kind == "unet":
        return UNet(**config, rngs=rngs)
    raise ValueError(f"make_network: `config` has unknown kind {kind!r}; expected mlp or unet.")


def num_parameters(network: nnx.Module) -> int:
    """The number of trainable scalars (`nnx.Param` leaves) of a network."""
    return sum(int(p.size) for p in jax.tree.leaves(nnx.state(network, nnx.Param)))
