"""A full-covariance Gaussian that keeps its covariance as given, for whitening and for files."""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from rdp_jax._validate import as_float
from rdp_jax.scores._gaussian import Gaussian, gaussian


def _last_axis(x: ArrayLike, dim: int, name: str, where: str) -> Array:
    x = as_float(x)
    if x.ndim < 1 or x.shape[-1] != dim:
        raise ValueError(f"{where}: `{name}` must have a last axis of {dim}, got {x.shape}.")
    return x


class FullGaussian(Gaussian):
    """X ~ N(μ, Σ) for a full Σ = U diag(λ) Uᵀ, with Σ itself kept beside its eigendecomposition.

    Score, denoiser and sampling are `Gaussian`'s (exact Wiener-filter matmuls, maths §6-§7).
    What this adds is the covariance exactly as given, and the change to and from the
    eigenbasis, where X has independent components of variances λ and isotropic noise stays
    isotropic (it is rotation-invariant), so per-component noise and ρ (maths §8) apply there.

    The eigendecomposition's last bits depend on the machine's LAPACK; `definition`, (μ, Σ),
    does not, so a stream that must decode on any machine identifies the source by
    `scores.fingerprint(source.definition)`. Build it with `gaussian_full`.

    **Fields:** `mean` μ `(d,)`; `eigenvalues` λ `(d,)` ascending; `eigenvectors` U `(d, d)`;
    `cov` Σ `(d, d)`, as given (symmetric).
    """

    cov: Float[Array, "d d"]

    @property
    def covariance(self) -> Float[Array, "d d"]:
        """Σ, as given (not reassembled from the eigendecomposition)."""
        return self.cov

    @property
    def definition(self) -> tuple[Float[Array, " d"], Float[Array, "d d"]]:
        """(μ, Σ): what identifies the source the same way on every machine."""
        return (self.mean, self.cov)

    def to_eigenbasis(self, x: Float[ArrayLike, "*batch d"]) -> Float[Array, "*batch d"]:
        """z = Uᵀ(x − μ): independent components of variances λ.

        **Arguments:** `x`: one sample `(d,)` or a batch `(..., d)`.

        **Returns:** z, shaped like `x`.

        **Raises:** `ValueError` naming `x` when its last axis is not d.
        """
        x = _last_axis(x, self.dim, "x", "FullGaussian.to_eigenbasis")
        return (x.astype(self.mean.dtype) - self.mean) @ self.eigenvectors

    def from_eigenbasis(self, z: Float[ArrayLike, "*batch d"]) -> Float[Array, "*batch d"]:
        """x = μ + U z, the inverse of `to_eigenbasis`.

        **Arguments / Raises:** as `to_eigenbasis`, for `z`.

        **Returns:** x, shaped like `z`.
        """
        z = _last_axis(z, self.dim, "z", "FullGaussian.from_eigenbasis")
        return self.mean + z.astype(self.mean.dtype) @ self.eigenvectors.T


def gaussian_full(mean: Float[ArrayLike, "*d"], cov: Float[ArrayLike, "d d"]) -> FullGaussian:
    """The score source of X ~ N(μ, Σ) for a full covariance Σ, eigendecomposed once.

    **Arguments:**

    - `mean`: μ, shape `(d,)`, or a scalar broadcast to d.
    - `cov`: Σ, shape `(d, d)`, symmetric positive definite.

    **Returns:** a `FullGaussian` in the common floating dtype of the inputs.

    **Raises:** `ValueError` naming `mean` or `cov`: `cov` not 2-D, and every check of
    `gaussian` (shapes, finiteness, symmetry, positive definiteness).
    """
    if jnp.ndim(cov) != 2:
        raise ValueError(f"gaussian_full: `cov` must be a (d, d) matrix, got {jnp.shape(cov)}.")
    try:
        source = gaussian(mean, cov)
    except ValueError as error:
        message = str(error).replace("gaussian: ", "gaussian_full: ").replace("`var`", "`cov`")
        raise ValueError(message) from None
    cov = jnp.asarray(cov, source.mean.dtype)
    return FullGaussian(
        mean=source.mean,
        eigenvalues=source.eigenvalues,
        eigenvectors=source.eigenvectors,
        cov=0.5 * (cov + cov.T),
    )
