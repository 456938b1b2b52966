"""Truncated PFR per chunk (jitted, scanned over candidate blocks); the chosen candidates.

Randomness layout (format version 4), for a root key `key`:

- `cand_root, time_root = jax.random.split(key)`.
- Candidate j of chunk c is row j mod R of the (R, width) standard-normal block
  `normal(fold_in(fold_in(cand_root, c), j // R), (R, width))`, R = `ROWS_PER_KEY` = 64, and
  z = μ_p + σ_p ε on the chunk's dimensions (its first `n_c` entries; `width` is the chunk's
  padded width, the power of two ≥ max(4, n_c), which the decoder recomputes from the layout).
  One key per R candidates rather than one per candidate saves two threefry hashes a candidate
  (1.6x candidates/s in float32); the decoder regenerates only the chosen candidate's block,
  R rows.
- Arrival times of chunk c, scan step b: E = `exponential(fold_in(fold_in(time_root, c), b),
  (block,))`. PFR sums E cumulatively (a unit-rate Poisson process); ORC sums E_j / (N − j),
  the order statistics of N i.i.d. Exp(1) (Rényi's representation). They are the encoder's
  private randomness, derived from the key so that encoding is deterministic; the decoder never
  needs them.
"""

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

ROWS_PER_KEY = 64


def _noise_rows(chunk_key: PRNGKeyArray, row_block: Array, width: int, dtype):
    """The (R, width) standard normals of candidates R·row_block, …, R·row_block + R − 1."""
    key = jax.random.fold_in(chunk_key, row_block)
    return jax.random.normal(key, (ROWS_PER_KEY, width), dtype)


@functools.partial(jax.jit, static_argnames=("num_candidates", "block", "ordered"))
def search_chunks(
    cand_root: PRNGKeyArray,
    time_root: PRNGKeyArray,
    chunks: Int[Array, " g"],
    a: Float[Array, "g width"],
    b: Float[Array, "g width"],
    *,
    num_candidates: int,
    block: int,
    ordered: bool = False,
) -> tuple[Int[Array, " g"], Float[Array, " g"]]:
    """argmin_j log T_j − log w(z_j) over j < N for a group of chunks, `block` candidates a step.

    T_j are Poisson arrivals (PFR) or, with `ordered`, the sorted times of ORC (see above).

    With u = a + b ε, a = (μ_p − μ_q)/σ_q and b = σ_p/σ_q, the log importance weight is

    .. math::
        \\log w(z) = \\log q(z) - \\log p(z) = \\sum_i \\Big[\\log b_i - \\tfrac12 u_i^2
        + \\tfrac12 ε_i^2\\Big],

    and padded dimensions (a = 0, b = 1) contribute exactly 0. Memory is O(g · block · width)
    whatever N is: candidates live only inside one scan step. The (chunk, candidate) pairs of a
    step are one flat vmap rather than two nested ones, which keeps XLA compile times down.

    **Returns:** each chunk's selected index and the log w (nats) of its selected candidate.
    """
    group, width = a.shape
    dtype = a.dtype
    if block % ROWS_PER_KEY:
        raise ValueError(f"block={block} must be a multiple of {ROWS_PER_KEY}.")
    rows_per_step = block // ROWS_PER_KEY
    log_b = jnp.sum(jnp.log(b), axis=-1, keepdims=True)
    cand_keys = jax.vmap(lambda c: jax.random.fold_in(cand_root, c))(chunks)
    time_keys = jax.vmap(lambda c: jax.random.fold_in(time_root, c))(chunks)
    num_blocks = -(-num_candidates // block)

    def step(carry, i):
        t0, best_score, best_index, best_logw = carry
        j = i * block + jnp.arange(block, dtype=jnp.uint32)
        row_blocks = i * rows_per_step + jnp.arange(rows_per_step, dtype=jnp.uint32)
        # One flat vmap over (chunk, row block) pairs rather than two nested ones.
        flat_keys = jnp.repeat(cand_keys, rows_per_step, axis=0)
        flat_rows = jnp.tile(row_blocks, group)
        eps = jax.vmap(lambda key, r: _noise_rows(key, r, width, dtype))(flat_keys, flat_rows)
        eps = eps.reshape(group, block, width)
        u = a[:, None, :] + b[:, None, :] * eps
        logw = log_b + 0.5 * jnp.sum((eps - u) * (eps + u), axis=-1)
        keys = jax.vmap(lambda key: jax.random.fold_in(key, i))(time_keys)
        e = jax.vmap(lambda key: jax.random.exponential(key, (block,), dtype))(keys)
        if ordered:
            e = e / jnp.maximum(num_candidates - j, 1).astype(dtype)
        t = t0[:, None] + jnp.cumsum(e, axis=-1)
        # log space: T_j / w_j overflows for the KL of a whole chunk in float32.
        score = jnp.where(j < num_candidates, jnp.log(t) - logw, jnp.inf)
        k = jnp.argmin(score, axis=-1)
        rows = jnp.arange(group)
        better = score[rows, k] < best_score
        return (
            t[:, -1],
            jnp.where(better, score[rows, k], best_score),
            jnp.where(better, j[k], best_index),
            jnp.where(better, logw[rows, k], best_logw),
        ), None

    init = (
        jnp.zeros((group,), dtype),
        jnp.full((group,), jnp.inf, dtype),
        jnp.zeros((group,), jnp.uint32),
        jnp.zeros((group,), dtype),
    )
    (_, _, index, logw), _ = jax.lax.scan(step, init, jnp.arange(num_blocks, dtype=jnp.uint32))
    return index, logw


@functools.partial(jax.jit, static_argnames=("width", "dtype"))
def chosen_noise(
    cand_root: PRNGKeyArray,
    chunks: Int[Array, " c"],
    indices: Int[Array, " c"],
    *,
    width: int,
    dtype,
) -> Float[Array, "c width"]:
    """The standard normal ε of candidate `indices[i]` of chunk `chunks[i]`, for each i.

    Only these C candidates are regenerated. The affine map z = μ_p + σ_p ε is applied by the
    caller in NumPy, whose separate IEEE multiply and add round the same way on every platform
    (an XLA fusion could contract them into an FMA on one build and not on another).
    """

    def one(c, j):
        rows = _noise_rows(jax.random.fold_in(cand_root, c), j // ROWS_PER_KEY, width, dtype)
        return rows[j % ROWS_PER_KEY]

    return jax.vmap(one)(chunks, indices)
