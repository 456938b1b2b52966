"""Model SPECs of the command line: a shipped model named in one word.

Grammar (`KIND:ARGUMENTS`):

- `gaussian:V1,V2,...`: zero mean, diagonal variances (`gaussian:4,1,0.25`).
- `gaussian:dim=D,var=V[,mean=M]`: isotropic (`gaussian:dim=64,var=1`).
- `gaussian:PATH.npy`: variances (1-D array) or a full covariance (2-D array) from a file,
  zero mean; a full one is `scores.gaussian_full`.
- `pretrained:NAME`: a learned model of `rdp_jax.models.pretrained(NAME)`.

Gaussian models are float64.
"""

import math

from rdp_jax._commands._arguments import load_array

HELP = (
    "model SPEC: gaussian:V1,V2,... (diagonal variances, zero mean) | "
    "gaussian:dim=D,var=V[,mean=M] (isotropic) | gaussian:PATH.npy (variances, or a full "
    "covariance matrix) | pretrained:NAME (a learned model of rdp_jax.models)"
)


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"model SPEC {spec!r}: {text!r} is not a number.") from None


def _gaussian(arguments: str, spec: str):
    import numpy as np

    from rdp_jax import scores
    from rdp_jax.codec._container import MAX_COMPONENTS

    if arguments.endswith(".npy"):
        cov = load_array(arguments, f"model SPEC {spec!r}:").astype(np.float64)
        if cov.ndim == 2:
            return scores.gaussian_full(np.zeros(cov.shape[0]), cov)
        if cov.ndim != 1:
            raise ValueError(f"model SPEC {spec!r}: the array must be 1-D or 2-D, got {cov.shape}.")
        return scores.gaussian(np.zeros(cov.size), cov)
    parts = [p.strip() for p in arguments.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"model SPEC {spec!r}: give variances, dim=D,var=V or a .npy file.")
    if any("=" in p for p in parts):
        if not all("=" in p for p in parts):
            raise ValueError(
                f"model SPEC {spec!r}: mix of fields and bare numbers; use dim=D,var=V."
            )
        names = [p.split("=", 1)[0] for p in parts]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"model SPEC {spec!r}: the field {repeated[0]} is given twice.")
        fields = dict(p.split("=", 1) for p in parts)
        unknown = sorted(set(fields) - {"dim", "var", "mean"})
        if unknown:
            raise ValueError(f"model SPEC {spec!r}: unknown fields {unknown}; use dim, var, mean.")
        if "dim" not in fields:
            raise ValueError(f"model SPEC {spec!r}: dim=D is required with var=V.")
        dim = _number(fields["dim"], spec)
        top = MAX_COMPONENTS  # past it no file could hold one item
        if not (math.isfinite(dim) and dim == int(dim) and 1 <= dim <= top):
            raise ValueError(
                f"model SPEC {spec!r}: dim must be an integer from 1 to {top}, got {dim:g}."
            )
        var = _number(fields.get("var", "1"), spec)
        mean = _number(fields.get("mean", "0"), spec)
        return scores.gaussian(np.full(int(dim), mean), np.full(int(dim), var))
    variances = np.array([_number(p, spec) for p in parts])
    return scores.gaussian(np.zeros(variances.size), variances)


def parse(spec: str):
    """The score source a SPEC names (see the module docstring).

    **Raises:** `ValueError` with one line naming the SPEC for an unknown kind or bad
    arguments (and what `scores.gaussian` raises); `OSError` for a missing file.
    """
    kind, _, arguments = spec.partition(":")
    if kind == "gaussian":
        return _gaussian(arguments, spec)
    if kind == "pretrained":
        if not arguments:
            raise ValueError(f"model SPEC {spec!r}: name the model, pretrained:NAME.")
        from rdp_jax import models

        return models.pretrained(arguments)
    raise ValueError(f"model SPEC {spec!r}: unknown kind {kind!r}; use gaussian: or pretrained:.")
