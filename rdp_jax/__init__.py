"""rdp-jax: diffusion-based compression measured against the Gaussian RDP function.

The closed-form truth lives in the separate `theory` package; `rdp_jax` holds the machinery:

- `decode`, `tweedie_denoise`, `posterior_sample`: the score-scaled PF-ODE decoder of Wang, Bi &
  Zhang (2026) and the paper's baselines;
- `scores`: score sources (analytic Gaussians and mixtures, adapters for learned models);
- `VE`, `VPLinear`, `VPCosine`: noise schedules with exact t ↔ σ conversions;
- `metrics`: distortion and perception estimators with standard errors;
- `rcc`: reverse channel coding of diagonal Gaussians to portable bitstreams (PFR and ORC,
  progressive DiffC coding);
- `datasets`: offline data (a 2-D mixture, 8×8 digits, grey photograph patches);
- `models`: flax NNX denoisers with EDM preconditioning, their training, and shipped weights
  (`models.pretrained`);
- `codec`: the compressor, data to a self-contained file and back at any ρ (`compress`,
  `decompress`, `inspect`);
- `experiments`: the measurements behind `rdp-jax verify` and the benchmarks.

Bad input raises `ValueError` naming the argument. A bad value under `jax.jit` can only be seen
at run time, where XLA wraps it in a `jax.errors.JaxRuntimeError`; `rdp_jax.jit` (the same as
`theory.jit`: `equinox.filter_jit` semantics) re-raises it as that `ValueError`.

Each part is imported when first used, so `from rdp_jax import rcc` does not load the decoder's
ODE solvers or the optimal-transport library.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("codec", "datasets", "experiments", "metrics", "models", "rcc", "scores")
_ATTRIBUTES = {
    "METHODS": "rdp_jax._decoder",
    "DecodeInfo": "rdp_jax._decoder",
    "decode": "rdp_jax._decoder",
    "posterior_sample": "rdp_jax._decoder",
    "tweedie_denoise": "rdp_jax._decoder",
    "VE": "rdp_jax._schedules",
    "VPCosine": "rdp_jax._schedules",
    "VPLinear": "rdp_jax._schedules",
    "jit": "theory._validate",
}
__all__ = [*_SUBMODULES, *_ATTRIBUTES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"rdp_jax.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'rdp_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
