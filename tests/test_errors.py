"""What a user sees on bad input: the exception type, its first line, and where it points.

Eagerly and under `theory.jit` / `rdp_jax.jit` a bad argument raises `ValueError` with one
message; under plain `jax.jit` XLA wraps it in `jax.errors.JaxRuntimeError` (documented in the
README). Shapes and dtypes are static, so they raise eagerly even inside `jax.jit`.
"""

import traceback

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rdp_jax
import theory
from rdp_jax import decode, posterior_sample, scores, tweedie_denoise

V3 = np.array([4.0, 1.0, 0.25])
RHO_MESSAGE = "`rho` must lie in [0, 1]; pass allow_any_rho=True to go outside."


def test_jit_raises_the_eager_message_with_a_short_traceback():
    with pytest.raises(ValueError) as eager:
        theory.rdp_w2(-1.0, 0.0, 1.0)
    with pytest.raises(ValueError) as jitted:
        theory.jit(theory.rdp_w2)(-1.0, 0.0, 1.0)
    assert str(jitted.value) == str(eager.value) == "rdp_w2: `D` must be >= 0 and not NaN."
    assert jitted.value.__cause__ is None and jitted.value.__suppress_context__ is False
    assert jitted.value.__context__ is None  # no "During handling ..." chain
    # This test's frame, then the wrapper's `raise`: nothing of XLA's or equinox's.
    frames = traceback.extract_tb(jitted.value.__traceback__)
    assert len(frames) <= 2, frames


def test_plain_jax_jit_raises_jax_runtime_error_quietly(caplog):
    with pytest.raises(jax.errors.JaxRuntimeError, match="rdp_w2: `D` must be >= 0"):
        jax.block_until_ready(jax.jit(theory.rdp_w2)(-1.0, 0.0, 1.0))
    # jax logs a failed callback with its traceback (17 lines on stderr); not a failed check.
    assert not [r for r in caplog.records if "pure_callback failed" in r.getMessage()]


def test_jit_passes_other_runtime_errors_through():
    def f(x):
        return eqx.error_if(x, x < 0, "not one of ours")

    with pytest.raises(eqx.EquinoxRuntimeError, match="not one of ours"):
        theory.jit(f)(jnp.asarray(-1.0))
    assert rdp_jax.jit is theory.jit


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda j: j(theory.score_scaled_dp)(2.0, V3, 1.0), "score_scaled_dp"),
        (lambda j: j(theory.score_scaled_gain)(-0.1, V3, 1.0), "score_scaled_gain"),
        (lambda j: j(theory.framework_gap)(-1.0, V3, 1.0), "framework_gap"),
    ],
    ids=["score_scaled_dp", "score_scaled_gain", "framework_gap"],
)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_rho_outside_the_unit_interval_is_rejected_as_decode_rejects_it(call, where, jit):
    with pytest.raises(ValueError) as error:
        call(theory.jit if jit else (lambda f: f))
    assert str(error.value) == f"{where}: {RHO_MESSAGE}"


def test_decode_rejects_rho_with_the_same_words_and_allows_it_alike():
    model = scores.gaussian(jnp.zeros(3), jnp.asarray(V3))
    with pytest.raises(ValueError) as error:
        decode(jnp.ones(3), 0.5, 2.0, model, num_steps=4)
    assert str(error.value) == f"decode: {RHO_MESSAGE}"
    D, P = theory.score_scaled_dp(2.0, V3, 0.25, allow_any_rho=True)
    assert np.isfinite(float(D)) and np.isfinite(float(P))


SHAPE_CASES = [
    (theory.rdp_w2, (np.ones(3), np.ones(2), 1.0), {}, "`P` of shape (2,)"),
    (theory.rdp_kl, (np.ones(3), 0.1, np.ones(2)), {"direction": "reverse"}, "`var` of shape"),
    (theory.distortion_rate_perception, (np.ones(3), np.ones(2), 1.0), {}, "`P` of shape"),
    (theory.rate_distortion, (np.ones(3), np.ones((2, 4))), {}, "`variances` (but its last"),
    (theory.rdp_w2_vector, (np.ones(3), 0.1, np.ones((2, 4))), {}, "`variances` (but its"),
    (theory.rdp_optimal_framework, (np.ones(3), 0.1, np.ones((2, 4))), {}, "`variances` (but"),
    (theory.awgn_rate, (V3, np.ones(2)), {}, "`noise_var` of shape (2,)"),
    (theory.dp_awgn, (np.ones(2), np.ones((3, 3)), 1.0), {}, "`P` of shape (2,)"),
    (theory.geodesic_rho, (np.ones(2), np.ones((3, 3)), 1.0), {}, "`P` of shape (2,)"),
    (theory.score_scaled_dp, (np.full(2, 0.5), V3, 1.0), {}, "`rho` of shape (2,)"),
]


@pytest.mark.parametrize(
    ("f", "args", "static", "named"), SHAPE_CASES, ids=[c[0].__name__ for c in SHAPE_CASES]
)
def test_shape_errors_name_the_argument(f, args, static, named):
    with pytest.raises(ValueError, match="does not broadcast") as eager:
        f(*args, **static)
    assert named in str(eager.value) and str(eager.value).startswith(f.__name__)
    # Static under jit too: raised at trace time, the same ValueError.
    with pytest.raises(ValueError) as jitted:
        jax.jit(lambda *a: f(*a, **static))(*args)
    assert str(jitted.value) == str(eager.value)


def _model64():
    return scores.gaussian(jnp.zeros(2, jnp.float64), jnp.array([1.0, 0.5], jnp.float64))


@pytest.mark.parametrize(
    "run",
    [
        lambda y, m: decode(y, 0.5, 0.5, m, num_steps=4),
        lambda y, m: decode(y, 0.5, 0.5, m, method="heun", num_steps=5),
        lambda y, m: decode(y, 0.5, 0.5, m),
        lambda y, m: tweedie_denoise(y, 0.5, m),
        lambda y, m: posterior_sample(jax.random.key(0), y, 0.5, m, num_steps=3),
    ],
    ids=["exp4", "heun", "tsit5", "tweedie_denoise", "posterior_sample"],
)
def test_float32_y_with_a_float64_model_is_rejected_alike(run):
    y = jnp.ones((3, 2), jnp.float32)
    with pytest.raises(ValueError, match="`y` is float32 but `model` denoises it in float64"):
        run(y, _model64())


def test_decode_under_rdp_jax_jit_raises_the_eager_message():
    model = _model64()

    def run(y, sigma):
        return decode(y, sigma, 0.5, model, num_steps=4)

    with pytest.raises(ValueError) as eager:
        run(jnp.ones(2), -1.0)
    with pytest.raises(ValueError) as jitted:
        rdp_jax.jit(run)(jnp.ones(2), jnp.asarray(-1.0))
    assert str(jitted.value) == str(eager.value) == "decode: `sigma` must be finite and > 0."
