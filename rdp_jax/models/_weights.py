"""Weights files (one flax-msgpack file per model), the shipped models, and their score sources."""

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, serialization
from jaxtyping import Array, ArrayLike, Float

from rdp_jax.models._edm import EDMDenoiser
from rdp_jax.models._networks import make_network
from rdp_jax.models._spectrum import cached_portable_eigh
from rdp_jax.scores import Gaussian, ModelScore, ScoreSource, from_model

FORMAT = "rdp-jax model"
VERSION = 1
PRETRAINED = ("gmm2d", "digits", "patches")


class FunctionalDenoiser(eqx.Module):
    """An NNX module split into its static graph and its arrays: a plain pytree callable.

    `fn(x, t)` merges them back and calls the module. Held this way, the weights are ordinary
    pytree leaves (hashed by `scores.fingerprint` as arrays), and transformations that close
    over the model (`jax.eval_shape` of a bound method inside `jit`) see no NNX graph state.
    """

    graphdef: Any = eqx.field(static=True)
    treedef: Any = eqx.field(static=True)
    leaves: list

    @classmethod
    def of(cls, module: nnx.Module) -> "FunctionalDenoiser":
        graphdef, state = nnx.split(module)
        leaves, treedef = jax.tree.flatten(state)
        return cls(graphdef, treedef, leaves)

    @property
    def module(self) -> EDMDenoiser:
        """The NNX module, merged back."""
        return nnx.merge(self.graphdef, jax.tree.unflatten(self.treedef, self.leaves))

    def __call__(self, x, t):
        return self.module(x, t)


def score_source(denoiser: EDMDenoiser) -> ModelScore:
    """An `EDMDenoiser` as a `ScoreSource`: `from_model` of an x₀ model in VE time (t = σ)."""
    if not isinstance(denoiser, EDMDenoiser):
        raise ValueError(
            f"score_source: `denoiser` must be an EDMDenoiser, got {type(denoiser).__name__}."
        )
    return from_model(
        FunctionalDenoiser.of(denoiser), parametrization="x0", event_shape=denoiser.event_shape
    )


class Pretrained(ScoreSource):
    """A trained denoiser as a score source, with the moments of the data it was trained on.

    `denoise` and `score` are those of `source` (`from_model` around the `EDMDenoiser`), so
    `decode`, `rcc.progressive_*` and the codec take it as any other source; `gaussian_fit`
    gives the Gaussian with the training data's mean and covariance.

    **Fields:** `source` (the `ModelScore`), `data_mean` (d,) and `data_cov` (d, d) (float64,
    over the flattened event), `name` (the dataset it was trained on, from its card).
    """

    source: ModelScore
    data_mean: Float[Array, " d"]
    data_cov: Float[Array, "d d"]
    name: str = eqx.field(static=True)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The shape of one sample."""
        return self.source.event_shape

    @property
    def denoiser(self) -> EDMDenoiser:
        """The wrapped `EDMDenoiser`."""
        return self.source.model.module

    def denoise(self, x: Float[ArrayLike, "*event"], sigma: Float[ArrayLike, ""]) -> Array:
        """E[X | X_σ = x] as the network estimates it (see `ModelScore.denoise`)."""
        return self.source.denoise(x, sigma)

    def score(self, x: Float[ArrayLike, "*event"], sigma: Float[ArrayLike, ""]) -> Array:
        """∇ log p_σ(x) as the network estimates it (see `ModelScore.score`)."""
        return self.source.score(x, sigma)

    def gaussian_fit(self, dtype=None) -> Gaussian:
        """The Gaussian N(mean, cov) of the training data, on the flattened event (d,).

        The Gaussian theory's model of these data: its Tweedie denoiser is the Wiener-filter
        baseline of `benchmarks/models.py`, and the codec's one-shot prior. Its spectrum is
        `portable_eigh` of the stored float64 covariance, with the eigenvalues floored at
        4·d·ε·λ_max (ε of `dtype`), then cast to `dtype`: the same bits on every machine, so
        the codec recomputes its prior from the model instead of storing it in each file.

        The floor keeps the directions the data do not resolve at this precision (digits'
        constant border pixels, whose variance is the stored ridge, 1e-6 of the mean) above
        the d·ε·λ_max below which `scores.gaussian` would call Σ singular; there, a Wiener gain
        λ/(λ + σ²) stays ≤ 4·d·ε·λ_max/σ².

        **Arguments:** `dtype`: float32 or float64 (default: float32 unless `jax_enable_x64`).

        **Returns:** a full-covariance `scores.Gaussian` with `eigenvalues` ascending.

        **Raises:** `ValueError` naming `dtype` for another dtype (the floor would swamp a
        float16 spectrum), or float64 without `jax_enable_x64`.
        """
        dtype = jnp.result_type(float) if dtype is None else _fit_dtype(dtype)
        cov = np.asarray(self.data_cov, np.float64)
        eigenvalues, eigenvectors = cached_portable_eigh(cov)
        floor = 4 * len(eigenvalues) * float(jnp.finfo(dtype).eps) * eigenvalues[-1]
        return Gaussian(
            mean=jnp.asarray(np.asarray(self.data_mean, dtype)),
            eigenvalues=jnp.asarray(np.maximum(eigenvalues, floor).astype(dtype)),
            eigenvectors=jnp.asarray(eigenvectors.astype(dtype)),
        )


def _fit_dtype(given) -> np.dtype:
    try:
        dtype = np.dtype(given)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"gaussian_fit: `dtype` must be float32 or float64, got {given!r}.")
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError("gaussian_fit: `dtype` float64 needs jax_enable_x64.")
    return dtype


# Added to the covariance's diagonal, relative to its mean variance: digits' border pixels never
# vary, so the sample covariance is singular; this makes it positive definite in float64.
COV_RIDGE = 1e-6


def data_moments(data: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The mean (d,) and covariance (d, d) of samples flattened to d = prod(event), float64.

    The covariance is the unbiased sample covariance plus `COV_RIDGE` × its mean variance on
    the diagonal, so that it is positive definite even where a dimension never varies.
    """
    flat = np.asarray(data, np.float64).reshape(len(data), -1)
    cov = np.atleast_2d(np.cov(flat, rowvar=False))
    cov += COV_RIDGE * np.trace(cov) / len(cov) * np.eye(len(cov))
    return flat.mean(0), cov


