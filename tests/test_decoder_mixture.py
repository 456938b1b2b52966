"""The decoder on non-Gaussian sources: Gaussian mixtures with the exact score (maths §7).

The references are those of claims (f)-(h) in `rdp_jax.verify._mixture_claims`, which share no
code with `rdp_jax.scores` or the decoder: numpy draws, scipy's normal CDF with bisection for the
1-D monotone transport, scipy's DOP853 on a numpy denoiser for the ODE, scipy's KS test. They
are cached there, so the compiled decoders and decoded samples are shared by these tests.
"""

import numpy as np
from helpers import roundoff_bound

from rdp_jax import tweedie_denoise
from rdp_jax.scores import gaussian
from rdp_jax.verify import _mixture_claims as ref

N = ref._REFERENCE_N


def test_rho_zero_on_a_1d_mixture_is_its_monotone_transport():
    """A 1-D flow keeps order, so the PF-ODE carrying p_σ to p_X is x̂ = F_X⁻¹(F_σ(y)), exactly.

    Each error is judged against its own first-order solver bound: decode's ≤ NFE/6 accepted
    tsit5 steps, each with local error ≤ rtol |x| + atol, amplified at most by the linearised
    flow's gain along the path (`ref.OdeReference`).
    """
    y = ref.mixture_observations(1)[1][:N, 0]
    x_hat, nfe = ref.mixture_decoded(1, 0.0)
    error = np.abs(x_hat[:N, 0] - ref.monotone_transport(y))
    bound = ref.ode_reference(y, 0.0).bound(nfe[:N])
    assert np.all(error <= bound), np.max(error / bound)


def test_rho_zero_decodes_mixtures_to_p_x_and_the_check_rejects_the_moment_matched_gaussian():
    """KS of x̂ against p_X: the 1-D mixture, and 4 projections of the 2-D one (each a 1-D
    Gaussian mixture with an exact CDF). Bonferroni over the 5 tests: 5 min p < 1e-3 rejects, so
    a correct decoder fails with probability ≤ 1e-3 for a fresh seed (the seeds here are fixed).

    The same criterion must reject the Gaussian with p_X's mean and covariance, decoding the
    same y: its output has p_X's first two moments but not its shape. Without that the check
    would show nothing beyond the moments.
    """
    for source in ("mixture", "moment-matched"):
        pvalues = {d: ref.ks_pvalues(d, ref.mixture_decoded(d, 0.0, source)[0]) for d in (1, 2)}
        adjusted = {d: ref.KS_TESTS * min(p) for d, p in pvalues.items()}
        if source == "mixture":
            assert min(adjusted.values()) >= ref.KS_ALPHA, pvalues
        else:  # each source rejected on its own, not just the family
            assert max(adjusted.values()) < ref.KS_ALPHA, pvalues


def test_the_moment_matched_source_is_that_gaussian():
    """`ref.moment_matched` is a 3-component mixture with weights (1, 0, 0), to share the
    mixture's compiled decoder; it must be `scores.gaussian` with p_X's mean and covariance."""
    for d in (1, 2):
        weights, means, variances = ref._MIXTURES[d]
        mean = weights @ means
        centred = means - mean
        covariance = np.diag(weights @ variances) + (weights[:, None] * centred).T @ centred
        # The covariance is diagonal (see `ref.moment_matched`), up to the rounding of μ̄.
        off_diagonal = covariance - np.diag(np.diag(covariance))
        assert np.max(np.abs(off_diagonal)) <= 8 * np.finfo(float).eps * np.max(covariance)
        y = ref.mixture_observations(d)[1][:50]
        padded = tweedie_denoise(y, 1.0, ref.moment_matched(d))
        full = tweedie_denoise(y, 1.0, gaussian(mean, covariance))
        # One evaluation each, by different formulas (Wiener filter vs eigendecomposition): each
        # within the round-off bound of the exact value, so twice it apart.
        scale = np.max(np.abs(y)) + np.max(np.abs(mean))
        assert np.max(np.abs(padded - full)) <= 2 * roundoff_bound(np.float64, 1) * scale


def test_rho_one_on_a_mixture_is_the_ode_end_point_not_the_posterior_mean():
    """ρ = 0.5 and 1 against scipy's DOP853 on the same ODE, each error within its solver bound.

    E[X | Y] is the ρ = 1 end point only for a Gaussian (Wang, Bi & Zhang 2026, Lemma 1): along
    the ρ = 1 flow dx/dt = -∇log p_t (t = σ²), Tweedie and the heat equation give
    dD(x(t), t)/dt = (t/2) ∇Δ log p_t, zero only where log p_t is quadratic. On the mixture the
    end point misses E[X | Y] by far more than the solver bound, so a decoder that returned the
    posterior mean would fail the first assertion.
    """
    y = ref.mixture_observations(1)[1][:N, 0]
    for rho in (0.5, 1.0):
        x_hat, nfe = ref.mixture_decoded(1, rho)
        reference = ref.ode_reference(y, rho)
        bound = reference.bound(nfe[:N])
        assert np.all(np.abs(x_hat[:N, 0] - reference.end) <= bound), rho
    posterior_mean = ref._posterior_mean_and_slope(y, ref._MIXTURE_SIGMA)[0]
    assert np.max(np.abs(reference.end - posterior_mean)) > 1e3 * np.max(bound)
