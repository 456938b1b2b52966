"""The compressor: items to a self-contained file, decompressed at any ρ (maths §13).

`compress` sends X_σ = X + σN for a whole batch as one reverse-channel-coded message (one-shot
against a Gaussian prior, or progressive along the diffusion); `decompress` rebuilds X_σ from
the bytes and the model alone and runs the score-scaled PF-ODE at a ρ chosen then; `inspect`
reads a file's fields and bit budget without a model.
"""

from rdp_jax.codec._compress import (
    MODES as MODES,
    CompressInfo as CompressInfo,
    compress as compress,
)
from rdp_jax.codec._container import FORMAT_VERSION as FORMAT_VERSION
from rdp_jax.codec._decompress import (
    DecompressInfo as DecompressInfo,
    FileInfo as FileInfo,
    decompress as decompress,
    inspect as inspect,
)
from rdp_jax.codec._model import identity as identity
