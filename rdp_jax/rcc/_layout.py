"""The KL of diagonal Gaussians per dimension and the chunk layouts that split it.

Two layouts, both contiguous: KL-balanced cuts (`chunk_counts`), and equal-width chunks halved
where a chunk's truncation risk is too high (`split_counts` with `TailBound`). `_plan` costs both
and keeps the cheaper.
"""

import math
import numbers
from collections.abc import Callable

import numpy as np
import scipy.special
from jaxtyping import Float, Int

_LN2 = math.log(2.0)
# Chernoff exponents λ of the tail bound, log-spaced. For a k-bit mean shift and N = 2^(k+e)
# candidates the optimum is λ = e / (2k), inside the grid for 1/4 ≤ k ≤ 64 and 1/2 ≤ e ≤ 64; the
# bound is a minimum over λ, so a coarse grid only loosens it slightly.
_LAMBDAS = np.geomspace(1e-2, 1e2, 41)
# The default candidate count keeps the reference's mean-projection bias within this many
# standard errors of the whole message (`unbiased_candidates`).
BIAS_SE = 1.0
# The risk reference of the default layout: a k-bit mean shift with 2^18 candidates.
DEFAULT_CANDIDATES = 2**18


def gaussian_kl_bits(
    q_mean: Float[np.ndarray, " d"],
    q_std: Float[np.ndarray, " d"],
    p_mean: Float[np.ndarray, " d"],
    p_std: Float[np.ndarray, " d"],
) -> Float[np.ndarray, " d"]:
    """The exact KL(q‖p) of each dimension of two diagonal Gaussians, in bits.

    .. math::
        \\mathrm{KL}_i = \\frac{1}{\\ln 2}\\Big[\\tfrac12\\big(r_i^2 - 1 - \\ln r_i^2\\big)
        + \\frac{(μ^q_i - μ^p_i)^2}{2 (σ^p_i)^2}\\Big], \\qquad r_i = σ^q_i / σ^p_i.

    The variance term is evaluated as `expm1(x) - x` with x = ln r², which keeps its full relative
    accuracy when r ≈ 1 (the naive form cancels to zero there).

    **Arguments:** the four arrays of one shape, float64 NumPy (host side: the chunk layout is
    decided by the encoder alone and sent in the header, so it need not be reproducible on device).

    **Returns:** the per-dimension KL in bits, ≥ 0.

    **Raises:** `ValueError` naming the argument: shapes that differ, a mean that is not
    finite, a standard deviation that is not finite and > 0.
    """
    q_mean, q_std, p_mean, p_std = (
        np.asarray(x, dtype=np.float64) for x in (q_mean, q_std, p_mean, p_std)
    )
    names = ("q_mean", "q_std", "p_mean", "p_std")
    for name, x in zip(names, (q_mean, q_std, p_mean, p_std), strict=True):
        if x.shape != q_mean.shape:
            raise ValueError(
                f"gaussian_kl_bits: `{name}` has shape {x.shape}, `q_mean` {q_mean.shape}."
            )
        positive = name.endswith("std")
        if not np.all(np.isfinite(x) & ((x > 0) if positive else True)):
            raise ValueError(f"gaussian_kl_bits: `{name}` must be finite{' and > 0' * positive}.")
    log_r2 = 2.0 * (np.log(q_std) - np.log(p_std))
    variance = 0.5 * (np.expm1(log_r2) - log_r2)
    mean = 0.5 * ((q_mean - p_mean) / p_std) ** 2
    return np.maximum(variance + mean, 0.0) / _LN2


