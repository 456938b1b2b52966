"""float32 decoding: every method and schedule against the same method run in float64.

A fixed-step method run in float64 takes the same grid with the same budget, so its
discretisation error is the float32 run's too, and their difference is float32 round-off alone
(the float64 round-off is 2^29 times smaller). That difference is judged against the round-off
bound of `helpers.roundoff_bound`, λ u √(m·NFE) of the output scale. A test that compared with the
closed form instead would be judging the method's discretisation error (exp4 at 20 NFE: ~1e-4),
which hides round-off a thousand times larger than float32's.

Every configuration compiles twice (float32 and float64), ~2 s each on a CPU core, so the
default run covers each method family and each schedule once (exp4 runs exp1-exp3's steps while
its history fills, with the full Vandermonde solve after); `-m slow` runs the full matrix.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import roundoff_bound

from rdp_jax import VPCosine, VPLinear, decode, scores

# Exactly representable in float32, so both runs decode the same source, observations and σ:
# the only difference between them is arithmetic.
MEAN = np.array([0.5, -1.0, 0.25])
VARIANCES = np.array([0.25, 1.0, 4.0])
RHO = np.array([0.0, 0.5, 1.0])  # per dimension: both ends and the middle in one decode
SIGMA = 1.5
Y = np.asarray(2 * jax.random.normal(jax.random.key(0), (8, 3), jnp.float32), np.float64)
# decode's adaptive controller defaults.
RTOL, ATOL = 1e-8, 1e-10
_EVERY = [(f"exp{k}", None) for k in (1, 2, 3, 4)] + [
    (method, schedule)
    for method in ("tsit5", "heun", "euler")
    for schedule in (None, VPLinear(), VPCosine())
]
_DEFAULT = {("exp4", "VE"), ("tsit5", "VE"), ("heun", "VPLinear"), ("euler", "VPCosine")}


def _name(schedule):
    return "VE" if schedule is None else type(schedule).__name__


CASES = [
    pytest.param(
        method,
        schedule,
        id=f"{method}-{_name(schedule)}",
        marks=() if (method, _name(schedule)) in _DEFAULT else pytest.mark.slow,
    )
    for method, schedule in _EVERY
]


def _decode(method, schedule, dtype):
    model = scores.gaussian(MEAN.astype(dtype), VARIANCES.astype(dtype))
    budget = {} if method == "tsit5" else {"num_steps": 20}
    x_hat, info = decode(
        Y.astype(dtype),
        dtype(SIGMA),
        RHO.astype(dtype),
        model,
        method=method,
        schedule=schedule,
        return_info=True,
        **budget,
    )
    assert x_hat.dtype == dtype
    return np.asarray(x_hat, np.float64), int(np.max(info.nfe))


@pytest.mark.parametrize(("method", "schedule"), CASES)
def test_float32_is_float64_up_to_float32_roundoff(method, schedule):
    x32, nfe32 = _decode(method, schedule, np.float32)
    x64, nfe64 = _decode(method, schedule, np.float64)
    scale = np.max(np.abs(x64))
    tolerance = roundoff_bound(np.float32, nfe32) * scale
    if method == "tsit5":
        # The adaptive runs take different steps, so their discretisation errors do not cancel:
        # each is at most its accepted steps (≤ NFE/6) times the controller's local tolerance,
        # √d (rtol |x| + atol) in the max norm for its RMS norm over d = 3 components.
        steps = (nfe32 + nfe64) / 6
        tolerance += steps * np.sqrt(3) * (RTOL * scale + ATOL)
    else:
        assert nfe32 == nfe64  # the same grid and budget
    error = np.max(np.abs(x32 - x64))
    assert error <= tolerance, (error / scale, tolerance / scale)
