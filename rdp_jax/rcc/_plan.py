"""The encoder's chunk layout: candidate layouts, each costed, the cheapest kept; and the
candidate count of each chunk.

KL-balanced cuts give every chunk about k bits but must send the cuts: cheap when the KL per
dimension is uniform or piecewise constant, several bits per chunk when it varies from one
dimension to the next (the seed paper's channel X_t = √ᾱ X + √(1−ᾱ) ε: the KL of a dimension
grows with x²). Equal-width chunks are free but their KLs spread; they are halved where too
risky, and the flags cost little when few chunks split.

**The default PFR layout** (`plan_budget_layout`) sizes chunks by KL and gives each the
candidates of one bias budget for the whole message (`_budget`); the counts are not sent.

**With ORC or a given N** (`plan_layout`) no chunk may be riskier (`TailBound`) than a k-bit
equal-variance mean shift at N, the case the width-based defaults were validated on: chunks
split until they are not, and a chunk that is still too risky — a single dimension that cannot
be split, or a KL-balanced chunk whose variances make w heavy-tailed — searches N·2^e
candidates instead, with the smallest e that makes it as safe as the reference
(`candidate_exponents`; single dimensions by their exact tail), recorded in the stream. When
even 2²² candidates do not, `encode` refuses with a `ValueError` rather than return a biased
sample.
"""

import math

import numpy as np

from rdp_jax.rcc._bitstream import Segment
from rdp_jax.rcc._budget import (
    CHUNK_BIAS,
    EXPONENTS,
    allocate,
    equivalent_kl,
    max_dimension_kl,
    message_budget,
    search_widths,
)
from rdp_jax.rcc._index_model import expected_index_bits, law_parameters, log_weight_variance
from rdp_jax.rcc._layout import (
    BIAS_SE,
    DEFAULT_CANDIDATES,
    TailBound,
    balanced_cuts,
    chunk_counts,
    mean_shift_log_bound,
    mean_shift_log_tail,
    single_dimension_log_tail,
    split_counts,
)
from rdp_jax.rcc._layout_code import (
    MAX_CANDIDATES,
    cut_scale_q,
    deviation_bound,
    extra_table,
    layout_bits,
    max_extra,
    split_probability_q,
    width_deviations,
)

# Relative slack of the risk comparison: a chunk exactly as risky as the reference (a uniform
# 1 bit/dim mean shift cut into k-bit chunks) must not split on round-off.
_RISK_SLACK = 1e-9


def candidate_exponents(
    bound: TailBound,
    counts: np.ndarray,
    limit: float,
    kl_bits: np.ndarray,
    chunk_bits: float,
    num_candidates: int,
) -> np.ndarray:
    """The smallest e ≥ 0 per chunk that makes it as safe with N·2^e candidates as the reference,
    a k-bit mean shift with N.

    A chunk of several dimensions is judged by its Chernoff bound (`bound.log_bound` ≤
    `limit`). A single dimension, which is what remains of a chunk that splitting could not
    make safe, is judged by its exact tail P_q(w ≥ N·2^e) (`single_dimension_log_tail`) against
    the reference's exact tail, which is tighter where σ_q > σ_p.

    **Raises:** `ValueError` naming the dimension of largest KL in a chunk that no e ≤
    ⌊log2(2²²/N)⌋ makes safe.
    """
    extra = np.zeros(len(counts), dtype=np.int64)
    starts = np.cumsum(counts) - counts
    exact_limit = mean_shift_log_tail(chunk_bits, num_candidates)
    log_n = math.log(num_candidates)

    def safe(start: int, stop: int, e: int) -> bool:
        if stop - start > 1:
            return bound.log_bound(start, stop, e) <= limit
        args = (float(a[start]) for a in bound.arrays)
        tail = single_dimension_log_tail(*args, log_n + e * math.log(2.0))
        return tail <= exact_limit + 1e-9 * abs(exact_limit)

    # Every single dimension is judged exactly; wider chunks only where their bound exceeds.
    risky = np.flatnonzero((bound.chunk_log_bounds(counts) > limit) | (counts == 1))
    for chunk in risky.tolist():
        start, stop = int(starts[chunk]), int(starts[chunk] + counts[chunk])
        top = max_extra(num_candidates)
        exponent = next((e for e in range(top + 1) if safe(start, stop, e)), None)
        if exponent is None:
            raise ValueError(_unreachable_message(bound, start, stop, kl_bits, num_candidates))
        extra[chunk] = exponent
    return extra


