"""The training recipe of each shipped model: its network, σ law and optimiser settings."""

import platform
import time
from typing import NamedTuple

import jax
import numpy as np
from flax import nnx

from rdp_jax import datasets
from rdp_jax.models._edm import EDMDenoiser
from rdp_jax.models._networks import MLP, UNet, num_parameters
from rdp_jax.models._train import TrainResult, train


class Recipe(NamedTuple):
    """How a shipped model is trained: `network(seed)` builds it, the rest goes to `train`."""

    network: dict
    batch_size: int
    learning_rate: float
    p_mean: float
    p_std: float
    steps: int


RECIPES = {
    # σ from 0.01 to 10 for the benchmark's grid: ln σ ~ N(-1, 1.6²) puts both ends within 2.3 sd.
    "gmm2d": Recipe(
        {"kind": "mlp", "dim": 2, "width": 128, "depth": 3}, 512, 2e-3, -1.0, 1.6, 8000
    ),
    # Images in [-1, 1]: EDM's σ law, a little wider to reach 5 data standard deviations.
    "digits": Recipe(
        {"kind": "unet", "size": 8, "channels": 16, "emb": 32}, 128, 1e-3, -1.2, 1.4, 6000
    ),
    "patches": Recipe(
        {"kind": "unet", "size": 8, "channels": 16, "emb": 32}, 128, 1e-3, -1.2, 1.4, 6000
    ),
}


def initial_denoiser(dataset: str, data: np.ndarray, *, seed: int = 0) -> EDMDenoiser:
    """The untrained `EDMDenoiser` of a recipe, preconditioned with `data`'s per-dimension
    mean and standard deviation. **Raises:** `ValueError` naming `dataset` when unknown."""
    if dataset not in RECIPES:
        raise ValueError(
            f"initial_denoiser: no recipe for `dataset` {dataset!r}; "
            f"choose one of {tuple(RECIPES)}."
        )
    config = dict(RECIPES[dataset].network)
    kind = config.pop("kind")
    rngs = nnx.Rngs(seed)
    network = MLP(**config, rngs=rngs) if kind == "mlp" else UNet(**config, rngs=rngs)
    return EDMDenoiser(network, data.mean(0), data.std(0))


def train_recipe(
    dataset: str,
    *,
    steps: int | None = None,
    seed: int = 0,
    checkpoint=None,
    progress: bool = True,
) -> tuple[TrainResult, dict]:
    """Trains a recipe's model on its dataset's training split from scratch (or `checkpoint`).

    **Returns:** the `TrainResult` and the model card's training part (dataset, steps, seed,
    parameter count, wall time, devices, settings).
    """
    if dataset not in RECIPES:
        raise ValueError(
            f"train_recipe: no recipe for `dataset` {dataset!r}; choose one of {tuple(RECIPES)}."
        )
    recipe = RECIPES[dataset]
    data = datasets.load(dataset, "train")
    model = initial_denoiser(dataset, data, seed=seed)
    steps = recipe.steps if steps is None else steps
    result = train(
        model,
        data,
        steps=steps,
        batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        p_mean=recipe.p_mean,
        p_std=recipe.p_std,
        seed=seed,
        checkpoint=checkpoint,
        progress=progress,
    )
    card = {
        "dataset": dataset,
        "steps": int(steps),
        "seed": int(seed),
        "parameters": num_parameters(model.network),
        "network": dict(recipe.network),
        "batch_size": recipe.batch_size,
        "learning_rate": recipe.learning_rate,
        "sigma_law": f"ln σ ~ N({recipe.p_mean}, {recipe.p_std}²)",
        "seconds": round(result.seconds, 1),
        "devices": f"{len(jax.local_devices())} × {jax.local_devices()[0].platform}",
        "machine": platform.machine(),
        "trained": time.strftime("%Y-%m-%d", time.gmtime()),
        "final_loss": float(np.mean(result.losses[-min(len(result.losses), 200) :])),
    }
    return result, card
