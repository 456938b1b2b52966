"""The entropy model of PFR chunk indices: the law of the selected index, from the PFR theorem.

In PFR the pairs (T_j / w(z_j), z_j) form a Poisson process of intensity ds · q(dz), so the
winning score S = T_J / w(z_J) is Exp(1) and independent of z_J ~ q (Li & El Gamal 2018). Hence

.. math::
    \\ln T_J = \\ln S + \\ln w(z_J), \\qquad S \\sim \\mathrm{Exp}(1),\\quad z_J \\sim q,

and, with unit-rate arrivals, J ≈ ⌊T_J⌋. For Gaussian chunks ln w(z_J) is a sum of independent
quadratics in the chunk's dimensions; we take it as N(m, v), with m the chunk KL in nats and v
the variance of ln w under q (`log_weight_variance`, plus the spread of the chunk KLs about their
mean, which the encoder folds in). Then

.. math::
    P(J = j) \\propto F(\\ln(j+1)) - F(\\ln j), \\qquad
    F(u) = \\mathbb{E}_{L \\sim N(m, v)}\\big[1 - \\exp(-e^{u - L})\\big],

truncated to j < N.

Ordered random coding (ORC, Theis & Yosri 2022) gives candidate j the (j+1)-th smallest of N
i.i.d. Exp(1) times instead of the Poisson arrival Σ_{i≤j} E_i. Its selection is minimal random
coding's (z_J ∝ w over the N candidates) and J is the rank of the winning time. Scaled by N those
times are, near 0, a unit-rate Poisson process, so N·E_J ≈ S·w(z_J) as above and the rank is
J ≈ N(1 − e^{−S·w/N}): the PFR law pushed through t ↦ N(1 − e^{−t/N}), i.e.
P(J ≤ j) = F(ln(−N ln(1 − j/N))). It saturates at N instead of being cut off there.

A 1 % admixture of a Zipf law P(j) ∝ (1 + j)^(−s), s = 1 + 1/(k + e⁻¹ ln(e + 1)) (the index
code of the PFR literature), bounds the cost of any mismatch (−log2 0.01 ≈ 6.6 bits above the
Zipf codelength at worst). Against the Zipf law alone this saves 0.07–0.10 bits per chunk at
k = 6–8 (measured in `benchmarks/rcc.py`).

**The table is the same on every machine** (`_tables`): F is computed on a grid of 1/32 nat in
ln t with `_portable_math`, quantised to integers (2⁻²⁴ in F's integrand, 2⁻²⁸ in the weights
of L, whose integer sum is then exact), convolved in int64, and read at integer knots j
(`_knots`) by integer interpolation; the Zipf part is likewise integer at the knots, and the
mixture is quantised by `table_from_cumulative` into one frequency per knot interval. Within
an interval, of width 2^b, the law is flat, and an index is sent as its interval and b raw bits
(`IndexLaw`), so the law keeps its 24-bit precision whatever N is.
"""

import functools
import math
from typing import NamedTuple

import numpy as np
from jaxtyping import Float

from rdp_jax.rcc import _portable_math
from rdp_jax.rcc._tables import Table, table_from_cumulative, table_from_frequencies

# Integer resolutions of the model parameters in the header.
KL_SCALE = 16  # mean chunk KL, 1/16 bit
SD_SCALE = 16  # standard deviation of ln w, 1/16 nat
_STEPS_PER_NAT = 32  # the grid in ln t and L, fine against the sd ≥ 0 of ln w
_ZIPF_PARTS = 100  # the Zipf law's share of the mixture is 1 part in 100
_INTEGRAND_BITS = 24  # resolution of 1 − exp(−e^x)
_WEIGHT_BITS = 28  # resolution of the weights of L; F ≤ 2^(24 + 28) fits int64
_INTERP_BITS = 16  # resolution of the interpolation between grid points


