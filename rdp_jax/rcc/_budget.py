"""One truncation-bias budget for a whole PFR message: every chunk's candidate count (maths §12).

Truncated PFR (N candidates) picks a candidate whose ln w falls short of the chunk's KL by the
**deficit** E[KL − ln w(z_J)] (`_layout.mean_shift_deficit`). A statistic that sees it is the
sample's ln w = Σ_c ln w_c, whose standard deviation under q is √(Σ_i Var_q ln w_i); for a mean
shift it is the projection of the sample on Δ, scaled by ‖Δ‖ = √(2 KL). The budget keeps

.. math::
    \\sum_c \\mathrm{deficit}_c(N_c) \\le \\mathrm{BIAS\\_SE}\\,\\sqrt{\\textstyle\\sum_i
    \\mathrm{Var}_q \\ln w_i}
    \\quad\\text{and}\\quad
    \\mathrm{deficit}_c(N_c) \\le \\mathrm{CHUNK\\_BIAS}\\,\\sqrt{2 m_c}

(nats; m_c the chunk's equivalent KL below): the message's sample is biased by at most one of
its standard errors, and no chunk by more than a fifth of its own. The deficit of a mean-shift
chunk depends only on its KL (ln w ~ N(m, 2m) however Δ spreads over its dimensions), so a
chunk is as risky as a uniform one of the same KL; what a chunk costs above its KL (the index
overhead, ~3 bits at 8 bits of KL) does not grow with it, so chunks should carry about k bits
each however wide that makes them. A chunk whose w is not a pure mean shift is mapped to the
**equivalent KL**, the mean shift of equal truncation risk (`equivalent_kl`).

Counts start at 2^18 (`DEFAULT_CANDIDATES`, the count the width-based layout was validated at)
or at the smallest 2^j that meets the chunk's allowance, and are doubled greedily, where the
deficit falls most per unit of search work (added candidates × padded width), until the
message's budget holds (`allocate`): the search time goes where the bias is cheapest to
remove. A PFR decoder regenerates only the chosen index, and the index law of the largest
count spans every chunk's, so the counts are not sent.
"""

import functools
import heapq
import math

import numpy as np
import scipy.special

from rdp_jax.rcc._layout import (
    BIAS_SE,
    DEFAULT_CANDIDATES,
    TailBound,
    mean_shift_deficit,
    mean_shift_log_bound,
    single_dimension_log_tail,
)
from rdp_jax.rcc._layout_code import MAX_CANDIDATES

_LN2 = math.log(2.0)
# A chunk's own bias allowance, in standard errors of its ln w (√(2m) for a mean shift): one
# dimension of up to `max_dimension_kl()` = 14.3 bits meets it at 2^22 candidates.
CHUNK_BIAS = 0.2
# The exponents j of the counts 2^j a chunk may search.
EXPONENTS = np.arange(DEFAULT_CANDIDATES.bit_length() - 1, MAX_CANDIDATES.bit_length())
# The deficit table's grid in KL: 1/16 bit up to 24 bits (beyond, no count meets the allowance).
_STEP_BITS = 1.0 / 16.0
_TOP_BITS = 24.0


@functools.lru_cache(maxsize=1)
def _deficit_table() -> np.ndarray:
    """D[j, i] = `mean_shift_deficit` at i/16 bits with 2^EXPONENTS[j] candidates, in nats."""
    kl = np.arange(1, round(_TOP_BITS / _STEP_BITS) + 1) * _STEP_BITS
    rows = [mean_shift_deficit(kl, 1 << int(j), nodes=2**10) for j in EXPONENTS]
    return np.concatenate([np.zeros((len(EXPONENTS), 1)), np.array(rows)], axis=1)


def deficit(kl_bits: np.ndarray) -> np.ndarray:
    """The deficit, in nats, of mean-shift chunks of `kl_bits` (shape (..., J)) at the counts
    2^EXPONENTS (last axis), interpolated in the table; +inf beyond 24 bits."""
    kl_bits = np.asarray(kl_bits, dtype=np.float64)
    position = np.minimum(kl_bits, _TOP_BITS) / _STEP_BITS  # inf would not cast to an index
    low = np.clip(np.floor(position).astype(np.int64), 0, _deficit_table().shape[1] - 2)
    frac = position - low
    rows = np.arange(len(EXPONENTS))
    table = _deficit_table()
    value = (1.0 - frac) * table[rows, low] + frac * table[rows, low + 1]
    return np.where(kl_bits <= _TOP_BITS, value, np.inf)


def _allowed(kl_bits: np.ndarray, nats: np.ndarray) -> np.ndarray:
    """Whether each deficit meets its chunk's allowance CHUNK_BIAS · √(2m)."""
    return nats <= CHUNK_BIAS * np.sqrt(2.0 * _LN2 * kl_bits)


@functools.lru_cache(maxsize=1)
def max_dimension_kl() -> float:
    """The largest KL, in bits, of a mean-shift chunk (one dimension, say) that meets its
    allowance at 2^22 candidates: 14.3 bits (on the table's 1/16-bit grid). A dimension above
    it cannot be sampled without bias by any count `encode` may search, and cannot be split.
    """
    kl = np.arange(_deficit_table().shape[1]) * _STEP_BITS
    ok = _allowed(kl, _deficit_table()[-1])
    return float(kl[np.argmin(ok) - 1])


