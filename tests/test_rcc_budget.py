"""Tests of the default PFR layout: one truncation-bias budget per message (`rcc._budget`)."""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

import theory  # noqa: E402
from rdp_jax import rcc, scores  # noqa: E402
from rdp_jax.rcc._bitstream import unpack  # noqa: E402
from rdp_jax.rcc._budget import (  # noqa: E402
    CHUNK_BIAS,
    EXPONENTS,
    allocate,
    deficit,
    equivalent_kl,
    max_dimension_kl,
    message_budget,
)
from rdp_jax.rcc._index_model import log_weight_variance  # noqa: E402
from rdp_jax.rcc._layout import DEFAULT_CANDIDATES, TailBound, mean_shift_log_bound  # noqa: E402
from rdp_jax.rcc._plan import plan_budget_layout  # noqa: E402

_LN2 = math.log(2.0)


def gaussian_delta(d: int, bits_per_dim: float, seed: int):
    """q = N(Δ, I) against p = N(0, I), Δ_i ~ N(0, τ²) with τ² = 2 ln 2 · b: b bits/dim on
    average, χ²₁-spread between dimensions."""
    delta = math.sqrt(2 * _LN2 * bits_per_dim) * np.random.default_rng(seed).standard_normal(d)
    return delta, np.ones(d), np.zeros(d), np.ones(d)


def test_deficit_table_is_the_theory():
    # The table interpolates the Poisson-process deficit of maths §12 on a 1/16-bit grid; against
    # theory's own quadrature at off-grid KLs: linear interpolation of a smooth function errs by
    # at most h²/8 · max|D''| with h = 1/16 bit, D'' bounded here by the largest second
    # difference over the grid cells around the point (doubled: a difference averages D''), plus
    # the two quadratures' own ~1e-12.
    h = 1 / 16
    kl = np.array([0.3, 2.71, 7.93, 11.02, 14.26])
    got = deficit(np.repeat(kl[:, None], len(EXPONENTS), axis=1))
    for i, k in enumerate(kl):
        for j, e in enumerate(EXPONENTS):

            def exact(bits, e=e):
                return float(theory.pfr_truncation_deficit(bits * _LN2, 2.0 ** int(e)))

            knots = (np.floor(k / h) + np.arange(-1, 3)) * h  # two cells either side of k
            values = np.array([exact(b) for b in knots])
            curvature = np.max(np.abs(np.diff(values, 2))) / h**2
            bound = 2 * h**2 / 8 * curvature + 1e-12
            assert abs(got[i, j] - exact(k)) <= bound


def test_max_dimension_kl_is_where_2_to_22_candidates_meet_the_allowance():
    top = max_dimension_kl()
    assert 14.0 < top < 14.5
    for kl, ok in ((top, True), (top + 0.1, False)):
        bias = float(theory.pfr_truncation_deficit(kl * _LN2, 2.0**22)) / math.sqrt(2 * kl * _LN2)
        assert (bias <= CHUNK_BIAS) == ok


@given(
    d=st.integers(1, 40),
    log_ratio=st.floats(-1.0, 0.5),
    seed=st.integers(0, 2**31 - 1),
)
def test_a_mean_shift_chunk_is_as_risky_as_its_kl(d, log_ratio, seed):
    # For a mean shift ln w ~ N(m, 2m) whatever Δ's spread: its equivalent KL is its KL, at
    # every count. A narrower q (w bounded) is less risky than its KL.
    delta = np.random.default_rng(seed).normal(size=d)
    args = (delta, np.ones(d), np.zeros(d), np.ones(d))
    kl = rcc.gaussian_kl_bits(*args).sum()
    got = equivalent_kl(TailBound(*args, DEFAULT_CANDIDATES), np.array([d]))
    # The Chernoff bound says nothing (0) once KL ≳ log2 N (λ ≥ 0.01 on its grid).
    informative = mean_shift_log_bound(kl, 2.0**EXPONENTS) < 0
    np.testing.assert_allclose(got[0, informative], kl, rtol=1e-9, atol=1e-9)
    assert np.all(np.isinf(got[0, ~informative]))
    if log_ratio < -0.05 and d > 1:
        narrow = (delta, np.full(d, math.exp(log_ratio)), np.zeros(d), np.ones(d))
        kl = rcc.gaussian_kl_bits(*narrow).sum()
        got = equivalent_kl(TailBound(*narrow, DEFAULT_CANDIDATES), np.array([d]))
        assert np.all(np.isinf(got) | (got < kl))  # less risky wherever the bound informs


