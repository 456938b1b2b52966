"""rdp-jax: diffusion-based compression measured against the Gaussian RDP function.

The closed-form truth lives in the separate `theory` package; `rdp_jax` holds the machinery:

- `decode`, `tweedie_denoise`, `posterior_sample`: the score-scaled PF-ODE decoder of Wang, Bi &
  Zhang (2026) and the paper's baselines;
- `scores`: score sources (analytic Gaussians and mixtures, adapters for learned models);
- `VE`, `VPLinear`, `VPCosine`: noise schedules with exact t ↔ σ conversions;
- `metrics`: distortion and perception estimators with standard errors;
- `rcc`: reverse channel coding of diagonal Gaussians to a real bitstream (PFR; work in
  progress, issue 4);
- `experiments`: the measurements behind `rdp-jax verify` and the benchmarks.
"""

from rdp_jax import (
    experiments as experiments,
    metrics as metrics,
    rcc as rcc,
    scores as scores,
)
from rdp_jax._decoder import (
    METHODS as METHODS,
    DecodeInfo as DecodeInfo,
    decode as decode,
    posterior_sample as posterior_sample,
    tweedie_denoise as tweedie_denoise,
)
from rdp_jax._schedules import VE as VE, VPCosine as VPCosine, VPLinear as VPLinear

__version__ = "0.1.0"
