"""Offline datasets for the learned models: fixed splits, documented scalings, no downloads.

- "gmm2d": a 2-D Gaussian mixture whose exact score is
  `rdp_jax.scores.gaussian_mixture(*gmm2d_parameters())`;
- "digits": scikit-learn's handwritten digits, 8×8;
- "patches": 8×8 grey patches of scikit-image's photographs, whole photographs held out.
"""

from rdp_jax.datasets._load import (
    NAMES as NAMES,
    SPLITS as SPLITS,
    DatasetInfo as DatasetInfo,
    gmm2d_parameters as gmm2d_parameters,
    info as info,
    load as load,
)
