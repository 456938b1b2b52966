"""Progressive channel simulation along the diffusion (DiffC): x at σ_target, one step at a time.

maths §10. The encoder sends x_σ = x + σε for a decreasing grid σ_1 > … > σ_S = σ_target.
The first step sends x_{σ_1} ~ N(x, σ_1²) against a fixed prior; step n → n+1 sends the forward
posterior (the Brownian bridge of the VE process)

.. math::
    q = N\\big(x + r (x_n - x),\\; σ_{n+1}^2 (1 - r)\\big), \\qquad r = σ_{n+1}^2 / σ_n^2,

against the model's reverse step p, the same with x replaced by the denoiser D(x_n, σ_n) of any
score source. Each step is one segment of a single stream, so the whole trajectory costs one
header and one CRC.

Nothing that steers decoding depends on the model's float outputs: chunk layouts, candidate
counts and index laws come from the stream, and the candidates ε from the key. The model only
moves each step's p, so a decoder whose model rounds differently (another CPU or a GPU, another
batch size, jit or not) parses the stream and returns a sample that differs by that rounding
alone. The CRC covers the stream, the key, the prior, the σ grid and the model's `fingerprint`
(its definition and weights): a different model is rejected.

With the exact denoiser the expected total KL tends to I(X; X_σtarget) as the
grid is refined (`progressive_expected_kl_bits` gives it for a Gaussian).
"""

import math
import numbers
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax.rcc._bitstream import Header, check_crc, pack, unpack
from rdp_jax.rcc._candidates import SEGMENT, derive
from rdp_jax.rcc._index_model import index_bits
from rdp_jax.rcc._layout import DEFAULT_CANDIDATES
from rdp_jax.rcc._layout_code import extra_table, layout_symbols
from rdp_jax.rcc._message import regenerate, simulate
from rdp_jax.rcc._validate import (
    canonical_bytes,
    coding_args,
    common_dtype,
    key_words,
    progress_callback,
    vector,
)
from rdp_jax.scores import ScoreSource, fingerprint


class ProgressiveInfo(NamedTuple):
    """What `progressive_encode(..., return_info=True)` reports besides the bytes.

    - `sample`: x at σ_target, exactly what `progressive_decode` returns.
    - `step_kl_bits`: the KL(q‖p) of each step in bits, shape `(S,)` (step 0 is the prior step).
    - `step_index_bits`: the ideal codelength of each step's indices under its index law.
    - `step_deficit_bits`: Σ over the step's chunks of KL − log2 w of the chosen candidate.
    - `step_num_chunks`: the chunk count of each step.
    - `step_candidates`: the candidates each step searched, over all its chunks (the encode
      time goes with it).
    - `kl_bits`, `payload_bits`, `header_bits`: totals, as in `EncodeInfo`.
    - `step_bits`: what each step adds to the stream: its header fields (`step_header_bits`),
      its candidate-count exponents', layout's and indices' ideal codelengths; the rest of the
      stream (the magic and version byte, the flags, d when sent, N, CRC, the coder's last
      bits) is shared.
      Compare it with `step_kl_bits`.
    - `step_header_bits`: the ideal codelength of each step's header fields in the range-coded
      block (chunk count, index-law parameters, boost flag, layout parameters): 9–13 bits for
      a step of one chunk, ~20–30 for hundreds.
    """

    sample: Float[Array, " d"]
    step_kl_bits: np.ndarray
    step_index_bits: np.ndarray
    step_deficit_bits: np.ndarray
    step_num_chunks: np.ndarray
    step_candidates: np.ndarray
    kl_bits: float
    payload_bits: int
    header_bits: int
    step_bits: np.ndarray
    step_header_bits: np.ndarray


def _payload_bits(segment, indices, dim: int, num_candidates: int, algorithm: str) -> float:
    """A coded step's exponents', layout's and indices' ideal codelengths."""
    symbols, table = layout_symbols(dim, segment)
    boosted = int(np.count_nonzero(segment.extra))
    extra = extra_table(len(segment.extra), boosted, num_candidates) if boosted else None
    return (
        (table.bits(symbols) if table is not None else 0.0)
        + (extra.bits(segment.extra) if extra is not None else 0.0)
        + _index_bits(segment, indices, num_candidates, algorithm)
    )