def chunk_counts(kl_bits: Float[np.ndarray, " d"], chunk_bits: float) -> Int[np.ndarray, " c"]:
    """Splits dimensions 0..d-1, in order, into contiguous chunks of about `chunk_bits` KL each.

    The number of chunks is C = max(1, ⌈KL / k⌉); chunk t ends at the dimension where the
    cumulative KL is closest to t·KL/C, so every chunk carries about KL/C ≤ k bits when the
    dimensions are small. A dimension whose KL alone exceeds k cannot be split by this layout:
    cut points that fall inside it merge, and its chunk carries more than k bits (it is then
    biased towards p when the candidate count is below 2^KL; `EncodeInfo.chunk_kl_bits` shows it).

    **Arguments:**

    - `kl_bits`: the KL of each dimension in bits (`gaussian_kl_bits`).
    - `chunk_bits`: the target KL per chunk, > 0.

    **Returns:** the number of dimensions in each chunk: positive integers summing to d.

    **Raises:** `ValueError` naming `kl_bits` (not a non-empty 1-D array of finite values ≥ 0)
    or `chunk_bits` (not a finite number > 0).
    """
    kl_bits = np.asarray(kl_bits, dtype=np.float64)
    if kl_bits.ndim != 1 or not kl_bits.size or not np.all(np.isfinite(kl_bits) & (kl_bits >= 0)):
        raise ValueError("chunk_counts: `kl_bits` must be a non-empty 1-D array of finite KL ≥ 0.")
    if not (isinstance(chunk_bits, numbers.Real) and 0 < chunk_bits < math.inf):
        raise ValueError(
            f"chunk_counts: `chunk_bits` must be a finite number > 0; got {chunk_bits!r}."
        )
    d = kl_bits.shape[0]
    total = float(np.sum(kl_bits))
    num = max(1, math.ceil(total / chunk_bits - 1e-9))
    if num == 1:
        return np.array([d], dtype=np.int64)
    cumulative = np.cumsum(kl_bits)
    targets = total * np.arange(1, num) / num
    # First dimension whose cumulative KL reaches the target; end the chunk after it if that lands
    # closer to the target than ending just before it.
    crossing = np.searchsorted(cumulative, targets, side="left")
    before = np.where(crossing > 0, cumulative[np.maximum(crossing - 1, 0)], 0.0)
    after = cumulative[np.minimum(crossing, d - 1)]
    ends = np.where(after - targets <= targets - before, crossing + 1, crossing)
    ends = np.unique(np.clip(np.concatenate([ends, [d]]), 0, d))
    ends = ends[ends > 0]
    return np.diff(np.concatenate([[0], ends])).astype(np.int64)


def balanced_cuts(dim: int, num_chunks: int) -> Int[np.ndarray, " c_plus_1"]:
    """0, round(t d / C) for t = 1 … C−1, and d: the cuts of equal-width chunks (exact integers)."""
    t = np.arange(num_chunks + 1, dtype=np.int64)
    return (2 * t * dim + num_chunks) // (2 * num_chunks)


def split_counts(
    dim: int, base_chunks: int, should_split: Callable[[int, int], bool]
) -> Int[np.ndarray, " c"]:
    """Halves the `base_chunks` equal-width chunks recursively where `should_split` says so.

    Chunks are visited depth first, left half (⌊w/2⌋ dimensions) first, and `should_split(start,
    stop)` is asked exactly once for every visited chunk of two or more dimensions. The encoder
    answers with its risk test and the decoder with the next flag of the stream, so both build the
    same layout from the same sequence of answers.

    **Returns:** the dimensions in each final chunk, in order, summing to `dim`.
    """
    cuts = balanced_cuts(dim, base_chunks).tolist()  # Python ints: the loop is per chunk
    counts = []
    stack = list(zip(cuts[-2::-1], cuts[:0:-1], strict=True))
    while stack:
        start, stop = stack.pop()
        if stop - start >= 2 and should_split(start, stop):
            middle = start + (stop - start) // 2
            stack += [(middle, stop), (start, middle)]
        else:
            counts.append(stop - start)
    return np.array(counts, dtype=np.int64)


