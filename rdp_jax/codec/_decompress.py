"""`decompress` and `inspect`: a file back to X_σ, decoded at any ρ; its fields and bits."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from rdp_jax import scores
from rdp_jax._decoder import decode
from rdp_jax.codec import _container
from rdp_jax.codec._gaussian_view import GaussianView, fitted, prior_std, view, whitened
from rdp_jax.codec._model import Flat, event_shape, identity
from rdp_jax.rcc._codec import host_decode
from rdp_jax.rcc._progressive import progressive_host_decode


class FileInfo(NamedTuple):
    """What `inspect` reads from a file without a model.

    - `mode`, `dtype`; `shape`: of the data (no batch axis for one item); `items`, `dims`.
    - `sigma`: a float, or one per dimension; `grid`: the progressive σ grid, or `None`.
    - `prior`: how the one-shot prior is obtained ("model", "stored", "caller").
    - `fingerprint`: the first 4 bytes of the model's `codec.identity`, hex.
    - `key`: the shared key's two words.
    - `total_bits`, `header_bits` (the codec's container), `stream_bits` (the rcc stream,
      its own header and CRC32 included); `bits_per_item`, `bits_per_dim`, `header_fraction`.
    """

    mode: str
    dtype: str
    shape: tuple[int, ...]
    items: int
    dims: int
    sigma: float | tuple[float, ...]
    grid: tuple[float, ...] | None
    prior: str
    fingerprint: str
    key: tuple[int, int]
    total_bits: int
    header_bits: int
    stream_bits: int
    bits_per_item: float
    bits_per_dim: float
    header_fraction: float


class DecompressInfo(NamedTuple):
    """What `decompress(..., return_info=True)` reports besides x̂.

    - `noisy`: X_σ rebuilt from the file, shaped like x̂; it does not depend on ρ.
    - `sigma`: the file's σ, a float or one per dimension.
    """

    noisy: Array
    sigma: np.ndarray


def _check_model(header: _container.FileHeader, model, where: str) -> bytes:
    """The model's 16-byte `identity`, once its event shape and fingerprint match the file's."""
    event = event_shape(model, where)
    if tuple(header.shape[1:]) != event:
        raise ValueError(
            f"{where}: `data` holds items of shape {header.shape[1:]} but `model` has event "
            f"shape {event}: wrong model (or a corrupted file)."
        )
    ours = identity(model)
    if ours[: _container.FINGERPRINT_BYTES] != header.fingerprint:
        raise ValueError(
            f"{where}: `data` is corrupted, or `model` is not the model the file was coded "
            f"against (fingerprint {ours[: _container.FINGERPRINT_BYTES].hex()} != "
            f"{header.fingerprint.hex()})."
        )
    return ours


def _prior_view(header: _container.FileHeader, model, where: str) -> GaussianView:
    if header.prior == "caller":
        return GaussianView(header.prior_mean, header.prior_var, None, True)
    gaussian = fitted(model, header.dtype, where)
    if gaussian is None:
        raise ValueError(f"{where}: the file needs the model's `gaussian_fit()`, which it lacks.")
    return gaussian


def _checked(rcc_decode, *args, **kwargs):
    """An rcc decoder whose errors name the file: its stream's CRC also covers the codec's
    header and the model (`_container`), so any mismatch means one of the three is wrong."""
    try:
        return rcc_decode(*args, **kwargs)
    except ValueError as error:
        raise ValueError(
            "decompress: `data` is corrupted or truncated, or `model` is not the model it was "
            f"coded against (its rcc stream: {error})"
        ) from None


def _noisy(header, head, identity_, stream, model, where) -> tuple[np.ndarray, GaussianView | None]:
    """X_σ as `(n, d)`, and the view whose coordinates the one-shot message used; the stream's
    key is `_container.stream_key` of the header bytes `head` and the model's identity (and of
    the view's `coordinates_digest`, one-shot). The stream is decoded on the host (rcc's
    `host_decode`): X_σ goes on in NumPy, so a device array would only be copied back."""
    n, dim = header.shape[0], math.prod(header.shape[1:])
    if header.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(f"{where}: the file holds float64 items; enable jax_enable_x64.")
    zeros = np.zeros(n * dim, header.dtype)
    if header.mode == "progressive":
        x_t = _checked(
            progressive_host_decode,
            _container.stream_key(head, identity_),
            stream,
            header.grid,
            Flat(model, header.shape),
            prior_mean=zeros,
            prior_std=np.full(n * dim, header.first_std, header.dtype),
        )
        return x_t.reshape(n, dim), None
    gaussian = _prior_view(header, model, where)
    if gaussian.dim != dim:
        raise ValueError(f"{where}: the model's Gaussian has dimension {gaussian.dim}, not {dim}.")
    std = (
        header.prior_std
        if header.prior == "stored"
        else prior_std(gaussian.variances, header.sigma, header.dtype)
    )
    key = _container.stream_key(head, identity_ + gaussian.coordinates_digest())
    z = _checked(host_decode, key, stream, zeros, np.tile(np.asarray(std, header.dtype), n))
    return z.reshape(n, dim), gaussian


def _decode_whitened(z, sigma, rho, target: GaussianView, dtype: str, options) -> np.ndarray:
    """The batch's components decoded at unit noise: z/σ against N(0, λ/σ²), scaled back by σ.

    The items stay a batch `(n, d)` of one d-dim source, so the decoder runs exactly as
    `rdp_jax.decode` on n items (the same compiled ODE, the same cost per item)."""
    dim = z.shape[1]
    try:
        rho = np.asarray(rho, dtype)
    except (TypeError, ValueError):
        raise ValueError("decompress: `rho` must be a number or an array of them.") from None
    try:
        rho = np.broadcast_to(rho, (dim,))
    except ValueError:
        raise ValueError(
            f"decompress: `rho` of shape {np.shape(rho)} is neither a scalar nor one per "
            f"dimension ({dim},)."
        ) from None
    u = decode((z / sigma).astype(dtype), 1.0, rho, whitened(target, sigma, dtype), **options)
    return np.asarray(u, dtype) * sigma


def decompress(
    data: bytes,
    model: scores.ScoreSource,
    rho: Float[ArrayLike, "..."],
    *,
    return_info: bool = False,
    **decode_options,
) -> Float[Array, "*batch event"] | tuple[Float[Array, "*batch event"], DecompressInfo]:
    """Rebuilds X_σ from a `compress` file and decodes it at ρ with the score-scaled PF-ODE.

    X_σ depends on the bytes and the model only, so one file decodes anywhere between perfect
    realism (ρ = 0) and the MMSE estimate (ρ = 1, for a Gaussian) with no re-encoding. A
    Gaussian model is decoded in its eigenbasis, per component: z/σ at unit noise against
    N(0, λ/σ²), scaled back (the VE PF-ODE is scale-equivariant, maths §7), which is how
    per-dimension σ and ρ_i apply; any other model runs `rdp_jax.decode` on X_σ at σ.

    **Arguments:**

    - `data`: the bytes of `compress`.
    - `model`: the model the file was coded against.
    - `rho`: the score scale, a scalar or one per dimension (for a Gaussian model per
      eigen-direction, as `theory.geodesic_rho` gives), in [0, 1].
    - `return_info`: also return a `DecompressInfo`.
    - `decode_options`: passed to `rdp_jax.decode` (`method`, `num_steps`, ...).

    **Returns:** x̂, of the shape compressed (one item or a batch), in the file's dtype.

    **Raises:** `ValueError` for bytes that are not a codec file, a corrupted or truncated one,
    a wrong model (event shape or fingerprint), and bad `rho` or decode options.
    """
    where = "decompress"
    header, head, stream = _container.unpack(data)
    identity_ = _check_model(header, model, where)
    event = header.shape[1:]
    noisy, coords = _noisy(header, head, identity_, stream, model, where)
    dtype, sigma = header.dtype, header.sigma
    if coords is not None:  # one-shot: the message is z in the prior's coordinates
        z, noisy = noisy, coords.from_coords(noisy)
    if isinstance(model, scores.Gaussian):
        target = view(model)
        if coords is None or header.prior == "caller":
            z = target.to_coords(noisy)
        x_hat = target.from_coords(_decode_whitened(z, sigma, rho, target, dtype, decode_options))
    else:
        items = noisy.reshape(header.shape).astype(dtype)
        x_hat = np.asarray(decode(items, sigma, rho, model, **decode_options), dtype)
    shape = event if header.single else header.shape
    x_hat = jnp.asarray(np.asarray(x_hat).reshape(shape))
    if not return_info:
        return x_hat
    return x_hat, DecompressInfo(jnp.asarray(np.asarray(noisy).reshape(shape)), sigma)


def inspect(data: bytes) -> FileInfo:
    """What a file holds, without a model: its fields and where its bits go.

    **Returns:** a `FileInfo`.

    **Raises:** `ValueError` for bytes that are not a codec file, and a header that is truncated
    or contradicts itself. A corrupted or truncated stream (the tail of the file) passes:
    `decompress` detects it, through the stream's CRC32, whose key is a digest of the header
    and of the model's identity, which `inspect` lacks (`_container`, **Integrity**).
    """
    try:
        header, _, stream = _container.unpack(data)
    except ValueError as error:  # the container's messages name `decompress`, its usual reader
        message = str(error).removeprefix("decompress: ")
        raise ValueError(f"inspect: {message}") from None
    n, dims = header.shape[0], math.prod(header.shape[1:])
    total = 8 * len(data)
    sigma = header.sigma
    return FileInfo(
        header.mode,
        header.dtype,
        header.shape[1:] if header.single else header.shape,
        n,
        dims,
        tuple(float(s) for s in sigma) if sigma.ndim else float(sigma),
        None if header.grid is None else tuple(float(s) for s in header.grid),
        header.prior,
        header.fingerprint.hex(),
        (int(header.key[0]), int(header.key[1])),
        total,
        total - 8 * len(stream),
        8 * len(stream),
        total / n,
        total / (n * dims),
        (total - 8 * len(stream)) / total,
    )
