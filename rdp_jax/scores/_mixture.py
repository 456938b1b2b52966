"""The exact score source of a mixture of diagonal Gaussians."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax._validate import check
from rdp_jax.scores._base import ScoreSource
from rdp_jax.scores._gaussian import _check_event, _check_sample_count, _check_sigma

# How far Σ w_k may be from 1 before it is an error rather than round-off to normalise away.
_WEIGHT_SUM_RTOL = 1e-6


class GaussianMixture(ScoreSource):
    """X ~ Σ_k w_k N(μ_k, diag(v_k)): the noisy score and denoiser in closed form.

    Convolving each component with N(0, σ²I) gives p_σ = Σ_k w_k N(μ_k, diag(v_k + σ²)), so with
    ℓ_k(x) = ln w_k + ln N(x; μ_k, diag(v_k + σ²)) and posterior weights r_k = softmax(ℓ)_k,

    .. math::
        ∇ \\log p_σ(x) = ∇ \\operatorname{logsumexp}_k ℓ_k(x)
            = -\\sum_k r_k(x) \\frac{x - μ_k}{v_k + σ^2}, \\qquad
        E[X \\mid X_σ = x] = \\sum_k r_k(x) \\Big[μ_k + \\frac{v_k}{v_k + σ^2}(x - μ_k)\\Big],

    the second being Tweedie's formula (maths §7) applied to the first, or equivalently the
    posterior-weighted per-component Wiener filters. Both are computed directly, so neither
    loses precision through the other's cancellation at small σ. Build it with
    `gaussian_mixture`.

    **Fields:**

    - `weights`: w, shape `(K,)`, ≥ 0, summing to 1.
    - `means`: μ, shape `(K, d)`.
    - `variances`: v, shape `(K, d)`, > 0 (isotropic components are broadcast).
    """

    weights: Float[Array, " K"]
    means: Float[Array, "K d"]
    variances: Float[Array, "K d"]

    @property
    def event_shape(self) -> tuple[int]:
        """(d,), the shape of one sample."""
        return (self.dim,)

    @property
    def dim(self) -> int:
        """d, the event dimension."""
        return self.means.shape[1]

    @property
    def num_components(self) -> int:
        """K, the number of components."""
        return self.means.shape[0]

    def _posterior(self, x: Array, sigma: Array) -> tuple[Array, Array, Array]:
        """r_k(x), x - μ_k and v_k + σ²; the logits are shifted by their max inside softmax."""
        total = self.variances + sigma**2
        diff = x - self.means
        log_normal = -0.5 * jnp.sum(diff**2 / total + jnp.log(2 * jnp.pi * total), axis=-1)
        # ln 0 = -inf drops a zero-weight component exactly; some w_k > 0 keeps the max finite.
        return jax.nn.softmax(jnp.log(self.weights) + log_normal), diff, total

    def score(self, x: Float[ArrayLike, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        """∇ log p_σ(x), the exact noisy score of the mixture.

        **Arguments:**

        - `x`: one sample, shape `(d,)`.
        - `sigma`: the scalar noise level σ > 0.

        **Returns:** the score, shape `(d,)`.

        **Raises:** `ValueError` naming `x` (wrong shape) or `sigma` (not finite and > 0).
        """
        x = _check_event(x, self.dim, "GaussianMixture.score")
        sigma = _check_sigma(sigma, "GaussianMixture.score")
        r, diff, total = self._posterior(x, sigma)
        return -r @ (diff / total)

    def denoise(self, x: Float[ArrayLike, " d"], sigma: Float[ArrayLike, ""]) -> Float[Array, " d"]:
        """E[X | X_σ = x], the posterior-weighted per-component Wiener filters.

        **Arguments / Raises:** as `score`.

        **Returns:** the MMSE estimate, shape `(d,)`.
        """
        x = _check_event(x, self.dim, "GaussianMixture.denoise")
        sigma = _check_sigma(sigma, "GaussianMixture.denoise")
        r, diff, total = self._posterior(x, sigma)
        return r @ (self.means + self.variances / total * diff)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """n independent draws of X: a component k ~ w, then μ_k + √v_k z with z ~ N(0, I).

        **Arguments:**

        - `key`: a JAX PRNG key.
        - `n`: the number of samples, a Python int ≥ 0.

        **Returns:** samples, shape `(n, d)`, in the dtype of `means`.

        **Raises:** `ValueError` naming `n`.
        """
        return self._sample(key, _check_sample_count(n, "GaussianMixture.sample"))

    # One compilation per (structure, n) rather than one per primitive when called eagerly.
    @eqx.filter_jit
    def _sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        key_component, key_noise = jax.random.split(key)
        k = jax.random.categorical(key_component, jnp.log(self.weights), shape=(n,))
        z = jax.random.normal(key_noise, (n, self.dim), self.means.dtype)
        return self.means[k] + jnp.sqrt(self.variances[k]) * z


def gaussian_mixture(
    weights: Float[ArrayLike, " K"],
    means: Float[ArrayLike, "K d"],
    vars: Float[ArrayLike, " K *d"],
) -> GaussianMixture:
    """The score source of X ~ Σ_k w_k N(μ_k, diag(v_k)).

    **Arguments:**

    - `weights`: w, shape `(K,)`, ≥ 0 and summing to 1 within a relative 1e-6; they are
      renormalised to sum to 1 exactly.
    - `means`: μ, shape `(K, d)`.
    - `vars`: per-component variances, shape `(K, d)` (diagonal) or `(K,)` (isotropic), > 0.

    **Returns:** a `GaussianMixture`, event shape `(d,)`, in the inputs' common floating dtype.

    **Raises:** `ValueError` naming `weights`, `means` or `vars`: wrong or mismatched shapes,
    K = 0 or d = 0, non-finite entries, negative weights or a sum off 1, variances not > 0.
    """
    weights, means, variances = (jnp.asarray(a) for a in (weights, means, vars))
    dtype = jnp.result_type(float, weights, means, variances)
    weights, means, variances = (a.astype(dtype) for a in (weights, means, variances))
    if means.ndim != 2 or 0 in means.shape:
        raise ValueError(f"gaussian_mixture: `means` must have shape (K, d), got {means.shape}.")
    K, d = means.shape
    if weights.shape != (K,):
        raise ValueError(
            f"gaussian_mixture: `weights` must have shape ({K},), got {weights.shape}."
        )
    if variances.shape not in ((K,), (K, d)):
        raise ValueError(
            f"gaussian_mixture: `vars` must have shape ({K},) or ({K}, {d}), got {variances.shape}."
        )

    if variances.ndim == 1:
        variances = jnp.broadcast_to(variances[:, None], (K, d))
    total = jnp.sum(weights)
    weights, means, variances = check(
        (weights, means, variances),
        (~jnp.isfinite(means), "gaussian_mixture: `means` must be finite."),
        (
            ~(jnp.isfinite(variances) & (variances > 0)),
            "gaussian_mixture: `vars` must be finite and > 0.",
        ),
        (
            ~(jnp.isfinite(weights) & (weights >= 0)) | ~(jnp.abs(total - 1) <= _WEIGHT_SUM_RTOL),
            "gaussian_mixture: `weights` must be >= 0 and sum to 1 (within 1e-6).",
        ),
    )
    return GaussianMixture(weights=weights / total, means=means, variances=variances)
