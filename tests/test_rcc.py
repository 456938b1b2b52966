"""Tests of `rdp_jax.rcc`: bit-exact round trips, the bitstream's checks, codelength and bias."""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

from rdp_jax import rcc  # noqa: E402

# Small fixed N keeps the hypothesis tests fast; bias is not tested there, only exactness.
_N_FAST = 64


def _problem(seed: int, d: int, kl_bits: float, std_ratio: float = 1.0):
    """q, p with KL(q‖p) = `kl_bits` exactly: a mean shift on top of the variance term."""
    rng = np.random.default_rng(seed)
    p_mean = rng.normal(size=d)
    p_std = np.exp(0.3 * rng.normal(size=d))
    q_std = p_std * std_ratio
    variance_bits = d * 0.5 * (std_ratio**2 - 1 - 2 * math.log(std_ratio)) / math.log(2)
    shift_nats = max(kl_bits - variance_bits, 0.0) * math.log(2)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    q_mean = p_mean + p_std * direction * math.sqrt(2 * shift_nats)
    return q_mean, q_std, p_mean, p_std


@given(
    d=st.integers(1, 64),
    kl=st.floats(0.0, 60.0),
    std_ratio=st.sampled_from([1.0, 0.5, 1.3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_round_trip_bit_exact(d, kl, std_ratio, seed):
    _round_trip(d, kl, std_ratio, seed, f32=False)


@pytest.mark.parametrize(("d", "kl"), [(1, 30.0), (40, 50.0)])
def test_round_trip_float32(d, kl):
    _round_trip(d, kl, 0.7, d, f32=True)


def _round_trip(d, kl, std_ratio, seed, f32):
    q_mean, q_std, p_mean, p_std = _problem(seed, d, kl, std_ratio)
    if f32:
        q_mean, q_std, p_mean, p_std = (
            x.astype(np.float32) for x in (q_mean, q_std, p_mean, p_std)
        )
    key = jax.random.key(seed)
    data, info = rcc.encode(
        key, q_mean, q_std, p_mean, p_std, chunk_bits=8.0, num_candidates=_N_FAST, return_info=True
    )
    x = rcc.decode(key, data, p_mean, p_std)
    assert x.dtype == (jnp.float32 if f32 else jnp.float64) == info.sample.dtype
    assert np.asarray(x).tobytes() == np.asarray(info.sample).tobytes()
    assert info.payload_bits + info.header_bits == 8 * len(data)
    assert info.num_chunks == len(info.indices) == len(info.chunk_kl_bits)
    np.testing.assert_allclose(info.chunk_kl_bits.sum(), info.kl_bits, rtol=1e-9, atol=1e-9)
    assert np.all(info.indices < _N_FAST)


def test_decode_with_raw_key_and_fresh_jit_cache():
    q_mean, q_std, p_mean, p_std = _problem(0, 16, 20.0, 0.7)
    data, info = rcc.encode(
        jax.random.PRNGKey(3), q_mean, q_std, p_mean, p_std, num_candidates=256, return_info=True
    )
    jax.clear_caches()  # recompiling must give the same bits
    x = rcc.decode(jax.random.PRNGKey(3), data, p_mean, p_std)
    assert np.asarray(x).tobytes() == np.asarray(info.sample).tobytes()


def test_deterministic_and_key_dependent():
    args = _problem(1, 10, 15.0)
    first = rcc.encode(jax.random.key(7), *args, num_candidates=256)
    assert first == rcc.encode(jax.random.key(7), *args, num_candidates=256)
    assert first != rcc.encode(jax.random.key(8), *args, num_candidates=256)


def test_wrong_key_or_prior_raises():
    # The CRC is seeded with the key and the prior, so neither can silently decode wrongly.
    args = _problem(2, 6, 10.0)
    data = rcc.encode(jax.random.key(1), *args, num_candidates=256)
    with pytest.raises(ValueError, match=r"CRC32.*key"):
        rcc.decode(jax.random.key(2), data, args[2], args[3])
    with pytest.raises(ValueError, match=r"CRC32.*p_mean"):
        rcc.decode(jax.random.key(1), data, args[2] + 1e-12, args[3])


@pytest.fixture(scope="module")
def stream():
    q_mean, q_std, p_mean, p_std = _problem(3, 12, 30.0)
    data = rcc.encode(jax.random.key(0), q_mean, q_std, p_mean, p_std, num_candidates=256)
    return data, p_mean, p_std


def test_every_corrupted_byte_raises(stream):
    data, p_mean, p_std = stream
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(ValueError, match=r"CRC32|version|flags|header|truncated|corrupted"):
            rcc.decode(jax.random.key(0), bytes(bad), p_mean, p_std)


def test_every_truncation_raises(stream):
    data, p_mean, p_std = stream
    for n in range(len(data)):
        with pytest.raises(ValueError, match=r"CRC32|truncated|version|header|corrupted"):
            rcc.decode(jax.random.key(0), data[:n], p_mean, p_std)
    with pytest.raises(ValueError, match="CRC32"):
        rcc.decode(jax.random.key(0), data + b"\0", p_mean, p_std)


def test_bad_version_raises(stream):
    data, p_mean, p_std = stream
    with pytest.raises(ValueError, match="version 3"):
        rcc.decode(jax.random.key(0), bytes([3]) + data[1:], p_mean, p_std)


def test_bad_arguments_raise(stream):
    data, p_mean, p_std = stream
    key = jax.random.key(0)
    args = _problem(0, 4, 5.0)
    with pytest.raises(ValueError, match="p_mean"):
        rcc.decode(key, data, p_mean[:-1], p_std)
    with pytest.raises(ValueError, match="data"):
        rcc.decode(key, "not bytes", p_mean, p_std)
    with pytest.raises(ValueError, match="q_std"):
        rcc.encode(key, args[0], -args[1], args[2], args[3])
    with pytest.raises(ValueError, match="p_mean"):
        rcc.encode(key, args[0], args[1], np.full(4, np.nan), args[3])
    with pytest.raises(ValueError, match="q_std"):
        rcc.encode(key, args[0], args[1][:2], args[2], args[3])
    with pytest.raises(ValueError, match="algorithm"):
        rcc.encode(key, *args, algorithm="orc")
    with pytest.raises(ValueError, match="chunk_bits"):
        rcc.encode(key, *args, chunk_bits=0.0)
    with pytest.raises(ValueError, match="num_candidates"):
        rcc.encode(key, *args, num_candidates=1)
    with pytest.raises(ValueError, match="key"):
        rcc.encode(jnp.zeros(3), *args)


# Codelength bound (THEORY §10). Li & El Gamal (2018): E log2 K ≤ KL + e⁻¹ log2 e + 1 for the
# 1-based PFR index K, and truncation to N candidates can only lower K. Under a Zipf law with
# s = 1 + 1/(k̄ + 0.48), −log2 P(K) ≤ s log2 K + log2 ζ(s) and ζ(s) ≤ s/(s−1) = k̄ + 1.48, so
# summed over C chunks (KL = C k̄)
#     E[Zipf bits] ≤ KL + C (1 + 1.531 s + log2(k̄ + 1.48)) ≤ KL + C (log2(k̄ + 1) + 3.4)
# for k̄ ≥ 2. The index law mixes 1 % of that Zipf law in, so −log2 P ≤ Zipf bits + log2 100:
# c = 3.4 + 6.64 is proven. The trimmed range coder adds at most 4 bytes per stream on top.
_C_BOUND = 3.4 + math.log2(100.0)


@pytest.mark.parametrize(("d", "kl", "k", "n"), [(8, 24.0, 4.0, 2**10), (32, 64.0, 6.0, 2**12)])
def test_codelength_bound(d, kl, k, n):
    args = _problem(4, d, kl)
    infos = [
        rcc.encode(jax.random.key(s), *args, chunk_bits=k, num_candidates=n, return_info=True)[1]
        for s in range(100)
    ]
    chunks = infos[0].num_chunks
    kbar = kl / chunks
    bound = kl + chunks * (math.log2(kbar + 1) + _C_BOUND)
    index_bits = np.mean([i.index_bits for i in infos])
    payload = np.mean([i.payload_bits for i in infos])
    assert index_bits <= bound
    assert payload <= bound + 32
    # and the law fits: well inside the proven bound (c = 4 is the SFRL constant)
    assert index_bits <= kl + chunks * (math.log2(kbar + 1) + 4.0)


def test_unbiased_when_chunk_kl_is_small():
    # One 3-bit chunk against N = 2^10 candidates: the truncation bias is negligible, so the
    # projection of the decoded samples on Δ = μ_q − μ_p must follow q's N(Δ·μ_q, Σ Δ² σ_q²).
    q_mean, q_std, p_mean, p_std = _problem(5, 4, 3.0, 0.8)
    delta = q_mean - p_mean
    proj = []
    for s in range(1000):
        data = rcc.encode(
            jax.random.key(s), q_mean, q_std, p_mean, p_std, chunk_bits=4.0, num_candidates=2**10
        )
        proj.append(float(np.asarray(rcc.decode(jax.random.key(s), data, p_mean, p_std)) @ delta))
    loc, scale = delta @ q_mean, math.sqrt(np.sum(delta**2 * q_std**2))
    assert scipy.stats.kstest(proj, "norm", args=(loc, scale)).pvalue > 0.01
    # and it is not the prior's projection
    assert (
        scipy.stats.kstest(
            proj, "norm", args=(delta @ p_mean, math.sqrt(np.sum(delta**2 * p_std**2)))
        ).pvalue
        < 1e-6
    )
