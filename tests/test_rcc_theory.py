"""theory.pfr_truncation_deficit (maths §12) against quadrature, the encoder, and its limits; the
default candidate count it justifies (`rcc._layout.unbiased_candidates`)."""

import math

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.stats  # noqa: E402

import theory  # noqa: E402
from rdp_jax import rcc  # noqa: E402
from rdp_jax.rcc._layout import (  # noqa: E402
    BIAS_SE,
    DEFAULT_CANDIDATES,
    mean_shift_deficit,
    unbiased_candidates,
)
from theory._rcc import MAX_KL  # noqa: E402

_LN2 = math.log(2.0)


def _quad_deficit(m: float, n: float) -> float:
    """The deficit integral of maths §12 in x = ln s, by adaptive quadrature (scipy, with
    breakpoints every half unit where e^{−Λ(e^x)} falls from 1 to 0)."""
    sd, log_n = math.sqrt(2 * m), math.log(n)

    def integrand(x):
        c = log_n - x
        rate = math.exp(x) * scipy.stats.norm.cdf((c - m) / sd) + n * scipy.stats.norm.sf(
            (c + m) / sd
        )
        return math.exp(x - rate + scipy.stats.norm.logpdf((c - m) / sd)) * sd

    lo, hi = min(log_n + m - 12 * sd, -40.0), log_n + m + 12 * sd
    # Breakpoints every half unit, and across the peak itself, which is narrower than half a
    # unit when m is small.
    peak = log_n + m + sd * np.arange(-11.0, 12.0)
    points = sorted(p for p in [*np.arange(-5.0, 15.0, 0.5), *peak] if lo < p < hi)
    value = scipy.integrate.quad(
        integrand, lo, hi, points=points, epsabs=0, epsrel=1e-12, limit=2000
    )[0]
    return value / -math.expm1(-n)


@pytest.mark.parametrize(("m", "n"), [(1e-8, 1.0), (1e-6, 16.0), (1e-3, 1.0), (1e-10, 4.0)])
def test_deficit_of_a_tiny_kl_matches_quadrature(m, n):
    # The peak is √(2m) wide: a window reaching a fixed floor put it between two nodes (99 %
    # error at m = 1e-8). Tolerance as below.
    want = _quad_deficit(m, n)
    np.testing.assert_allclose(float(theory.pfr_truncation_deficit(m, n)), want, rtol=1e-8)


@pytest.mark.parametrize(("k", "e"), [(8, 10), (8, 4), (4, 4), (6, 10), (1, 1), (12, 2)])
def test_deficit_matches_quadrature(k, e):
    m, n = k * _LN2, 2.0 ** (k + e)
    want = _quad_deficit(m, n)
    # Both are converged quadratures of one integral: agreement to 1e-8 relative (the adaptive
    # rule's own tolerance is 1e-12) leaves no room for a wrong formula or span.
    np.testing.assert_allclose(float(theory.pfr_truncation_deficit(m, n)), want, rtol=1e-8)
    np.testing.assert_allclose(mean_shift_deficit(k, 2 ** (k + e)), want, rtol=1e-8)


def test_deficit_limits_and_monotonicity():
    m = 8 * _LN2
    counts = 2.0 ** np.arange(8, 64, 4)
    deficits = np.asarray(theory.pfr_truncation_deficit(m, counts))
    assert np.all(np.diff(deficits) < 0) and deficits[-1] < 1e-9 * deficits[0]  # → 0 untruncated
    assert float(theory.pfr_truncation_deficit(0.0, 10.0)) == 0.0
    # at a fixed excess e = log2 N − k, a larger chunk falls further short (sd of ln w grows)
    ks = np.arange(2.0, 16.0)
    assert np.all(
        np.diff(np.asarray(theory.pfr_truncation_deficit(ks * _LN2, 2.0 ** (ks + 8)))) > 0
    )
    # N ≪ e^KL: the winner is the best of N draws from p, ln w ≈ −m + √(2m)·√(2 ln N)
    m = 400.0
    n = 2.0**10
    approx = 2 * m - math.sqrt(2 * m) * math.sqrt(2 * math.log(n))
    assert abs(float(theory.pfr_truncation_deficit(m, n)) - approx) < 0.1 * approx


