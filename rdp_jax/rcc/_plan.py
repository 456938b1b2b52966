"""The encoder's chunk layout: two candidate layouts, each costed, the cheaper one kept.

KL-balanced cuts give every chunk about k bits but must send the cuts: cheap when the KL per
dimension is uniform or piecewise constant, several bits per chunk when it varies from one
dimension to the next (the seed paper's channel X_t = √ᾱ X + √(1−ᾱ) ε: the KL of a dimension
grows with x²). Equal-width chunks are free but their KLs spread; the split layout halves those
whose truncation risk (`TailBound`) exceeds that of a k-bit equal-variance mean shift, the case
the defaults are validated on, so no chunk is riskier than a validated one. Its flags cost
little when few chunks split.
"""

import math

import numpy as np

from rdp_jax.rcc._bitstream import (
    Segment,
    cut_scale_q,
    layout_bits,
    split_probability_q,
)
from rdp_jax.rcc._index_model import expected_index_bits, law_parameters, log_weight_variance
from rdp_jax.rcc._layout import TailBound, chunk_counts, mean_shift_log_bound, split_counts

# Relative slack of the risk comparison: a chunk exactly as risky as the reference (a uniform
# 1 bit/dim mean shift cut into k-bit chunks) must not split on round-off.
_RISK_SLACK = 1e-9


def _segment(layout, layout_q, base_chunks, counts, kl_bits, var) -> tuple[Segment, float]:
    """The segment of a layout and its estimated payload (index estimate + exact layout bits)."""
    chunk_of_dim = np.repeat(np.arange(len(counts)), counts)
    chunk_kl = np.bincount(chunk_of_dim, weights=kl_bits, minlength=len(counts))
    chunk_var = np.bincount(chunk_of_dim, weights=var, minlength=len(counts))
    kl_q, sd_q = law_parameters(chunk_kl, chunk_var)
    segment = Segment(kl_q, sd_q, layout, layout_q, base_chunks, counts)
    dim = int(counts.sum())
    return segment, expected_index_bits(chunk_kl, chunk_var) + layout_bits(dim, segment)


def plan_layout(
    q_mean: np.ndarray,
    q_std: np.ndarray,
    p_mean: np.ndarray,
    p_std: np.ndarray,
    kl_bits: np.ndarray,
    chunk_bits: float,
    num_candidates: int,
) -> Segment:
    """The layout of lower estimated payload, KL-balanced cuts or split, as a `Segment`.

    **Arguments:** float64 NumPy q and p, the per-dimension KL in bits, k and N.
    """
    dim = kl_bits.shape[0]
    var = log_weight_variance(q_mean, q_std, p_mean, p_std)
    cuts = chunk_counts(kl_bits, chunk_bits)
    balanced, balanced_bits = _segment("cuts", cut_scale_q(cuts), len(cuts), cuts, kl_bits, var)

    bound = TailBound(q_mean, q_std, p_mean, p_std, num_candidates)
    limit = mean_shift_log_bound(chunk_bits, num_candidates)
    limit += _RISK_SLACK * max(1.0, abs(limit))
    flags = []

    def too_risky(start: int, stop: int) -> bool:
        flags.append(bound.log_bound(start, stop) > limit)
        return flags[-1]

    base = max(1, math.ceil(float(np.sum(kl_bits)) / chunk_bits - 1e-9))
    counts = split_counts(dim, min(base, dim), too_risky)
    split_q = split_probability_q(np.array(flags, dtype=bool))
    split, split_bits = _segment("split", split_q, min(base, dim), counts, kl_bits, var)
    if len(counts) == 1:  # one chunk either way; the header stores no layout for it
        return balanced
    return split if split_bits < balanced_bits else balanced
