"""Hypothesis strategies: well-conditioned inputs for the brute-force comparisons, and wide ones
that reach the regimes where cancellation lives.

The moderate strategies keep rates ≤ ~2 nats, where the numpy/scipy brute-force references are
themselves accurate (their 1 - r² loses eps·e^{2R}). The wide strategies go where `theory` must
hold on its own: rates up to ~20 nats per component (D/s² down to 1e-8), component variances a
factor 1e6 apart, noise 1e-8 to 1e8 times the source variance, and score scales far outside
[0, 1]; tests using them compare against exact (mpmath) references or structural properties.
"""

import math

from hypothesis import settings, strategies as st
from hypothesis.errors import InvalidArgument


def _log_uniform(lo: float, hi: float):
    """10^U with U uniform on [log10 lo, log10 hi]: every decade equally likely."""
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0**e)


# Source and noise variances: a ratio of 400 between components, far from under/overflow.
variance = st.floats(0.05, 20.0)
# Budgets relative to the source variance; D/var ≥ 0.02 keeps rates ≤ ~2 nats.
distortion_ratio = st.floats(0.02, 2.5)
# W2² budgets relative to var: exactly 0 (perfect realism) or log-uniform-ish in [1e-6, 2].
w2_ratio = st.one_of(st.just(0.0), st.floats(-6.0, math.log10(2.0)).map(lambda e: 10.0**e))
# KL budgets in nats: 0 or [1e-6, 5].
kl_budget = st.one_of(st.just(0.0), st.floats(-6.0, math.log10(5.0)).map(lambda e: 10.0**e))
direction = st.sampled_from(["forward", "reverse"])
unit = st.floats(0.0, 1.0)
open_unit = st.floats(0.05, 0.95)


def variance_vector(n):
    """Exactly n component variances (a fixed n keeps one jit compilation per test)."""
    return st.lists(variance, min_size=n, max_size=n)


# Wide: variances over six decades, so two components can differ by 1e6.
wide_variance = _log_uniform(1e-3, 1e3)
# D/s² from 1e-8 (about 9 nats per component) up to past the zero-rate boundary.
wide_distortion_ratio = _log_uniform(1e-8, 2.5)
# W2² budgets relative to s², from 1e-12 (a floor that binds at any rate) to 2, or exactly 0.
wide_w2_ratio = st.one_of(st.just(0.0), _log_uniform(1e-12, 2.0))
# KL budgets in nats: 0 or [1e-12, 50].
wide_kl_budget = st.one_of(st.just(0.0), _log_uniform(1e-12, 50.0))
# Noise variance relative to the source variance: nearly noiseless to nearly pure noise.
wide_noise_ratio = _log_uniform(1e-8, 1e8)
# Score scales: inside [0, 1] the DP curve's sweep; outside, gains up to a^{-2} and down to a^3.
wide_rho = st.floats(-5.0, 5.0)


def wide_variance_vector(n):
    """Exactly n variances from `wide_variance`."""
    return st.lists(wide_variance, min_size=n, max_size=n)


def _closed_form_settings() -> settings:
    """The active profile's `-closed-form` twin (see conftest), or the profile itself."""
    try:
        return settings(settings.get_profile(f"{settings.get_current_profile_name()}-closed-form"))
    except InvalidArgument:  # a custom HYPOTHESIS_PROFILE without a twin
        return settings()


# Decorates the property tests of `theory` and the metrics: cheap examples, so many of them.
closed_form = _closed_form_settings()
