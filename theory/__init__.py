"""Closed-form Gaussian rate-distortion-perception theory: the analytic truth of rdp-jax.

Units are nats; `P` is a budget on W2² unless a name says KL. Every function is pure, broadcasts,
and works under `jit`, `vmap` and `grad` in float64 and float32, but for the per-component
allocation of `rdp_w2_vector` and the noise and ρ_i of `rdp_optimal_framework`, which are solved
rather than differentiated: their derivatives are NaN, never a silent 0, as are the second
derivatives of those two functions' rates (the first come from the envelope theorem). At
perfect realism, P = 0, a rate's slope in P is infinite (it grows like √P): reverse mode
(`grad`, `jacrev`) gives ±∞ for it and the other inputs' derivatives, while forward mode
(`jacfwd`, `jvp`, `hessian`) gives NaN in every input there, since a zero tangent meets the
infinite slope. The mathematics, cited as "maths §N", is in docs/maths.md.

Bad input raises `ValueError` naming the argument. Under `jit` a bad value is found only at run
time; compile with `theory.jit` (equinox.filter_jit semantics) to get the same `ValueError`
there, where `jax.jit` raises a `jax.errors.JaxRuntimeError` that contains the message.
"""

from theory._awgn import (
    awgn_rate as awgn_rate,
    dp_awgn as dp_awgn,
    geodesic_rho as geodesic_rho,
    mmse_awgn as mmse_awgn,
    mmse_perception_awgn as mmse_perception_awgn,
    score_scaled_dp as score_scaled_dp,
    score_scaled_gain as score_scaled_gain,
)
from theory._framework import (
    FrameworkGap as FrameworkGap,
    FrameworkParameters as FrameworkParameters,
    framework_gap as framework_gap,
    rdp_optimal_framework as rdp_optimal_framework,
)
from theory._kl import kl_std_deficit as kl_std_deficit
from theory._rcc import pfr_truncation_deficit as pfr_truncation_deficit
from theory._scalar import (
    distortion_rate_perception as distortion_rate_perception,
    rate_distortion as rate_distortion,
    rdp_kl as rdp_kl,
    rdp_w2 as rdp_w2,
)
from theory._validate import jit as jit
from theory._vector import (
    VectorRDPAllocation as VectorRDPAllocation,
    rdp_w2_vector as rdp_w2_vector,
)