def _index_bits(segment, indices, num_candidates: int, algorithm: str) -> float:
    return index_bits(indices, segment.extra, num_candidates, segment.kl_q, segment.sd_q, algorithm)


@eqx.filter_jit
def _denoise(model: ScoreSource, x: Array, sigma: Array) -> Array:
    return model.denoise(x, sigma)


def _grid(sigmas: ArrayLike, dtype, where: str) -> np.ndarray:
    """The σ grid in `dtype`, checked there (a float64 grid may overflow, underflow or tie once
    rounded), with σ² + 1 finite for the default first prior."""
    try:
        grid = np.asarray(sigmas, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `sigmas` must be a 1-D array of numbers.") from None
    with np.errstate(over="ignore", under="ignore"):
        grid = grid.astype(dtype)
    limit = math.sqrt(float(np.finfo(dtype).max)) / 2
    if grid.ndim != 1 or grid.size < 1 or not np.all((grid > 0) & (grid < limit)):
        raise ValueError(
            f"{where}: `sigmas` must be a non-empty 1-D array of σ in (0, {limit:.3g}) in "
            f"{np.dtype(dtype).name}."
        )
    if np.any(np.diff(grid) >= 0):
        raise ValueError(
            f"{where}: `sigmas` must be strictly decreasing (σ_1 > … > σ_target) in "
            f"{np.dtype(dtype).name}."
        )
    return grid


def _check_model(model, dim: int | None, where: str) -> int | None:
    """A score source with `denoise`, whose event (when it declares one) is d dimensions;
    returns the event's size, or None."""
    if not callable(getattr(model, "denoise", None)):
        raise ValueError(f"{where}: `model` must be a score source (with `denoise`).")
    event = getattr(model, "event_shape", None)
    model_dim = None if event is None else math.prod(event)
    if dim is not None and model_dim is not None and model_dim != dim:
        raise ValueError(
            f"{where}: `model`'s event shape {tuple(event)} is not the message's {dim} dimensions."
        )
    return model_dim


def _given_dim(prior, where: str) -> int:
    """d, from the prior the caller gives (the stream then does not carry it)."""
    shape = np.shape(prior)
    if len(shape) != 1 or not shape[0]:
        raise ValueError(f"{where}: the prior must be a non-empty 1-D array; got shape {shape}.")
    return shape[0]


def _prior(prior_mean, prior_std, sigma_1, dim, dtype, where):
    """The first step's p; by default N(0, 1 + σ_1²), the marginal of unit-variance data."""
    mean = np.zeros(dim) if prior_mean is None else prior_mean
    std = np.full(dim, math.sqrt(1.0 + float(sigma_1) ** 2)) if prior_std is None else prior_std
    return (
        vector(mean, "prior_mean", dtype, dim, where),
        vector(std, "prior_std", dtype, dim, where, positive=True),
    )


def _reverse_step(model, x_n, sigma_n, sigma_next) -> tuple[np.ndarray, np.ndarray]:
    """p of step n → n+1: mean D + r (x_n − D), std σ_{n+1} √(1 − r), in NumPy for determinism.

    σ_n goes to the jitted denoiser as a 0-d NumPy array, traced like a device array (a NumPy
    scalar would be static, one compilation per σ)."""
    dtype = x_n.dtype
    r = (sigma_next / sigma_n) ** 2
    denoised = np.asarray(_denoise(model, x_n, np.asarray(sigma_n, dtype)))
    mean = denoised + r * (x_n - denoised)
    std = np.full(x_n.shape, sigma_next * np.sqrt(1 - r), dtype=dtype)
    return mean.astype(dtype), std


def _context(words, prior_mean, prior_std, grid, model) -> bytes:
    """What the decoder must hold identically to the encoder; it seeds the stream's CRC."""
    return canonical_bytes(words, prior_mean, prior_std, grid) + fingerprint(model)


def _step_progress(progress: Callable[[float], None], step: int, steps: int):
    """Step `step`'s search fraction f, reported as (step + f)/steps of the whole stream."""
    return lambda fraction: progress((step + fraction) / steps)


def progressive_encode(
    key: PRNGKeyArray,
    x: Float[ArrayLike, " d"],
    sigmas: Float[ArrayLike, " s"],
    model: ScoreSource,
    *,
    prior_mean: Float[ArrayLike, " d"] | None = None,
    prior_std: Float[ArrayLike, " d"] | None = None,
    algorithm: str = "pfr",
    chunk_bits: float = 8.0,
    num_candidates: int | None = None,
    return_info: bool = False,
    progress: Callable[[float], None] | None = None,
) -> bytes | tuple[bytes, ProgressiveInfo]:
    """Sends x at noise level σ_target = `sigmas[-1]` through the grid `sigmas` (DiffC).

    **Arguments:**

    - `key`: the key shared with the decoder.
    - `x`: the clean data, 1-D of length d (float32 or float64).
    - `sigmas`: the VE noise grid σ_1 > … > σ_S, S ≥ 1.
    - `model`: a score source (`rdp_jax.scores`) whose `denoise` takes one (d,) sample; the
      decoder must use the same one.
    - `prior_mean`, `prior_std`: the first step's p = N(μ, diag σ²); default N(0, 1 + σ_1²).
    - `algorithm`, `chunk_bits`: as `encode`, for every step.
    - `num_candidates`: None (the default) gives every PFR step the bias-budget layout of
      `encode` (KL-sized chunks, counts 2^18–2^22 not sent), each step spending 1/√S of its own
      budget: by Cauchy–Schwarz, Σ_s (1/√S) sd_s ≤ √(Σ_s Var ln w_s), so the whole trajectory's
      ln w, whose steps are uncorrelated, is biased by at most `BIAS_SE` of its standard error,
      however the variance falls over the steps (maths §12). An integer N is the base count of
      every chunk of every step (`encode`'s layout for a given N: N, or N·2^e for the chunks
      whose risk needs more, recorded in the stream), as is ORC's default, 2^18.
    - `return_info`: also return a `ProgressiveInfo`.
    - `progress`: None, or a callable told the fraction done, in (0, 1], as `encode`'s; step s
      of S spans (s/S, (s + 1)/S] (a step's search is planned only once the previous step's
      sample is known, so the steps cannot be weighed by their work in advance).

    **Returns:** the stream as `bytes`; with `return_info`, `(bytes, info)`.

    **Raises:** `ValueError` naming the argument for bad shapes or values.
    """
    where = "progressive_encode"
    algorithm, chunk_bits, num_candidates = coding_args(
        algorithm, chunk_bits, num_candidates, where
    )
    if num_candidates is None and algorithm == "orc":
        num_candidates = DEFAULT_CANDIDATES  # ORC's index is a rank among N: one N per stream
    progress = progress_callback(progress, where)
    words = key_words(key, where)
    dtype = common_dtype(x, where=where, names=("x",))
    x = vector(x, "x", dtype, None, where)
    _check_model(model, x.shape[0], where)
    grid = _grid(sigmas, dtype, where)
    budget_share = 1.0 / math.sqrt(grid.size)
    p_mean, p_std = _prior(prior_mean, prior_std, grid[0], x.shape[0], dtype, where)
    first = (p_mean, p_std)

    messages, x_n = [], None
    for step, sigma in enumerate(grid):
        if step == 0:
            q_mean, q_std = x, np.full_like(x, sigma)
        else:
            r = (sigma / grid[step - 1]) ** 2
            q_mean = x + r * (x_n - x)
            q_std = np.full_like(x, sigma * np.sqrt(1 - r))
            p_mean, p_std = _reverse_step(model, x_n, grid[step - 1], sigma)
        message = simulate(
            derive(words, step, SEGMENT),
            q_mean,
            q_std,
            p_mean,
            p_std,
            chunk_bits,
            num_candidates,
            algorithm,
            budget_share,
            None if progress is None else _step_progress(progress, step, grid.size),
        )
        messages.append(message)
        x_n = message.sample

    segments = tuple(m.segment for m in messages)
    dim = x.shape[0]
    # The header's N spans every step's counts (a budget layout's are not sent).
    num_candidates = max(m.num_candidates for m in messages)
    header = Header(jnp.dtype(dtype).name, algorithm, True, dim, num_candidates, segments)
    context = _context(words, *first, grid, model)
    # d is sent only when the decoder has no prior to take it from.
    send_dim = prior_mean is None and prior_std is None
    packed = pack(header, [m.indices for m in messages], context, send_dim)
    if not return_info:
        return packed.data
    coded = packed.segments
    return packed.data, ProgressiveInfo(
        sample=jnp.asarray(x_n),
        step_kl_bits=np.array([m.kl_bits.sum() for m in messages]),
        step_index_bits=np.array(
            [
                _index_bits(s, m.indices, num_candidates, algorithm)
                for s, m in zip(coded, messages, strict=True)
            ]
        ),
        step_deficit_bits=np.array(
            [np.sum(m.chunk_kl_bits - m.chunk_log2_weight) for m in messages]
        ),
        step_num_chunks=np.array([len(m.segment.counts) for m in messages]),
        step_candidates=np.array([int(np.sum(m.chunk_candidates)) for m in messages]),
        kl_bits=float(sum(m.kl_bits.sum() for m in messages)),
        payload_bits=packed.payload_bits,
        header_bits=packed.header_bits,
        step_bits=packed.step_header_bits
        + np.array(
            [
                _payload_bits(s, m.indices, dim, num_candidates, algorithm)
                for s, m in zip(coded, messages, strict=True)
            ]
        ),
        step_header_bits=packed.step_header_bits,
    )


def progressive_decode(
    key: PRNGKeyArray,
    data: bytes,
    sigmas: Float[ArrayLike, " s"],
    model: ScoreSource,
    *,
    prior_mean: Float[ArrayLike, " d"] | None = None,
    prior_std: Float[ArrayLike, " d"] | None = None,
) -> Float[Array, " d"]:
    """Rebuilds x at σ_target, step by step, from the stream, key, grid and model.

    The result is bit-identical to `ProgressiveInfo.sample` when the model's outputs are (the
    same computation on the same kind of machine); a model that rounds differently gives a
    sample that differs by its rounding alone. It can go straight to
    `rdp_jax.decode(x_t, sigmas[-1], rho, model)`.

    **Arguments:** as `progressive_encode`; `data` is its output.

    **Returns:** x at σ_target, shape `(d,)`, in the dtype recorded in `data`.

    **Raises:** `ValueError` for bytes that are not an rdp-jax stream, a corrupted or truncated
    stream, or one encoded with another key, grid, prior or model (the CRC covers the model's
    `fingerprint`), and for bad arguments.
    """
    prior = {"prior_mean": prior_mean, "prior_std": prior_std}
    return jnp.asarray(progressive_host_decode(key, data, sigmas, model, **prior))


def progressive_host_decode(
    key: PRNGKeyArray,
    data: bytes,
    sigmas: Float[ArrayLike, " s"],
    model: ScoreSource,
    *,
    prior_mean: Float[ArrayLike, " d"] | None = None,
    prior_std: Float[ArrayLike, " d"] | None = None,
) -> Float[np.ndarray, " d"]:
    """`progressive_decode` on the host: the same checks and the same bits, as a NumPy array
    (for callers that go on in NumPy, as `_codec.host_decode`).

    **Arguments**, **Raises:** as `progressive_decode`.

    **Returns:** x at σ_target, shape `(d,)`, a NumPy array of the dtype recorded in `data`.
    """
    where = "progressive_decode"
    steps = _grid(sigmas, np.float64, where).size
    given = prior_mean if prior_mean is not None else prior_std
    dim = None if given is None else _given_dim(given, where)
    model_dim = _check_model(model, dim, where)
    header, indices = unpack(data, where, dim=dim, steps=steps, model_dim=model_dim)
    words = key_words(key, where)
    if header.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(f"{where}: `data` holds a float64 sample; enable jax_enable_x64.")
    grid = _grid(sigmas, header.dtype, where)
    p_mean, p_std = _prior(prior_mean, prior_std, grid[0], header.dim, header.dtype, where)
    first = (p_mean, p_std)
    inputs = "`key`, `sigmas`, `model`, `prior_mean` or `prior_std`"
    check_crc(data, header, _context(words, *first, grid, model), where, inputs)
    x_n = None
    for step, (segment, chosen) in enumerate(zip(header.segments, indices, strict=True)):
        if step:
            p_mean, p_std = _reverse_step(model, x_n, grid[step - 1], grid[step])
        x_n = regenerate(derive(words, step, SEGMENT), segment.counts, chosen, p_mean, p_std)
    return x_n


def progressive_expected_kl_bits(
    variance: Float[ArrayLike, " d"], sigmas: Float[ArrayLike, " s"]
) -> Float[np.ndarray, " s"]:
    """E[KL] of each step for X ~ N(μ, diag v), the exact denoiser and the exact first prior.

    Step 0 sends X_{σ_1} against its marginal N(μ, v + σ_1²): E KL = I(X; X_{σ_1}) =
    ½ Σ log2(1 + v/σ_1²). Step n → n+1 has KL = (1−r) ‖x − D‖² / (2 σ_{n+1}²) and
    E‖x − D(X_{σ_n})‖² = Σ v σ_n² / (v + σ_n²), the posterior variance (maths §10). The total
    tends to I(X; X_σtarget) = ½ Σ log2(1 + v/σ_target²) as the grid is refined.

    **Returns:** the expected KL of each step in bits, shape `(S,)`.

    **Raises:** `ValueError` naming `variance` or `sigmas` when not a non-empty 1-D array of
    finite values > 0.
    """
    where = "progressive_expected_kl_bits"
    v = np.asarray(variance, dtype=np.float64)
    s = np.asarray(sigmas, dtype=np.float64)
    for name, x in (("variance", v), ("sigmas", s)):
        if x.ndim != 1 or x.size < 1 or not np.all(np.isfinite(x) & (x > 0)):
            raise ValueError(
                f"{where}: `{name}` must be a non-empty 1-D array of finite values > 0."
            )
    first = 0.5 * np.sum(np.log2(1.0 + v / s[0] ** 2))
    r = (s[1:] / s[:-1]) ** 2
    posterior = np.sum(v[None, :] * s[:-1, None] ** 2 / (v[None, :] + s[:-1, None] ** 2), axis=1)
    steps = (1.0 - r) * posterior / (2.0 * s[1:] ** 2) / math.log(2.0)
    return np.concatenate([[first], steps])


# What a step costs beyond its KL, for choosing a grid: its header fields (format v7,
# `ProgressiveInfo.step_header_bits`: ~12 bits for one chunk, 4 more per doubling of C, as
# measured), and, per chunk, the index overhead of maths §10, ½ log2(2πe(2 KL + π²/6)) − γ/ln 2
# bits for a chunk of KL nats (at least 1 bit).
_STEP_HEADER_BITS = 12.0
_STEP_HEADER_BITS_PER_DOUBLING = 4.0


def expected_step_bits(step_kl_bits: np.ndarray, chunk_bits: float) -> np.ndarray:
    """Each step's expected bits: its KL, C = ⌈KL/k⌉ chunks' index overhead and its header."""
    chunks = np.maximum(1.0, np.ceil(step_kl_bits / chunk_bits))
    kl = step_kl_bits / chunks * math.log(2.0)
    overhead = 0.5 * np.log2(2 * math.pi * math.e * (2 * kl + math.pi**2 / 6))
    overhead = np.maximum(overhead - np.euler_gamma / math.log(2.0), 1.0)
    header = _STEP_HEADER_BITS + _STEP_HEADER_BITS_PER_DOUBLING * np.log2(chunks)
    return step_kl_bits + chunks * overhead + header


def progressive_grid(
    variance: Float[ArrayLike, " d"],
    sigma_target: float,
    *,
    sigma_max: float | None = None,
    max_steps: int = 64,
    chunk_bits: float = 8.0,
) -> Float[np.ndarray, " s"]:
    """The geometric σ grid from `sigma_max` to `sigma_target` whose expected stream is shortest,
    for data X ~ N(μ, diag v) coded with the exact denoiser (a Gaussian model, or the Gaussian
    fit of a real one).

    More steps bring the total KL down to I(X; X_σtarget) (the excess falls like 1/S, maths
    §10), but every step pays a header and at least one chunk's index overhead. The expected
    bits of a grid are Σ_s E[KL_s] (`progressive_expected_kl_bits`) plus, per step, its header
    fields, 12 + 4 log2 C_s bits (format v7, as measured: 10–13 bits for a step of one chunk),
    and C_s = ⌈E[KL_s]/k⌉ chunks of overhead ½ log2(2πe(2 KL_c + π²/6)) − γ/ln 2 bits each (at
    least 1; KL_c the mean chunk KL in nats); the grid of S = 1, …, `max_steps` steps that
    minimises it is returned. The stream's fixed ~45 bits (the magic byte, CRC32, dtype,
    algorithm, N) are the same for every grid; S is not sent (the decoder holds the grid), nor
    d when the decoder is given the prior. With the exact denoiser and the exact first prior
    N(μ, v + σ_1²) one step is often best: it costs I(X; X_σtarget) plus one step's overhead,
    and more steps only add excess KL and headers (a 64-dim source with v = e^{N(0, 1)},
    σ_target = 0.3: 1 step, a stream of 1.96 × I measured, 2.56 × I in format v6).

    **Arguments:**

    - `variance`: the data's per-dimension variances v > 0, 1-D.
    - `sigma_target`: the last σ, > 0.
    - `sigma_max`: the first σ, > `sigma_target`; default 20 √max v (the first step then
      costs I(X; X_σ1) ≤ d/800 · log2 e bits).
    - `max_steps`: the most steps to consider, ≥ 1.
    - `chunk_bits`: the k that `progressive_encode` will use.

    **Returns:** the grid σ_1 > … > σ_S = `sigma_target`, float64, for `progressive_encode`.

    **Raises:** `ValueError` naming the argument for bad values.
    """
    where = "progressive_grid"
    v = np.asarray(variance, dtype=np.float64)
    if v.ndim != 1 or v.size < 1 or not np.all(np.isfinite(v) & (v > 0)):
        raise ValueError(f"{where}: `variance` must be a non-empty 1-D array of finite v > 0.")
    _, chunk_bits, _ = coding_args("pfr", chunk_bits, None, where)
    if not (isinstance(sigma_target, numbers.Real) and 0 < sigma_target < math.inf):
        raise ValueError(f"{where}: `sigma_target` must be finite and > 0; got {sigma_target!r}.")
    sigma_target = float(sigma_target)
    top = 20.0 * math.sqrt(float(v.max())) if sigma_max is None else float(sigma_max)
    if not (math.isfinite(top) and top > sigma_target):
        raise ValueError(f"{where}: `sigma_max` must be finite and > `sigma_target`; got {top!r}.")
    if not (isinstance(max_steps, numbers.Integral) and max_steps >= 1):
        raise ValueError(f"{where}: `max_steps` must be an integer >= 1; got {max_steps!r}.")
    grids = [np.array([sigma_target])] + [
        np.geomspace(top, sigma_target, steps) for steps in range(2, max_steps + 1)
    ]
    costs = [
        float(expected_step_bits(progressive_expected_kl_bits(v, g), chunk_bits).sum())
        for g in grids
    ]
    return grids[int(np.argmin(costs))]
