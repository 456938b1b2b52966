"""`train`: denoising score matching with EDM's σ law and weighting, AdamW, EMA, data-parallel."""

import functools
import hashlib
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, ArrayLike

from rdp_jax.models._edm import EDMDenoiser

_CHECKPOINT_FORMAT = "rdp-jax training checkpoint"


class TrainResult(NamedTuple):
    """What `train` returns.

    - `model`: the `EDMDenoiser` with the EMA weights (the one to use and ship).
    - `raw_model`: the same with the last optimiser iterate.
    - `losses`: the training loss of every step so far (resumed runs included), float32.
    - `seconds`: wall time of this call's steps (compilation included).
    """

    model: EDMDenoiser
    raw_model: EDMDenoiser
    losses: np.ndarray
    seconds: float


class _Settings(NamedTuple):
    batch_size: int
    learning_rate: float
    warmup_steps: int
    weight_decay: float
    ema_decay: float
    p_mean: float
    p_std: float


def _optimizer(settings: _Settings):
    warmup = optax.linear_schedule(0.0, settings.learning_rate, max(settings.warmup_steps, 1))
    return optax.chain(
        optax.clip_by_global_norm(1.0), optax.adamw(warmup, weight_decay=settings.weight_decay)
    )


@functools.cache
def _step_function(graphdef, settings: _Settings, mesh: Mesh):
    """The jitted training step of one network structure, settings and mesh; cached, so that
    repeated or resumed runs in one process compile it once."""
    optimizer = _optimizer(settings)
    split = NamedSharding(mesh, PartitionSpec("data"))
    b = settings.batch_size

    def loss_fn(params, rest, x, sigma, x0):
        out, target = nnx.merge(graphdef, params, rest).network_and_target(x, sigma, x0)
        return jnp.mean((out - target) ** 2)

    @jax.jit
    def step(state, rest, data, key_data, k):
        params, opt_state, ema = state
        key = jax.random.fold_in(jax.random.wrap_key_data(key_data), k)
        key_index, key_sigma, key_noise = jax.random.split(key, 3)
        index = jax.random.randint(key_index, (b,), 0, data.shape[0], jnp.int32)
        x0 = jax.lax.with_sharding_constraint(data[index], split)
        log_sigma = settings.p_mean + settings.p_std * jax.random.normal(
            key_sigma, (b,), jnp.float32
        )
        sigma = jax.lax.with_sharding_constraint(jnp.exp(log_sigma), split)
        noise = jax.lax.with_sharding_constraint(
            jax.random.normal(key_noise, x0.shape, jnp.float32), split
        )
        x = x0 + sigma.reshape((b,) + (1,) * (x0.ndim - 1)) * noise
        loss, grads = jax.value_and_grad(loss_fn)(params, rest, x, sigma, x0)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        decay = jnp.minimum(settings.ema_decay, (1.0 + k) / (10.0 + k)).astype(jnp.float32)
        ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
        return (params, opt_state, ema), loss

    return step


def _check_number(value, name: str, *, integer: bool, sign: str | None = "positive") -> None:
    """`value` must be a finite int (`integer`) or real number, and `sign` ("positive",
    "non-negative", or None for any)."""
    real = int | np.integer if integer else int | float | np.integer | np.floating
    ok = isinstance(value, real) and not isinstance(value, bool | np.bool_)
    if (
        not ok
        or not math.isfinite(value)
        or (sign == "positive" and value <= 0)
        or (sign == "non-negative" and value < 0)
    ):
        kind = "int" if integer else "number"
        wanted = f"a {sign} {kind}" if sign else f"a finite {kind}"
        raise ValueError(f"train: `{name}` must be {wanted}, got {value!r}.")


def _state_digest(rest) -> str:
    """A digest of the model's non-trained state (the data's μ and σ_data, the noise
    embedding's frequencies): a checkpoint resumes only the model it was written for."""
    digest = hashlib.blake2b(digest_size=16)
    for leaf in jax.tree.leaves(rest):
        leaf = np.asarray(leaf)
        digest.update(leaf.dtype.str.encode() + repr(leaf.shape).encode() + leaf.tobytes())
    return digest.hexdigest()


