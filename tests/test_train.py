"""`models.train`: determinism, resuming, data parallelism, bad input, and `rdp-jax train`."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from portability import run_python

from rdp_jax import cli, datasets, models

_STEPS = 12


def _small_denoiser(seed: int = 0) -> models.EDMDenoiser:
    x = datasets.load("gmm2d")
    return models.EDMDenoiser(
        models.MLP(2, width=16, depth=1, rngs=nnx.Rngs(seed)), x.mean(0), x.std(0)
    )


_OPTIONS = {"steps": _STEPS, "batch_size": 32, "warmup_steps": 4, "progress": False}


def _train(**kwargs) -> models.TrainResult:
    return models.train(_small_denoiser(), datasets.load("gmm2d")[:2000], **_OPTIONS | kwargs)


def _weights(model) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_training_is_deterministic():
    a, b = _train(), _train()
    np.testing.assert_array_equal(a.losses, b.losses)
    for wa, wb in zip(_weights(a.model), _weights(b.model), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.losses.shape == (_STEPS,) and np.all(np.isfinite(a.losses))
    other = _train(seed=1)
    assert not np.array_equal(a.losses, other.losses)
    # The EMA differs from the last iterate, and training moved the weights off zero output.
    assert not np.array_equal(_weights(a.model)[-1], _weights(a.raw_model)[-1])


def test_training_lowers_the_held_out_denoising_loss():
    """200 steps against the untrained network on 4,000 held-out gmm2d pairs (x₀, σ, noise
    fixed by seed, σ from the training law): the paired per-pair loss drop is above 5 of its
    standard errors (measured ~13). A network that did not learn fails it with probability
    ~3e-7; one trained uphill fails it surely."""
    x0 = jnp.asarray(datasets.load("gmm2d", "test")[:4000], jnp.float32)
    key_sigma, key_noise = jax.random.split(jax.random.key(0))
    sigma = jnp.exp(-1.2 + 1.2 * jax.random.normal(key_sigma, (len(x0),), jnp.float32))
    x = x0 + sigma[:, None] * jax.random.normal(key_noise, x0.shape, jnp.float32)

    def losses(model):
        out, target = model.network_and_target(x, sigma, x0)
        return np.asarray(jnp.mean((out - target) ** 2, -1), np.float64)

    drop = losses(_small_denoiser()) - losses(_train(steps=200).model)
    assert drop.mean() > 5 * drop.std(ddof=1) / np.sqrt(drop.size)


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    straight = _train()
    path = tmp_path / "run.ckpt"
    _train(steps=_STEPS // 2, checkpoint=path)
    resumed = _train(checkpoint=path)
    np.testing.assert_array_equal(resumed.losses, straight.losses)
    for wa, wb in zip(_weights(resumed.model), _weights(straight.model), strict=True):
        np.testing.assert_array_equal(wa, wb)
    with pytest.raises(ValueError, match="another run"):
        _train(checkpoint=path, learning_rate=5e-4)
    with pytest.raises(ValueError, match="has done 12"):  # it would return the 12-step model
        _train(steps=_STEPS // 2, checkpoint=path)
    # Another model (its noise frequencies are drawn by its seed) with the same settings.
    other = _small_denoiser(seed=5)
    with pytest.raises(ValueError, match="another run"):
        models.train(other, datasets.load("gmm2d")[:2000], checkpoint=path, **_OPTIONS)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        _train(checkpoint=path)


def test_numpy_scalars_are_accepted_as_settings():
    np.testing.assert_array_equal(_train(learning_rate=np.float32(1e-3)).losses, _train().losses)


# Two forced CPU devices split each batch in halves; the weights stay replicated. The step is the
# same computation up to the order of the float32 sums over the batch (one all-reduce), whose
# round-off (≈ 1e-7 relative per step) the optimiser carries forward: over 12 steps of a
# contracting loss it stays orders below 1e-4.
_TWO_DEVICES = """
import json, jax, numpy as np
jax.config.update("jax_enable_x64", True)  # as in this test process (conftest)
from flax import nnx
from rdp_jax import datasets, models
x = datasets.load("gmm2d")
model = models.EDMDenoiser(models.MLP(2, width=16, depth=1, rngs=nnx.Rngs(0)), x.mean(0), x.std(0))
curves = {}
for n in (1, 2):
    r = models.train(model, x[:2000], steps=12, batch_size=32, warmup_steps=4, progress=False,
                     devices=jax.local_devices()[:n])
    curves[n] = r.losses.tolist()
print(json.dumps({"devices": len(jax.local_devices()), "curves": curves}))
"""


def test_two_devices_give_the_one_device_loss_curve():
    out = json.loads(run_python(_TWO_DEVICES, {"JAX_NUM_CPU_DEVICES": "2"}))
    assert out["devices"] == 2
    one, two = out["curves"]["1"], out["curves"]["2"]
    np.testing.assert_allclose(two, one, rtol=1e-4)
    # The same curve in this process (one device): the subprocess ran the code under test.
    np.testing.assert_allclose(one, _train().losses, rtol=1e-4)
    assert one != _train(seed=3).losses.tolist()  # the comparison can fail


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"p_std": 0.0}, "p_std"),
        ({"p_mean": float("nan")}, "p_mean"),
        ({"p_mean": float("inf")}, "p_mean"),
        ({"weight_decay": float("nan")}, "weight_decay"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"warmup_steps": -5}, "warmup_steps"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_settings_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _train(**kwargs)


def test_bad_data_and_model_are_rejected():
    model = _small_denoiser()
    with pytest.raises(ValueError, match="data"):
        models.train(model, np.zeros((10, 3)), steps=1)
    with pytest.raises(ValueError, match="finite"):
        models.train(model, np.full((10, 2), np.nan), steps=1)
    with pytest.raises(ValueError, match="EDMDenoiser"):
        models.train(model.network, np.zeros((10, 2)), steps=1)


def test_the_train_command_writes_a_loadable_model_and_a_figure(tmp_path, capsys):
    out = tmp_path / "g.msgpack"
    assert (
        cli.main(["train", "--dataset", "gmm2d", "--steps", "20", "--out", str(out), "--quiet"])
        == 0
    )
    assert "wrote" in capsys.readouterr().err
    source = models.load(out)
    assert source.event_shape == (2,)
    card = models.card(out)
    assert card["steps"] == 20 and card["command"].startswith("rdp-jax train --dataset gmm2d")
    assert (tmp_path / "g.loss.png").stat().st_size > 1000
    assert cli.main(["train", "--dataset", "gmm2d", "--steps", "0", "--out", str(out)]) == 2
    assert "--steps" in capsys.readouterr().err
    # An unwritable output is refused before training, not after it.
    missing = tmp_path / "missing" / "g.msgpack"
    assert cli.main(["train", "--dataset", "gmm2d", "--out", str(missing), "--quiet"]) == 2
    assert "--out" in capsys.readouterr().err and not missing.parent.exists()


def test_the_command_lists_the_recipes():
    from rdp_jax._commands import train

    assert set(train.DATASETS) == set(models.RECIPES) == set(models.PRETRAINED)
