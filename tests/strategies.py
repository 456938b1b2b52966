"""Hypothesis strategies that only generate valid, well-conditioned inputs."""

import math

from hypothesis import strategies as st

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