def test_deficit_under_jit_float32_and_bad_input():
    f = jax.jit(theory.pfr_truncation_deficit)
    want = float(theory.pfr_truncation_deficit(8 * _LN2, 2.0**18))
    assert abs(float(f(8 * _LN2, 2.0**18)) - want) < 1e-15
    low = theory.pfr_truncation_deficit(np.float32(8 * _LN2), np.float32(2.0**18))
    assert low.dtype == np.float32 and abs(float(low) - want) < 1e-4 * want
    bad = ((-1.0, 10.0), (float("nan"), 10.0), (1.0, 0.0), (1.0, float("inf")))
    # Beyond MAX_KL the quadrature no longer resolves the integrand at the dtype's precision
    # (float32 was 17 % off at 1e6 nats, float64 garbage from 1e14).
    bad += ((float("inf"), 10.0), (2 * MAX_KL["float64"], 10.0))
    for kl, n in bad:
        with pytest.raises(ValueError, match="pfr_truncation_deficit: `"):
            theory.pfr_truncation_deficit(kl, n)
    with pytest.raises(ValueError, match="at most 10000 nats in float32"):
        theory.pfr_truncation_deficit(np.float32(2 * MAX_KL["float32"]), np.float32(10.0))
    assert np.isfinite(theory.pfr_truncation_deficit(np.float32(MAX_KL["float32"]), np.float32(10)))


def test_deficit_predicts_the_encoder():
    # 4-bit chunks of a 1 bit/dim mean shift with N = 2^8: predicted 0.689 bits per chunk. The
    # mean over 1,000 chunks has se ≈ 0.11 bits (sd of log2 w ≈ 3.4): 4 se is a false failure
    # with probability 6e-5, and untruncated PFR (deficit 0) sits 6 se away.
    d, k = 4000, 4.0
    delta = np.random.default_rng(3).choice([-1.0, 1.0], d) * math.sqrt(2 * _LN2)
    _, info = rcc.encode(
        jax.random.key(3), delta, np.ones(d), np.zeros(d), np.ones(d),
        chunk_bits=k, num_candidates=2**8, return_info=True,
    )  # fmt: skip
    deficit = info.chunk_kl_bits - info.chunk_log2_weight
    se = deficit.std(ddof=1) / math.sqrt(len(deficit))
    want = float(theory.pfr_truncation_deficit(k * _LN2, 2.0**8)) / _LN2
    assert abs(deficit.mean() - want) < 4 * se
    assert want > 6 * se


def _bias_se(chunks: int, k: float, n: int) -> float:
    return (
        math.sqrt(chunks)
        * float(theory.pfr_truncation_deficit(k * _LN2, n))
        / math.sqrt(2 * k * _LN2)
    )


@pytest.mark.parametrize("kl_bits", [2048.0, 4e4, 1e5, 87_000.0, 1e7])
def test_default_count_is_the_smallest_unbiased_one(kl_bits):
    k = 8.0
    n = unbiased_candidates(kl_bits, k)
    chunks = math.ceil(kl_bits / k)
    assert DEFAULT_CANDIDATES <= n <= 2**22 and n & (n - 1) == 0
    if n < 2**22:
        assert _bias_se(chunks, k, n) <= BIAS_SE
    if n > DEFAULT_CANDIDATES:
        assert _bias_se(chunks, k, n // 2) > BIAS_SE
    # The v5 default, N = 2^18, at 10^5 dimensions of 1 bit: 4.6 SE expected (measured −5.3).
    assert _bias_se(12_500, k, 2**18) > 4


def test_deficit_slope_at_zero_kl_is_the_limit_of_the_slopes_above_it():
    # The constant branch at KL = 0 had slope 0 (0.626 just above it at N = 2). The slope there
    # is the quadrature's just above 0, whose own error is a few √KL; forward mode through the
    # zero branch must not turn the other inputs' derivatives into NaN.
    grad = jax.grad(theory.pfr_truncation_deficit)
    for n in (2.0, 10.0):
        assert float(grad(0.0, n)) == pytest.approx(float(grad(1e-10, n)), rel=5e-4)
    slopes = jax.vmap(grad, (0, None))(jnp.array([0.0, 1.0]), 2.0)
    assert np.all(np.isfinite(slopes))
    _, d_dn = jax.jvp(theory.pfr_truncation_deficit, (0.0, 10.0), (0.0, 1.0))
    assert float(d_dn) == 0.0  # the deficit is 0 at KL = 0 for every N