@given(kl=st.lists(st.floats(0.0, 14.0), min_size=1, max_size=200), scale=st.floats(0.1, 3.0))
def test_allocation_meets_the_budget_with_the_fewest_doublings_needed(kl, scale):
    kl_eq = np.repeat(np.array(kl)[:, None], len(EXPONENTS), axis=1)
    budget = scale * math.sqrt(2 * _LN2 * sum(kl))
    exponents, hopeless, total = allocate(kl_eq, budget)
    table = deficit(kl_eq)
    rows = np.arange(len(kl))
    level = exponents - EXPONENTS[0]
    assert not hopeless.any()
    assert np.all(table[rows, level] <= CHUNK_BIAS * np.sqrt(2 * _LN2 * kl_eq[:, 0]) + 1e-15)
    if math.isfinite(total):
        assert total == pytest.approx(table[rows, level].sum()) and total <= budget
    else:
        assert np.all(level == len(EXPONENTS) - 1)
    # No doubling beyond each chunk's own allowance unless the budget needed one.
    first = np.argmax(table <= CHUNK_BIAS * np.sqrt(2 * _LN2 * kl_eq), axis=1)
    if np.any(level > first):
        assert table[rows, first].sum() > budget


def test_gaussian_delta_message_costs_near_its_kl():
    # A 512-dim mean shift with Δ_i ~ N(0, τ²) at 0.87 bits/dim. Format v6's first default
    # capped every chunk's risk at a k-bit chunk's, made ~1.8x as many chunks as KL/k and cost
    # 1.84 × KL. Each chunk costs its KL plus the index overhead H(J) − KL ≈
    # ½ log2(2πe(2m + π²/6)) − γ/ln 2 of a chunk of m nats (maths §10), plus the spread of the
    # chunk KLs in the index law; with ~KL/k chunks of ~k bits the payload is within
    # KL + C·(overhead(k) + 1 bit) for C = ⌈KL/k⌉ · (1 + 10 %) chunks, the split chunks.
    args = gaussian_delta(512, 0.87, 0)
    key = jax.random.key(0)
    data, info = rcc.encode(key, *args, return_info=True)
    k = 8.0
    m = k * _LN2
    overhead = 0.5 * math.log2(2 * math.pi * math.e * (2 * m + math.pi**2 / 6))
    overhead -= np.euler_gamma / _LN2
    chunks = math.ceil(info.kl_bits / k)
    assert info.num_chunks <= 1.1 * chunks
    assert info.payload_bits <= info.kl_bits + 1.1 * chunks * (overhead + 1.0)
    # and the old rule's chunk count would have cost more than that bound
    assert np.asarray(rcc.decode(key, data, args[2], args[3])).tobytes() == (
        np.asarray(info.sample).tobytes()
    )


def test_counts_are_not_sent_and_the_header_holds_the_largest():
    args = gaussian_delta(300, 1.0, 3)
    data, info = rcc.encode(jax.random.key(1), *args, return_info=True)
    header, _ = unpack(data, dim=300)
    assert not np.any(header.segments[0].extra)  # no boosted chunks in the stream
    assert header.num_candidates == info.chunk_candidates.max()
    assert len(set(info.chunk_candidates.tolist())) > 1  # yet the counts differ
    assert np.all(info.indices < info.chunk_candidates)


def test_doublings_go_where_they_cost_the_search_least():
    # Two chunks of 8 bits, the first 256 dimensions wide, the second 8, and a budget that one
    # doubling meets: by candidates alone they tie (the first is doubled), by search work the
    # narrow one is, at 1/32 of the cost.
    kl_eq = np.full((2, len(EXPONENTS)), 8.0)
    table = deficit(kl_eq)
    budget = 0.5 * (table[0, 0] + table[0, 1]) + table[1, 0]
    by_count, _, _ = allocate(kl_eq, budget)
    by_work, _, total = allocate(kl_eq, budget, np.array([256, 8]))
    assert by_count.tolist() == [EXPONENTS[1], EXPONENTS[0]]
    assert by_work.tolist() == [EXPONENTS[0], EXPONENTS[1]] and total <= budget


@pytest.mark.parametrize("share", [1.0, 1 / math.sqrt(8)])
def test_the_plan_meets_the_bias_budget(share):
    # Σ deficit over the chunks at their counts ≤ `share` standard errors of Σ ln w, and each
    # chunk within its own allowance (the bias the plan predicts, from the theory's deficit).
    args = gaussian_delta(2048, 0.87, 1)
    kl = rcc.gaussian_kl_bits(*args)
    segment, counts = plan_budget_layout(args, kl, 8.0, share)
    chunk = np.repeat(np.arange(len(segment.counts)), segment.counts)
    chunk_kl = np.bincount(chunk, kl)
    pairs = zip(chunk_kl.tolist(), counts.tolist(), strict=True)
    d = np.array([float(theory.pfr_truncation_deficit(m * _LN2, float(n))) for m, n in pairs])
    assert d.sum() <= share * message_budget(log_weight_variance(*args)) * (1 + 1e-3)
    assert np.all(d <= CHUNK_BIAS * np.sqrt(2 * _LN2 * chunk_kl) * (1 + 1e-3))
    assert np.all((counts >= DEFAULT_CANDIDATES) & (counts <= 2**22))