def train(
    model: EDMDenoiser,
    data: ArrayLike,
    *,
    steps: int,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    warmup_steps: int = 200,
    weight_decay: float = 1e-4,
    ema_decay: float = 0.999,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1000,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
) -> TrainResult:
    """Trains `model` by denoising score matching (Karras et al. 2022, eqs. 2, 8; maths §14).

    Each step draws `batch_size` training samples x₀ (with replacement), ln σ ~ N(p_mean,
    p_std²) and x = x₀ + σε, and minimises E ‖F − target‖², which is EDM's weighted loss
    λ(σ)‖D(x, σ) − x₀‖² with λ = 1/c_out². AdamW with a linear warm-up and global-norm clipping
    at 1; the returned model holds an exponential moving average of the weights whose decay
    ramps up as min(ema_decay, (1 + k)/(10 + k)) at step k.

    The step is one `jax.jit` over a `jax.sharding.Mesh` of all local devices: the batch is split
    over them and the weights replicated, so the result equals the one-device run up to the
    order of float additions. Every random draw of step k comes from `fold_in(key(seed), k)`, so
    a run is deterministic, and a run resumed from its checkpoint repeats the same steps.

    **Arguments:**

    - `model`: an `EDMDenoiser`; its weights are the starting point and are not modified.
    - `data`: training samples, shape `(n, *model.event_shape)`.
    - `steps`: the total number of optimiser steps (a resumed run continues up to it).
    - `batch_size`: samples per step, a multiple of the local device count.
    - `learning_rate`, `warmup_steps`, `weight_decay`: AdamW's peak rate, its linear warm-up
      length and the decoupled weight decay.
    - `ema_decay`: the EMA's final decay per step.
    - `p_mean`, `p_std`: the log-normal σ law (EDM's -1.2 and 1.2 for images in [-1, 1]).
    - `seed`: the seed of the batches and noises.
    - `checkpoint`: a file path; if it exists the run resumes from it (it must be a
      checkpoint of the same model, data size and settings), and it is written every
      `checkpoint_every` steps and at the end.
    - `progress`: show a progress bar with the running loss (tqdm).
    - `devices`: the devices of the mesh (default: all local devices; on a CPU, set
      `JAX_NUM_CPU_DEVICES` before jax starts to have one per core).

    **Returns:** a `TrainResult`.

    **Raises:** `ValueError` naming the argument: `data` of the wrong shape or not finite,
    non-positive counts or rates, a negative `warmup_steps` or `weight_decay`, a non-finite
    `p_mean`, a non-integer `seed`, a `batch_size` not divisible by the device count, or a
    `checkpoint` from another run (other settings, data size, seed or model) or past `steps`.
    """
    if not isinstance(model, EDMDenoiser):
        raise ValueError(f"train: `model` must be an EDMDenoiser, got {type(model).__name__}.")
    data = np.asarray(data, np.float32)
    if data.ndim < 1 or data.shape[1:] != model.event_shape or len(data) == 0:
        raise ValueError(
            f"train: `data` must have shape (n, *{model.event_shape}) with n > 0, got {data.shape}."
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("train: `data` must be finite.")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        _check_number(value, name, integer=True)
    _check_number(checkpoint_every, "checkpoint_every", integer=True)
    _check_number(warmup_steps, "warmup_steps", integer=True, sign="non-negative")
    _check_number(seed, "seed", integer=True, sign=None)
    _check_number(learning_rate, "learning_rate", integer=False)
    _check_number(weight_decay, "weight_decay", integer=False, sign="non-negative")
    _check_number(p_std, "p_std", integer=False)
    _check_number(p_mean, "p_mean", integer=False, sign=None)
    if not 0 <= ema_decay < 1:
        raise ValueError(f"train: `ema_decay` must lie in [0, 1), got {ema_decay!r}.")
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("train: `devices` must not be empty.")
    if batch_size % len(devices):
        raise ValueError(
            f"train: `batch_size` {batch_size} must be a multiple of the {len(devices)} devices."
        )

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    settings = _Settings(
        batch_size,
        float(learning_rate),
        int(warmup_steps),
        float(weight_decay),
        float(ema_decay),
        float(p_mean),
        float(p_std),
    )
    optimizer = _optimizer(settings)
    state = (params, optimizer.init(params), params)  # weights, optimiser state, EMA
    run = {"n": len(data), "seed": int(seed), "model": _state_digest(rest), **settings._asdict()}
    start, losses = 0, np.zeros(0, np.float32)
    if checkpoint is not None and Path(checkpoint).exists():
        state, start, losses = _read_checkpoint(Path(checkpoint), state, run)
        if start > steps:
            raise ValueError(
                f"train: `steps` is {steps} but `checkpoint` {checkpoint} has done {start}; "
                "give steps >= that to resume it."
            )
    mesh = Mesh(np.array(devices), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    state = jax.device_put(state, replicated)
    data_on_devices = jax.device_put(jnp.asarray(data), replicated)
    rest = jax.device_put(rest, replicated)
    step = _step_function(graphdef, settings, mesh)
    base_key = jax.random.key_data(jax.random.key(seed))

    began = time.perf_counter()
    pending: list[Array] = []
    done = [losses]
    bar = _progress_bar(steps, start, progress)
    for k in range(start, steps):
        state, loss = step(state, rest, data_on_devices, base_key, jnp.asarray(k, jnp.int32))
        pending.append(loss)
        if len(pending) == 50 or k + 1 == steps or (k + 1) % checkpoint_every == 0:
            done.append(np.asarray(jax.device_get(pending), np.float32))
            pending = []
            if bar is not None:
                bar.update(len(done[-1]))
                bar.set_postfix(loss=f"{float(done[-1].mean()):.4f}")
        if checkpoint is not None and ((k + 1) % checkpoint_every == 0 or k + 1 == steps):
            _write_checkpoint(Path(checkpoint), state, k + 1, np.concatenate(done), run)
    if bar is not None:
        bar.close()
    params, _, ema = jax.device_get(state)
    return TrainResult(
        model=nnx.merge(graphdef, ema, rest),
        raw_model=nnx.merge(graphdef, params, rest),
        losses=np.concatenate(done),
        seconds=time.perf_counter() - began,
    )


def _progress_bar(steps: int, start: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, initial=start, desc="train", unit="step", dynamic_ncols=True)


def _write_checkpoint(path: Path, state, step: int, losses: np.ndarray, run: dict) -> None:
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(jax.device_get(state))]
    record = {
        "format": _CHECKPOINT_FORMAT,
        "run": run,
        "step": step,
        "losses": losses,
        "leaves": {str(i): leaf for i, leaf in enumerate(leaves)},
    }
    # Written beside and renamed, so that an interrupted write leaves the last checkpoint whole.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(serialization.msgpack_serialize(record))
    partial.replace(path)


def _read_checkpoint(path: Path, state, run: dict):
    try:
        record = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:
        raise ValueError(f"train: `checkpoint` {path} is not a readable checkpoint.") from error
    if not isinstance(record, dict) or record.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"train: `checkpoint` {path} is not an rdp-jax training checkpoint.")
    if "model" not in record["run"]:
        raise ValueError(
            f"train: `checkpoint` {path} was written by an older rdp-jax, which did not record "
            "the model it trains; it cannot be resumed safely: start afresh."
        )
    if record["run"] != run:
        raise ValueError(
            f"train: `checkpoint` {path} is from another run ({record['run']}), not {run}."
        )
    template, treedef = jax.tree.flatten(state)
    leaves = [record["leaves"].get(str(i)) for i in range(len(template))]
    if len(record["leaves"]) != len(template) or any(
        leaf is None or np.shape(leaf) != np.shape(t)
        for leaf, t in zip(leaves, template, strict=True)
    ):
        raise ValueError(f"train: `checkpoint` {path} holds another model's weights.")
    leaves = [
        np.asarray(leaf, np.asarray(t).dtype) for leaf, t in zip(leaves, template, strict=True)
    ]
    return jax.tree.unflatten(treedef, leaves), int(record["step"]), np.asarray(record["losses"])
