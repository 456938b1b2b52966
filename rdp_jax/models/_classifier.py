"""A small digits classifier whose penultimate layer is the feature space of a Fréchet distance
(the FID practice of Heusel et al. 2017, scaled to 8×8 images)."""

import functools
from importlib import resources
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization
from jaxtyping import Array, ArrayLike, Float, Int

_FORMAT = "rdp-jax classifier"


class Classifier(nnx.Module):
    """Flattened image → 128 → `features` (SiLU) → `classes` logits."""

    def __init__(self, dim: int = 64, features: int = 32, classes: int = 10, *, rngs: nnx.Rngs):
        self.spec = (("dim", dim), ("features", features), ("classes", classes))
        self.hidden = nnx.Linear(dim, 128, rngs=rngs)
        self.feature = nnx.Linear(128, features, rngs=rngs)
        self.logits = nnx.Linear(features, classes, rngs=rngs)

    def features(self, x: Float[ArrayLike, "batch ..."]) -> Float[Array, "batch features"]:
        """The penultimate activations of a batch of images (any event shape of `dim` pixels)."""
        x = jnp.asarray(x, jnp.float32).reshape(len(x), -1)
        return nnx.silu(self.feature(nnx.silu(self.hidden(x))))

    def __call__(self, x: Float[ArrayLike, "batch ..."]) -> Float[Array, "batch classes"]:
        return self.logits(self.features(x))


def train_classifier(
    x: ArrayLike, labels: Int[ArrayLike, " n"], *, steps: int = 2000, seed: int = 0
) -> Classifier:
    """Trains a `Classifier` by cross-entropy (AdamW, batches of 128 with replacement)."""
    x = jnp.asarray(x, jnp.float32).reshape(len(x), -1)
    labels = jnp.asarray(labels, jnp.int32)
    model = Classifier(x.shape[1], rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    optimizer = optax.adamw(1e-3, weight_decay=1e-4)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, k):
        index = jax.random.randint(jax.random.fold_in(jax.random.key(seed), k), (128,), 0, len(x))

        def loss(params):
            logits = nnx.merge(graphdef, params)(x[index])
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels[index]).mean()

        grads = jax.grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for k in range(steps):
        params, opt_state = step(params, opt_state, k)
    return nnx.merge(graphdef, params)


def save_classifier(path: str | Path, classifier: Classifier, card: dict) -> None:
    """Writes a classifier and its card (str keys, JSON-like values) to one msgpack file."""
    state = nnx.to_pure_dict(nnx.state(classifier))
    record = {
        "format": _FORMAT,
        "spec": dict(classifier.spec),
        "card": card,
        "state": jax.tree.map(np.asarray, state),
    }
    Path(path).write_bytes(serialization.msgpack_serialize(record))


@functools.cache
def pretrained_classifier(name: str = "digits") -> Classifier:
    """The shipped classifier of a dataset (only "digits" has labels).

    **Raises:** `ValueError` naming `name` when no classifier is shipped for it.
    """
    if name != "digits":
        raise ValueError(f"pretrained_classifier: no classifier for `name` {name!r}; only digits.")
    blob = resources.files("rdp_jax.models").joinpath("weights", f"{name}_classifier.msgpack")
    record = serialization.msgpack_restore(blob.read_bytes())
    model = Classifier(**record["spec"], rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, record["state"]))
    return nnx.merge(graphdef, state)