def _wider(bound: TailBound, dim: int) -> str:
    ratio = bound.std_ratio(dim)
    if ratio <= 1.0:
        return ""
    return f", and q is {ratio:.2f} times wider than p there (w = q/p has a heavy tail)"


def _unreachable_message(bound, start, stop, kl_bits, num_candidates) -> str:
    worst = start + int(np.argmax(kl_bits[start:stop]))
    return (
        f"encode: dimension {worst} cannot be sampled without bias: it holds "
        f"{kl_bits[worst]:.1f} bits of KL(q‖p){_wider(bound, worst)}, and even "
        f"2^{MAX_CANDIDATES.bit_length() - 1} candidates leave its chunk of {stop - start} "
        f"dimension(s) riskier than the reference, a k-bit mean shift with N = {num_candidates}"
        " candidates. Bring the prior closer to q there, or send it in steps with "
        "`progressive_encode`."
    )


def _extra_bits(extra: np.ndarray, num_candidates: int) -> float:
    """The exponents' codelength and their header field (one varint byte, at most a few)."""
    boosted = int(np.count_nonzero(extra))
    if not boosted:
        return 0.0
    return 8.0 + extra_table(len(extra), boosted, num_candidates).bits(extra)


def _segment(layout, layout_q, base_chunks, counts, kl_bits, var, extra, num_candidates):
    """The segment of a layout and its estimated payload (index estimate + exact layout bits)."""
    chunk_of_dim = np.repeat(np.arange(len(counts)), counts)
    chunk_kl = np.bincount(chunk_of_dim, weights=kl_bits, minlength=len(counts))
    chunk_var = np.bincount(chunk_of_dim, weights=var, minlength=len(counts))
    kl_q, sd_q = law_parameters(chunk_kl, chunk_var)
    segment = Segment(kl_q, sd_q, layout, layout_q, base_chunks, counts, extra)
    dim = int(counts.sum())
    bits = (
        expected_index_bits(chunk_kl, chunk_var)
        + layout_bits(dim, segment)
        + _extra_bits(extra, num_candidates)
    )
    return segment, bits


