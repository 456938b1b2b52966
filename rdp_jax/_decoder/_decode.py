"""`decode`: the score-scaled PF-ODE decoder of the seed paper, batched and compiled once."""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from rdp_jax._decoder._baselines import reverse_sde_sample
from rdp_jax._decoder._diffrax import diffrax_decode
from rdp_jax._decoder._exponential import MAX_ORDER, exponential_decode
from rdp_jax._validate import as_key, check_real, is_whole
from rdp_jax.scores import ScoreSource
from theory._validate import error_if

EXPONENTIAL = {f"exp{k}": k for k in range(1, MAX_ORDER + 1)}
METHODS = ("tsit5", "heun", "euler", *EXPONENTIAL)
# The best fixed-budget method (benchmarks/decoder.py) and its default last positive σ.
DEFAULT_FIXED = "exp4"
_SIGMA_MIN = {"tsit5": 1e-5, "heun": 2e-3, "euler": 2e-3, **dict.fromkeys(EXPONENTIAL, 2e-2)}


class DecodeInfo(NamedTuple):
    """What `decode(..., return_info=True)` reports besides x̂.

    - `nfe`: denoiser/score evaluations spent on each sample. A scalar for the fixed-budget
      methods, where every sample costs the same; for the adaptive `tsit5` one count per
      sample, shape `(batch,)` (or `()` for one observation), since each takes its own steps.
    - `method`: the integrator used.
    """

    nfe: Int[Array, "*batch"]
    method: str


def _event_shape(model: ScoreSource, y: Array, where: str) -> tuple[int, ...]:
    event = getattr(model, "event_shape", None)
    if event is None:
        raise ValueError(f"{where}: `model` must know its `event_shape` to tell a batch apart.")
    event = tuple(event)
    if y.shape != event and y.shape[1:] != event:
        raise ValueError(
            f"{where}: `y` must have shape {event} (one sample) or (batch, *{event}); "
            f"got {y.shape}."
        )
    return event


@jax.jit
def _invalid(batch: Array, sigma: Array, kappa: Array, kappa_lo: float, kappa_hi: float) -> Array:
    """Flags for non-finite y, bad σ, non-finite ρ and ρ out of range, in one compiled pass."""
    return jnp.stack(
        [
            ~jnp.all(jnp.isfinite(batch)),
            ~jnp.all(jnp.isfinite(sigma) & (sigma > 0)),
            ~jnp.all(jnp.isfinite(kappa)),
            jnp.any((kappa < kappa_lo) | (kappa > kappa_hi)),
        ]
    )


def _validate(batch, sigma, kappa, where, allow_any_rho) -> tuple[Array, Array, Array]:
    """Raises `ValueError` on bad values (one device sync), or attaches `error_if` when traced."""
    messages = (
        f"{where}: `y` must be finite.",
        f"{where}: `sigma` must be finite and > 0.",
        f"{where}: `rho` must be finite.",
        f"{where}: `rho` must lie in [0, 1]; pass allow_any_rho=True to go outside.",
    )
    lo, hi = (-jnp.inf, jnp.inf) if allow_any_rho else (1.0, 2.0)
    flags = _invalid(batch, sigma, kappa, lo, hi)
    if isinstance(flags, jax.core.Tracer):
        batch = error_if(batch, flags[0], messages[0])
        sigma = error_if(sigma, flags[1], messages[1])
        kappa = error_if(kappa, flags[2], messages[2])
        return batch, sigma, error_if(kappa, flags[3], messages[3])
    for flag, message in zip(np.asarray(flags), messages, strict=True):
        if flag:
            raise ValueError(message)
    return batch, sigma, kappa