class TailBound:
    """Chernoff bounds on P_q(ln w ≥ ln N) for contiguous chunks of diagonal Gaussians.

    With w = q/p and λ > 0, E_q[w^λ] = exp(λ D_{1+λ}(q‖p)) (Rényi divergence), so

    .. math::
        P_q(\\ln w ≥ \\ln N) ≤ \\min_λ \\exp\\big(λ D_{1+λ}(q‖p) - λ \\ln N\\big),

    and for one Gaussian dimension, with σ_λ² = (1+λ)σ_p² − λσ_q² (the bound is infinite when
    σ_λ² ≤ 0),

    .. math::
        λ D_{1+λ} = λ \\ln\\frac{σ_p}{σ_q} + \\tfrac12 \\ln\\frac{σ_p^2}{σ_λ^2}
        + \\frac{λ(1+λ)(μ_q - μ_p)^2}{2 σ_λ^2}.

    Truncated PFR under-samples q most where w exceeds N, so the bound on that q-mass is a
    proxy for a chunk's truncation bias (a proxy, not a bound on the bias itself). It sees what
    the KL alone does not: when σ_q < σ_p, w is bounded and a chunk can carry more KL at the
    same risk than an equal-variance mean shift.
    Each bound is computed from its chunk's dimensions on demand: O(width · grid) time and memory.
    """

    def __init__(self, q_mean, q_std, p_mean, p_std, num_candidates: int):
        self._q_mean, self._q_std, self._p_mean, self._p_std = q_mean, q_std, p_mean, p_std
        self._log_n = math.log(num_candidates)

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """(q_mean, q_std, p_mean, p_std), float64."""
        return self._q_mean, self._q_std, self._p_mean, self._p_std

    def std_ratio(self, dim: int) -> float:
        """σ_q / σ_p of dimension `dim` (above 1, w = q/p is unbounded with a heavy tail)."""
        return float(self._q_std[dim] / self._p_std[dim])

    def log_bound(self, start: int, stop: int, extra: int = 0) -> float:
        """ln of the bound for the chunk of dimensions [start, stop) with N·2^extra candidates
        (≤ 0 is informative)."""
        return float(self.chunk_log_bounds(np.array([stop - start]), start, extra)[0])

    def chunk_log_bounds(
        self, counts: np.ndarray, start: int = 0, extra: int | np.ndarray = 0
    ) -> np.ndarray:
        """`log_bound` of each of the contiguous chunks of `counts` dimensions from `start`, with
        N·2^extra candidates (a scalar, or one per chunk), in batches of ~2¹⁴ dimensions."""
        counts = np.asarray(counts, dtype=np.int64)
        ends = start + np.cumsum(counts)
        log_n = self._log_n + np.broadcast_to(np.asarray(extra) * _LN2, counts.shape)
        out = np.empty(len(counts))
        first = 0
        while first < len(counts):
            last = max(first + 1, int(np.searchsorted(ends, ends[first] - counts[first] + 2**14)))
            part = slice(int(ends[first] - counts[first]), int(ends[last - 1]))
            terms, usable = self._terms(part)
            offsets = np.concatenate([[0], np.cumsum(counts[first:last])[:-1]])
            exponent = np.add.reduceat(terms, offsets, axis=0)
            exponent -= _LAMBDAS[None, :] * log_n[first:last, None]
            ok = np.logical_and.reduceat(usable, offsets, axis=0)
            out[first:last] = np.min(np.where(ok, exponent, 0.0), axis=1, initial=0.0)
            first = last
        return out

    def _terms(self, part: slice) -> tuple[np.ndarray, np.ndarray]:
        """λ D_{1+λ} of each dimension of `part` on the λ grid, and where σ_λ² > 0."""
        lam = _LAMBDAS[None, :]
        # In units of σ_p (ρ = σ_q/σ_p, m = Δμ/σ_p), so that no square overflows or underflows
        # at any scale of the message: σ_λ²/σ_p² = (1 + λ) − λρ².
        ratio = (self._q_std[part] / self._p_std[part])[:, None]
        shift = ((self._q_mean[part] - self._p_mean[part]) / self._p_std[part])[:, None]
        var_lam = (1.0 + lam) - lam * ratio**2
        usable = var_lam > 0.0
        var_lam = np.where(usable, var_lam, 1.0)
        terms = (
            -lam * np.log(ratio)
            - 0.5 * np.log(var_lam)
            + lam * (1.0 + lam) * shift**2 / (2.0 * var_lam)
        )
        return terms, usable


def mean_shift_log_bound(chunk_bits, num_candidates):
    """`TailBound.log_bound` of an equal-variance mean-shift chunk of `chunk_bits` KL.

    There λ D_{1+λ} = λ(1+λ) KL (nats): the unbounded-w worst case, at which the defaults were
    validated as unbiased (`benchmarks/rcc.py`). A split layout keeps every chunk at or below it.
    Both arguments broadcast (arrays give an array, floats a float).
    """
    kl = np.asarray(chunk_bits, dtype=np.float64)[..., None] * _LN2
    log_n = np.log(np.asarray(num_candidates, dtype=np.float64))[..., None]
    bound = np.min(_LAMBDAS * (1.0 + _LAMBDAS) * kl - _LAMBDAS * log_n, axis=-1)
    return float(bound) if bound.ndim == 0 else bound


