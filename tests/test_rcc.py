"""Tests of `rdp_jax.rcc`: bit-exact round trips, the bitstream's checks, codelength and bias."""

import jax

jax.config.update("jax_enable_x64", True)

import itertools  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats  # noqa: E402
from helpers import diffusion_channel  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

from rdp_jax import rcc, scores  # noqa: E402
from rdp_jax.rcc._bitstream import MAGIC, unpack  # noqa: E402
from rdp_jax.rcc._layout_code import MAX_CANDIDATES, max_extra  # noqa: E402

# Small N keeps the hypothesis tests fast; bias is not tested there, only exactness.
_N_FAST = 64
# The round-trip property draws N among these (each compiles its search once).
_N_ROUND_TRIP = (16, _N_FAST, 2**10)


def _problem(seed: int, d: int, kl_bits: float, std_ratio: float = 1.0, spread: bool = True):
    """q, p with KL(q‖p) = `kl_bits` exactly: a mean shift on top of the variance term, along a
    random direction (`spread`), which may concentrate it in a few dimensions, or along the
    diagonal, which divides it equally."""
    rng = np.random.default_rng(seed)
    p_mean = rng.normal(size=d)
    p_std = np.exp(0.3 * rng.normal(size=d))
    q_std = p_std * std_ratio
    variance_bits = d * 0.5 * (std_ratio**2 - 1 - 2 * math.log(std_ratio)) / math.log(2)
    shift_nats = max(kl_bits - variance_bits, 0.0) * math.log(2)
    direction = rng.normal(size=d) if spread else np.ones(d)
    direction /= np.linalg.norm(direction)
    q_mean = p_mean + p_std * direction * math.sqrt(2 * shift_nats)
    return q_mean, q_std, p_mean, p_std


@given(
    d=st.integers(1, 512),
    kl=st.floats(0.0, 300.0),
    std_ratio=st.sampled_from([1.0, 0.5, 1.3]),
    seed=st.integers(0, 2**31 - 1),
    algorithm=st.sampled_from(rcc.ALGORITHMS),
    # At k = 2 the 64 candidates are generous, so risky chunks split (layout flags are coded).
    chunk_bits=st.sampled_from([2.0, 8.0]),
    num_candidates=st.sampled_from(_N_ROUND_TRIP),
)
def test_round_trip_bit_exact(d, kl, std_ratio, seed, algorithm, chunk_bits, num_candidates):
    _round_trip(d, kl, std_ratio, seed, False, algorithm, chunk_bits, num_candidates=num_candidates)


@pytest.mark.parametrize(("d", "kl", "algorithm"), [(1, 30.0, "pfr"), (40, 50.0, "orc")])
def test_round_trip_float32(d, kl, algorithm):
    with warnings.catch_warnings():
        # Exactness, not bias, is tested: a 30-bit single dimension is past float32's reach. At
        # k = 32 (a reference as lax as the request) it is coded rather than refused.
        warnings.simplefilter("ignore", UserWarning)
        _round_trip(d, kl, 0.7, d, f32=True, algorithm=algorithm, chunk_bits=32.0, refusable=False)


@pytest.mark.parametrize("num_candidates", [2, MAX_CANDIDATES])
def test_round_trip_at_the_candidate_count_limits(num_candidates):
    # Both ends of the range encode accepts must decode: the header check shares the range.
    args = _problem(6, 1, 1.0)
    key = jax.random.key(6)
    data, info = rcc.encode(key, *args, num_candidates=num_candidates, return_info=True)
    assert np.asarray(rcc.decode(key, data, args[2], args[3])).tobytes() == (
        np.asarray(info.sample).tobytes()
    )
    with pytest.raises(ValueError, match="num_candidates"):
        rcc.encode(key, *args, num_candidates=(1, MAX_CANDIDATES + 1)[num_candidates > 2])