def test_progressive_steps_share_one_budget_by_default():
    # Every step gets the budget layout at 1/√S of its own budget (maths §12): counts from 2^18,
    # not sent, the header's N the largest of any step's; the trajectory decodes bit-exactly.
    rng = np.random.default_rng(4)
    d, grid = 48, np.geomspace(4.0, 0.5, 4)
    var = np.exp(rng.normal(size=d))
    model, x = scores.gaussian(np.zeros(d), var), np.sqrt(var) * rng.normal(size=d)
    prior = {"prior_mean": np.zeros(d), "prior_std": np.sqrt(var + grid[0] ** 2)}
    key = jax.random.key(5)
    data, info = rcc.progressive_encode(key, x, grid, model, return_info=True, **prior)
    header, _ = unpack(data, dim=d, steps=len(grid))
    assert not any(np.any(s.extra) for s in header.segments)
    assert np.all(info.step_candidates >= DEFAULT_CANDIDATES * info.step_num_chunks)
    n = header.num_candidates  # a power of two from the budget's 2^18 … 2^22
    assert DEFAULT_CANDIDATES <= n <= 2**22 and n & (n - 1) == 0
    assert np.asarray(rcc.progressive_decode(key, data, grid, model, **prior)).tobytes() == (
        np.asarray(info.sample).tobytes()
    )


@pytest.mark.parametrize("family", ["gauss", "variance", "image"])
def test_heterogeneous_messages_round_trip_deterministically(family):
    rng = np.random.default_rng(7)
    d = 256
    if family == "gauss":
        args = gaussian_delta(d, 0.5, 7)
    elif family == "variance":
        ratio = np.exp(rng.normal(-0.35, 0.35, d))  # mostly σ_q < σ_p, a few above
        args = (0.5 * rng.normal(size=d), ratio, np.zeros(d), np.ones(d))
    else:  # piecewise-constant shifts with a spike line
        shift = np.repeat(rng.uniform(0.2, 1.6, 8), d // 8)
        shift[::16] = 3.0
        args = (shift, np.ones(d), np.zeros(d), np.ones(d))
    key = jax.random.key(2)
    data, info = rcc.encode(key, *args, return_info=True)
    assert data == rcc.encode(key, *args)
    assert np.asarray(rcc.decode(key, data, args[2], args[3])).tobytes() == (
        np.asarray(info.sample).tobytes()
    )
    assert info.chunk_dims.sum() == d and len(info.chunk_candidates) == info.num_chunks


def test_a_dimension_beyond_the_limit_is_refused_early_naming_it():
    top = max_dimension_kl()
    q_mean = np.zeros(50)
    q_mean[17] = math.sqrt(2 * _LN2 * (top + 0.2))
    args = (q_mean, np.ones(50), np.zeros(50), np.ones(50))
    kl = f"{top + 0.2:.1f}"
    with pytest.raises(ValueError, match=rf"^encode: dimension 17 .* holds {kl} bits.* {top:.1f}"):
        rcc.encode(jax.random.key(0), *args)
    # Just below the limit the dimension is coded, alone in its chunk or not.
    q_mean[17] = math.sqrt(2 * _LN2 * (top - 0.3))
    kl = rcc.gaussian_kl_bits(*args)
    segment, counts = plan_budget_layout(args, kl, 8.0)
    heavy = np.searchsorted(np.cumsum(segment.counts), 17, side="right")
    assert counts[heavy] == 2**22


def test_a_message_equal_to_its_prior_is_one_chunk():
    """q = p: KL 0, w = 1, a zero bias budget and zero deficits. Its chunks are riskless, not
    at the bisection's last interval above 0 (whose deficit the zero budget refused, so the
    plan split to 256 single dimensions: 38 bytes and 67 M candidates)."""
    zeros, ones = np.zeros(256), np.ones(256)
    data, info = rcc.encode(jax.random.key(3), zeros, ones, zeros, ones, return_info=True)
    assert info.num_chunks == 1 and int(info.chunk_candidates.sum()) == DEFAULT_CANDIDATES
    np.testing.assert_array_equal(rcc.decode(jax.random.key(3), data, zeros, ones), info.sample)


@pytest.mark.parametrize("algorithm", ["pfr", "orc"])
def test_the_layout_does_not_depend_on_the_scale(algorithm):
    """w = q/p is invariant under x → c·x, and so is the plan: risk bounds in units of σ_p
    (their squares of raw σ overflowed beyond 1e154 and underflowed below 1e-154, and the
    layout fell back to one chunk a dimension, 2 × the bytes and 32 × the search)."""
    m = np.random.default_rng(0).normal(size=64) * 0.5
    layouts = []
    for scale in (1.0, 1e-200, 1e160, 1e200):
        args = (m * scale, np.full(64, 0.8 * scale), np.zeros(64), np.full(64, scale))
        _, info = rcc.encode(jax.random.key(3), *args, algorithm=algorithm, return_info=True)
        layouts.append((info.layout, info.chunk_dims.tolist(), info.chunk_candidates.tolist()))
    assert all(layout == layouts[0] for layout in layouts), layouts
