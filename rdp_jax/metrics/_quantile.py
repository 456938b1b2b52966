"""Exact W2² between 1-D empirical distributions, through their quantile functions."""

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from rdp_jax.metrics._estimate import (
    Estimate,
    as_int,
    as_samples,
    block_ids,
    float_dtype,
    jackknife,
    num_blocks_for,
)


def w2_1d(
    x: Float[ArrayLike, " nx *d"], y: Float[ArrayLike, " ny *d"], *, num_blocks: int = 20
) -> Estimate:
    """Exact W2² between the empirical distributions of two 1-D samples.

    In one dimension the optimal coupling is monotone, so W2² is the L² distance between the
    quantile functions (Villani 2003, Thm. 2.18):

    .. math::
        W_2^2 = \\int_0^1 \\big(F_x^{-1}(u) - F_y^{-1}(u)\\big)^2 \\, du
        \\;\\overset{n_x = n_y = n}{=}\\; \\frac1n \\sum_{i=1}^n (x_{(i)} - y_{(i)})^2 .

    Unequal sizes are exact too: both quantile functions are step functions, constant between
    consecutive points of {i/n_x} ∪ {j/n_y}, so the integral is a finite sum over those
    n_x + n_y intervals (the north-west corner rule). Cost: two sorts, then per jackknife block
    O(n) for equal sizes and one sort of n_x + n_y breakpoints otherwise.

    **Error bar:** delete-a-block jackknife, as in `w2_gaussian` (blocks of the original sample
    order, deleted from `x` and `y` together, so paired samples are handled). When the two
    distributions are equal the estimate is degenerate (its spread is O(1/n), not O(1/√n)) and
    the error bar is then only a scale. Measured over 1000 repeats, n = 2000: N(0, 1) vs
    N(0, 1.5²), mean stderr 0.0282 against a spread of 0.0282; paired, y = 0.6x + 0.5z,
    0.0058 against 0.0059; equal distributions, 0.0023 against 0.0017 (conservative).

    **Bias:** upward. For independent samples with n_x = n_y = n from X = μ_x + s Z and
    Y = μ_y + t Z', Z and Z' of one standardised law (e.g. both Gaussian), exactly

    .. math::
        \\mathbb E\\, \\hat W_2^2 = W_2^2 + 2 s t\\, v_n, \\qquad
        v_n = \\frac1n \\sum_i \\operatorname{Var} Z_{(i)},

    since E(1/n)Σ Z_(i)² = 1. For the standard normal, computed from the exact order-statistic
    means: n·v_n = 2.740, 3.148, 3.440, 3.666 at n = 10², 10³, 10⁴, 10⁵, i.e.
    v_n ≈ (ln ln n + 1.22)/n to ±0.01/n. The ln ln n comes from the Gaussian tails: in general
    E W2²(empirical, true) ≍ 1/n exactly when J₂ = ∫ F(1-F)/f dx < ∞, and is slower otherwise
    (Bobkov & Ledoux 2019, *One-dimensional empirical measures, order statistics, and
    Kantorovich transport distances*, Mem. AMS, §4-§6).

    **Arguments:**

    - `x`: samples, shape `(n_x,)` or `(n_x, 1)`.
    - `y`: samples, shape `(n_y,)` or `(n_y, 1)`; n_y may differ from n_x.
    - `num_blocks`: jackknife blocks, ≥ 2; fewer when a sample has < 2·`num_blocks` points,
      and a standard error of +inf below 4 points.

    **Returns:** `Estimate(value, stderr)`.

    **Raises:** `ValueError` naming `x`, `y` or `num_blocks` for: more than one feature, fewer
    than 2 samples, NaN/inf entries (at run time under `jit`), or `num_blocks` < 2.
    """
    where = "w2_1d"
    dtype = float_dtype(where, x=x, y=y)
    x = as_samples(x, "x", where, dtype)
    y = as_samples(y, "y", where, dtype)
    for name, s in (("x", x), ("y", y)):
        if s.shape[1] != 1:
            raise ValueError(f"{where}: `{name}` must be 1-D, shape (n,) or (n, 1); got {s.shape}.")
    num_blocks = num_blocks_for(as_int(num_blocks, "num_blocks", where, 2), x.shape[0], y.shape[0])
    return _w2_1d(x, y, num_blocks)


