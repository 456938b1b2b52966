"""Bad input raises, eagerly and under `jit`, naming the argument (every public function).

Under `theory.jit` a failed check raises the eager `ValueError`, message and all.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory

NAN, INF = math.nan, math.inf
VARIANCES = np.array([1.0, 2.0])

# name -> (function, valid positional arguments, static keyword arguments)
FUNCTIONS = {
    "rate_distortion": (theory.rate_distortion, {"D": 1.0, "variances": VARIANCES}, {}),
    "rdp_w2": (theory.rdp_w2, {"D": 1.0, "P": 0.1, "var": 2.0}, {}),
    "rdp_kl": (theory.rdp_kl, {"D": 1.0, "P": 0.1, "var": 2.0}, {"direction": "forward"}),
    "distortion_rate_perception": (
        theory.distortion_rate_perception,
        {"R": 0.3, "P": 0.1, "var": 2.0},
        {},
    ),
    "rdp_w2_vector": (theory.rdp_w2_vector, {"D": 1.0, "P": 0.1, "variances": VARIANCES}, {}),
    "awgn_rate": (theory.awgn_rate, {"variances": VARIANCES, "noise_var": 0.5}, {}),
    "mmse_awgn": (theory.mmse_awgn, {"variances": VARIANCES, "noise_var": 0.5}, {}),
    "mmse_perception_awgn": (
        theory.mmse_perception_awgn,
        {"variances": VARIANCES, "noise_var": 0.5},
        {},
    ),
    "dp_awgn": (theory.dp_awgn, {"P": 0.1, "variances": VARIANCES, "noise_var": 0.5}, {}),
    "score_scaled_gain": (
        theory.score_scaled_gain,
        {"rho": 0.5, "variances": VARIANCES, "noise_var": 0.5},
        {},
    ),
    "score_scaled_dp": (
        theory.score_scaled_dp,
        {"rho": 0.5, "variances": VARIANCES, "noise_var": 0.5},
        {},
    ),
    "geodesic_rho": (
        theory.geodesic_rho,
        {"P": 0.1, "variances": VARIANCES, "noise_var": 0.5},
        {},
    ),
    "framework_gap": (
        theory.framework_gap,
        {"rho": 0.5, "variances": VARIANCES, "noise_var": 0.5},
        {},
    ),
    "rdp_optimal_framework": (
        theory.rdp_optimal_framework,
        {"D": 1.0, "P": 0.1, "variances": VARIANCES},
        {},
    ),
}

# Bad values per argument name. Vectors keep the valid shape, so each jitted function compiles
# once; the empty vector is a separate (trace-time) case.
BAD = {
    "D": [-1.0, NAN],
    "R": [-1.0, NAN],
    "P": [-1.0, NAN],
    "var": [0.0, -1.0, NAN, INF],
    "variances": [
        np.array([1.0, 0.0]),
        np.array([-1.0, 2.0]),
        np.array([1.0, NAN]),
        np.array([INF, 2.0]),
    ],
    "noise_var": [0.0, -0.5, NAN, INF],
    "rho": [NAN, INF, -INF],
}


def _cases():
    for fname, (_, valid, _static) in FUNCTIONS.items():
        for arg in valid:
            for k, bad in enumerate(BAD[arg]):
                yield pytest.param(fname, arg, bad, id=f"{fname}-{arg}-{k}")


def _call(fname, overrides, jit=False):
    f, valid, static = FUNCTIONS[fname]
    args = {**valid, **overrides}
    args = [np.asarray(a, dtype=np.float64) for a in args.values()]
    if jit:
        return jax.block_until_ready(_jitted(fname)(*args))
    return f(*args, **static)


_JITTED = {}


def _jitted(fname):
    """One jitted function per public function: every bad value reuses its compilation."""
    if fname not in _JITTED:
        f, _, static = FUNCTIONS[fname]
        _JITTED[fname] = theory.jit(lambda *args: f(*args, **static))
    return _JITTED[fname]


@pytest.mark.parametrize("fname", FUNCTIONS)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_valid_input_does_not_raise(fname, jit):
    out = jax.tree.leaves(_call(fname, {}, jit=jit))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in out)


@pytest.mark.parametrize(("fname", "arg", "bad"), list(_cases()))
def test_bad_input_raises_eagerly(fname, arg, bad):
    with pytest.raises(ValueError, match=f"`{arg}` must"):
        _call(fname, {arg: bad})


@pytest.mark.parametrize(("fname", "arg", "bad"), list(_cases()))
def test_bad_input_raises_under_jit(fname, arg, bad):
    with pytest.raises(ValueError) as eager:
        _call(fname, {arg: bad})
    with pytest.raises(ValueError) as jitted:
        _call(fname, {arg: bad}, jit=True)
    assert str(jitted.value) == str(eager.value)


@pytest.mark.parametrize(
    "fname", [f for f, (_, valid, _) in FUNCTIONS.items() if "variances" in valid]
)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_empty_variances_raise(fname, jit):
    with pytest.raises(ValueError, match="`variances` needs at least one component"):
        _call(fname, {"variances": np.zeros(0)}, jit=jit)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_rdp_kl_unknown_direction_raises(jit):
    f = theory.rdp_kl
    if jit:
        f = jax.jit(theory.rdp_kl, static_argnames="direction")
    with pytest.raises(ValueError, match="`direction`"):
        f(0.5, 0.05, 1.0, direction="backward")


@pytest.mark.parametrize(
    ("fname", "arg", "bad"),
    [("rdp_w2", "D", -1.0), ("rdp_w2_vector", "P", NAN), ("dp_awgn", "noise_var", 0.0)],
)
def test_bad_input_raises_under_vmap(fname, arg, bad):
    f, valid, static = FUNCTIONS[fname]
    batch = np.array([valid[arg], bad])
    others = {k: v for k, v in valid.items() if k != arg}

    def one(x):
        return f(**{**others, arg: x}, **static)

    with pytest.raises(ValueError, match=f"`{arg}`"):
        jax.block_until_ready(theory.jit(jax.vmap(one))(batch))


def test_scalar_variances_are_one_component():
    assert float(theory.rate_distortion(0.5, 2.0)) == float(theory.rate_distortion(0.5, [2.0]))


# ---- kl_std_deficit ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1.0, NAN])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_kl_std_deficit_bad_budget_raises(bad, jit):
    f = (
        jax.jit(theory.kl_std_deficit, static_argnames="direction")
        if jit
        else theory.kl_std_deficit
    )
    with pytest.raises(Exception, match="`P`"):
        jax.block_until_ready(f(jnp.asarray(bad), direction="forward"))


def test_kl_std_deficit_unknown_direction_raises():
    with pytest.raises(ValueError, match="`direction`"):
        theory.kl_std_deficit(jnp.asarray(0.05), "backward")


def test_kl_std_deficit_accepts_python_floats():
    expected = float(theory.kl_std_deficit(jnp.asarray(0.05), "forward"))
    assert float(theory.kl_std_deficit(0.05, "forward")) == expected
