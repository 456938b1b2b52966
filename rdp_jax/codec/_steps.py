"""How many levels a progressive file's σ grid gets: the fewest expected bits for its model.

A DiffC stream along a geometric grid σ_1 = σ_max > … > σ_S = σ costs, per step, its KL plus
a header and an index overhead per chunk (`rcc.progressive_grid`'s model of format v7). More
steps bring the total KL down towards I(X; X_σ) (maths §10) but pay more headers and chunks, so
the best S depends on the model, the data and the file's size. The step KLs are estimated on
the items being coded:

- step 0 sends X_{σ_1} against the codec's first prior N(0, f² I), f² = m₂ + σ_1²: its KL is
  Σ ½ [ln(f²/σ_1²) + (σ_1² + x²)/f² − 1], exact for the items;
- step n → n+1 sends X_{σ_{n+1}} given X_{σ_n} against the model's reverse step, whose mean
  misses q's by (1 − r)(x − D(X_{σ_n})), r = (σ_{n+1}/σ_n)², so its KL is
  (1 − r) ‖x − D(X_{σ_n}, σ_n)‖² / (2σ_{n+1}²), with ‖x − D‖² the model's denoising error,
  measured once per level of a fine reference grid on one noise draw (a fixed key: the choice
  is deterministic) and interpolated in log σ for the levels of every candidate grid.

A grid is a candidate only if `rcc` can code it: no dimension of a step may carry more than
`rcc._budget.max_dimension_kl()` bits (14.3; `encode` refuses it). Step 0's per-dimension KL is
exact; a later step's is random with X_{σ_n}, so its largest measured value must stay below half
the limit.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from rdp_jax.codec import _container
from rdp_jax.rcc._budget import max_dimension_kl
from rdp_jax.rcc._progressive import expected_step_bits

# Candidate step counts, and the reference grid the denoising error is measured on.
MAX_STEPS = 64
_LEVELS = 64
# Items (× dimensions) the error is measured on: a sample of a large batch, scaled up.
_SAMPLE_COMPONENTS = 2**16
# A later step's largest measured per-dimension KL may use this share of rcc's limit.
_RANDOM_STEP_MARGIN = 0.5


@eqx.filter_jit
def _denoising_errors(model, items, sigmas, noise):
    """Σ and max of (x − D(x + σ ε, σ))² over the items' components at each σ (one level at a
    time: bounded memory)."""

    def level(args):
        sigma, eps = args
        clean = jax.vmap(model.denoise, in_axes=(0, None))(items + sigma * eps, sigma)
        squares = (clean - items) ** 2
        return jnp.sum(squares), jnp.max(squares)

    return jax.lax.map(level, (sigmas, noise))


class DenoisingError:
    """σ ↦ the model's squared denoising error on the batch `x` `(n, *event)` for σ in
    [σ, σ_max], summed over the batch (`total`) and its largest component (`largest`): measured
    at `_LEVELS` levels of the geometric grid (on up to `_SAMPLE_COMPONENTS` components, the sum
    scaled to the batch) and interpolated linearly in (ln σ, ln error)."""

    def __init__(self, model, x: np.ndarray, sigma: float, sigma_max: float, dtype: str):
        n = x.shape[0]
        m = max(1, min(n, _SAMPLE_COMPONENTS // math.prod(x.shape[1:])))
        levels = _container.geometric_grid(sigma, sigma_max, _LEVELS, dtype)
        noise = jax.random.normal(jax.random.key(0), (_LEVELS, m, *x.shape[1:]), dtype)
        total, largest = _denoising_errors(
            model, jnp.asarray(x[:m], dtype), jnp.asarray(levels), noise
        )
        # Relative to σ² (a component's error is at most ~σ²), so that the floor that keeps
        # the logarithm finite is the same at every scale of the data.
        variance = levels.astype(np.float64) ** 2
        self._log_levels = np.log(levels.astype(np.float64))[::-1]
        self._log_total = self._log(np.asarray(total, np.float64) * (n / m) / variance)
        self._log_largest = self._log(np.asarray(largest, np.float64) / variance)

    @staticmethod
    def _log(values: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(values, 1e-300))[::-1]

    def total(self, sigmas: np.ndarray) -> np.ndarray:
        log_sigma = np.log(sigmas)
        return np.exp(np.interp(log_sigma, self._log_levels, self._log_total) + 2 * log_sigma)

    def largest(self, sigmas: np.ndarray) -> np.ndarray:
        log_sigma = np.log(sigmas)
        return np.exp(np.interp(log_sigma, self._log_levels, self._log_largest) + 2 * log_sigma)


def _first_step_kl(x: np.ndarray, sigma_1: float, first_scale: float) -> np.ndarray:
    """KL(N(x, σ_1²) ‖ N(0, f²)) per component, f² = m₂ + σ_1², in nats."""
    f2 = first_scale**2 + sigma_1**2
    return 0.5 * (math.log(f2 / sigma_1**2) + (sigma_1**2 + x**2) / f2 - 1.0)


def _step_kls(grid: np.ndarray, x: np.ndarray, first_scale: float, error_at):
    """(step 0's KL per component, each later step's (1 − r) e(σ_n) / 2σ_{n+1}²), in nats,
    for the squared error e = `error_at` (a `DenoisingError`'s `total` or `largest`)."""
    s = np.asarray(grid, np.float64)
    first = _first_step_kl(np.asarray(x, np.float64), s[0], first_scale)
    r = (s[1:] / s[:-1]) ** 2
    return first, (1 - r) * error_at(s[:-1]) / (2 * s[1:] ** 2)


def step_kl_bits(grid: np.ndarray, x: np.ndarray, first_scale: float, error) -> np.ndarray:
    """The KL of each step along `grid` for the items `x` (module docstring), in bits; `error`
    a `DenoisingError`."""
    first, later = _step_kls(grid, x, first_scale, error.total)
    return np.maximum(np.concatenate([[np.sum(first)], later]), 0.0) / math.log(2.0)


def codable(grid: np.ndarray, x: np.ndarray, first_scale: float, error) -> bool:
    """Whether no step of `grid` puts more than rcc's per-dimension limit in one dimension
    (step 0 exactly, the later ones with `_RANDOM_STEP_MARGIN`)."""
    limit = max_dimension_kl() * math.log(2.0)
    first, later = _step_kls(grid, x, first_scale, error.largest)
    return float(np.max(first)) <= limit and bool(np.all(later <= _RANDOM_STEP_MARGIN * limit))


def best_steps(
    model,
    x: np.ndarray,
    sigma: float,
    sigma_max: float,
    first_scale: float,
    chunk_bits: float,
    dtype: str,
) -> int:
    """The S of 1, …, `MAX_STEPS` whose grid (`_container.geometric_grid`) rcc can code with
    the fewest expected bits (`rcc`'s model of a step: its KL, header and chunk overheads at
    k = `chunk_bits`), for the model, the items `(n, *event)` and the first prior's √m₂; the
    finest grid when none is codable."""
    error = DenoisingError(model, x, sigma, sigma_max, dtype)
    x = np.asarray(x, np.float64)  # once, for every grid's step-0 KL
    best, fewest = MAX_STEPS, math.inf
    for steps in range(1, MAX_STEPS + 1):
        grid = _container.geometric_grid(sigma, sigma_max, steps, dtype)
        if np.any(np.diff(grid) >= 0) or not codable(grid, x, first_scale, error):
            continue  # levels that round together in `dtype`, or a step rcc refuses
        bits = float(
            expected_step_bits(step_kl_bits(grid, x, first_scale, error), chunk_bits).sum()
        )
        if bits < fewest:
            best, fewest = steps, bits
    return best
