"""Decoder claims (e)-(h): the score-scaled PF-ODE on Gaussian mixtures (maths §7).

The references share no code with `rdp_jax.scores`: scipy's normal CDF, bisection, and scipy's
DOP853 on a numpy denoiser.
"""

import functools
import inspect
import math
from typing import NamedTuple

import jax
import numpy as np
from scipy import integrate, special, stats

from rdp_jax import metrics
from rdp_jax._decoder import decode
from rdp_jax.experiments import empirical_dp, empirical_dp_bound
from rdp_jax.scores import gaussian_mixture
from rdp_jax.verify._registry import Measurement, claim

# (weights, means, variances) by dimension: three separated modes in 1-D, and in 2-D the mixture
# of claim (e). At σ = 1 (claims (f)-(h)) the noise blurs the modes into each other, so the
# decoder has to pull them apart again.
_MIXTURES = {
    1: (
        np.array([0.3, 0.5, 0.2]),
        np.array([[-2.0], [0.5], [2.5]]),
        np.array([[0.2], [0.3], [0.1]]),
    ),
    2: (
        np.array([0.5, 0.3, 0.2]),
        np.array([[-1.5, 0.0], [1.0, 1.0], [1.0, -1.5]]),
        np.array([[0.3, 0.2], [0.1, 0.4], [0.2, 0.2]]),
    ),
}
_MIXTURE_SIGMA = 1.0
_MIXTURE_N = 4000
# The ODE references (claims (f), (h)) take the first samples only: scipy integrates them as one
# system, whose step size the hardest of them sets.
_REFERENCE_N = 500


@claim(
    "(e) Gaussian mixture: distance to the DP bound",
    "Freirich et al. 2021 bound D* + (W2(p_X,p_X*) - √P)₊², 2-D, 3 components, σ = 0.5",
    group="decoder",
    evidence="Monte Carlo",
    full=True,
)
def _mixture_gap() -> Measurement:
    model = gaussian_mixture(*_MIXTURES[2])
    sigma, n = 0.5, 4000

    def ot(a, b):
        return metrics.w2_exact(a, b, max_samples=1000, num_repeats=4, key=jax.random.key(7))

    bound = empirical_dp_bound(jax.random.key(5), model, model.sample, sigma, n, ot)
    points = empirical_dp(
        jax.random.key(6), model, model.sample, sigma, (0.0, 0.5, 1.0), n, ot, num_steps=20
    )
    w2 = math.sqrt(float(bound.w2sq_mmse.value))
    rows, gaps = [], []
    for p in points:
        P = float(p.perception.value)
        D_bound = float(bound.mmse.value) + max(w2 - math.sqrt(P), 0.0) ** 2
        gap = float(p.distortion.value) - D_bound
        gaps.append(gap)
        rows.append(
            f"ρ={p.rho:g}: D={float(p.distortion.value):.4f}±{float(p.distortion.stderr):.4f}"
            f" P={P:.4f}±{float(p.perception.stderr):.4f} gap={gap:+.4f}"
        )
    detail = (
        f"D*={float(bound.mmse.value):.4f}±{float(bound.mmse.stderr):.4f}, "
        f"W2²(p_X,p_X*)={float(bound.w2sq_mmse.value):.4f}±{float(bound.w2sq_mmse.stderr):.4f}; "
        + "; ".join(rows)
        + ". OT values are biased upward (sub-samples of 1000)."
    )
    return Measurement(max(gaps), 0.0, 0.0, "report", detail=detail)


def moment_matched(d: int):
    """The Gaussian with the d-D mixture's mean and covariance: the nearest wrong source.

    Both mixtures have a diagonal covariance (in 2-D the cross term Σ_k w_k (μ_k - μ̄)_1
    (μ_k - μ̄)_2 = 0.3·1.25·1 + 0.2·1.25·(-1.5) vanishes), so the Gaussian is written as the
    mixture with weights (1, 0, 0). That is exactly the Gaussian, ln 0 = -inf dropping the other
    components, and with the mixture's own shapes it reuses the mixture's compiled decoder.
    """
    weights, means, variances = _MIXTURES[d]
    mean = weights @ means
    variance = weights @ variances + weights @ (means - mean) ** 2
    K = weights.size
    return gaussian_mixture(
        np.eye(K)[0], np.broadcast_to(mean, means.shape), np.broadcast_to(variance, means.shape)
    )