@functools.partial(jax.jit, static_argnums=2)
def _w2_1d(x: Float[Array, "nx d"], y: Float[Array, "ny d"], num_blocks: int) -> Estimate:
    full, replicates = value_and_replicates(x[:, 0], y[:, 0], num_blocks)
    stderr, _ = jackknife(full, replicates)
    return Estimate(full, stderr)


def _masked_w2_sorted(
    xs: Float[Array, " nx"],
    keep_x: Bool[Array, " nx"],
    ys: Float[Array, " ny"],
    keep_y: Bool[Array, " ny"],
) -> Float[Array, ""]:
    """W2² between the uniform distributions on the kept points of two sorted samples.

    Dropped points get zero mass, so every jackknife replicate has the same static shape. The
    cumulative masses are (integer count)/(integer total): correctly rounded, so breakpoints
    that are equal in exact arithmetic (i/n = j/m) are equal in floating point too, and the
    intervals between them have length exactly 0 rather than a few ulps of the wrong cell.
    """
    dtype = xs.dtype

    def cumulative(keep):
        counts = jnp.cumsum(keep.astype(jnp.int32)).astype(dtype)
        return counts / counts[-1]

    nx = xs.shape[0]
    merged = jnp.concatenate([cumulative(keep_x), cumulative(keep_y)])
    order = jnp.argsort(merged, stable=True)
    upper = merged[order]
    lower = jnp.concatenate([jnp.zeros(1, dtype), upper[:-1]])
    # On an interval (lower, upper] of positive length, F_x^{-1} = x_(i) with i the first index
    # whose cumulative mass reaches it, i.e. the number of x-breakpoints ≤ lower: those sit
    # exactly at the earlier merged positions. (Dropped points repeat their predecessor's mass,
    # so they are counted and skipped.) Zero-length intervals get weight 0 whatever the index.
    from_x = order < nx
    ix = jnp.cumsum(from_x) - from_x
    iy = jnp.arange(merged.shape[0]) - ix
    ix = jnp.minimum(ix, nx - 1)
    iy = jnp.minimum(iy, ys.shape[0] - 1)
    return jnp.sum((upper - lower) * (xs[ix] - ys[iy]) ** 2)


def _compact(xs: Float[Array, " n"], keep: Bool[Array, " n"]) -> Float[Array, " n"]:
    """The kept points of a sorted sample moved, in order, to the front; zeros after them."""
    target = jnp.where(keep, jnp.cumsum(keep) - 1, xs.shape[0])  # out of range: dropped
    return jnp.zeros_like(xs).at[target].set(xs, mode="drop")


def value_and_replicates(
    x: Float[Array, " nx"], y: Float[Array, " ny"], num_blocks: int
) -> tuple[Float[Array, ""], Float[Array, " B"]]:
    """W2² of two 1-D samples and its delete-a-block jackknife replicates (B = `num_blocks`).

    Shared by `w2_1d` and `sliced_w2`; blocks are of the original sample order, so they line up
    across projections and between paired samples.
    """
    order_x, order_y = jnp.argsort(x), jnp.argsort(y)
    xs, ys = x[order_x], y[order_y]
    block_x = jnp.asarray(block_ids(x.shape[0], num_blocks))[order_x]
    block_y = jnp.asarray(block_ids(y.shape[0], num_blocks))[order_y]

    def without(b):
        keep_x, keep_y = block_x != b, block_y != b
        if xs.shape != ys.shape:
            return _masked_w2_sorted(xs, keep_x, ys, keep_y)
        # Equal n: block b removes as many points from y as from x, so the two remainders
        # again have equal sizes and the order-statistic formula holds on the compacted
        # points (the zero padding adds nothing). XLA's CPU sort is slow; this avoids it.
        kept = jnp.sum(keep_x).astype(xs.dtype)
        return jnp.sum((_compact(xs, keep_x) - _compact(ys, keep_y)) ** 2) / kept

    # Block index `num_blocks` drops nothing: the full value, in the same vmapped call. One
    # block (too few samples) would drop everything, so then only the full value is computed.
    drops = jnp.arange(num_blocks + 1) if num_blocks >= 2 else jnp.array([num_blocks])
    values = jax.vmap(without)(drops)
    return values[-1], values[:-1]
