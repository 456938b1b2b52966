"""Learned denoisers (flax NNX) with EDM preconditioning, their training, and shipped weights.

- `MLP`, `UNet`: the networks; `EDMDenoiser`: Karras et al.'s preconditioning around one;
- `train`: denoising score matching with AdamW, EMA, data-parallel over local devices;
- `pretrained(name)`: a shipped model ("gmm2d", "digits", "patches") as a ready `ScoreSource`
  with `gaussian_fit()`; `save`/`load` for weights files; `score_source` for any denoiser;
- `RECIPES`, `train_recipe`: how the shipped models were trained (`rdp-jax train`).
"""

from rdp_jax.models._classifier import (
    Classifier as Classifier,
    pretrained_classifier as pretrained_classifier,
    save_classifier as save_classifier,
    train_classifier as train_classifier,
)
from rdp_jax.models._edm import EDMDenoiser as EDMDenoiser
from rdp_jax.models._networks import (
    MLP as MLP,
    UNet as UNet,
    make_network as make_network,
    num_parameters as num_parameters,
)
from rdp_jax.models._quality import (
    DenoisingComparison as DenoisingComparison,
    compare_denoisers as compare_denoisers,
)
from rdp_jax.models._recipes import (
    RECIPES as RECIPES,
    Recipe as Recipe,
    initial_denoiser as initial_denoiser,
    train_recipe as train_recipe,
)
from rdp_jax.models._train import TrainResult as TrainResult, train as train
from rdp_jax.models._weights import (
    PRETRAINED as PRETRAINED,
    Pretrained as Pretrained,
    card as card,
    data_moments as data_moments,
    load as load,
    pretrained as pretrained,
    save as save,
    score_source as score_source,
)
