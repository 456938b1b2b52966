"""`encode` / `decode`: chunked PFR channel simulation of diagonal Gaussians, as bytes."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from rdp_jax.rcc._bitstream import Header, check_crc, pack, unpack
from rdp_jax.rcc._candidates import SEGMENT, derive
from rdp_jax.rcc._index_model import index_bits
from rdp_jax.rcc._message import regenerate, simulate
from rdp_jax.rcc._validate import (
    canonical_bytes,
    coding_args,
    common_dtype,
    key_words,
    progress_callback,
    vector,
)


class EncodeInfo(NamedTuple):
    """What `encode(..., return_info=True)` reports besides the bytes.

    - `sample`: the selected sample, exactly what `decode` returns (same dtype, same bits).
    - `kl_bits`: KL(q‖p) in bits, the exact Gaussian value summed over dimensions.
    - `payload_bits`: the range-coded block (header fields, chunk indices, chunk layout) in
      bits as stored, less the ideal codelength of its header fields.
    - `header_bits`: everything else: the magic and version byte, the header fields (about 30
      bits: flags, N, C, the index law's and the layout's parameters; format v7, `_fields`)
      and the CRC32.
    - `num_chunks`: the number of chunks C.
    - `layout`: how the chunks were laid out: "cuts" (KL-balanced cuts, sent as width changes)
      or "split" (equal widths, halved where a chunk is too risky, sent as split flags); the
      encoder keeps the one of lower estimated payload (`_plan.plan_budget_layout` for the
      default PFR, `_plan.plan_layout` otherwise).
    - `chunk_dims`: the number of dimensions in each chunk (contiguous, in order), shape `(C,)`.
    - `chunk_kl_bits`: the KL of each chunk in bits, shape `(C,)`.
    - `chunk_log2_weight`: log2 w = log2 q/p of each chunk's selected candidate, shape `(C,)`;
      E[chunk_kl_bits − chunk_log2_weight] is the truncation bias ("deficit", maths §10),
      0 for exact PFR.
    - `indices`: the selected candidate index of each chunk, shape `(C,)`.
    - `chunk_candidates`: the candidates each chunk searched, shape `(C,)`. By default (PFR,
      `num_candidates=None`) 2^j, 18 ≤ j ≤ 22, from the message's bias budget, and not in the
      stream (the header's N is the largest); otherwise N, or N·2^e for the chunks whose
      truncation risk needed more (recorded in the stream).
    - `index_bits`: the ideal codelength Σ −log2 P(index) under the index laws; `payload_bits`
      differs from it by the layout's codelength, the recorded exponents e of the chunks that
      searched N·2^e (a given N or ORC: up to a few bits a boosted chunk), and the coder's
      termination, a few bits either way (the block is cut to its shortest decodable prefix,
      which can undercut the ideal).
    """

    sample: Float[Array, " d"]
    kl_bits: float
    payload_bits: int
    header_bits: int
    num_chunks: int
    layout: str
    chunk_dims: np.ndarray
    chunk_kl_bits: np.ndarray
    chunk_log2_weight: np.ndarray
    indices: np.ndarray
    chunk_candidates: np.ndarray
    index_bits: float


def _context(words: np.ndarray, p_mean: Array, p_std: Array) -> bytes:
    """What the decoder must hold identically to the encoder; it seeds the stream's CRC."""
    return canonical_bytes(words, p_mean, p_std)


def _prior_dim(p_mean, p_std, where: str) -> int:
    """d, from the prior (the stream does not carry it)."""
    shapes = np.shape(p_mean), np.shape(p_std)
    if len(shapes[0]) != 1 or shapes[0] != shapes[1] or not shapes[0][0]:
        raise ValueError(
            f"{where}: `p_mean` and `p_std` must be non-empty 1-D arrays of one length, the "
            f"encoder's d; got shapes {shapes[0]} and {shapes[1]}."
        )
    return shapes[0][0]


def encode(
    key: PRNGKeyArray,
    q_mean: Float[ArrayLike, " d"],
    q_std: Float[ArrayLike, " d"],
    p_mean: Float[ArrayLike, " d"],
    p_std: Float[ArrayLike, " d"],
    *,
    algorithm: str = "pfr",
    chunk_bits: float = 8.0,
    num_candidates: int | None = None,
    return_info: bool = False,
    progress: Callable[[float], None] | None = None,
) -> bytes | tuple[bytes, EncodeInfo]:
    """Sends one sample of q = N(μ_q, diag σ_q²) to a decoder that knows only p and the key.

    The exact per-dimension KL (`gaussian_kl_bits`) is split into contiguous chunks of about
    `chunk_bits` k each or more (below; `EncodeInfo.layout`). In each chunk the encoder draws N
    candidates z_j ~ p from the shared key and arrival times T_j = Σ_{i≤j} E_i, E_i ~ Exp(1),
    from its own key-derived randomness, and sends the index of (Li & El Gamal 2018, maths §10)

    .. math::
        j^\\star = \\arg\\min_{j < N}\\; \\log T_j - \\log w(z_j), \\qquad w = q/p.

    Untruncated, z_{j*} ~ q exactly; with N candidates the sample is biased towards p: the
    chosen log2 w falls short of the chunk's KL by the deficit of maths §12 (0.196 bits at
    k = 8, N = 2^18), which moves the statistic ln w(x), the sample's mean projection on Δ for a
    mean shift, by Σ deficit / sd(ln w) standard errors. The indices are range-coded
    (constriction) under the PFR index law of `_index_model` (ln T_J = ln S + ln w(z_J), with S
    ~ Exp(1) independent of z_J ~ q), whose parameters go in the header; the layout follows the
    indices in the range-coded block.

    **The default (PFR, `num_candidates=None`) spends one bias budget on the whole message**
    (`_budget`, maths §12): the chunks carry about k bits or more each, whatever their widths
    (every chunk pays ~3 bits of index overhead, so a message of KL varying from one dimension
    to the next is not cut into width-sized pieces), and each searches 2^j candidates,
    18 ≤ j ≤ 22, doubled where the deficit falls most until Σ deficit ≤ 1 standard error of
    ln w(x), no chunk more than 0.2 of its own. A 2048-dim shift Δ_i ~ N(0, τ²) at 0.87 bits/dim
    costs about 1.39–1.44 × KL (`benchmarks/README.md`). The counts are not sent: a PFR decoder
    regenerates only the chosen candidates, and the header's N, the largest count, spans every
    index. A dimension whose truncation risk, alone, exceeds that of a 14.3-bit mean shift
    (`_budget.max_dimension_kl`) at 2^22 candidates cannot be split nor searched enough, and
    `encode` refuses it with a `ValueError` naming it, before any search: an equal-variance
    mean shift beyond |μ_q − μ_p| > 4.45 σ_p, or less when σ_q > σ_p, where w has a heavy tail
    (maths §11).

    **With ORC or a given N**, every chunk is kept no riskier than a k-bit mean shift at N (its
    Chernoff bound on P_q(w ≥ N) through the Rényi divergence, or, for a single dimension, that
    exact tail): equal-width chunks are halved where riskier, or KL-balanced cuts are sent,
    whichever costs less, and a chunk still too risky searches N·2^e candidates, with the
    smallest e that makes it as safe (recorded in the stream); `encode` refuses a dimension
    that not even 2^22 make safe (at k = 8, N = 2^18: an equal-variance mean shift beyond
    10.5 bits). ORC's default N is the smallest 2^j from 2^18 to 2^22 that keeps the k-bit
    reference's bias within one standard error for C = ⌈KL/k⌉ chunks. k = 8 costs
    1.33 × KL at 1 bit/dim; k = 6, N = 2^16 is 3x faster and costs 1.46 × KL. For the seed
    paper's channel q = N(√ᾱ x, 1−ᾱ) against p = N(0, 1), where w is bounded, the deficit is
    far smaller (0.011 ± 0.027 bits per chunk at k = 8, N = 2^18).

    **Portability.** The stream decodes to the same bits on every machine: the candidates are
    specified to the bit (`_candidates`: Threefry-2x32 counters, and a normal quantile computed
    from IEEE basic operations), and every probability table is integer (`_tables`).

    **Arguments:**

    - `key`: the key shared with the decoder (`jax.random.key` or `jax.random.PRNGKey`).
    - `q_mean`, `q_std`, `p_mean`, `p_std`: 1-D arrays of one length d ≥ 1; standard deviations
      finite and > 0. The sample dtype is their common float dtype (float32 or float64).
    - `algorithm`: "pfr", or "orc" for ordered random coding (Theis & Yosri 2022): the same
      candidates, but T_j are the sorted times of N i.i.d. Exp(1), so the sample is minimal
      random coding's (z_j chosen ∝ w(z_j) among the N) and the index is its time's rank.
    - `chunk_bits`: target KL per chunk k, in bits, > 0 (the default PFR layout tries base
      chunks of k and 1.25 k and keeps the cheaper).
    - `num_candidates`: candidates per chunk N, an integer in [2, 2^22], or None (the default,
      chosen per chunk or per message as above).
    - `return_info`: also return an `EncodeInfo`.
    - `progress`: None, or a callable that is called with the fraction of the candidate search
      done (its candidates × padded widths), in (0, 1], as the search's calls complete; the
      last call is with 1. The layout is planned before the first (seconds at 10⁵
      dimensions). A progress bar is `tqdm(total=1.0)` with `lambda f: bar.update(f - bar.n)`.

    **Returns:** the stream as `bytes`; with `return_info`, `(bytes, info)`. The same key and
    inputs give the same bytes on one machine, jitted or not. On another machine (CPU features,
    a GPU) the search's floating-point scores may round differently, and a near-tie of two
    candidates' scores, which is rare, may then go the other way: other bytes, decoding as
    exactly to their own sample (decoding never depends on the machine).

    **Raises:** `ValueError` naming the argument for bad shapes, dtypes or values, a key that is
    not a threefry2x32 key, a dimension too far from p to be sampled without bias, and a
    message whose bias budget no layout meets (above).

    **Warns:** `UserWarning` in float32 when q puts more than 10⁻³ of a dimension's mass beyond
    μ_p ± 5.42 σ_p, which float32 candidates cannot reach (the sample would be biased).
    """
    where = "encode"
    algorithm, chunk_bits, num_candidates = coding_args(
        algorithm, chunk_bits, num_candidates, where
    )
    progress = progress_callback(progress, where)
    words = key_words(key, where)
    names = ("q_mean", "q_std", "p_mean", "p_std")
    dtype = common_dtype(q_mean, q_std, p_mean, p_std, where=where, names=names)
    q_mean = vector(q_mean, "q_mean", dtype, None, where)
    dim = q_mean.shape[0]
    q_std = vector(q_std, "q_std", dtype, dim, where, positive=True)
    p_mean = vector(p_mean, "p_mean", dtype, dim, where)
    p_std = vector(p_std, "p_std", dtype, dim, where, positive=True)

    message = simulate(
        derive(words, 0, SEGMENT),
        q_mean,
        q_std,
        p_mean,
        p_std,
        chunk_bits,
        num_candidates,
        algorithm,
        progress=progress,
    )
    header = Header(
        jnp.dtype(dtype).name, algorithm, False, dim, message.num_candidates, (message.segment,)
    )
    # d is not sent: `decode` takes it from its prior.
    packed = pack(header, [message.indices], _context(words, p_mean, p_std), send_dim=False)
    if not return_info:
        return packed.data
    segment = packed.segments[0]
    info = EncodeInfo(
        sample=jnp.asarray(message.sample),
        kl_bits=float(message.kl_bits.sum()),
        payload_bits=packed.payload_bits,
        header_bits=packed.header_bits,
        num_chunks=len(segment.counts),
        layout=segment.layout,
        chunk_dims=segment.counts,
        chunk_kl_bits=message.chunk_kl_bits,
        chunk_log2_weight=message.chunk_log2_weight,
        indices=message.indices,
        chunk_candidates=message.chunk_candidates,
        index_bits=index_bits(
            message.indices,
            segment.extra,
            message.num_candidates,
            segment.kl_q,
            segment.sd_q,
            algorithm,
        ),
    )
    return packed.data, info


def decode(
    key: PRNGKeyArray,
    data: bytes,
    p_mean: Float[ArrayLike, " d"],
    p_std: Float[ArrayLike, " d"],
) -> Float[Array, " d"]:
    """Rebuilds the encoder's sample from the stream, the shared key and p alone (never q).

    Only the C chosen candidates are regenerated, in NumPy with IEEE basic operations only, so
    the result has the encoder's dtype and is bit-identical to `EncodeInfo.sample` on any
    machine (CPU features, CPU or GPU encoder, jitted or not, jax version).

    The stream's CRC is seeded with the key and the prior, so a wrong key or prior raises like a
    corrupted stream does (a mismatch goes unnoticed with probability 2⁻³²).

    **Arguments:**

    - `key`: the key given to `encode`.
    - `data`: the bytes `encode` returned.
    - `p_mean`, `p_std`: the prior given to `encode`, 1-D of the encoder's length d (the stream
      does not record d: the prior gives it).

    **Returns:** the sample, shape `(d,)`, in the dtype recorded in `data`.

    **Raises:** `ValueError` for bytes that are not an rdp-jax stream, a truncated or corrupted
    stream, a wrong key or prior (CRC32 mismatch), a bad format version or inconsistent header,
    and for `p_mean`/`p_std` of the wrong length or bad values.
    """
    return jnp.asarray(host_decode(key, data, p_mean, p_std))


def host_decode(
    key: PRNGKeyArray,
    data: bytes,
    p_mean: Float[ArrayLike, " d"],
    p_std: Float[ArrayLike, " d"],
) -> Float[np.ndarray, " d"]:
    """`decode` on the host: the same checks and the same bits, as a NumPy array.

    For callers that go on in NumPy (`rdp_jax.codec`): a device array would be copied back at
    once, and that round trip costs more than regenerating the sample.

    **Arguments**, **Raises:** as `decode`.

    **Returns:** the sample, shape `(d,)`, a NumPy array of the dtype recorded in `data`.
    """
    where = "decode"
    dim = _prior_dim(p_mean, p_std, where)
    header, indices = unpack(data, dim=dim)
    words = key_words(key, where)
    if header.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(f"{where}: `data` holds a float64 sample; enable jax_enable_x64.")
    p_mean = vector(p_mean, "p_mean", header.dtype, dim, where)
    p_std = vector(p_std, "p_std", header.dtype, dim, where, positive=True)
    check_crc(data, header, _context(words, p_mean, p_std))
    return regenerate(
        derive(words, 0, SEGMENT), header.segments[0].counts, indices[0], p_mean, p_std
    )
