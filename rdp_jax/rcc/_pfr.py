"""Truncated PFR and ORC per chunk: the encoder's search, jitted and scanned over candidate blocks.

The candidates and arrival times follow `_candidates`; the search evaluates them in XLA, and only
the chosen candidates are regenerated exactly afterwards (`_message.regenerate`).
"""

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, UInt32

from rdp_jax.rcc._candidates import search_exponentials, search_noise


@functools.partial(jax.jit, static_argnames=("block", "ordered"))
def search_chunks(
    candidate_keys: UInt32[Array, "g 2"],
    time_keys: UInt32[Array, "g 2"],
    a: Float[Array, "g width"],
    b: Float[Array, "g width"],
    num_candidates: Int[Array, ""],
    *,
    block: int,
    ordered: bool = False,
) -> tuple[Int[Array, " g"], Float[Array, " g"]]:
    """argmin_j log T_j − log w(z_j) over j < N for a group of chunks, `block` candidates a step.

    T_j are Poisson arrivals (PFR: T_j = Σ_{i≤j} E_i) or, with `ordered`, the sorted times of
    N i.i.d. Exp(1) (ORC, by Rényi's representation T_j = Σ_{i≤j} E_i / (N − i)).

    With u = a + b ε, a = (μ_p − μ_q)/σ_q and b = σ_p/σ_q, the log importance weight is

    .. math::
        \\log w(z) = \\log q(z) - \\log p(z) = \\sum_i \\Big[\\log b_i - \\tfrac12 u_i^2
        + \\tfrac12 ε_i^2\\Big],

    and padded dimensions (a = 0, b = 1) contribute exactly 0. Memory is O(g · block · width)
    whatever N is: candidates live only inside one loop step. N is a traced scalar (the loop
    runs ⌈N / block⌉ steps), so one compilation per (width, block) serves every N.

    **Returns:** each chunk's selected index and the log w (nats) of its selected candidate.
    """
    group, width = a.shape
    dtype = a.dtype
    if block % 2:
        raise ValueError(f"block={block} must be even.")
    log_b = jnp.sum(jnp.log(b), axis=-1, keepdims=True)
    num_candidates = jnp.asarray(num_candidates, jnp.uint32)
    num_blocks = (num_candidates + block - 1) // block

    def step(i, carry):
        t0, best_score, best_index, best_logw = carry
        first = i * block
        j = first + jnp.arange(block, dtype=jnp.uint32)
        eps = search_noise(candidate_keys, first, block, width, dtype)
        u = a[:, None, :] + b[:, None, :] * eps
        logw = log_b + 0.5 * jnp.sum((eps - u) * (eps + u), axis=-1)
        e = search_exponentials(time_keys, first, block, dtype)
        if ordered:
            e = e / jnp.where(j < num_candidates, num_candidates - j, 1).astype(dtype)
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
        )

    init = (
        jnp.zeros((group,), dtype),
        jnp.full((group,), jnp.inf, dtype),
        jnp.zeros((group,), jnp.uint32),
        jnp.zeros((group,), dtype),
    )
    _, _, index, logw = jax.lax.fori_loop(jnp.uint32(0), num_blocks, step, init)
    return index, logw