def log_weight_variance(
    q_mean: Float[np.ndarray, " d"],
    q_std: Float[np.ndarray, " d"],
    p_mean: Float[np.ndarray, " d"],
    p_std: Float[np.ndarray, " d"],
) -> Float[np.ndarray, " d"]:
    """Var_q[ln w] of each dimension, w = q/p, in nats².

    With z ~ q, u = (z − μ_q)/σ_q ~ N(0, 1), r = σ_q/σ_p and m = (μ_q − μ_p)/σ_p,
    ln w = const + ½(r² − 1)u² + r m u, so

    .. math::
        \\mathrm{Var}_q[\\ln w] = \\tfrac12 (r^2 - 1)^2 + r^2 m^2 .
    """
    r = q_std / p_std
    m = (q_mean - p_mean) / p_std
    return 0.5 * (r * r - 1.0) ** 2 + (r * m) ** 2


def law_parameters(chunk_kl_bits: np.ndarray, chunk_var: np.ndarray) -> tuple[int, int]:
    """The header's (kl, sd) of a segment: its mean chunk KL in 1/16 bit, and in 1/16 nat the sd
    of ln w over its chunks: Var_q[ln w] within a chunk plus the spread of the chunk KLs."""
    spread = float(np.mean(chunk_var) + np.var(chunk_kl_bits * math.log(2.0)))
    return round(float(np.mean(chunk_kl_bits)) * KL_SCALE), round(SD_SCALE * math.sqrt(spread))


def expected_index_bits(chunk_kl_bits: np.ndarray, chunk_var: np.ndarray) -> float:
    """A Gaussian estimate of Σ_c E[−log2 P(J_c)] under the segment's law, to compare layouts.

    Untruncated, ln J_c ≈ ln T = ln S + ln w with mean KL_c − γ and variance v_c + π²/6; the law
    of `law_parameters` is near a normal in ln T with mean m − γ (m the mean chunk KL) and
    variance V = mean v + Var KL + π²/6, and P(J = j) ≈ density(ln j) / j, so

    .. math::
        \\mathbb{E}[-\\ln P(J_c)] ≈ \\mathrm{KL}_c - γ + \\tfrac12 \\ln(2πV)
        + \\frac{v_c + π^2/6 + (\\mathrm{KL}_c - m)^2}{2V}   \\quad\\text{(nats)}.

    It ignores truncation at N and the Zipf admixture, which two layouts of one message share.
    """
    kl = chunk_kl_bits * math.log(2.0)
    gumbel_var = math.pi**2 / 6.0
    total = float(np.mean(chunk_var) + np.var(kl)) + gumbel_var
    nats = (
        kl
        - np.euler_gamma
        + 0.5 * math.log(2.0 * math.pi * total)
        + (chunk_var + gumbel_var + (kl - np.mean(kl)) ** 2) / (2.0 * total)
    )
    return float(np.sum(nats) / math.log(2.0))


def zipf_exponent(kl_q: int) -> float:
    """s = 1 + 1/(k + e⁻¹ ln(e+1)) for the dequantised mean chunk KL k (in `_portable_math`:
    it shapes the table)."""
    e = math.e
    offset = float(_portable_math.log(np.float64(e + 1.0))) / e
    return 1.0 + 1.0 / (kl_q / KL_SCALE + offset)


@functools.lru_cache(maxsize=8)
def _knots(num_candidates: int) -> np.ndarray:
    """0, 1, …, 63, then steps of the power of two ≤ min(j, N − j)/32 (a relative step between
    1/64 and 1/32, the grid's), up to N: dense at both ends, since ORC's law piles up below N,
    where ranks saturate. A power-of-two width 2^b lets an index be coded as its interval and
    b raw bits (`IndexLaw`)."""
    knots = [0]
    while knots[-1] < num_candidates:
        room = min(knots[-1], num_candidates - knots[-1]) >> 5
        knots.append(knots[-1] + (1 << max(room.bit_length() - 1, 0)))
    return np.array(knots, dtype=np.int64)