def plan_layout(
    q_mean: np.ndarray,
    q_std: np.ndarray,
    p_mean: np.ndarray,
    p_std: np.ndarray,
    kl_bits: np.ndarray,
    chunk_bits: float,
    num_candidates: int,
    reference_candidates: int | None = None,
) -> Segment:
    """The layout of lower estimated payload, KL-balanced cuts or split, as a `Segment` whose
    chunks all carry a safe candidate count.

    **Arguments:** float64 NumPy q and p, the per-dimension KL in bits, k, the stream's N, and
    the N_ref of the risk reference, a k-bit mean shift with N_ref candidates (default N). With
    N > N_ref (the default count of a large message, `_layout.unbiased_candidates`) every chunk
    searches at least N, and a chunk that needs N_ref·2^e > N is boosted by the difference.

    **Raises:** `ValueError` from `candidate_exponents` when some dimension cannot be sampled
    without bias.
    """
    dim = kl_bits.shape[0]
    reference = reference_candidates or num_candidates
    shift = (num_candidates // reference).bit_length() - 1

    def exponents(counts):
        extra = candidate_exponents(bound, counts, limit, kl_bits, chunk_bits, reference)
        return np.maximum(extra - shift, 0)

    var = log_weight_variance(q_mean, q_std, p_mean, p_std)
    bound = TailBound(q_mean, q_std, p_mean, p_std, reference)
    limit = mean_shift_log_bound(chunk_bits, reference)
    limit += _RISK_SLACK * max(1.0, abs(limit))
    flags = []

    def too_risky(start: int, stop: int) -> bool:
        flags.append(bound.log_bound(start, stop) > limit)
        return flags[-1]

    base = min(dim, max(1, math.ceil(float(np.sum(kl_bits)) / chunk_bits - 1e-9)))
    counts = split_counts(dim, base, too_risky)
    extra = exponents(counts)
    split_q = split_probability_q(np.array(flags, dtype=bool))
    split, split_bits = _segment(
        "split", split_q, base, counts, kl_bits, var, extra, num_candidates
    )
    if len(counts) == 1:  # one chunk either way; the header stores no layout for it
        return split._replace(layout="cuts")
    cuts = chunk_counts(kl_bits, chunk_bits)
    if np.abs(width_deviations(cuts)).max(initial=0) > deviation_bound(dim):
        return split
    try:
        extra = exponents(cuts)
    except ValueError:  # a cut chunk holds more than one risky dimension; split has none
        return split
    balanced, balanced_bits = _segment(
        "cuts", cut_scale_q(cuts), len(cuts), cuts, kl_bits, var, extra, num_candidates
    )
    return split if split_bits < balanced_bits else balanced


def _refuse_unreachable(bound: TailBound, kl_bits: np.ndarray) -> None:
    """**Raises:** `ValueError` naming the first dimension that, alone, is riskier than a mean
    shift of `max_dimension_kl()` bits at 2^22 candidates (judged by its exact tail), before any
    search. Only dimensions above half that KL, or where q is wider than p, can be."""
    top = max_dimension_kl()
    q_std, p_std = bound.arrays[1], bound.arrays[3]
    suspects = np.flatnonzero((kl_bits > 0.5 * top) | (q_std > p_std))
    for dim in suspects.tolist():
        kl_eq = float(equivalent_kl(bound, np.ones(1, np.int64), dim, EXPONENTS[-1:])[0, 0])
        if kl_eq > top:
            equivalent = (
                ""
                if bound.std_ratio(dim) == 1.0
                else f" (as risky as a {kl_eq:.1f}-bit mean shift)"
            )
            raise ValueError(
                f"encode: dimension {dim} cannot be sampled without bias: it holds "
                f"{kl_bits[dim]:.1f} bits of KL(q‖p){equivalent}{_wider(bound, dim)}, above "
                f"the {top:.1f} bits of mean shift one dimension may hold: even "
                f"2^{MAX_CANDIDATES.bit_length() - 1} candidates would leave its truncation "
                f"bias above {CHUNK_BIAS} of its standard error, and a dimension cannot be "
                "split. Bring the prior closer to q there, or send it in steps with "
                "`progressive_encode`."
            )


# Base chunk KLs tried by the default layout, in units of k: larger chunks amortise the
# per-chunk index overhead over more KL and cost more candidates.
BASE_SIZES = (1.0, 1.25)


def _budget_split(bound, kl_bits, var, budget, base, lower):
    """The split layout from `base` equal-width chunks that meets the budget (halving chunks
    above `max_dimension_kl()`, then, if `lower`, one bit less while the budget fails), with
    its counts' exponents; None when that fails."""
    dim = kl_bits.shape[0]
    cuts = balanced_cuts(dim, base)
    base_kl = equivalent_kl(bound, np.diff(cuts), 0, EXPONENTS[-1:])[:, 0]
    ends = zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)
    risk = dict(zip(ends, base_kl.tolist(), strict=True))

    def layout(threshold: float) -> tuple[np.ndarray, list[bool]]:
        flags = []

        def too_risky(start: int, stop: int) -> bool:
            if (start, stop) not in risk:  # equivalent KL at 2^22, the split criterion
                kl_eq = equivalent_kl(bound, np.array([stop - start]), start, EXPONENTS[-1:])
                risk[start, stop] = float(kl_eq[0, 0])
            flags.append(risk[start, stop] > threshold)
            return flags[-1]

        return split_counts(dim, base, too_risky), flags

    threshold = max_dimension_kl()
    while True:
        counts, flags = layout(threshold)
        exponents, _, total = allocate(equivalent_kl(bound, counts), budget, search_widths(counts))
        if math.isfinite(total):
            split_q = split_probability_q(np.array(flags, dtype=bool))
            none = np.zeros_like(counts)  # no exponents: the budget's counts are not sent
            return _segment("split", split_q, base, counts, kl_bits, var, none, 1), exponents
        if not lower or np.all(counts == 1):
            return None
        threshold -= 1.0