@functools.cache
def mixture_observations(d: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): n draws of the d-D mixture by numpy (not the source's own sampler), y = x + σn."""
    weights, means, variances = _MIXTURES[d]
    rng = np.random.default_rng(100 + d)
    k = rng.choice(weights.size, size=_MIXTURE_N, p=weights)
    x = means[k] + np.sqrt(variances[k]) * rng.standard_normal((_MIXTURE_N, d))
    return x, x + _MIXTURE_SIGMA * rng.standard_normal((_MIXTURE_N, d))


@functools.cache
def mixture_decoded(d: int, rho: float, source: str = "mixture") -> tuple[np.ndarray, np.ndarray]:
    """(x̂, NFE per sample): tsit5, decode's reference method, on `mixture_observations(d)`.

    `source` is "mixture" (the exact score) or "moment-matched" (the Gaussian of `moment_matched`).
    """
    model = gaussian_mixture(*_MIXTURES[d]) if source == "mixture" else moment_matched(d)
    x_hat, info = decode(mixture_observations(d)[1], _MIXTURE_SIGMA, rho, model, return_info=True)
    return np.asarray(x_hat), np.asarray(info.nfe)


def _normal_mixture_cdf(z, weights, means, stds) -> np.ndarray:
    """Σ_k w_k Φ((z - μ_k)/s_k), for an array z."""
    return np.sum(weights * stats.norm.cdf((np.asarray(z)[..., None] - means) / stds), axis=-1)


# KS directions θ: the line itself in 1-D; the axes and the diagonals in 2-D. A projection θ·X of
# a mixture of diagonal Gaussians is the 1-D mixture Σ_k w_k N(θ·μ_k, Σ_i θ_i² v_ki): exact CDF.
_DIRECTIONS = {
    1: np.array([[1.0]]),
    2: np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]) / np.sqrt([[1], [1], [2], [2]]),
}
# A KS p-value is uniform under the null, so Bonferroni over the 1 + 4 tests of claim (g)
# (reject when 5 min p < α) fails a correct decoder with probability ≤ α = 1e-3.
KS_TESTS = sum(len(directions) for directions in _DIRECTIONS.values())
KS_ALPHA = 1e-3


def ks_pvalues(d: int, samples: np.ndarray) -> list[float]:
    """One-sample KS p-values of the projections θ·x̂ against p_X's projected CDFs (scipy)."""
    weights, means, variances = _MIXTURES[d]
    pvalues = []
    for theta in _DIRECTIONS[d]:
        law = (weights, means @ theta, np.sqrt(variances @ theta**2))
        pvalues.append(float(stats.kstest(samples @ theta, _normal_mixture_cdf, args=law).pvalue))
    return pvalues