def _prepare(
    y: ArrayLike, sigma: ArrayLike, model: ScoreSource, where: str
) -> tuple[Array, Array, tuple[int, ...], bool]:
    """Checks shapes; returns (batch, σ scalar or per sample, event shape, was one sample)."""
    y = jnp.asarray(y)
    check_real(y.dtype, "y", where)
    dtype = y.dtype if jnp.issubdtype(y.dtype, jnp.floating) else jnp.result_type(float)
    # A strong dtype: a weakly typed y (jnp.full(..., 1.0)) would otherwise retrace.
    y = jnp.asarray(y, dtype=dtype)
    event = _event_shape(model, y, where)
    single = y.shape == event
    batch = y[None] if single else y
    if batch.shape[0] == 0:
        raise ValueError(f"{where}: `y` is an empty batch (shape {y.shape}).")
    sigma = jnp.asarray(sigma)
    check_real(sigma.dtype, "sigma", where)
    sigma = sigma.astype(y.dtype)
    if sigma.ndim > 1 or (sigma.ndim == 1 and sigma.shape[0] != batch.shape[0]):
        raise ValueError(f"{where}: `sigma` must be a scalar or one per sample; got {sigma.shape}.")
    return batch, sigma, event, single


def _positive(value, name: str, where: str, zero: bool = False) -> float:
    """A finite float > 0 (≥ 0 with `zero`), checked eagerly: it steers the solver's grid."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `{name}` must be a number; got {value!r}.") from None
    if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{where}: `{name}` must be finite and {bound}; got {value!r}.")
    return value


def _resolve_method(method: str | None, num_steps: int | None, where: str) -> tuple[str, int]:
    if method is None:
        method = "tsit5" if num_steps is None else DEFAULT_FIXED
    if method not in METHODS:
        raise ValueError(f"{where}: unknown `method` {method!r}; choose one of {METHODS}.")
    if method == "tsit5":
        if num_steps is not None:
            raise ValueError(f"{where}: `num_steps` does not apply to the adaptive 'tsit5'.")
        return method, 0
    if num_steps is None:
        num_steps = 20
    minimum = {"heun": 3, "euler": 2}.get(method, 2)
    if int(num_steps) != num_steps or num_steps < minimum:
        raise ValueError(f"{where}: `num_steps` must be an integer >= {minimum} for {method!r}.")
    return method, int(num_steps)


def _check_model_dtype(model: ScoreSource, y: Array, sigma: Array, where: str) -> None:
    """At trace time: the model must denoise `y` in `y`'s own dtype.

    A float32 `y` through a float64 model would promote inside the solver's loop, whose carry
    then changes dtype (a `TypeError` deep in `lax.scan` or diffrax). Rejected up front, in
    every method and baseline alike, rather than cast silently either way.
    """
    # The model goes in as an argument: a bound method closing over traced weights would be
    # hashed and compared by jax's trace cache, which cannot compare tracers (NNX models).
    out = eqx.filter_eval_shape(type(model).denoise, model, y[0], sigma.reshape(-1)[0])
    if out.dtype != y.dtype:
        raise ValueError(
            f"{where}: `y` is {y.dtype} but `model` denoises it in {out.dtype}; give both the "
            f"same dtype (cast `y`, or build the model from {y.dtype} parameters)."
        )


@eqx.filter_jit
def _decode_batch(model, y, sigma, kappa, method, num_steps, sigma_min, rtol, atol, schedule):
    _check_model_dtype(model, y, sigma, "decode")
    if method in EXPONENTIAL:
        # The whole batch at once: the step coefficients depend on σ only, not on the sample.
        x_hat = exponential_decode(
            model,
            y,
            sigma,
            kappa,
            num_steps=num_steps,
            order=EXPONENTIAL[method],
            sigma_min=sigma_min,
        )
        return x_hat, jnp.asarray(num_steps)

    def one(y_i, sigma_i):
        return diffrax_decode(
            model,
            y_i,
            sigma_i,
            kappa,
            method=method,
            num_steps=num_steps,
            sigma_min=sigma_min,
            rtol=rtol,
            atol=atol,
            max_steps=16384,
            schedule=schedule,
        )

    # A shared σ is not batched: broadcast inside the vmapped solve, a traced scalar σ (decode
    # under the caller's jit) sends XLA's algebraic simplifier into a loop (harmless, but it
    # prints a screenful of errors).
    x_hat, nfe = jax.vmap(one, in_axes=(0, None if sigma.ndim == 0 else 0))(y, sigma)
    # A fixed grid costs every sample the same; only tsit5's adaptive steps differ by sample.
    return x_hat, jnp.broadcast_to(nfe, y.shape[:1]) if method == "tsit5" else nfe.reshape(-1)[0]


def decode(
    y: Float[ArrayLike, "*batch event"],
    sigma: Float[ArrayLike, "*batch"],
    rho: Float[ArrayLike, "..."],
    model: ScoreSource,
    *,
    method: str | None = None,
    num_steps: int | None = None,
    return_info: bool = False,
    sigma_min: float | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    schedule=None,
    allow_any_rho: bool = False,
) -> Float[Array, "*batch event"] | tuple[Float[Array, "*batch event"], DecodeInfo]:
    """Decodes AWGN observations y = x + σn with the score-scaled PF-ODE (Wang, Bi & Zhang 2026).

    Integrates, in VE coordinates from the observation's σ down to 0,

    .. math::
        \\frac{dx}{dσ} = -(1 + ρ)\\, σ\\, ∇\\log p_σ(x) = (1+ρ)\\,\\frac{x - D(x, σ)}{σ}

    (maths §7): ρ = 0 is the probability-flow ODE (perfect perception, for any source), ρ = 1
    lands on the MMSE estimate for a Gaussian source (not for others: on a 1-D Gaussian mixture
    at σ = 1 the ρ = 1 end point misses E[X | Y] by up to 0.6, tests/test_decoder_mixture.py),
    and ρ between them sweeps the distortion-perception tradeoff.

    **Arguments:**

    - `y`: one observation of the model's event shape, or a batch with a leading axis.
    - `sigma`: the noise std, a scalar or one per sample; > 0.
    - `rho`: the score scale, a scalar or an array broadcastable to one sample (per-dimension ρ,
      as `theory.geodesic_rho` gives). Must lie in [0, 1] unless `allow_any_rho`.
    - `model`: a `rdp_jax.scores.ScoreSource` that knows its `event_shape`.
    - `method`: "tsit5" (adaptive reference), "heun", "euler" (fixed-step, EDM grid) or
      "exp1" ... "exp4" (multistep exponential integrators of that order in ln σ; "exp1" is the
      ρ-scaled DDIM). Default: "tsit5" without `num_steps`, else "exp4", the most accurate
      per evaluation (benchmarks/decoder.py).
    - `num_steps`: the evaluation budget per sample of a fixed-step method (default 20).
    - `return_info`: also return a `DecodeInfo` with the evaluations spent.
    - `sigma_min`: the last positive noise level before the final step to σ = 0, > 0 (default per
      method: 1e-5 for tsit5, 2e-3 for EDM Heun/Euler, 2e-2 for exp*, which extrapolates the
      final step).
    - `rtol`, `atol`: the adaptive controller's tolerances (tsit5 only), finite, ≥ 0, not both 0.
    - `schedule`: a VP schedule (`rdp_jax.VPLinear`, `VPCosine`) to integrate in its time instead
      of σ (tsit5/heun/euler); the decoded output is the same up to solver error.
    - `allow_any_rho`: permit ρ outside [0, 1], where both D and P get worse (maths §7).

    **Returns:** x̂ with the shape and dtype of `y`; with `return_info`, `(x̂, info)`. In
    float32 every method and schedule matches the same method in float64 to float32 round-off,
    within 5 eps32 (6e-7) of the output scale at 20 NFE and with tsit5 alike
    (tests/test_decoder_float32.py), so a fixed budget's own discretisation error (exp4 at 20
    NFE: ~1e-4 relative) dominates. tsit5's default `rtol` is below float32's resolution: its
    controller then rejects many steps and spends up to ~6x the float64 NFE.

    **Raises:** `ValueError` naming the argument for a bad shape, σ ≤ 0, non-finite `y`, ρ out
    of range, an unknown method or a bad budget; under `jit`, value checks raise at run time.
    """
    where = "decode"
    method, num_steps = _resolve_method(method, num_steps, where)
    if schedule is not None and method in EXPONENTIAL:
        raise ValueError(f"{where}: `schedule` applies to tsit5/heun/euler; {method!r} is VE-only.")
    batch, sigma, event, single = _prepare(y, sigma, model, where)
    rho = jnp.asarray(rho)
    check_real(rho.dtype, "rho", where)
    rho = rho.astype(batch.dtype)
    try:
        kappa = jnp.broadcast_to(1 + rho, event)
    except ValueError:
        raise ValueError(
            f"{where}: `rho` of shape {rho.shape} does not broadcast to one sample {event}."
        ) from None
    batch, sigma, kappa = _validate(batch, sigma, kappa, where, allow_any_rho)
    sigma_min = (
        _SIGMA_MIN[method] if sigma_min is None else _positive(sigma_min, "sigma_min", where)
    )
    if method == "tsit5":
        rtol, atol = (
            _positive(t, name, where, zero=True) for t, name in ((rtol, "rtol"), (atol, "atol"))
        )
        if rtol == atol == 0:
            raise ValueError(f"{where}: `rtol` and `atol` cannot both be 0.")
    x_hat, nfe = _decode_batch(
        model, batch, sigma, kappa, method, num_steps, sigma_min, rtol, atol, schedule
    )
    if single:
        x_hat = x_hat[0]
        nfe = nfe[0] if method == "tsit5" else nfe
    return (x_hat, DecodeInfo(nfe, method)) if return_info else x_hat


@eqx.filter_jit
def _tweedie_batch(model, y, sigma):
    _check_model_dtype(model, y, sigma, "tweedie_denoise")
    return jax.vmap(model.denoise)(y, jnp.broadcast_to(sigma, y.shape[:1]))


def tweedie_denoise(
    y: Float[ArrayLike, "*batch event"], sigma: Float[ArrayLike, "*batch"], model: ScoreSource
) -> Float[Array, "*batch event"]:
    """The one-step MMSE estimate E[X | Y = y] = y + σ² ∇log p_σ(y) (Tweedie's formula).

    The seed paper's MMSE baseline; for a Gaussian source `decode` with ρ = 1 reaches the same
    point by integration (Lemma 1), for other sources it does not.

    **Arguments / Raises:** `y`, `sigma`, `model` as `decode`.

    **Returns:** the posterior mean, shaped like `y`.
    """
    batch, sigma, event, single = _prepare(y, sigma, model, "tweedie_denoise")
    batch, sigma, _ = _validate(
        batch, sigma, jnp.ones(event, batch.dtype), "tweedie_denoise", False
    )
    x_hat = _tweedie_batch(model, batch, sigma)
    return x_hat[0] if single else x_hat


@eqx.filter_jit
def _posterior_batch(model, keys, y, sigma, num_steps, sigma_min):
    _check_model_dtype(model, y, sigma, "posterior_sample")

    def one(key, y_i, sigma_i):
        return reverse_sde_sample(
            model, key, y_i, sigma_i, num_steps=num_steps, sigma_min=sigma_min
        )

    return jax.vmap(one)(keys, y, jnp.broadcast_to(sigma, y.shape[:1]))


def posterior_sample(
    key: PRNGKeyArray,
    y: Float[ArrayLike, "*batch event"],
    sigma: Float[ArrayLike, "*batch"],
    model: ScoreSource,
    *,
    num_steps: int = 200,
    sigma_min: float = 2e-3,
) -> Float[Array, "*batch event"]:
    """Approximate posterior samples X ~ p(x | y) by the reverse-SDE Euler-Maruyama sampler.

    The seed paper's perfect-realism baseline: MSE 2D*, against D(0) < 2D* for the ρ = 0
    decoder (maths §6).

    **Arguments:**

    - `key`: a `jax.random.key`; each sample gets its own split of it.
    - `y`, `sigma`, `model`: as `decode`.
    - `num_steps`: evaluations of the model: `num_steps` − 1 Euler-Maruyama steps, then the
      final Tweedie step.
    - `sigma_min`: the last noise level before the final Tweedie step.

    **Returns:** one sample per observation, shaped like `y`.

    **Raises:** as `decode`, and `ValueError` for `num_steps` < 2 or a `key` that is not one
    PRNG key.
    """
    where = "posterior_sample"
    if not is_whole(num_steps) or num_steps < 2:
        raise ValueError(f"{where}: `num_steps` must be an integer >= 2; got {num_steps!r}.")
    batch, sigma, event, single = _prepare(y, sigma, model, where)
    batch, sigma, _ = _validate(batch, sigma, jnp.ones(event, batch.dtype), where, False)
    keys = jax.random.split(as_key(key, where), batch.shape[0])
    sigma_min = _positive(sigma_min, "sigma_min", where)
    x = _posterior_batch(model, keys, batch, sigma, int(num_steps), sigma_min)
    return x[0] if single else x