def save(path: str | Path, denoiser: EDMDenoiser, data: ArrayLike, card: dict) -> int:
    """Writes a denoiser, its training data's moments and its model card to one msgpack file.

    **Arguments:** `path`; `denoiser` (an `EDMDenoiser`); `data` (the training samples, for
    the moments that `Pretrained.gaussian_fit` returns); `card` (str keys, JSON-like values).

    **Returns:** the number of bytes written.

    **Raises:** `ValueError` naming `data` when it is not ≥ 2 samples of the event shape.
    """
    data = np.asarray(data)
    if data.ndim < 1 or data.shape[1:] != denoiser.event_shape or len(data) < 2:
        raise ValueError(
            f"save: `data` must be at least 2 samples of the denoiser's event shape "
            f"{denoiser.event_shape}; got shape {data.shape}."
        )
    mean, cov = data_moments(data)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "network": dict(denoiser.network.config),
        "state": _string_keys(nnx.to_pure_dict(nnx.state(denoiser))),
        "data_mean": mean,
        "data_cov": cov,
        "card": card,
    }
    blob = serialization.msgpack_serialize(record)
    Path(path).write_bytes(blob)
    return len(blob)


def load(path: str | Path) -> Pretrained:
    """Reads a weights file written by `save` (or `rdp-jax train`) as a `Pretrained` source.

    **Raises:** `OSError` if the file cannot be read; `ValueError` if it is not an rdp-jax
    model file, is truncated or corrupted, or is of a newer format version.
    """
    path = Path(path)
    return _from_bytes(path.read_bytes(), str(path), path.stem)


def _from_bytes(blob: bytes, where: str, stem: str) -> Pretrained:
    """The model in `blob`, named by its card's dataset (the file's `stem` when the card has
    none): the name is part of the model's identity, and a copy of the file under another name
    is the same model."""
    record = _record(blob, where, "load")
    if record.get("version") != VERSION:
        raise ValueError(
            f"load: {where} has format version {record.get('version')}, "
            f"this rdp-jax reads {VERSION}."
        )
    state = record["state"]
    # Shapes only: initialising the weights that are about to be replaced is wasted work.
    template = nnx.eval_shape(
        lambda: EDMDenoiser(make_network(record["network"]), state["mean"], state["std"])
    )
    graphdef, expected = nnx.split(template)
    try:
        nnx.replace_by_pure_dict(expected, _like(nnx.to_pure_dict(expected), state))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"load: {where} holds weights that do not fit its network.") from error
    source = score_source(nnx.merge(graphdef, expected))
    dataset = record["card"].get("dataset") if isinstance(record.get("card"), dict) else None
    name = dataset if isinstance(dataset, str) and dataset else stem
    return Pretrained(source, record["data_mean"], record["data_cov"], name)


def _string_keys(tree):
    if isinstance(tree, dict):
        return {str(k): _string_keys(v) for k, v in tree.items()}
    return np.asarray(tree)


def _like(template, stored):
    """`stored` (string keys) with the key types and array shapes of `template`."""
    if isinstance(template, dict):
        return {k: _like(v, stored[str(k)]) for k, v in template.items()}
    array = np.asarray(stored)
    if array.shape != tuple(template.shape):
        raise ValueError(f"shape {array.shape}, expected {tuple(template.shape)}")
    return jnp.asarray(array, template.dtype)


@functools.cache
def _pretrained_bytes(name: str) -> bytes:
    return resources.files("rdp_jax.models").joinpath("weights", f"{name}.msgpack").read_bytes()


def pretrained(name: str) -> Pretrained:
    """A shipped model, ready as a `ScoreSource` ("gmm2d", "digits" or "patches").

    Read from the package's data: no network. `card(name)` says how it was trained.

    **Raises:** `ValueError` naming `name` when it is not one of the shipped models.
    """
    if name not in PRETRAINED:
        raise ValueError(f"pretrained: unknown `name` {name!r}; choose one of {PRETRAINED}.")
    return _from_bytes(_pretrained_bytes(name), f"the shipped model {name!r}", name)


def _record(blob: bytes, where: str, caller: str) -> dict:
    """The msgpack record of a weights file, or `ValueError` for bytes that are not one."""
    try:
        record = serialization.msgpack_restore(blob)
    except Exception as error:
        raise ValueError(f"{caller}: {where} is not an rdp-jax model file (unreadable).") from error
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{caller}: {where} is not an rdp-jax model file.")
    return record


def card(name_or_path: str | Path) -> dict:
    """The model card stored with a shipped model (by name) or in a weights file (by path):
    the training command, steps, wall time, parameter count and test figures.

    **Raises:** `OSError` if the file cannot be read; `ValueError` if it is not a model file.
    """
    if name_or_path in PRETRAINED:
        blob = _pretrained_bytes(name_or_path)
    else:
        blob = Path(name_or_path).read_bytes()
    return _record(blob, str(name_or_path), "card")["card"]
