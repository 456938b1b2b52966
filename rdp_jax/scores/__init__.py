"""Score sources: ∇ log p_σ and the Tweedie denoiser E[X | X_σ = x], in VE coordinates.

Analytic sources (`gaussian`, `gaussian_full`, `gaussian_mixture`) are exact and give ground
truth; `from_model` reads a learned score, ε or x₀ model of any schedule as the same protocol;
`fingerprint` identifies a model by its definition and weights, for streams coded against it.
"""

from rdp_jax.scores._adapter import (
    ModelScore as ModelScore,
    Parametrization as Parametrization,
    from_model as from_model,
)
from rdp_jax.scores._base import ScoreSource as ScoreSource
from rdp_jax.scores._fingerprint import fingerprint as fingerprint
from rdp_jax.scores._gaussian import Gaussian as Gaussian, gaussian as gaussian
from rdp_jax.scores._gaussian_full import (
    FullGaussian as FullGaussian,
    gaussian_full as gaussian_full,
)
from rdp_jax.scores._mixture import (
    GaussianMixture as GaussianMixture,
    gaussian_mixture as gaussian_mixture,
)