def _log_time_cdf(size: int, mean: float, sd: float) -> np.ndarray:
    """F(n/32) for n < size, in units of 2^-52, exactly (int64): F(u) = P(ln S + L ≤ u) with
    S ~ Exp(1) and L ~ N(mean, sd²) on the grid L = mean + k/32, |k| ≤ 9 sd · 32."""
    half = math.ceil(9.0 * sd * _STEPS_PER_NAT)
    offsets = np.arange(-half, half + 1, dtype=np.float64) / _STEPS_PER_NAT
    if half:
        density = _portable_math.exp(-0.5 * (offsets / sd) ** 2)
        weights = np.rint(density / math.fsum(density) * 2.0**_WEIGHT_BITS).astype(np.int64)
    else:
        weights = np.zeros(1, dtype=np.int64)
    weights[half] += (1 << _WEIGHT_BITS) - int(weights.sum())  # an exact integer sum
    # The integrand 1 − exp(−e^x) at x = t/32 − mean for every t the convolution needs.
    x = np.arange(-half, size + half, dtype=np.float64) / _STEPS_PER_NAT - mean
    integrand = _portable_math.one_minus_exp_neg(_portable_math.exp(np.clip(x, -700.0, 50.0)))
    levels = np.rint(integrand * 2.0**_INTEGRAND_BITS).astype(np.int64)
    return _convolve_window(levels, weights, 2 * half, size)


def _convolve_window(levels: np.ndarray, weights: np.ndarray, start: int, size: int) -> np.ndarray:
    """`np.convolve(levels, weights)[start : start + size]` for a window inside the valid part
    (len(weights) − 1 ≤ start, start + size ≤ len(levels)), the same integers, in time set by
    where `levels` varies rather than by its length.

    `levels` (the integrand) is 0 far below the window and its top value L far above it, so
    it is L·1[t ≥ a] plus a remainder r nonzero only on [b, a). The constant part of output
    i is L · Σ_{j ≤ i − a} w_j, a cumulative sum; r's part is one short convolution. A wide
    law (large sd of ln w, which a corrupted stream may claim) then costs O(len) instead of
    np.convolve's O(len²): minutes at sd ≈ 4,000 nats. Integer arithmetic, so exact.
    """
    top = int(levels[-1])
    varies = np.flatnonzero(levels != top)
    stop = int(varies[-1]) + 1 if varies.size else 0  # a: levels == top from here on
    nonzero = np.flatnonzero(levels[:stop])
    first = int(nonzero[0]) if nonzero.size else stop  # b: levels == 0 before here
    outputs = np.arange(start, start + size)
    cumulative = np.cumsum(weights)
    reach = np.minimum(outputs - stop, len(weights) - 1)
    out = np.where(reach >= 0, top * cumulative[np.maximum(reach, 0)], 0)
    remainder = levels[first:stop]
    if remainder.size:
        # Output i needs weights j = i − t for t in [first, stop): j in [lo, hi].
        lo = max(start - stop + 1, 0)
        hi = min(start + size - 1 - first, len(weights) - 1)
        if lo <= hi:
            full = np.convolve(remainder, weights[lo : hi + 1])
            n = outputs - first - lo
            inside = (n >= 0) & (n < len(full))
            out = out + np.where(inside, full[np.clip(n, 0, len(full) - 1)], 0)
    return out


