"""The exact score source of a Gaussian X ~ N(μ, Σ), diagonal or full covariance."""

import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax._validate import as_float, check
from rdp_jax.scores._base import ScoreSource


def _check_event(x: ArrayLike, dim: int, where: str) -> Array:
    """One sample of shape `(dim,)`; the shape is static, so this raises even under `jit`."""
    x = as_float(x)
    if x.shape != (dim,):
        raise ValueError(f"{where}: `x` must be one sample of shape ({dim},), got {x.shape}.")
    return x


def _check_sigma(sigma: ArrayLike, where: str) -> Array:
    sigma = as_float(sigma)
    if sigma.ndim != 0:
        raise ValueError(f"{where}: `sigma` must be a scalar, got shape {sigma.shape}.")
    return check(sigma, (~(jnp.isfinite(sigma) & (sigma > 0)), f"{where}: `sigma` must be > 0."))


def _check_sample_count(n: int, where: str) -> int:
    """A static sample count: a Python or numpy integer ≥ 0 (not a bool, not traced)."""
    if not isinstance(n, numbers.Integral) or isinstance(n, bool | np.bool_) or n < 0:
        raise ValueError(f"{where}: `n` must be a non-negative int, got {n!r}.")
    return int(n)


class Gaussian(ScoreSource):
    """X ~ N(μ, Σ) with Σ = U diag(λ) Uᵀ, eigendecomposed once at construction.

    The noisy marginal is p_σ = N(μ, Σ + σ²I), so score and denoiser are both exact matmuls:

    .. math::
        ∇ \\log p_σ(x) = -U \\operatorname{diag}\\Big(\\frac{1}{λ + σ^2}\\Big) U^⊤ (x - μ),
        \\qquad
        E[X \\mid X_σ = x] = μ + U \\operatorname{diag}\\Big(\\frac{λ}{λ + σ^2}\\Big) U^⊤ (x - μ),

    the Wiener filter Σ(Σ + σ²I)⁻¹ (maths §6-§7). Each is computed directly rather than from
    the other by Tweedie, which would cancel catastrophically in (D(x) - x)/σ² at small σ.
    Build it with `gaussian`.

    **Fields:**

    - `mean`: μ, shape `(d,)`.
    - `eigenvalues`: λ, shape `(d,)`, the variances along `eigenvectors`.
    - `eigenvectors`: U, shape `(d, d)` orthogonal, or `None` for a diagonal Σ (U = I).
    """

    mean: Float[Array, " d"]
    eigenvalues: Float[Array, " d"]
    eigenvectors: Float[Array, "d d"] | None

    @property
    def event_shape(self) -> tuple[int]:
        """(d,), the shape of one sample."""
        return (self.dim,)

    @property
    def dim(self) -> int:
        """d, the event dimension."""
        return self.mean.shape[0]

    @property
    def covariance(self) -> Float[Array, "d d"]:
        """Σ, reassembled from the eigendecomposition."""
        if self.eigenvectors is None:
            return jnp.diag(self.eigenvalues)
        return (self.eigenvectors * self.eigenvalues) @ self.eigenvectors.T

    def _filter(self, gain: Float[Array, " d"], v: Float[Array, " d"]) -> Float[Array, " d"]:
        """U diag(gain) Uᵀ v."""
        if self.eigenvectors is None:
            return gain * v
        return self.eigenvectors @ (gain * (self.eigenvectors.T @ v))

    def score(self, x: Float[ArrayLike, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        """∇ log p_σ(x) = -(Σ + σ²I)⁻¹(x - μ).

        **Arguments:**

        - `x`: one sample, shape `(d,)`.
        - `sigma`: the scalar noise level σ > 0.

        **Returns:** the score, shape `(d,)`.

        **Raises:** `ValueError` naming `x` (wrong shape) or `sigma` (not finite and > 0).
        """
        x = _check_event(x, self.dim, "Gaussian.score")
        sigma = _check_sigma(sigma, "Gaussian.score")
        return -self._filter(1 / (self.eigenvalues + sigma**2), x - self.mean)

    def denoise(self, x: Float[ArrayLike, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        """E[X | X_σ = x] = μ + Σ(Σ + σ²I)⁻¹(x - μ).

        **Arguments / Raises:** as `score`.

        **Returns:** the MMSE estimate, shape `(d,)`.
        """
        x = _check_event(x, self.dim, "Gaussian.denoise")
        sigma = _check_sigma(sigma, "Gaussian.denoise")
        gain = self.eigenvalues / (self.eigenvalues + sigma**2)
        return self.mean + self._filter(gain, x - self.mean)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """n independent draws of X, as μ + U diag(√λ) z with z ~ N(0, I).

        **Arguments:**

        - `key`: a JAX PRNG key.
        - `n`: the number of samples, a Python int ≥ 0.

        **Returns:** samples, shape `(n, d)`, in the dtype of `mean`.

        **Raises:** `ValueError` naming `n`.
        """
        return self._sample(key, _check_sample_count(n, "Gaussian.sample"))

    # One compilation per (structure, n) rather than one per primitive when called eagerly.
    @eqx.filter_jit
    def _sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        z = jax.random.normal(key, (n, self.dim), self.mean.dtype) * jnp.sqrt(self.eigenvalues)
        if self.eigenvectors is not None:
            z = z @ self.eigenvectors.T
        return self.mean + z


def gaussian(mean: Float[ArrayLike, "*d"], var: Float[ArrayLike, "*d"]) -> Gaussian:
    """The score source of X ~ N(μ, Σ).

    **Arguments:**

    - `mean`: μ, shape `(d,)`, or a scalar broadcast to the dimension of `var`.
    - `var`: Σ as a scalar (isotropic, broadcast to `mean`), shape `(d,)` (diagonal), or shape
      `(d, d)` (full, symmetric positive definite). A full Σ is eigendecomposed here, once.
      With both arguments scalar the event shape is `(1,)`.

    **Returns:** a `Gaussian`, event shape `(d,)`, in the common floating dtype of the inputs.

    **Raises:** `ValueError` naming `mean` or `var`: shapes that do not match or are not 0-, 1-
    or 2-D as above; non-finite entries; a diagonal `var` that is not > 0; a full `var` that is
    not symmetric (to 100 ulp of its largest entry) or whose smallest eigenvalue is not above
    d·ulp of the largest (not numerically positive definite).
    """
    mean, var = jnp.asarray(mean), jnp.asarray(var)
    dtype = jnp.result_type(float, mean, var)
    mean, var = mean.astype(dtype), var.astype(dtype)
    if mean.ndim > 1:
        raise ValueError(f"gaussian: `mean` must be a scalar or shape (d,), got {mean.shape}.")
    if var.ndim > 2 or (var.ndim == 2 and var.shape[0] != var.shape[1]):
        raise ValueError(f"gaussian: `var` must be a scalar, (d,) or (d, d), got {var.shape}.")
    dim = max(mean.shape[0] if mean.ndim else 1, var.shape[0] if var.ndim else 1)
    if (mean.ndim and mean.shape[0] != dim) or (var.ndim and var.shape[0] != dim):
        raise ValueError(
            f"gaussian: `mean` {mean.shape} and `var` {var.shape} disagree on the dimension."
        )
    if dim == 0:
        raise ValueError("gaussian: `mean` and `var` need at least one dimension.")
    mean = jnp.broadcast_to(mean, (dim,))
    bad_mean = (~jnp.isfinite(mean), "gaussian: `mean` must be finite.")

    if var.ndim < 2:
        var = jnp.broadcast_to(var, (dim,))
        bad_var = (~(jnp.isfinite(var) & (var > 0)), "gaussian: `var` must be finite and > 0.")
        mean, var = check((mean, var), bad_mean, bad_var)
        return Gaussian(mean=mean, eigenvalues=var, eigenvectors=None)

    eps = jnp.finfo(dtype).eps
    scale = jnp.max(jnp.abs(var))
    # eigh reads one triangle; symmetrising first makes the result independent of which.
    eigenvalues, eigenvectors = jnp.linalg.eigh(0.5 * (var + var.T))
    mean, eigenvalues, eigenvectors = check(
        (mean, eigenvalues, eigenvectors),
        bad_mean,
        (~jnp.isfinite(var), "gaussian: `var` must be finite."),
        (jnp.abs(var - var.T) > 100 * eps * scale, "gaussian: `var` must be symmetric."),
        (
            eigenvalues[0] <= dim * eps * eigenvalues[-1],
            "gaussian: `var` must be positive definite.",
        ),
    )
    return Gaussian(mean=mean, eigenvalues=eigenvalues, eigenvectors=eigenvectors)
