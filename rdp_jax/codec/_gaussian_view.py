"""The Gaussian a file's one-shot prior is built from, and the coordinates it codes in."""

import functools
import hashlib
from typing import NamedTuple

import numpy as np

from rdp_jax import models, scores
from rdp_jax.models._spectrum import cached_portable_eigh


class GaussianView(NamedTuple):
    """N(μ, U diag(λ) Uᵀ) as NumPy arrays; the codec codes z = Uᵀ(x − μ), whose components are
    independent with variances λ (U = I when `eigenvectors` is None).

    `exact` is whether μ, λ and U are fixed bit for bit by the model's definition (a diagonal
    Gaussian's fields, the portable spectrum of a `scores.gaussian_full`'s Σ, or the portable
    fit of a `models.Pretrained`), so that every decoder recomputes the prior's standard
    deviations, and X_σ from the decoded z, identically; otherwise (a `scores.gaussian` of a
    full `var`, whose fields are LAPACK's, or another model's fit) the file stores the standard
    deviations, and `coordinates_digest` keys the stream, so that a decoder holding other
    coordinates raises instead of rebuilding X_σ in them.
    """

    mean: np.ndarray
    variances: np.ndarray
    eigenvectors: np.ndarray | None
    exact: bool

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def to_coords(self, x: np.ndarray) -> np.ndarray:
        """z = Uᵀ(x − μ) for a batch `(n, d)`, in the dtype of `x`."""
        z = x - self.mean.astype(x.dtype)
        return z if self.eigenvectors is None else z @ self.eigenvectors.astype(x.dtype)

    def from_coords(self, z: np.ndarray) -> np.ndarray:
        """x = μ + U z for a batch `(n, d)`, in the dtype of `z`.

        For an exact U, U z is summed over the components in index order, one rounding per
        product and sum (IEEE basic operations), so X_σ is the same bits on every machine; a
        BLAS matmul would sum in an order its kernel chooses."""
        if self.eigenvectors is not None:
            u = self.eigenvectors.astype(z.dtype)
            if self.exact:
                terms = (z[:, j, None] * u[:, j] for j in range(self.dim))
                z = functools.reduce(np.add, terms)
            else:
                z = z @ u.T
        return self.mean.astype(z.dtype) + z

    def coordinates_digest(self) -> bytes:
        """What the stream's key must also cover: nothing where U is exact or I, else 16 bytes
        of BLAKE2b over U (little-endian float64). The prior's λ are stored and μ only shifts
        X_σ, but another U rebuilds X_σ in other coordinates."""
        if self.exact or self.eigenvectors is None:
            return b""
        data = np.asarray(self.eigenvectors, "<f8").tobytes()
        return hashlib.blake2b(data, digest_size=16, person=b"rdp-coords").digest()

    def information_bits(self, sigma: np.ndarray) -> float:
        """I(X; X_σ) = ½ Σ log2(1 + λ_i/σ_i²) in bits for one item (maths §8)."""
        return float(0.5 * np.sum(np.log2(1.0 + self.variances / np.asarray(sigma) ** 2)))


def view(source: scores.Gaussian) -> GaussianView:
    """The `GaussianView` of a `scores.Gaussian` (diagonal, full, or `gaussian_full`).

    A `gaussian_full`'s coordinates are those of the portable Jacobi eigendecomposition of its
    Σ (`models._spectrum.portable_eigh`), not its own
    eigenvectors: LAPACK's differ between machines, by a sign or, where eigenvalues repeat, by
    any rotation of their eigenspace, and z = Uᵀ(x − μ) is what the file codes."""
    if isinstance(source, scores.FullGaussian):
        eigenvalues, eigenvectors = cached_portable_eigh(source.cov)
        return GaussianView(np.asarray(source.mean), eigenvalues, eigenvectors, True)
    vectors = source.eigenvectors
    return GaussianView(
        np.asarray(source.mean),
        np.asarray(source.eigenvalues),
        None if vectors is None else np.asarray(vectors),
        vectors is None,
    )


def fitted(model, dtype: str, where: str) -> GaussianView | None:
    """The Gaussian of the data the model stands for: the model itself when it is a Gaussian,
    else what its `gaussian_fit()` returns (for a `models.Pretrained`, exact, in the file's
    `dtype` whatever the default float dtype), else `None`."""
    if isinstance(model, scores.Gaussian):
        return view(model)
    if isinstance(model, models.Pretrained):
        return view(model.gaussian_fit(dtype))._replace(exact=True)
    fit = getattr(model, "gaussian_fit", None)
    if fit is None:
        return None
    source = fit()
    if not isinstance(source, scores.Gaussian):
        raise ValueError(
            f"{where}: `model.gaussian_fit()` must return a `scores.Gaussian`, got "
            f"{type(source).__name__}."
        )
    return view(source)._replace(exact=False)


def caller_prior(prior, dim: int, dtype: str, where: str) -> GaussianView:
    """A diagonal `scores.Gaussian` the caller passed, cast to the file's dtype (it is stored)."""
    if not isinstance(prior, scores.Gaussian) or prior.eigenvectors is not None:
        raise ValueError(
            f"{where}: `prior` must be a diagonal `scores.Gaussian` (it is stored in the file, "
            f"one mean and variance per dimension); got {type(prior).__name__}"
            + (" with a full covariance." if isinstance(prior, scores.Gaussian) else ".")
        )
    if prior.dim != dim:
        raise ValueError(f"{where}: `prior` has dimension {prior.dim}; the items have {dim}.")
    return GaussianView(
        np.asarray(prior.mean, dtype), np.asarray(prior.eigenvalues, dtype), None, True
    )


def prior_std(variances: np.ndarray, sigma: np.ndarray, dtype: str) -> np.ndarray:
    """√(λ + σ²), the std of the noisy marginal, from IEEE basic operations only (portable)."""
    with np.errstate(over="ignore"):  # an overflow is inf, which `compress` names
        var = np.asarray(variances, np.float64) + np.asarray(sigma, np.float64) ** 2
        return np.sqrt(var).astype(dtype)


def whitened(view_: GaussianView, sigma: np.ndarray, dtype: str) -> scores.Gaussian:
    """The diagonal source of z/σ: N(0, λ/σ²), observed at unit noise (the VE ODE is
    scale-equivariant, so decoding z/σ at σ = 1 and scaling back decodes z at σ, per
    component; maths §7).

    Built as the `scores.Gaussian` directly: λ and σ are already checked finite and > 0, so
    `scores.gaussian`'s validation (a device round trip per call) would only repeat it. Its
    fields stay NumPy arrays: the decoder's jit takes them as it takes device arrays, and
    building those would dispatch to the device once more per field."""
    var = np.asarray(view_.variances, np.float64) / np.asarray(sigma, np.float64) ** 2
    var = np.broadcast_to(var, (view_.dim,)).astype(dtype)
    return scores.Gaussian(mean=np.zeros(view_.dim, dtype), eigenvalues=var, eigenvectors=None)
