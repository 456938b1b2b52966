"""`rdp-jax verify`: a registry of claims, each measured, compared and judged.

Adding a claim is a decorated function returning a `Measurement`::

    @claim("rdp_w2 = brute force", "Zhang et al. 2021, maths §3", group="theory")
    def _check() -> Measurement:
        return Measurement(measured=..., expected=..., tolerance=...)
"""

from rdp_jax.verify import (  # noqa: F401 - registration
    _codec_claims,
    _decoder_claims,
    _mixture_claims,
    _model_claims,
    _rcc_bias_claims,
    _rcc_claims,
    _theory_claims,
)
from rdp_jax.verify._registry import (
    GROUPS as GROUPS,
    Claim as Claim,
    ClaimResult as ClaimResult,
    Measurement as Measurement,
    claim as claim,
    registered_claims as registered_claims,
    run_claims as run_claims,
)
