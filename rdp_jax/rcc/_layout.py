"""The KL of diagonal Gaussians per dimension and its split into chunks of about k bits."""

import math

import numpy as np
from jaxtyping import Float, Int

_LN2 = math.log(2.0)


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
    """
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
    """
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
