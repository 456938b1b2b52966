"""`compress`: a batch of items as one self-contained file."""

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax import rcc, scores
from rdp_jax._validate import check_real, is_whole
from rdp_jax.codec import _container
from rdp_jax.codec._gaussian_view import caller_prior, fitted, prior_std
from rdp_jax.codec._model import Flat, event_shape, identity
from rdp_jax.codec._steps import best_steps
from rdp_jax.rcc._validate import coding_args, key_words, progress_callback

MODES = ("oneshot", "progressive")
# See `compress`: rcc's validated chunk size for a bounded importance weight.
ONESHOT_CHUNK_BITS = 10.0


class CompressInfo(NamedTuple):
    """What `compress(..., return_info=True)` reports besides the bytes.

    - `mode`: "oneshot" or "progressive".
    - `total_bits`: the file, 8 × its length.
    - `container_bits`: the codec's header, paid once per file.
    - `rcc_header_bits`, `payload_bits`: the rcc stream's header and range-coded block.
    - `bits_per_item`, `bits_per_dim`: `total_bits` over the items and over all dimensions.
    - `kl_bits`: KL(q‖p) of the whole message in bits, what ideal channel simulation would pay.
    - `num_chunks`: the rcc chunks of the message (all steps, progressive).
    - `information_bits`: I(X; X_σ) per item for a Gaussian model coded without `prior`
      (maths §8), else `None`.
    - `noisy`: X_σ as every decoder rebuilds it, shaped like the input.
    """

    mode: str
    total_bits: int
    container_bits: int
    rcc_header_bits: int
    payload_bits: int
    bits_per_item: float
    bits_per_dim: float
    kl_bits: float
    num_chunks: int
    information_bits: float | None
    noisy: Array


