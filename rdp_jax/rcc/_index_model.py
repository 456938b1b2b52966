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

A 1 % admixture of the Zipf law of THEORY §10 bounds the cost of any mismatch
(−log2 0.01 ≈ 6.6 bits above the Zipf codelength at worst). Against the Zipf law alone this saves
0.07–0.10 bits per chunk at k = 6–8 (measured in `benchmarks/rcc.py`).
"""

import functools
import math
import zlib

import constriction
import numpy as np
from jaxtyping import Float

# Integer resolutions of the model parameters in the header.
KL_SCALE = 16  # mean chunk KL, 1/16 bit
SD_SCALE = 16  # standard deviation of ln w, 1/16 nat
_GRID = 1.0 / 32.0  # nats: the convolution grid, fine against the sd ≥ 0 of ln w
_ZIPF_WEIGHT = 0.01


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
    """s = 1 + 1/(k + e⁻¹ ln(e+1)) of THEORY §10, for the dequantised mean chunk KL k."""
    return 1.0 + 1.0 / (kl_q / KL_SCALE + math.log(math.e + 1.0) / math.e)


def _log_time_cdf(u: np.ndarray, mean: float, sd: float) -> np.ndarray:
    """F(u) = P(ln S + L ≤ u) for S ~ Exp(1), L ~ N(mean, sd²), by quadrature on a grid in L."""
    if sd == 0.0:
        levels, weights = np.array([mean]), np.ones(1)
    else:
        levels = mean + np.arange(-9.0 * sd, 9.0 * sd + _GRID, _GRID)
        weights = np.exp(-0.5 * ((levels - mean) / sd) ** 2)
        weights /= weights.sum()
    # Blocks of u keep the (u, L) matrix at a few MB.
    out = np.empty_like(u)
    for start in range(0, u.size, 512):
        x = u[start : start + 512, None] - levels[None, :]
        out[start : start + 512] = -np.expm1(-np.exp(np.minimum(x, 50.0))) @ weights
    return out


@functools.lru_cache(maxsize=32)
def index_law(
    num_candidates: int, kl_q: int, sd_q: int, algorithm: str = "pfr"
) -> tuple[np.ndarray, object, int]:
    """The index law on [0, N), its constriction model and a CRC32 digest of the table.

    **Arguments:** the candidate count N, the header's integer parameters (the mean chunk KL
    in 1/16 bit and the standard deviation of ln w in 1/16 nat) and the algorithm, "pfr" or
    "orc".

    **Returns:** `(p, model, digest)`. `p` is float64 and sums to 1; `model` is a constriction
    `Categorical` (`perfect=False`: a fast, deterministic quantisation of `p`); `digest` is folded
    into the stream's CRC, so a decoder whose table differs in any bit rejects the stream instead
    of decoding wrong indices.
    """
    mean = kl_q / KL_SCALE * math.log(2.0)
    sd = sd_q / SD_SCALE
    # F is only needed at ln j (PFR) or the log rank-time (ORC) for 1 ≤ j ≤ N; F(ln 0) = 0.
    j = np.arange(num_candidates + 1, dtype=np.float64)
    if algorithm == "orc":
        # Rank j ↔ time −N ln(1 − j/N) (infinite at j = N: the last rank takes the rest).
        with np.errstate(divide="ignore"):
            j = -num_candidates * np.log1p(-j / num_candidates)
    top = j[-1] if algorithm == "pfr" else j[-2]
    u = np.arange(0.0, math.log(top) + 2 * _GRID, _GRID)
    cdf = _log_time_cdf(u, mean, sd)
    with np.errstate(divide="ignore"):
        at = np.interp(np.log(j), u, cdf, left=0.0, right=1.0)
    at[0] = 0.0
    law = np.diff(at)
    law /= law.sum()
    zipf = -zipf_exponent(kl_q) * np.log1p(np.arange(num_candidates, dtype=np.float64))
    zipf = np.exp(zipf - zipf.max())
    p = (1.0 - _ZIPF_WEIGHT) * law + _ZIPF_WEIGHT * zipf / zipf.sum()
    p /= p.sum()
    model = constriction.stream.model.Categorical(p, perfect=False)
    return p, model, zlib.crc32(p.tobytes())


def index_bits(
    indices: np.ndarray, num_candidates: int, kl_q: int, sd_q: int, algorithm: str = "pfr"
) -> float:
    """The ideal codelength Σ −log2 P(j) of the indices under `index_law`, in bits."""
    p, _, _ = index_law(num_candidates, kl_q, sd_q, algorithm)
    return float(-np.sum(np.log2(p[indices])))