def single_dimension_log_tail(q_mean, q_std, p_mean, p_std, log_n: float) -> float:
    """ln P_q(ln w ≥ ln N) exactly, for one Gaussian dimension (a chunk that cannot split).

    With u = (z − μ_q)/σ_q ~ N(0, 1), ρ = σ_q/σ_p and m = (μ_q − μ_p)/σ_p,
    ln w = A u² + B u + C with A = (ρ² − 1)/2, B = m ρ and C = m²/2 − ln ρ, so the event is
    u outside the roots of A u² + B u + C − ln N (A > 0: w unbounded in both tails), between
    them (A < 0: w bounded), or on one side of a point (A = 0, a pure mean shift). The Chernoff
    bound of `TailBound` is loosest when σ_q > σ_p, where its λ is capped at σ_p²/(σ_q² − σ_p²).
    """
    ratio, m = q_std / p_std, (q_mean - p_mean) / p_std
    a, b, c = 0.5 * (ratio * ratio - 1.0), m * ratio, 0.5 * m * m - math.log(ratio)
    c -= log_n
    log_cdf = scipy.special.log_ndtr
    if abs(a) <= 1e-12 * max(1.0, abs(b)):  # a mean shift: b u + c ≥ 0
        if b == 0.0:
            return 0.0 if c >= 0.0 else -math.inf
        return float(log_cdf(c / b) if b > 0 else log_cdf(-c / b))
    discriminant = b * b - 4.0 * a * c
    if discriminant <= 0.0:  # no real roots: the quadratic keeps the sign of a
        return 0.0 if a > 0 else -math.inf
    # Stable roots: q = −(b + sign(b)√Δ)/2, roots q/a and c/q.
    root = -0.5 * (b + math.copysign(math.sqrt(discriminant), b if b else 1.0))
    low, high = sorted((root / a, c / root))
    if a > 0:  # outside the roots
        return float(np.logaddexp(log_cdf(low), log_cdf(-high)))
    # between the roots: Φ(high) − Φ(low), from the side where it does not cancel
    if low > 0:
        low, high = -high, -low
    return float(log_cdf(high) + np.log1p(-np.exp(min(log_cdf(low) - log_cdf(high), 0.0))))


def mean_shift_log_tail(chunk_bits: float, num_candidates: int) -> float:
    """ln P_q(ln w ≥ ln N) of a k-bit equal-variance mean shift, where ln w ~ N(KL, 2 KL) nats
    exactly: the reference `single_dimension_log_tail` is compared with."""
    kl = chunk_bits * _LN2
    return float(scipy.special.log_ndtr(-(math.log(num_candidates) - kl) / math.sqrt(2.0 * kl)))


def mean_shift_deficit(chunk_bits, num_candidates: int, nodes: int = 2**14):
    """E[KL − ln w(z_J)] in nats for PFR on a k-bit equal-variance mean shift with N candidates:
    the truncation bias of the reference chunk (maths §12, where it is derived).

    In x = ln s, with m = KL in nats, v = 2m and c = ln N − x, it is
    ∫ exp(x − Λ(e^x)) √v φ((c − m)/√v) dx / (1 − e^{−N}) with
    Λ = e^x Φ((c − m)/√v) + N Φ̄((c + m)/√v), by the trapezoid rule (`nodes` nodes over the
    integrand's span; 2¹⁴ are accurate to ~1e-12 relative for 1 ≤ k ≤ 64 and N ≥ 2^k).

    **Arguments:** `chunk_bits` k > 0, a float or an array (evaluated elementwise); N ≥ 2.

    **Returns:** the deficit in nats, a float or an array of `chunk_bits`' shape.
    """
    m = np.asarray(chunk_bits, dtype=np.float64)[..., None] * _LN2
    sd = np.sqrt(2.0 * m)
    log_n = math.log(num_candidates)
    low = np.minimum(log_n + m - 12.0 * sd, -40.0)
    x = low + (log_n + m + 12.0 * sd - low) * np.linspace(0.0, 1.0, nodes)
    z = (log_n - x - m) / sd
    log_cdf = scipy.special.log_ndtr
    rate = np.exp(np.logaddexp(x + log_cdf(z), log_n + log_cdf(-z - 2.0 * m / sd)))
    f = np.exp(x - rate - 0.5 * z * z) * sd / math.sqrt(2.0 * math.pi)
    integral = (x[..., 1] - x[..., 0]) * (f.sum(-1) - 0.5 * (f[..., 0] + f[..., -1]))
    deficit = integral / -math.expm1(-num_candidates)
    return float(deficit) if deficit.ndim == 0 else deficit


def unbiased_candidates(total_kl_bits: float, chunk_bits: float) -> int:
    """The default candidate count: the smallest N = 2^j from `DEFAULT_CANDIDATES` to 2^22 at
    which a message of C = ⌈KL/k⌉ k-bit mean-shift chunks has its sample's mean projection on Δ
    biased by at most `BIAS_SE` of its standard errors (2^22 if none is).

    The projection of a chunk's sample on Δ/‖Δ‖ is N(0, 1) under q, shifted by deficit/√(2m)
    (ln w = ‖Δ‖ u + const, ‖Δ‖ = √(2m)), so C chunks are biased by √C·deficit/√(2m) standard
    errors: the bias a user's test can see grows like √C, and the tolerance per chunk shrinks.
    """
    chunks = max(1, math.ceil(total_kl_bits / chunk_bits - 1e-9))
    sd = math.sqrt(2.0 * chunk_bits * _LN2)
    count = DEFAULT_CANDIDATES
    while (
        count < 2**22 and math.sqrt(chunks) * mean_shift_deficit(chunk_bits, count) > BIAS_SE * sd
    ):
        count *= 2
    return count