def plan_budget_layout(
    arrays: tuple[np.ndarray, ...],
    kl_bits: np.ndarray,
    chunk_bits: float,
    budget_share: float = 1.0,
) -> tuple[Segment, np.ndarray]:
    """The default PFR layout: chunks sized by their KL, not their width, with the candidate
    counts of one bias budget for the whole message (`_budget`).

    Every chunk costs its KL plus an index overhead of ~3 bits (maths §10) that hardly grows
    with the KL, so chunks should carry about k bits or more each; for a mean shift the
    truncation risk depends on a chunk's KL alone, so KL-sized chunks are as safe as a
    uniform message's, given the candidates the budget assigns. Costed by the index estimate
    (`expected_index_bits`) plus the exact layout bits, the cheapest of these is kept:

    - **split**, from C₀ = ⌈KL/(s·k)⌉ equal-width chunks for s in `BASE_SIZES` (free to send),
      halved only where a chunk's equivalent KL (`_budget.equivalent_kl`) exceeds what 2^22
      candidates keep within its allowance (`max_dimension_kl()`), and, from base chunks of
      k, further while the message's budget fails (larger bases that fail it are dropped).
      The chunk KLs then spread, which widens the index law a little (`expected_index_bits`),
      far less than sending cuts costs when the KL varies from one dimension to the next
      (~4.7 bits per chunk for a χ²₁ spread);
    - **cuts**: KL-balanced cuts at k (`chunk_counts`), cheap when the KL per dimension is
      uniform or piecewise constant.

    Each chunk searches 2^j candidates, 18 ≤ j ≤ 22 (`_budget.allocate`). The counts are not in
    the stream: the segment's `extra` is 0 and the header's N is the largest count, whose index
    law spans every chunk's indices (PFR's candidates and arrival times do not depend on N).

    **Arguments:** (q_mean, q_std, p_mean, p_std) as float64 NumPy, the per-dimension KL in
    bits, k, and the share of `message_budget` this message may spend (1 alone; the steps of a
    progressive stream share one budget, `rdp_jax.rcc.progressive_encode`).

    **Returns:** (the segment, each chunk's candidate count).

    **Raises:** `ValueError` naming a dimension too risky to sample without bias
    (`_refuse_unreachable`), or when no layout meets the message's bias budget.
    """
    dim = kl_bits.shape[0]
    bound = TailBound(*arrays, DEFAULT_CANDIDATES)
    _refuse_unreachable(bound, kl_bits)
    var = log_weight_variance(*arrays)
    budget = budget_share * message_budget(var)
    total_kl = float(np.sum(kl_bits))
    bases = {min(dim, max(1, math.ceil(total_kl / (s * chunk_bits) - 1e-9))) for s in BASE_SIZES}
    # Larger base chunks are tried only as they are: split to meet the budget they lose their
    # point, and the smallest base does that better.
    bases = sorted(bases, reverse=True)
    plans = [_budget_split(bound, kl_bits, var, budget, b, b == bases[0]) for b in bases]
    counts = chunk_counts(kl_bits, chunk_bits)
    if len(counts) > 1 and np.abs(width_deviations(counts)).max() <= deviation_bound(dim):
        exponents, _, total = allocate(equivalent_kl(bound, counts), budget, search_widths(counts))
        if math.isfinite(total):
            q = cut_scale_q(counts)
            cuts = _segment("cuts", q, len(counts), counts, kl_bits, var, np.zeros_like(counts), 1)
            plans.append((cuts, exponents))
    plans = [plan for plan in plans if plan is not None]
    if not plans:
        raise ValueError(
            f"encode: the message's {dim} dimensions cannot be sampled within its bias budget "
            f"({budget_share * BIAS_SE:.3g} standard error) even one per chunk at 2^22 "
            "candidates: too many are too far from p. Send it in more, smaller steps "
            "(`progressive_encode`)."
        )
    # A single chunk's layout is normalised where it is coded (`_bitstream.coded`).
    (segment, _), exponents = min(plans, key=lambda plan: plan[0][1])
    return segment, np.left_shift(1, exponents)
