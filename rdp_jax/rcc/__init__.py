"""Reverse channel coding: chunked PFR channel simulation of diagonal Gaussians with a bitstream.

See maths §10. `encode` sends one sample of q = N(μ_q, diag σ_q²) as bytes; `decode` rebuilds it
bit-exactly from the bytes, the shared key and p = N(μ_p, diag σ_p²) alone.
"""

from rdp_jax.rcc._bitstream import (
    ALGORITHMS as ALGORITHMS,
    FORMAT_VERSION as FORMAT_VERSION,
    MAX_CANDIDATES as MAX_CANDIDATES,
)
from rdp_jax.rcc._codec import (
    EncodeInfo as EncodeInfo,
    decode as decode,
    encode as encode,
)
from rdp_jax.rcc._layout import chunk_counts as chunk_counts, gaussian_kl_bits as gaussian_kl_bits
from rdp_jax.rcc._progressive import (
    ProgressiveInfo as ProgressiveInfo,
    progressive_decode as progressive_decode,
    progressive_encode as progressive_encode,
    progressive_expected_kl_bits as progressive_expected_kl_bits,
    progressive_grid as progressive_grid,
)
