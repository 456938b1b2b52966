"""The score-scaled PF-ODE decoder and the seed paper's baselines."""

from rdp_jax._decoder._decode import (
    METHODS as METHODS,
    DecodeInfo as DecodeInfo,
    decode as decode,
    posterior_sample as posterior_sample,
    tweedie_denoise as tweedie_denoise,
)