def _sigma(sigma, dim: int, dtype: str, where: str) -> np.ndarray:
    try:
        sigma = np.asarray(sigma, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `sigma` must be a number or an array of them.") from None
    if sigma.ndim > 1 or (sigma.ndim == 1 and sigma.shape != (dim,)):
        raise ValueError(
            f"{where}: `sigma` must be a scalar or one per dimension ({dim},); got {sigma.shape}."
        )
    sigma = sigma.astype(dtype)
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError(f"{where}: `sigma` must be finite and > 0.")
    return sigma


def _grid(sigma: float, sigma_max: float, steps: int, dtype: str, where: str) -> np.ndarray:
    if not is_whole(steps) or not 1 <= steps <= _container.MAX_STEPS:
        raise ValueError(
            f"{where}: `steps` must be an integer >= 1 (at most {_container.MAX_STEPS}), got "
            f"{steps!r}."
        )
    low, high = _container.SIGMA_RANGE
    if not low <= sigma:
        raise ValueError(f"{where}: a progressive grid needs `sigma` >= {low:.3g}, got {sigma:g}.")
    if steps > 1 and not (high >= float(np.asarray(sigma_max, dtype)) > sigma):
        raise ValueError(
            f"{where}: `sigma_max` must be > sigma ({sigma:g}) and at most {high:.3g} in {dtype}; "
            f"got {sigma_max!r}."
        )
    grid = _container.geometric_grid(sigma, sigma_max, int(steps), dtype)
    if np.any(np.diff(grid) >= 0):
        raise ValueError(f"{where}: the σ grid is not strictly decreasing in {dtype}.")
    return grid


def _first_std(scale: float, sigma_1: float, where: str) -> float:
    """√(m₂ + σ_1²), the first progressive step's prior std, as the file stores it (float32)."""
    with np.errstate(over="ignore"):
        first = float(np.float32(math.hypot(scale, sigma_1)))
    if not math.isfinite(first):
        raise ValueError(
            f"{where}: the grid's first σ ({sigma_1:g}) is too large: the first step's prior "
            "std overflows float32 (lower `sigma_max`, or `sigma`)."
        )
    return first


def _default_mode(model) -> str:
    """One-shot where the prior is the exact marginal (a Gaussian model), else progressive."""
    return "oneshot" if isinstance(model, scores.Gaussian) else "progressive"


def compress(
    key: PRNGKeyArray,
    x: Float[ArrayLike, "*batch event"],
    model: scores.ScoreSource,
    sigma: Float[ArrayLike, "*dim"],
    *,
    mode: str | None = None,
    prior: scores.Gaussian | None = None,
    steps: int | None = None,
    sigma_max: float | None = None,
    return_info: bool = False,
    progress: Callable[[float], None] | None = None,
    **rcc_options,
) -> bytes | tuple[bytes, CompressInfo]:
    """Compresses items to one file that `decompress` turns back into x̂ at any ρ.

    The encoder sends X_σ = X + σN by reverse channel coding (maths §8, §10); the decoder
    rebuilds the same X_σ from the bytes and the model alone, and runs the score-scaled PF-ODE
    from it at a ρ chosen then. All items go into one rcc message of n·d dimensions, so the
    rcc header and the codec's container are paid once per file, and the channel search runs
    over the whole batch at once (chunked and dealt over the devices by `rcc`).

    - **"oneshot"**: X_σ against the Gaussian prior N(μ, Σ + σ²I), coded in Σ's eigenbasis
      z = Uᵀ(x − μ), where components are independent and isotropic noise stays isotropic. For
      a `scores.gaussian` (or `gaussian_full`) model this is the exact marginal, so the rate
      tends to I(X; X_σ); for another model the prior is `prior`, else the Gaussian
      `model.gaussian_fit()` returns (a fit of the data, on the flattened event). The decoder
      recomputes a diagonal Gaussian's prior, a `gaussian_full`'s and a `models.Pretrained`'s
      fit (a portable Jacobi eigendecomposition of the covariance, `models._spectrum`: 2.4 s
      at d = 256 and 34 s at d = 512 on 2 cores, once per covariance and process) bit for
      bit, so the file holds no prior; a `scores.gaussian` of a full `var` (its fields are
      LAPACK's) or another model's fit is stored (d float32 standard deviations), with a
      digest of its eigenvectors in the stream's key, so that a decoder whose eigenvectors
      differ raises rather than rebuilding X_σ in its own coordinates; and
      `prior` as its mean and variances.
    - **"progressive"**: DiffC along the geometric grid of `steps` levels from `sigma_max`
      down to σ, against the model's reverse steps (`rcc.progressive_encode`), for any model.
      By default S is the one of 1 to 64 with the fewest expected bits for this model and
      these items (`_steps`: each step's KL, from the model's denoising error on the items,
      plus its header and chunk overheads), which trades the grid's excess KL, falling like
      1/S, against the per-step costs.
      Its stream's CRC covers `scores.fingerprint` of the model, which for a full-covariance
      Gaussian hashes the machine-dependent eigendecomposition: code those one-shot.

    Per-dimension σ (spectrum-matched noise, maths §8) is per eigen-direction of a Gaussian
    model, in the order of its `eigenvalues` (for a diagonal one, per coordinate), one-shot.

    **Arguments:**

    - `key`: the shared key (a threefry2x32 `jax.random.key`); it is stored in the file.
    - `x`: one item of the model's event shape, or a batch with a leading axis (float32 or
      float64; the file keeps the dtype).
    - `model`: a score source that knows its `event_shape`; the decoder needs the same one.
    - `sigma`: the noise std, a scalar or one per dimension; > 0.
    - `mode`: "oneshot" or "progressive"; default one-shot for a Gaussian model (its exact
      marginal costs one step), progressive otherwise.
    - `prior`: a diagonal `scores.Gaussian` of the data for one-shot coding; stored in the file.
      In progressive mode it is not stored: its second moment sets the first step's prior
      std √(m₂ + σ_1²) (stored in the file) and the default σ_max.
    - `steps`, `sigma_max`: the progressive grid: its number of levels (default None: the
      fewest expected bits, above) and σ_max (default: 20 × the data's RMS scale as the
      model's Gaussian knows it, else 20).
    - `return_info`: also return a `CompressInfo`.
    - `progress`: None, or a callable told the fraction of the channel search done, in (0, 1]
      (`rcc.encode`, `rcc.progressive_encode`); `rdp-jax compress` draws it as a bar.
    - `rcc_options`: `algorithm`, `chunk_bits`, `num_candidates` of `rcc.encode`. One-shot
      coding defaults to `chunk_bits=10`: its q = N(z, σ²) is narrower than p = N(0, λ + σ²),
      so w = q/p is bounded, the case where `rcc.encode` documents k = 10 (N = 2^18) as
      unbiased at 1.328 × KL against 1.364 × KL for its default k = 8, for about twice the
      search time (pass `chunk_bits=8` for speed). Progressive steps keep
      rcc's defaults (their q and p have equal widths: all the KL is in the mean).

    **Returns:** the file as `bytes`; with `return_info`, `(bytes, info)`. The same key and
    inputs give the same bytes on one machine (another machine's search may break a rare
    near-tie of candidates differently, as `rcc.encode` says; every file decodes anywhere).

    **Raises:** `ValueError` naming the argument: shapes that fit neither one item nor a
    batch, bad σ or grid, an unknown mode, a one-shot request without a Gaussian prior,
    per-dimension σ without a Gaussian model, and what `rcc.encode` raises.
    """
    where = "compress"
    progress = progress_callback(progress, where)
    words = key_words(key, where)
    event = event_shape(model, where)
    x = np.asarray(x)
    check_real(x.dtype, "x", where)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(jnp.result_type(float))
    dtype = x.dtype.name
    if dtype not in ("float32", "float64"):
        raise ValueError(f"{where}: `x` must be float32 or float64, got {dtype}.")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(f"{where}: `x` is float64; enable jax_enable_x64, or pass float32 items.")
    if x.shape == event:
        single, x = True, x[None]
    elif x.ndim == len(event) + 1 and x.shape[1:] == event and x.shape[0] >= 1:
        single = False
    else:
        raise ValueError(
            f"{where}: `x` must be one item of shape {event} or a batch (n, *{event}), n >= 1; "
            f"got {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: `x` must be finite.")
    if x.size > _container.MAX_COMPONENTS:
        raise ValueError(
            f"{where}: `x` holds {x.size} numbers; a file holds at most "
            f"{_container.MAX_COMPONENTS}: compress the batch in parts."
        )
    n, dim = x.shape[0], math.prod(event)
    sigma = _sigma(sigma, dim, dtype, where)
    mode = _default_mode(model) if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"{where}: unknown `mode` {mode!r}; choose one of {MODES}.")
    if sigma.ndim and (
        mode != "oneshot" or prior is not None or not isinstance(model, scores.Gaussian)
    ):
        raise ValueError(
            f"{where}: per-dimension `sigma` needs a Gaussian model (scores.gaussian or "
            "gaussian_full) in one-shot mode without `prior`."
        )
    gaussian = (
        caller_prior(prior, dim, dtype, where) if prior is not None else fitted(model, dtype, where)
    )
    flat = x.reshape(n, dim)
    model_id = identity(model)
    fields = dict(
        dtype=dtype,
        single=single,
        shape=(n, *event),
        sigma=sigma,
        key=words,
        fingerprint=model_id,
        prior="model",
        prior_std=None,
        prior_mean=None,
        prior_var=None,
        grid=None,
        first_std=None,
    )
    if mode == "oneshot":
        if gaussian is None:
            raise ValueError(
                f"{where}: one-shot coding needs a Gaussian prior: pass `prior=`, use a model "
                "with `gaussian_fit()`, or mode='progressive'."
            )
        std = prior_std(gaussian.variances, sigma, dtype)
        if not np.all(np.isfinite(std)):
            raise ValueError(
                f"{where}: `sigma` is too large: the noisy prior's std √(λ + σ²) overflows {dtype}."
            )
        if prior is not None:
            fields.update(prior="caller", prior_mean=gaussian.mean, prior_var=gaussian.variances)
        elif not gaussian.exact:
            std = std.astype(np.float32)
            fields.update(prior="stored", prior_std=std)
        z = gaussian.to_coords(flat)
        q_std = np.broadcast_to(sigma, (n, dim)).reshape(-1)
        p_std = np.tile(np.asarray(std, dtype), n)
        rcc_options = {"chunk_bits": ONESHOT_CHUNK_BITS, **rcc_options}
        head = _container.header_bytes(_container.FileHeader(mode=mode, **fields))
        stream, info = rcc.encode(
            _container.stream_key(head, model_id + gaussian.coordinates_digest()),
            z.reshape(-1),
            q_std,
            np.zeros(n * dim, dtype),
            p_std,
            return_info=True,
            progress=progress,
            **rcc_options,
        )
        noisy = gaussian.from_coords(np.asarray(info.sample).reshape(n, dim))
        chunks = info.num_chunks
    else:
        scale = (
            1.0
            if gaussian is None
            else math.sqrt(float(np.mean(gaussian.variances + gaussian.mean**2)))
        )
        if sigma_max is None:
            sigma_max = 20 * scale
        else:
            try:
                sigma_max = float(sigma_max)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{where}: `sigma_max` must be a number; got {sigma_max!r}."
                ) from None
        if steps is None:
            # Validated first: the candidates' grids use σ, σ_max and the steps' k.
            _grid(float(sigma), sigma_max, 2, dtype, where)
            _first_std(scale, sigma_max, where)
            options = {"algorithm": "pfr", "chunk_bits": 8.0, **rcc_options}
            _, k, _ = coding_args(options["algorithm"], options["chunk_bits"], None, where)
            steps = best_steps(model, x, float(sigma), sigma_max, scale, k, dtype)
        grid = _grid(float(sigma), sigma_max, steps, dtype, where)
        first = _first_std(scale, float(grid[0]), where)
        fields.update(grid=grid, first_std=first)
        head = _container.header_bytes(_container.FileHeader(mode=mode, **fields))
        stream, info = rcc.progressive_encode(
            _container.stream_key(head, model_id),
            flat.reshape(-1),
            grid,
            Flat(model, (n, *event)),
            prior_mean=np.zeros(n * dim, dtype),
            prior_std=np.full(n * dim, first, dtype),
            return_info=True,
            progress=progress,
            **rcc_options,
        )
        noisy = np.asarray(info.sample).reshape(n, dim)
        chunks = int(np.sum(info.step_num_chunks))
    data = head + stream
    if not return_info:
        return data
    total = 8 * len(data)
    information = (
        gaussian.information_bits(sigma)
        if isinstance(model, scores.Gaussian) and prior is None
        else None
    )
    noisy = jnp.asarray(noisy.reshape(x.shape[1:] if single else x.shape))
    return data, CompressInfo(
        mode,
        total,
        total - 8 * len(stream),
        info.header_bits,
        info.payload_bits,
        total / n,
        total / (n * dim),
        info.kl_bits,
        chunks,
        information,
        noisy,
    )