class IndexLaw(NamedTuple):
    """The index law on [0, N), flat within the knot intervals [κ_i, κ_{i+1}) of power-of-two
    widths 2^{b_i}: an index j is coded as its interval i under the integer table `intervals`
    (`_tables.Table`), then as its offset j − κ_i in b_i raw bits (`uniform_table`).

    Coding the offsets apart gives the law its full 24-bit precision whatever N is: a table
    of one frequency per index would spend one unit of 2⁻²⁴ on each, a quarter of the mass at
    N = 2²² (0.41 bits per index), the cost that used to cap N.
    """

    knots: np.ndarray
    intervals: Table

    @property
    def digest(self) -> int:
        return self.intervals.digest

    def split(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(interval, offset, b) of each index."""
        interval = np.searchsorted(self.knots, np.asarray(indices), side="right") - 1
        return interval, np.asarray(indices) - self.knots[interval], self.width_bits(interval)

    def width_bits(self, interval: np.ndarray) -> np.ndarray:
        """b of each interval: its width is 2^b."""
        widths = np.diff(self.knots)[interval].astype(np.float64)
        return np.frexp(widths)[1].astype(np.int64) - 1

    def bits(self, indices: np.ndarray) -> float:
        """The ideal codelength Σ −log2 P(j) of `indices`, in bits."""
        interval, _, b = self.split(indices)
        return self.intervals.bits(interval) + float(np.sum(b))


@functools.lru_cache(maxsize=24)
def uniform_table(bits: int) -> Table:
    """The uniform law on [0, 2^bits), bits ≤ 16: every frequency 2^(24 − bits), exactly."""
    return table_from_frequencies(np.full(1 << bits, 1 << (24 - bits), dtype=np.int64))


# A stream's parse and its CRC check each visit every law it is coded with (up to 22 counts a
# step, one law each): the cache must hold them all, or the check rebuilds every one.
@functools.lru_cache(maxsize=256)
def index_law(num_candidates: int, kl_q: int, sd_q: int, algorithm: str = "pfr") -> IndexLaw:
    """The index law on [0, N) (`IndexLaw`), the same on every machine.

    **Arguments:** the candidate count N, the header's integer parameters (the mean chunk KL
    in 1/16 bit and the standard deviation of ln w in 1/16 nat) and the algorithm, "pfr" or
    "orc".
    """
    knots = _knots(num_candidates)
    inner = knots[1:-1].astype(np.float64)
    n = float(num_candidates)
    if algorithm == "orc":
        # Rank j ↔ time −N ln(1 − j/N) = N (ln N − ln(N − j)); the last rank takes the rest.
        times = n * (_portable_math.log(np.float64(n)) - _portable_math.log(n - inner))
        top = n * float(_portable_math.log(np.float64(n)))
    else:
        times, top = np.append(inner, n), n
    position = _portable_math.log(times) * _STEPS_PER_NAT
    size = math.floor(float(_portable_math.log(np.float64(top))) * _STEPS_PER_NAT) + 2
    cdf = _log_time_cdf(size, kl_q / KL_SCALE * _portable_math.LN2, sd_q / SD_SCALE)
    low = np.floor(position).astype(np.int64)
    frac = np.floor((position - low) * 2.0**_INTERP_BITS).astype(np.int64)
    main = [0] + [
        int(cdf[i]) + ((int(cdf[i + 1]) - int(cdf[i])) * int(f) >> _INTERP_BITS)
        for i, f in zip(low.tolist(), frac.tolist(), strict=True)
    ]
    if algorithm == "orc":
        main.append(1 << (_INTEGRAND_BITS + _WEIGHT_BITS))
    # Zipf mass of each knot interval by the midpoint rule (exact where the interval is 1 wide).
    width = np.diff(knots).astype(np.float64)
    middle = 1.0 + knots[:-1] + 0.5 * (width - 1.0)
    zipf = width * _portable_math.exp(-zipf_exponent(kl_q) * _portable_math.log(middle))
    zipf = np.rint(zipf / math.fsum(zipf) * 2.0**52).astype(np.int64)
    zipf_cumulative = [0, *np.cumsum(zipf).tolist()]
    main_total, zipf_total = main[-1], zipf_cumulative[-1]
    if main_total == 0:  # a mean far beyond ln N: nothing of F below N is representable
        main, main_total = zipf_cumulative, zipf_total
    mixture = [
        (_ZIPF_PARTS - 1) * m * zipf_total + z * main_total
        for m, z in zip(main, zipf_cumulative, strict=True)
    ]
    total = _ZIPF_PARTS * main_total * zipf_total
    return IndexLaw(knots, table_from_cumulative(np.arange(len(knots)), mixture, total))


def index_bits(
    indices: np.ndarray,
    extra: np.ndarray,
    num_candidates: int,
    kl_q: int,
    sd_q: int,
    algorithm: str = "pfr",
) -> float:
    """The ideal codelength Σ −log2 P(j) of a segment's indices, chunk c's under the `index_law`
    of N·2^extra[c] candidates, in bits (`extra` is all 0 for PFR, whose law spans every count a
    chunk may search)."""
    return sum(
        index_law(num_candidates << e, kl_q, sd_q, algorithm).bits(indices[extra == e])
        for e in np.unique(extra).tolist()
    )