def equivalent_kl(
    bound: TailBound, counts: np.ndarray, start: int = 0, exponents: np.ndarray = EXPONENTS
) -> np.ndarray:
    """The KL, in bits, of the mean shift as risky as each chunk at each count 2^EXPONENTS.

    Risk is the q-mass beyond w = N, which truncation under-samples. A chunk of several
    dimensions is matched by its Chernoff bound (`TailBound`) against a mean shift's on the same
    λ grid, so a mean-shift chunk maps to its own KL exactly; a single dimension by its exact
    tail P_q(ln w ≥ ln N) = Φ̄((ln N − m)/√(2m)), solved for m. With σ_q < σ_p (w bounded) the
    equivalent is below the KL; with σ_q > σ_p (heavy tail) it can be far above.

    **Arguments:** the chunks' `TailBound` (built with `DEFAULT_CANDIDATES`), their widths,
    the first chunk's first dimension, and the exponents j of the counts 2^j (J of them).

    **Returns:** shape (C, J), in bits; +inf where the bound says nothing (a chunk near or
    beyond ln N), which no count in the range then lets meet its allowance.
    """
    counts = np.asarray(counts, dtype=np.int64)
    exponents = np.asarray(exponents)
    log_n = exponents * _LN2
    candidates = 2.0**exponents
    out = np.empty((len(counts), len(exponents)))
    extra = exponents - EXPONENTS[0]
    bounds = np.stack([bound.chunk_log_bounds(counts, start, e) for e in extra], axis=1)
    low, high = np.zeros_like(bounds), np.full_like(bounds, 64.0)
    for _ in range(48):  # bisection: the reference bound increases with its KL
        middle = 0.5 * (low + high)
        above = mean_shift_log_bound(middle, candidates) >= bounds
        high, low = np.where(above, middle, high), np.where(above, low, middle)
    # A bound of 0 says nothing (the chunk's KL is near ln N or beyond): as risky as any. One
    # no riskier than a zero-KL chunk (q = p: w = 1) is exactly that, not the bisection's
    # last interval (64·2⁻⁴⁸ bits, whose deficit a zero budget would not allow).
    informative = (bounds < 0.0) & (mean_shift_log_bound(64.0, candidates) > bounds)
    riskless = mean_shift_log_bound(0.0, candidates) >= bounds
    out[:] = np.where(informative, np.where(riskless, 0.0, high), np.inf)
    starts = start + np.cumsum(counts) - counts
    for chunk in np.flatnonzero(counts == 1).tolist():
        args = [float(a[starts[chunk]]) for a in bound.arrays]
        out[chunk] = [_tail_equivalent(single_dimension_log_tail(*args, n), n) for n in log_n]
    return out


def _tail_equivalent(log_tail: float, log_n: float) -> float:
    """The m (bits) with Φ̄((ln N − m)/√(2m)) = exp(log_tail): m + z√(2m) = ln N, z = −Φ⁻¹."""
    if log_tail >= 0.0:
        return math.inf
    if log_tail == -math.inf:
        return 0.0
    z = -float(scipy.special.ndtri_exp(log_tail))
    root = (-z * math.sqrt(2.0) + math.sqrt(2.0 * z * z + 4.0 * log_n)) / 2.0
    return root * root / _LN2


def message_budget(log_weight_variance: np.ndarray) -> float:
    """BIAS_SE · √(Σ_i Var_q ln w_i): the message's total deficit allowance, in nats."""
    return BIAS_SE * math.sqrt(float(np.sum(log_weight_variance)))


def next_pow2(n: int) -> int:
    """The smallest power of two ≥ n (1 for n ≤ 1)."""
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def search_widths(counts: np.ndarray) -> np.ndarray:
    """Each chunk's padded width in the search: the power of two ≥ max(4, its dimension count).

    A candidate costs the search its chunk's padded width in noise draws, so a chunk of many
    low-KL dimensions (the first steps of a progressive stream) costs far more per candidate
    than a narrow one of the same KL. Each width is searched in its own calls (`_message`), so
    a few wide chunks do not widen the others; powers of two cap the compilations.
    """
    return np.array([max(4, next_pow2(int(c))) for c in counts], dtype=np.int64)


def allocate(
    kl_eq: np.ndarray, budget: float, widths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Each chunk's candidate count: the smallest 2^j that meets its allowance, then doublings,
    greedily where the deficit falls most per unit of search work (added candidates × the
    chunk's padded width), until Σ deficit ≤ `budget`.

    **Arguments:** `kl_eq` from `equivalent_kl`, shape (C, J); the budget in nats; each chunk's
    padded search width (`search_widths`; default 1 each, work counted in candidates).

    **Returns:** (exponents j of the counts, shape (C,); the chunks no count lets meet their
    allowance, a boolean mask; the total deficit, nats, +inf when the budget cannot be met).
    """
    table = deficit(kl_eq)
    allowed = _allowed(kl_eq, table)
    hopeless = ~allowed.any(axis=1)
    level = np.where(hopeless, len(EXPONENTS) - 1, np.argmax(allowed, axis=1))
    rows = np.arange(len(level))
    total = float(np.sum(table[rows, level]))
    if hopeless.any() or not math.isfinite(total):
        return EXPONENTS[level], hopeless, math.inf
    work = np.ones(len(level)) if widths is None else np.asarray(widths, dtype=np.float64)

    def gain(chunk: int) -> float:
        j = level[chunk]
        added = float(1 << int(EXPONENTS[j])) * work[chunk]
        return (table[chunk, j] - table[chunk, j + 1]) / added

    heap = [(-gain(c), c) for c in np.flatnonzero(level < len(EXPONENTS) - 1).tolist()]
    heapq.heapify(heap)
    while total > budget and heap:
        _, chunk = heapq.heappop(heap)
        total -= table[chunk, level[chunk]] - table[chunk, level[chunk] + 1]
        level[chunk] += 1
        if level[chunk] < len(EXPONENTS) - 1:
            heapq.heappush(heap, (-gain(chunk), chunk))
    total = float(np.sum(table[rows, level]))  # afresh: the running sum has rounded
    return EXPONENTS[level], hopeless, (total if total <= budget else math.inf)
