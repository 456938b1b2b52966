"""Sample-based estimators of the distortion and perception terms of maths §6.

Every estimator takes sample arrays with a leading sample axis, `(n, d)` or `(n,)` for 1-D, and
returns an `Estimate(value, stderr)`. `mse` measures the distortion D = E‖X - X̂‖²; the others
measure the perception term W2²(p_X, p_X̂), each with its own bias and error bar (see their
docstrings): `w2_gaussian` (Fréchet distance of Gaussian fits), `w2_1d` (exact in 1-D),
`sliced_w2` (random 1-D projections) and `w2_exact` (exact discrete OT by POT, sub-sampled).
All but `w2_exact` (a host solver) work under `jit` and `vmap`; the integer options fix array
shapes, so mark them static, e.g. `jax.jit(sliced_w2, static_argnums=3)`. Inputs are promoted
to float64 under x64, except that float32 arrays stay float32.
"""

from rdp_jax.metrics._estimate import Estimate as Estimate
from rdp_jax.metrics._exact import w2_exact as w2_exact
from rdp_jax.metrics._moments import (
    gaussian_w2sq as gaussian_w2sq,
    mse as mse,
    w2_gaussian as w2_gaussian,
)
from rdp_jax.metrics._quantile import w2_1d as w2_1d
from rdp_jax.metrics._sliced import sliced_w2 as sliced_w2