def _posterior_mean_and_slope(x: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """E[X | X_σ = x] and its derivative Var[X | X_σ = x]/σ² for the 1-D mixture, in numpy.

    Per component k the posterior is N(m_k, c_k), m_k = μ_k + v_k (x - μ_k)/(v_k + σ²),
    c_k = v_k σ²/(v_k + σ²), weighted by r_k(x) ∝ w_k N(x; μ_k, v_k + σ²). The variance is
    taken by the law of total variance, Σ r_k c_k + Σ r_k (m_k - m)², which does not cancel as
    σ → 0 the way E[X²] - m² would.
    """
    weights, means, variances = (a.reshape(-1) for a in _MIXTURES[1])
    total = variances + sigma**2
    diff = x[:, None] - means
    r = special.softmax(np.log(weights) - 0.5 * diff**2 / total - 0.5 * np.log(total), axis=1)
    m = means + variances / total * diff
    mean = np.sum(r * m, axis=1)
    slope = np.sum(r * (variances / total + (m - mean[:, None]) ** 2 / sigma**2), axis=1)
    return mean, slope


# decode's adaptive controller, and the reference's: DOP853 at 1e-12 (local error per step).
_DECODE_RTOL = inspect.signature(decode).parameters["rtol"].default
_DECODE_ATOL = inspect.signature(decode).parameters["atol"].default
_REFERENCE_TOL = 1e-12


class OdeReference(NamedTuple):
    """The 1-D decoder ODE's end point by scipy, and what bounds a solver's error against it.

    - `end`: x̂ per observation.
    - `gain`: G = max over the path of e^{A(u) - A(end)}, with A(u) = ∫ κ(∂D/∂x - 1) du the
      log-gain of the linearised flow: a perturbation δ of x at u reaches the end as
      δ e^{A(u) - A(end)}, so no local error anywhere on the path is amplified by more than G.
    - `scale`: S = max |x| on the path, the scale of the controllers' relative tolerances.
    - `own_error`: the reference's own first-order bound, its DOP853 steps (NFE/12) times its
      local tolerance 1e-12 (S + 1), before the gain.
    """

    end: np.ndarray
    gain: np.ndarray
    scale: np.ndarray
    own_error: np.ndarray

    def bound(self, nfe: np.ndarray) -> np.ndarray:
        """G (Σ_steps (rtol S + atol) + own error): decode's tsit5 takes ≤ NFE/6 steps (6 field
        evaluations each), each with local error ≤ its rtol, atol (decode's defaults)."""
        steps = nfe / 6
        return self.gain * (steps * (_DECODE_RTOL * self.scale + _DECODE_ATOL) + self.own_error)


def ode_reference(y: np.ndarray, rho: float) -> OdeReference:
    """dx/du = κ(x - D(x, e^u)) (maths §7) for the 1-D mixture, by scipy's DOP853 at 1e-12.

    From u = ln σ to ln 1e-6, then one Tweedie step (the remaining flow moves x by
    O(σ²|∇log p|), ~1e-11 here), with A(u) of `OdeReference` integrated alongside; its maximum
    is taken on a 2001-point grid of the dense output.
    """
    kappa, n, sigma_end = 1 + rho, y.size, 1e-6

    def field(u, state):
        x = state[:n]
        D, slope = _posterior_mean_and_slope(x, math.exp(u))
        return np.concatenate([kappa * (x - D), kappa * (slope - 1)])

    span = (math.log(_MIXTURE_SIGMA), math.log(sigma_end))
    solution = integrate.solve_ivp(
        field,
        span,
        np.concatenate([y, np.zeros(n)]),
        method="DOP853",
        rtol=_REFERENCE_TOL,
        atol=_REFERENCE_TOL,
        dense_output=True,
    )
    path = solution.sol(np.linspace(*span, 2001))
    scale = np.max(np.abs(path[:n]), axis=1)
    return OdeReference(
        end=_posterior_mean_and_slope(solution.y[:n, -1], sigma_end)[0],
        gain=np.exp(np.max(path[n:] - path[n:, -1:], axis=1)),
        scale=scale,
        own_error=solution.nfev / 12 * _REFERENCE_TOL * (scale + 1),
    )


def monotone_transport(y: np.ndarray) -> np.ndarray:
    """F_X⁻¹(F_σ(y)) for the 1-D mixture: scipy's normal CDF, F_X⁻¹ by 200 bisection halvings.

    A 1-D flow keeps the order of its trajectories, so the ρ = 0 flow, which carries p_σ to p_X,
    is the one increasing map between them.
    """
    weights, means, variances = (a.reshape(-1) for a in _MIXTURES[1])
    u = _normal_mixture_cdf(y, weights, means, np.sqrt(variances + _MIXTURE_SIGMA**2))
    stds = np.sqrt(variances)
    lo = np.full_like(u, np.min(means - 40 * stds))
    hi = np.full_like(u, np.max(means + 40 * stds))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = _normal_mixture_cdf(mid, weights, means, stds) < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


@claim(
    "(f) ρ = 0 maps a 1-D Gaussian mixture by its monotone transport",
    "maths §7: the PF-ODE carries p_σ to p_X and a 1-D flow keeps order, so x̂ = F_X⁻¹(F_σ(y)); "
    "3 components, σ = 1",
    group="decoder",
    evidence="analytic",
    full=True,
)
def _mixture_transport() -> Measurement:
    y = mixture_observations(1)[1][:_REFERENCE_N, 0]
    x_hat, nfe = mixture_decoded(1, 0.0)
    x_hat, nfe = x_hat[:_REFERENCE_N, 0], nfe[:_REFERENCE_N]
    error = np.abs(x_hat - monotone_transport(y))
    bound = ode_reference(y, 0.0).bound(nfe)
    worst = int(np.argmax(error / bound))
    return Measurement(
        float(error[worst] / bound[worst]),
        1.0,
        0.0,
        "at_most",
        detail=f"max |x̂ - F_X⁻¹(F_σ(y))| / (solver bound) over {_REFERENCE_N} y ~ p_σ, tsit5; "
        f"max error {np.max(error):.1e}, the bound there {bound[worst]:.1e}",
    )


@claim(
    "(g) ρ = 0 decodes Gaussian mixtures to p_X",
    "maths §7: ρ = 0 is the PF-ODE, which carries p_σ to p_X; 1-D and 2-D 3-component "
    "mixtures, σ = 1, n = 4000, KS on 1 + 4 projections",
    group="decoder",
    evidence="Monte Carlo",
)
def _mixture_is_realistic() -> Measurement:
    pvalues = [p for d in (1, 2) for p in ks_pvalues(d, mixture_decoded(d, 0.0)[0])]
    return Measurement(
        min(1.0, KS_TESTS * min(pvalues)),
        KS_ALPHA,
        0.0,
        "at_least",
        detail="Bonferroni-adjusted min KS p-value (false failure ≤ 1e-3); p = "
        + ", ".join(f"{p:.2f}" for p in pvalues),
    )


@claim(
    "(g) the same KS check rejects the moment-matched Gaussian decoder",
    "the power of claim (g): the Gaussian with p_X's mean and covariance decodes the same y",
    group="decoder",
    evidence="Monte Carlo",
)
def _moment_matched_is_rejected() -> Measurement:
    adjusted = {
        d: min(1.0, KS_TESTS * min(ks_pvalues(d, mixture_decoded(d, 0.0, "moment-matched")[0])))
        for d in (1, 2)
    }
    return Measurement(
        max(adjusted.values()),
        KS_ALPHA,
        0.0,
        "at_most",
        detail="Bonferroni-adjusted min KS p-value of each source, "
        + ", ".join(f"{d}-D {p:.1e}" for d, p in adjusted.items()),
    )


@claim(
    "(h) ρ = 1 on a Gaussian mixture reaches the ODE end point, not E[X|Y]",
    "maths §7 ODE at ρ = 0.5 and 1 against scipy DOP853 (rtol 1e-12) on a numpy denoiser; "
    "1-D, 3 components, σ = 1",
    group="decoder",
    evidence="brute force",
    full=True,
)
def _mixture_rho_one() -> Measurement:
    y = mixture_observations(1)[1][:_REFERENCE_N, 0]
    ratios, errors = [], []
    for rho in (0.5, 1.0):
        x_hat, nfe = mixture_decoded(1, rho)
        x_hat, nfe = x_hat[:_REFERENCE_N, 0], nfe[:_REFERENCE_N]
        reference = ode_reference(y, rho)
        error = np.abs(x_hat - reference.end)
        ratios.append(float(np.max(error / reference.bound(nfe))))
        errors.append(float(np.max(error)))
    # Lemma 1 is Gaussian: along the ρ = 1 flow dD/dt = (t/2) ∇Δ log p_t, t = σ² (by Tweedie and
    # the heat equation), which vanishes only where log p_t is quadratic.
    x_one = mixture_decoded(1, 1.0)[0][:_REFERENCE_N, 0]
    gap = float(np.max(np.abs(x_one - _posterior_mean_and_slope(y, _MIXTURE_SIGMA)[0])))
    return Measurement(
        max(ratios),
        1.0,
        0.0,
        "at_most",
        detail=f"max |x̂ - x̂_scipy| / (solver bound) over {_REFERENCE_N} y; max errors "
        + ", ".join(f"{e:.1e}" for e in errors)
        + f" at ρ = 0.5, 1; max |x̂ - E[X|Y]| at ρ = 1: {gap:.2f} (E[X|Y] is the end point "
        "only for a Gaussian source)",
    )