def test_float32_warns_when_q_is_out_of_reach():
    # A 30-bit shift in one dimension puts q's mean 6.5 prior sds out, past float32's |ε| ≤ 5.42.
    options = dict(num_candidates=_N_FAST, chunk_bits=32.0)
    args = [x.astype(np.float32) for x in _problem(3, 1, 30.0)]
    with pytest.warns(UserWarning, match="dimension 0"):
        rcc.encode(jax.random.key(0), *args, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rcc.encode(jax.random.key(0), *_problem(3, 1, 30.0), **options)
        near = [x.astype(np.float32) for x in _problem(3, 1, 2.0)]
        rcc.encode(jax.random.key(0), *near, **options)


def _round_trip(
    d, kl, std_ratio, seed, f32, algorithm, chunk_bits=8.0, refusable=True, num_candidates=_N_FAST
):
    q_mean, q_std, p_mean, p_std = _problem(seed, d, kl, std_ratio)
    if f32:
        q_mean, q_std, p_mean, p_std = (
            x.astype(np.float32) for x in (q_mean, q_std, p_mean, p_std)
        )
    key = jax.random.key(seed)
    try:
        data, info = rcc.encode(
            key,
            q_mean,
            q_std,
            p_mean,
            p_std,
            algorithm=algorithm,
            chunk_bits=chunk_bits,
            num_candidates=num_candidates,
            return_info=True,
        )
    except ValueError as error:
        if not refusable:
            raise
        args = (q_mean, q_std, p_mean, p_std)
        _assert_refusal_is_justified(error, args, chunk_bits, num_candidates)
        return
    x = rcc.decode(key, data, p_mean, p_std)
    assert x.dtype == (jnp.float32 if f32 else jnp.float64) == info.sample.dtype
    assert np.asarray(x).tobytes() == np.asarray(info.sample).tobytes()
    assert info.num_chunks == len(info.indices) == len(info.chunk_kl_bits) == len(info.chunk_dims)
    assert info.chunk_dims.sum() == d
    # KL against the closed form written out here (`_problem` sets it to `kl` unless the
    # variance term alone exceeds it); a sum of d terms of size ≤ ~300 bits: 1e-12 relative.
    qm, qs, pm, ps = (np.asarray(a, np.float64) for a in (q_mean, q_std, p_mean, p_std))
    want = np.sum(np.log(ps / qs) + (qs**2 + (qm - pm) ** 2) / (2 * ps**2) - 0.5) / math.log(2)
    np.testing.assert_allclose(info.kl_bits, want, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(info.chunk_kl_bits.sum(), want, rtol=1e-12, atol=1e-9)
    assert np.all(info.indices < info.chunk_candidates)
    boosts = np.unique(info.chunk_candidates // num_candidates).tolist()
    assert set(boosts) <= {2**e for e in range(max_extra(num_candidates) + 1)}
    assert np.all(info.chunk_candidates % num_candidates == 0)


def _assert_refusal_is_justified(error, args, chunk_bits, num_candidates):
    """`encode` may refuse only a dimension whose tail P_q(w ≥ 2^22), alone, still exceeds that of
    a `chunk_bits` mean shift at `num_candidates`; Monte Carlo with 10⁵ draws of q must agree
    that it is above the reference (one-sided, 5 standard errors: false failure ~3e-7)."""
    found = re.match(r"encode: dimension (\d+) cannot be sampled without bias", str(error))
    assert found, str(error)
    dim = int(found.group(1))
    q_mean, q_std, p_mean, p_std = (float(np.asarray(a, np.float64)[dim]) for a in args)
    z = q_mean + q_std * np.random.default_rng(dim).standard_normal(100_000)
    log_w = scipy.stats.norm.logpdf(z, q_mean, q_std) - scipy.stats.norm.logpdf(z, p_mean, p_std)
    tail = np.mean(log_w >= math.log(MAX_CANDIDATES))
    kl = chunk_bits * math.log(2)  # the reference: ln w ~ N(KL, 2 KL) for a k-bit mean shift
    reference = scipy.stats.norm.sf((math.log(num_candidates) - kl) / math.sqrt(2 * kl))
    assert tail + 5 * math.sqrt(reference * (1 - reference) / 1e5) > reference


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


def test_progress_hears_each_search_call_and_changes_no_bit(monkeypatch):
    """`progress` is told the fraction of the search work done once per compiled call, rising
    to exactly 1, and the stream is the same without it; a progressive stream's step s reports
    within (s/S, (s + 1)/S] and closes it exactly."""
    from rdp_jax.rcc import _message

    calls = []
    search = _message.search_chunks
    monkeypatch.setattr(
        _message,
        "search_chunks",
        lambda *a, **k: calls.append(math.prod(a[2].shape) * int(a[4])) or search(*a, **k),
    )
    args = _problem(10, 300, 400.0, 0.8)  # ~50 chunks of several widths: several calls
    seen = []
    data = rcc.encode(jax.random.key(5), *args, num_candidates=2**12, progress=seen.append)
    assert len(seen) == len(calls) > 2
    assert seen[-1] == 1.0 and seen[0] > 0 and np.all(np.diff(seen) > 0)
    # Each report is the work done so far: the calls' chunks × padded widths × candidates.
    work = np.cumsum(calls)
    np.testing.assert_allclose(seen, work / work[-1], rtol=1e-15)
    assert data == rcc.encode(jax.random.key(5), *args, num_candidates=2**12)

    model = scores.gaussian(np.zeros(8), np.ones(8))
    x, grid = np.linspace(-1.5, 1.5, 8), np.geomspace(5.0, 0.5, 4)
    seen = []
    data = rcc.progressive_encode(
        jax.random.key(2), x, grid, model, num_candidates=2**10, progress=seen.append
    )
    assert data == rcc.progressive_encode(jax.random.key(2), x, grid, model, num_candidates=2**10)
    assert np.all(np.diff(seen) > 0) and seen[-1] == 1.0
    assert {1.0 / 4, 2.0 / 4, 3.0 / 4} <= set(seen)
    for bad in (True, "bar"):
        with pytest.raises(ValueError, match="`progress` must be None or a callable"):
            rcc.encode(jax.random.key(5), *args, progress=bad)
        with pytest.raises(ValueError, match="`progress` must be None or a callable"):
            rcc.progressive_encode(jax.random.key(2), x, grid, model, progress=bad)


def test_wrong_key_or_prior_raises():
    # The CRC is seeded with the key and the prior, so neither can silently decode wrongly.
    args = _problem(2, 6, 10.0)
    data = rcc.encode(jax.random.key(1), *args, num_candidates=256)
    with pytest.raises(ValueError, match=r"CRC32.*key"):
        rcc.decode(jax.random.key(2), data, args[2], args[3])
    with pytest.raises(ValueError, match=r"CRC32.*p_mean"):
        rcc.decode(jax.random.key(1), data, args[2] + 1e-12, args[3])


@pytest.fixture(scope="module", params=["cuts", "split"])
def stream(request):
    # One stream per layout mode, each with layout symbols to corrupt: KL packed in the first
    # dimensions (cut deviations), and the seed paper's channel (split flags).
    if request.param == "cuts":
        bits = np.r_[np.full(10, 4.0), np.full(50, 0.05)]
        q_mean, q_std = np.sqrt(2 * math.log(2) * bits), np.ones(60)
        p_mean, p_std = np.zeros(60), np.ones(60)
    else:
        q_mean, q_std, p_mean, p_std = diffusion_channel(60, seed=1, abar=0.9)
    data = rcc.encode(jax.random.key(0), q_mean, q_std, p_mean, p_std, num_candidates=1024)
    segment = unpack(data, dim=60)[0].segments[0]
    assert segment.layout == request.param and segment.layout_q > 1
    return data, p_mean, p_std


_BAD_STREAM = r"CRC32|version|flags|PRNG|header|truncated|corrupted|not an rdp-jax stream"


def test_every_corrupted_byte_raises(stream):
    data, p_mean, p_std = stream
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(ValueError, match=_BAD_STREAM):
            rcc.decode(jax.random.key(0), bytes(bad), p_mean, p_std)


def test_every_truncation_raises(stream):
    data, p_mean, p_std = stream
    for n in range(len(data)):
        with pytest.raises(ValueError, match=_BAD_STREAM):
            rcc.decode(jax.random.key(0), data[:n], p_mean, p_std)
    # A byte more moves the CRC's first byte into the block: it misparses or fails the CRC.
    with pytest.raises(ValueError, match=_BAD_STREAM):
        rcc.decode(jax.random.key(0), data + b"\0", p_mean, p_std)


def test_bad_version_raises(stream):
    data, p_mean, p_std = stream
    for other in (rcc.FORMAT_VERSION - 1, rcc.FORMAT_VERSION + 1):
        with pytest.raises(ValueError, match=f"unsupported format version {other}"):
            changed = bytes([data[0] & 0xF0 | other]) + data[1:]
            rcc.decode(jax.random.key(0), changed, p_mean, p_std)
    # and a stream of format 6 or 5, which began with the two bytes "RJ" and the version
    for old in (5, 6):
        with pytest.raises(ValueError, match=f"unsupported format version {old} .*reads 7"):
            rcc.decode(jax.random.key(0), b"RJ" + bytes([old]) + data[1:], p_mean, p_std)


def test_random_bytes_are_not_a_stream():
    # The magic number turns foreign bytes into one clear error, not a version or CRC complaint;
    # the 1/16 of random strings that begin with it fail later checks (the CRC) instead.
    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 5, 40, 500):
        blob = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        assert not blob or (blob[0] >> 4 != MAGIC and blob[:2] != b"RJ")
        with pytest.raises(ValueError, match="not an rdp-jax stream"):
            rcc.decode(jax.random.key(0), blob, np.zeros(3), np.ones(3))
    model = scores.gaussian(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="not an rdp-jax stream"):
        rcc.progressive_decode(jax.random.key(0), b"\x04\x01" + bytes(30), [1.0], model)


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
        rcc.encode(key, *args, algorithm="rejection")
    with pytest.raises(ValueError, match="chunk_bits"):
        rcc.encode(key, *args, chunk_bits=0.0)
    with pytest.raises(ValueError, match="num_candidates"):
        rcc.encode(key, *args, num_candidates=1)
    with pytest.raises(ValueError, match="key"):
        rcc.encode(jnp.zeros(3), *args)
    for not_numbers in ("abc", None, object()):
        with pytest.raises(ValueError, match="`q_std` must be an array of real numbers"):
            rcc.encode(key, args[0], not_numbers, args[2], args[3])
    with pytest.raises(ValueError, match="`chunk_bits` must be"):
        rcc.encode(key, *args, chunk_bits=True)
    with pytest.raises(ValueError, match=r"`chunk_bits` .* is too small for any layout"):
        rcc.encode(key, *args, chunk_bits=5e-324)
    # Finite inputs whose KL overflows float64: named, not an OverflowError from the layout.
    with pytest.raises(ValueError, match="beyond float64"):
        rcc.encode(key, args[0], np.full(4, 1e300), args[2], args[3])
    with pytest.raises(ValueError, match="`p_mean` must hold real numbers"):
        rcc.decode(key, data, p_mean + 1j, p_std)
    # A NumPy scalar k is a number like any other.
    small = {"num_candidates": 2**8}
    assert rcc.encode(key, *args, chunk_bits=np.float32(5), **small) == rcc.encode(
        key, *args, chunk_bits=5.0, **small
    )


def test_bad_progressive_arguments_raise():
    key, x = jax.random.key(0), np.linspace(-1, 1, 4).astype(np.float32)
    model = scores.gaussian(np.zeros(4, np.float32), np.ones(4, np.float32))
    # Grids that are fine in float64 but not once rounded to the data's float32.
    for grid in ([1.0, 1.0 - 1e-9], [1.0, 1e-50], [1e39, 1.0]):
        with pytest.raises(ValueError, match=r"`sigmas` must be .* in float32"):
            rcc.progressive_encode(key, x, grid, model)
    with pytest.raises(ValueError, match="`model` must be a score source"):
        rcc.progressive_encode(key, x, [2.0, 1.0], None)
    with pytest.raises(ValueError, match="event shape \\(4,\\) is not the message's 3"):
        rcc.progressive_encode(key, x[:3], [2.0, 1.0], model)
    with pytest.raises(ValueError, match="`chunk_bits` must be"):
        rcc.progressive_grid(np.ones(4), 0.3, chunk_bits=0)
    assert rcc.progressive_grid(np.ones(4), 0.3, max_steps=np.int64(4)).size >= 1


def test_crafted_progressive_headers_are_refused_before_any_work():
    """Streams a buggy or hostile encoder could write, with a valid magic byte: a d of 2^32 − 1
    (the decoder used to allocate 32 GiB for its prior), and an index law whose sd is far past
    the encoder's clamp (its construction took seconds per law)."""
    model = scores.gaussian(np.zeros(16), np.ones(16))
    huge_d = bytes.fromhex("d7bffff99ffcf3ff31de0ef24f3e0142")
    with pytest.raises(ValueError, match="4294967295 dimensions, not the model's 16"):
        rcc.progressive_decode(jax.random.key(0), huge_d, [3.0, 1.0, 0.5], model)
    wide_law = bytes.fromhex(
        "d7a6188443270400f382c38cdbd88486d9552b862b45338376315170556f94ed1a54dc9353507587"
        "0923e23c9f1183f72134a2cb1fa191ac3509c6a649d9d115d9dca69b835a42c38f46df5cf5"
    )
    with pytest.raises(ValueError, match="inconsistent header"):
        rcc.progressive_decode(
            jax.random.key(1),
            wide_law,
            np.geomspace(3.0, 0.5, 3),
            scores.gaussian(np.zeros(64), 1.0),
        )


# Codelength (maths §10). Li & El Gamal (2018, SFRL): an optimal code for the 1-based PFR index K
# has E log2-codelength ≤ KL + log2(KL + 1) + 4 per chunk, and truncation to N candidates can
# only lower K. The configurations are chosen so that the nearest wrong coder, raw ⌈log2 N⌉-bit
# indices, exceeds that bound by more than the range coder's 32-bit termination on the whole
# payload: every assert below fails for it.
_SFRL_C = 4.0
# One-sided z for a mean against an upper bound: false failure ≤ 1e-3 when E equals the bound.
_Z_BOUND = 3.1
# 100 messages: too few for the sum of their 32-bit terminations to mask a 1-bit-per-chunk waste.
_CODELENGTH_CASES = [
    (16, 64.0, 4.0, 2**14, "pfr", 60),
    (16, 64.0, 4.0, 2**14, "orc", 60),
    (24, 72.0, 6.0, 2**16, "pfr", 25),
]


def _layout_symbol_bits(data, dim, steps=None) -> float:
    """The ideal codelength of the stream's layout symbols under their own tables."""
    from rdp_jax.rcc._layout_code import layout_symbols

    bits = 0.0
    for segment in unpack(data, dim=dim, steps=steps)[0].segments:
        symbols, table = layout_symbols(dim, segment) if len(segment.counts) > 1 else (0, None)
        bits += 0.0 if table is None else table.bits(symbols)
    return bits


def _assert_payload_is_ideal(data, dim, payload_bits, index_bits, num_chunks, steps=None):
    """What is stored is the ideal codelength of the indices and the layout under their integer
    tables, plus the range coder's rounding: the block is the shortest byte string inside the
    message's interval of width P, so it holds at most −log2 P + 1 bits rounded up to a byte
    (+ 9), and constriction's finite-precision intervals add < 2⁻⁷ bits per symbol (two symbols a
    chunk at most). It is shorter than −log2 P only by luck, t bits with probability ≲ 2^−t: −20
    fails falsely with probability ≲ 1e-6 per stream."""
    ideal = index_bits + _layout_symbol_bits(data, dim, steps)
    assert -20 <= payload_bits - ideal <= 9 + 2 * num_chunks / 128, (payload_bits, ideal)


@pytest.mark.parametrize(("d", "kl", "k", "n", "algorithm", "messages"), _CODELENGTH_CASES)
def test_codelength_bound(d, kl, k, n, algorithm, messages):
    # For ORC the SFRL argument is approximate (its rank J ≈ N(1 − e^{−T/N}) ≤ T for the PFR
    # time T of the same winner, see `_index_model`), so its bound is checked empirically.
    args = _problem(4, d, kl, spread=False)
    options = dict(algorithm=algorithm, chunk_bits=k, num_candidates=n, return_info=True)
    streams = [rcc.encode(jax.random.key(s), *args, **options) for s in range(messages)]
    chunks = streams[0][1].num_chunks
    kbar = kl / chunks
    sfrl = kbar + math.log2(kbar + 1) + _SFRL_C  # bits per chunk
    raw = math.ceil(math.log2(n))
    assert chunks * (raw - sfrl) > 32, "raw index coding would pass: not a discriminating case"

    index = np.array([info.index_bits for _, info in streams]) / chunks
    assert index.mean() - _Z_BOUND * index.std(ddof=1) / math.sqrt(messages) <= sfrl

    for data, info in streams:
        _assert_payload_is_ideal(data, d, info.payload_bits, info.index_bits, chunks)
    payload = np.array([info.payload_bits for _, info in streams])
    se = payload.std(ddof=1) / math.sqrt(messages)
    assert payload.mean() - _Z_BOUND * se <= chunks * sfrl + 32


@pytest.mark.parametrize("algorithm", rcc.ALGORITHMS)
def test_unbiased_when_chunk_kl_is_small(algorithm):
    # One 3-bit chunk with σ_q = 0.8 σ_p against N = 2^10 candidates: the truncation bias is
    # negligible, so the decoded x must follow q = N(μ_q, diag σ_q²) in every respect tested:
    # its projection on Δ = μ_q − μ_p (where a shrink toward p shows first), on a fixed direction
    # orthogonal to Δ (which sees a wrong variance but no mean shift), and its squared
    # standardised norm Σ ((x − μ_q)/σ_q)² ~ χ²_4 (which sees the spread). Three KS tests at
    # level 1/300 each: false-failure rate ≤ 1 % per algorithm (Bonferroni).
    q_mean, q_std, p_mean, p_std = _problem(5, 4, 3.0, 0.8)
    delta = q_mean - p_mean
    other = np.random.default_rng(0).normal(size=4)
    other -= (other @ delta) / (delta @ delta) * delta
    options = dict(algorithm=algorithm, chunk_bits=4.0, num_candidates=2**10)
    x = []
    for s in range(1000):
        data = rcc.encode(jax.random.key(s), q_mean, q_std, p_mean, p_std, **options)
        x.append(np.asarray(rcc.decode(jax.random.key(s), data, p_mean, p_std)))
    x = np.array(x)
    pvalues = [
        scipy.stats.kstest(
            x @ u, "norm", args=(u @ q_mean, math.sqrt(np.sum(u**2 * q_std**2)))
        ).pvalue
        for u in (delta, other)
    ]
    pvalues.append(scipy.stats.kstest(np.sum(((x - q_mean) / q_std) ** 2, 1), "chi2", (4,)).pvalue)
    assert min(pvalues) > 0.01 / 3, pvalues
    # and the Δ projection is not the prior's
    p_loc, p_scale = delta @ p_mean, math.sqrt(np.sum(delta**2 * p_std**2))
    assert scipy.stats.kstest(x @ delta, "norm", args=(p_loc, p_scale)).pvalue < 1e-6


def test_same_bytes_without_jit():
    # Determinism across jit and op-by-op execution: the stream and sample are bit-identical.
    args = _problem(8, 5, 9.0, 0.8)
    key = jax.random.key(4)
    data, info = rcc.encode(key, *args, num_candidates=16, return_info=True)
    with jax.disable_jit():
        eager, eager_info = rcc.encode(key, *args, num_candidates=16, return_info=True)
        x = rcc.decode(key, data, args[2], args[3])
    assert eager == data
    assert np.asarray(eager_info.sample).tobytes() == np.asarray(info.sample).tobytes()
    assert np.asarray(x).tobytes() == np.asarray(info.sample).tobytes()


_TWO_DEVICE_ENCODE = """
import os, sys
os.environ["JAX_NUM_CPU_DEVICES"] = "2"
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from rdp_jax import rcc
assert jax.device_count() == 2
args = [np.frombuffer(open(p, "rb").read()) for p in sys.argv[1:]]
sys.stdout.buffer.write(rcc.encode(jax.random.key(5), *args, num_candidates=2**12))
"""


def test_same_bytes_on_two_devices(tmp_path):
    # encode deals chunk groups over the local devices; the stream must not depend on how many.
    import subprocess
    import sys

    args = _problem(10, 300, 400.0, 0.8)  # ~50 chunks: several groups, so both devices work
    paths = [tmp_path / f"a{i}" for i in range(4)]
    for path, x in zip(paths, args, strict=True):
        path.write_bytes(x.tobytes())
    out = subprocess.run(
        [sys.executable, "-c", _TWO_DEVICE_ENCODE, *map(str, paths)],
        capture_output=True,
        check=True,
    )
    assert out.stdout == rcc.encode(jax.random.key(5), *args, num_candidates=2**12)


@pytest.mark.slow
def test_ten_thousand_round_trips():
    # 10,000 random round trips with zero mismatches (about 9 min on 2 cores). Messages with a
    # dimension no candidate count can sample are refused, and each refusal must be justified.
    rng = np.random.default_rng(2026)
    mismatches = refused = 0
    for trial in range(10_000):
        d = int(rng.integers(1, 129))
        args = _problem(trial, d, float(rng.uniform(0, 100)), float(rng.choice([1.0, 0.6, 1.4])))
        key = jax.random.key(trial)
        # k = 2 every other trial: with 64 candidates its risky chunks split (flags coded).
        options = dict(num_candidates=64, chunk_bits=(8.0, 2.0)[trial % 2])
        try:
            data, info = rcc.encode(key, *args, return_info=True, **options)
        except ValueError as error:
            _assert_refusal_is_justified(error, args, options["chunk_bits"], 64)
            refused += 1
            continue
        x = rcc.decode(key, data, args[2], args[3])
        mismatches += np.asarray(x).tobytes() != np.asarray(info.sample).tobytes()
    assert mismatches == 0 and refused < 5_000


def test_host_decoders_return_the_public_decoders_bits_as_numpy():
    # The codec decodes on the host; the public decoders wrap the same path in a jax Array.
    from rdp_jax.rcc._codec import host_decode
    from rdp_jax.rcc._progressive import progressive_host_decode

    args = _problem(7, 12, 20.0)
    key = jax.random.key(7)
    data, info = rcc.encode(key, *args, num_candidates=_N_FAST, return_info=True)
    host, public = host_decode(key, data, args[2], args[3]), rcc.decode(key, data, *args[2:])
    assert isinstance(host, np.ndarray) and isinstance(public, jax.Array)
    assert host.dtype == public.dtype == np.asarray(info.sample).dtype
    assert host.tobytes() == np.asarray(public).tobytes() == np.asarray(info.sample).tobytes()
    with pytest.raises(ValueError, match=r"^decode: CRC32 mismatch"):
        host_decode(jax.random.key(8), data, args[2], args[3])

    model, grid, prior, x, _ = _diffc_setup()
    data, info = rcc.progressive_encode(
        key, x, grid, model, num_candidates=_N_FAST, return_info=True, **prior
    )
    host = progressive_host_decode(key, data, grid, model, **prior)
    public = rcc.progressive_decode(key, data, grid, model, **prior)
    assert isinstance(host, np.ndarray) and isinstance(public, jax.Array)
    assert isinstance(info.sample, jax.Array)
    assert host.tobytes() == np.asarray(public).tobytes() == np.asarray(info.sample).tobytes()


# Progressive (DiffC) coding.


def _diffc_setup(d=6):
    from rdp_jax import scores

    rng = np.random.default_rng(d)
    mean, var = rng.normal(size=d), np.exp(rng.normal(size=d))
    grid = np.geomspace(10.0, 0.4, 6)
    prior = {"prior_mean": mean, "prior_std": np.sqrt(var + grid[0] ** 2)}
    x = mean + np.sqrt(var) * rng.normal(size=d)
    return scores.gaussian(mean, var), grid, prior, x, var


@pytest.mark.parametrize("algorithm", rcc.ALGORITHMS)
def test_progressive_round_trip_and_hand_off_to_decode(algorithm):
    import rdp_jax

    model, grid, prior, x, _ = _diffc_setup()
    key = jax.random.key(1)
    data, info = rcc.progressive_encode(
        key, x, grid, model, algorithm=algorithm, num_candidates=256, return_info=True, **prior
    )
    x_t = rcc.progressive_decode(key, data, grid, model, **prior)
    assert np.asarray(x_t).tobytes() == np.asarray(info.sample).tobytes()
    assert info.step_kl_bits.shape == info.step_index_bits.shape == (len(grid),)
    # Step 0 sends x_{σ_1} ~ N(x, σ_1²) against the prior: its KL written out.
    s1, pm, ps = grid[0], prior["prior_mean"], prior["prior_std"]
    kl0 = np.sum(np.log(ps / s1) + (s1**2 + (x - pm) ** 2) / (2 * ps**2) - 0.5) / math.log(2)
    np.testing.assert_allclose(info.step_kl_bits[0], kl0, rtol=1e-12)
    chunks = int(info.step_num_chunks.sum())
    _assert_payload_is_ideal(
        data, len(x), info.payload_bits, info.step_index_bits.sum(), chunks, len(grid)
    )
    # Each step's share: what is left of the stream is its shared part (magic byte, CRC and
    # the stream's fields: dtype, algorithm, kind, PRNG, N = 2^8), within the coder's rounding
    # (as `_assert_payload_is_ideal`). A step of one chunk pays at most 14 bits of header.
    assert info.step_bits.shape == (len(grid),) and np.all(info.step_bits > info.step_index_bits)
    assert np.all(info.step_header_bits <= 14 + 12 * (info.step_num_chunks > 1))
    shared = 8 + 32 + _stream_field_bits(256)
    assert -20 <= 8 * len(data) - shared - info.step_bits.sum() <= 9 + 2 * chunks / 128
    assert info.header_bits == 8 * len(data) - info.payload_bits
    # x_t is a valid decoder input at σ_target
    x_hat = rdp_jax.decode(x_t, grid[-1], 0.5, model, num_steps=8)
    assert x_hat.shape == x.shape and np.all(np.isfinite(np.asarray(x_hat)))


def _stream_field_bits(num_candidates, dim=None) -> float:
    """The ideal codelength of a stream's own fields (`_fields`), written out: dtype, algorithm
    and kind 1 bit each, the PRNG's near-certain 0, d when sent, and N's exponent and flag."""
    from rdp_jax.rcc import _fields

    bits = 3 + _fields.prng_table().bits([0])
    if dim is not None:
        bits += _fields.lengths().dim.bits([dim.bit_length()]) + dim.bit_length() - 1
    exponent = num_candidates.bit_length() - 1
    rest = num_candidates - (1 << exponent)
    return (
        bits
        + _fields.exponent_table().bits([exponent])
        + _fields.flag_table(16).bits([int(rest > 0)])
        + (exponent if rest else 0)
    )


@pytest.mark.parametrize("algorithm", rcc.ALGORITHMS)
def test_one_chunk_steps_pay_a_few_bits_of_header(algorithm):
    # Steps of a few bits of KL are one chunk each: their header is C − 1 = 0 and the index
    # law's two parameters at 1 significant bit (format v6 spent 24 bits of varints on it).
    model, _, prior, x, var = _diffc_setup(2)
    grid = np.geomspace(3.0, 1.0, 6)
    prior["prior_std"] = np.sqrt(var + grid[0] ** 2)
    key = jax.random.key(3)
    data, info = rcc.progressive_encode(
        key, x, grid, model, algorithm=algorithm, num_candidates=64, return_info=True, **prior
    )
    assert np.all(info.step_num_chunks == 1)
    assert np.all(info.step_header_bits <= 14), info.step_header_bits
    # deterministic: the encoder's choice of the rounded law parameters included
    again = rcc.progressive_encode(
        key, x, grid, model, algorithm=algorithm, num_candidates=64, **prior
    )
    assert again == data
    assert np.asarray(rcc.progressive_decode(key, data, grid, model, **prior)).tobytes() == (
        np.asarray(info.sample).tobytes()
    )


def test_progressive_stream_carries_d_only_without_a_prior():
    model, grid, _, x, _ = _diffc_setup()
    key = jax.random.key(4)
    data, info = rcc.progressive_encode(key, x, grid, model, num_candidates=64, return_info=True)
    assert np.asarray(rcc.progressive_decode(key, data, grid, model)).tobytes() == (
        np.asarray(info.sample).tobytes()
    )
    prior = {"prior_mean": np.zeros(6), "prior_std": np.full(6, math.sqrt(1 + grid[0] ** 2))}
    given = rcc.progressive_encode(key, x, grid, model, num_candidates=64, **prior)
    # the default prior is this one: the streams differ by d's field alone (6: 3 bits + length)
    assert np.asarray(rcc.progressive_decode(key, given, grid, model, **prior)).tobytes() == (
        np.asarray(info.sample).tobytes()
    )
    assert len(given) <= len(data)


def test_progressive_rejects_wrong_model_grid_or_stream():
    from rdp_jax import scores

    model, grid, prior, x, var = _diffc_setup()
    key = jax.random.key(2)
    data = rcc.progressive_encode(key, x, grid, model, num_candidates=64, **prior)
    with pytest.raises(ValueError, match="CRC32"):
        rcc.progressive_decode(
            key, data, grid, scores.gaussian(prior["prior_mean"], var * 1.01), **prior
        )
    # The errors name progressive_decode and the arguments the CRC covers, `sigmas` included.
    with pytest.raises(ValueError, match=r"^progressive_decode: CRC32 mismatch.*`sigmas`"):
        rcc.progressive_decode(key, data, grid * (1 + 1e-9), model, **prior)
    corrupted = data[:5] + bytes([data[5] ^ 0x40]) + data[6:]
    with pytest.raises(ValueError, match=r"^progressive_decode: "):
        rcc.progressive_decode(key, corrupted, grid, model, **prior)
    with pytest.raises(ValueError, match=r"^progressive_decode: .*truncated"):
        rcc.progressive_decode(key, data[:8], grid, model, **prior)
    # The stream does not carry S (the grid gives it) nor d (the prior does): a shorter grid
    # or prior reads it otherwise, which the CRC, or the payload, rejects.
    with pytest.raises(ValueError, match=r"^progressive_decode: .*(CRC32.*`sigmas`|corrupted)"):
        rcc.progressive_decode(key, data, grid[:-1], model, **prior)
    short = {k: v[:-1] for k, v in prior.items()}  # of 5 dimensions, against a 6-dim model
    with pytest.raises(ValueError, match=r"^progressive_decode: `model`'s event shape \(6,\)"):
        rcc.progressive_decode(key, data, grid, model, **short)
    with pytest.raises(ValueError, match="one-shot"):
        rcc.progressive_decode(key, rcc.encode(key, x, np.ones(6), x, np.ones(6)), grid, model)
    with pytest.raises(ValueError, match="progressive"):
        rcc.decode(key, data, x, np.ones(6))
    with pytest.raises(ValueError, match="decreasing"):
        rcc.progressive_encode(key, x, grid[::-1], model, **prior)


def test_progressive_expected_kl_matches_monte_carlo_and_converges():
    # The closed-form per-step E[KL] against the exact Gaussian KL of simulated trajectories
    # (exact forward bridge, no coding), within 5 standard errors; false failure ~1e-6 per step.
    model, grid, prior, _, var = _diffc_setup(4)
    mean = prior["prior_mean"]
    rng = np.random.default_rng(0)
    n = 20000
    x = mean + np.sqrt(var) * rng.normal(size=(n, 4))
    x_n = x + grid[0] * rng.normal(size=x.shape)
    kls = []
    denoise = jax.jit(jax.vmap(model.denoise, (0, None)))
    for s_prev, s in itertools.pairwise(grid):
        r = (s / s_prev) ** 2
        denoised = np.asarray(denoise(x_n, s_prev))
        kls.append((1 - r) * np.sum((x - denoised) ** 2, axis=1) / (2 * s**2) / math.log(2))
        x_n = x + r * (x_n - x) + s * math.sqrt(1 - r) * rng.normal(size=x.shape)
    expected = rcc.progressive_expected_kl_bits(var, grid)
    for measured, want in zip(kls, expected[1:], strict=True):
        assert abs(measured.mean() - want) <= 5 * measured.std() / math.sqrt(n)
    mutual = 0.5 * np.sum(np.log2(1 + var / grid[-1] ** 2))
    gaps = [
        rcc.progressive_expected_kl_bits(var, np.geomspace(10.0, 0.4, s)).sum() - mutual
        for s in (16, 64, 256)
    ]
    assert 0 < gaps[2] < gaps[1] < gaps[0]
    assert gaps[2] < 0.3 * gaps[1]  # first-order convergence in the step count


def test_progressive_grid_minimises_the_expected_bits():
    from rdp_jax.rcc._progressive import expected_step_bits

    v = np.exp(np.random.default_rng(0).normal(size=64))

    def bits(grid):
        return expected_step_bits(rcc.progressive_expected_kl_bits(v, grid), 8.0).sum()

    for sigma_target in (0.3, 0.05):
        grid = rcc.progressive_grid(v, sigma_target, max_steps=48)
        assert grid[-1] == sigma_target and np.all(np.diff(grid) < 0)
        for steps in (2, 8, 32, 48):
            assert bits(grid) <= bits(np.geomspace(20 * np.sqrt(v.max()), sigma_target, steps))
    for kwargs, name in (
        ({"variance": np.zeros(3), "sigma_target": 0.3}, "variance"),
        ({"variance": v, "sigma_target": 0.0}, "sigma_target"),
        ({"variance": v, "sigma_target": 0.3, "sigma_max": 0.1}, "sigma_max"),
        ({"variance": v, "sigma_target": 0.3, "max_steps": 0}, "max_steps"),
    ):
        with pytest.raises(ValueError, match=f"progressive_grid: `{name}`"):
            rcc.progressive_grid(**kwargs)
