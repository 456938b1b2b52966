"""Tests of the RCC chunk layouts: KL per dimension, cuts, splits, tail bounds, their bitstream."""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.stats  # noqa: E402
from helpers import diffusion_channel  # noqa: E402
from hypothesis import assume, given, strategies as st  # noqa: E402

from rdp_jax import rcc  # noqa: E402
from rdp_jax.rcc._bitstream import Header, Segment, pack, unpack  # noqa: E402
from rdp_jax.rcc._layout import (  # noqa: E402
    TailBound,
    balanced_cuts,
    mean_shift_log_bound,
    mean_shift_log_tail,
    single_dimension_log_tail,
    split_counts,
)
from rdp_jax.rcc._layout_code import cut_scale_q  # noqa: E402
from rdp_jax.rcc._plan import plan_layout  # noqa: E402

_LN2 = math.log(2.0)


def mean_shift(d: int, bits_per_dim: float = 1.0):
    delta = np.full(d, math.sqrt(2 * bits_per_dim * _LN2))
    return delta, np.ones(d), np.zeros(d), np.ones(d)


@given(mq=st.floats(-3, 3), sq=st.floats(0.2, 3), mp=st.floats(-3, 3), sp=st.floats(0.2, 3))
def test_gaussian_kl_bits_matches_quadrature(mq, sq, mp, sp):
    q, p = scipy.stats.norm(mq, sq), scipy.stats.norm(mp, sp)
    nats, err = scipy.integrate.quad(
        lambda x: q.pdf(x) * (q.logpdf(x) - p.logpdf(x)), mq - 12 * sq, mq + 12 * sq, epsabs=1e-13
    )
    got = rcc.gaussian_kl_bits(*(np.array([v]) for v in (mq, sq, mp, sp)))[0]
    assert got == pytest.approx(nats / _LN2, abs=1e-9 + 10 * err)


@given(kl=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=300), k=st.floats(0.5, 16.0))
def test_chunk_counts_balances_the_kl(kl, k):
    kl = np.array(kl)
    counts = rcc.chunk_counts(kl, k)
    assert counts.sum() == kl.size and np.all(counts >= 1)
    num = max(1, math.ceil(kl.sum() / k - 1e-9))
    assert len(counts) <= num
    # Cuts land within one dimension of their targets t·KL/C, so no chunk exceeds KL/C by more
    # than the two dimensions at its ends.
    chunk_kl = np.bincount(np.repeat(np.arange(len(counts)), counts), kl)
    assert np.all(chunk_kl <= kl.sum() / num + 2 * kl.max() + 1e-9)


@given(
    kl=st.lists(st.integers(0, 8).map(float), min_size=1, max_size=40),
    k=st.sampled_from([1.5, 4.0]),
)
def test_chunk_counts_cut_nearest_to_each_target(kl, k):
    # Brute force: each target t·KL/C is cut at the position e (0 … d) whose cumulative KL is
    # nearest to it, ties to the later position; integer KLs make ties common, so the rule is
    # tested at its boundary too. Empty chunks (repeated cuts) merge.
    kl = np.array(kl)
    total, d = kl.sum(), kl.size
    num = max(1, math.ceil(total / k - 1e-9))
    cumulative = np.concatenate([[0.0], np.cumsum(kl)])
    ends = set()
    for target in total * np.arange(1, num) / num:
        first = int(np.argmax(cumulative >= target))  # the first position reaching the target
        below = cumulative[first - 1] if first > 0 else -np.inf
        ends.add(first if cumulative[first] - target <= target - below else first - 1)
    cuts = sorted({0, d} | {e for e in ends if 0 < e < d})
    assert rcc.chunk_counts(kl, k).tolist() == np.diff(cuts).tolist()


@given(d=st.integers(1, 10_000), c=st.integers(1, 10_000))
def test_balanced_cuts_are_equal_width(d, c):
    c = min(c, d)
    widths = np.diff(balanced_cuts(d, c))
    assert widths.sum() == d and widths.min() >= 1 and widths.max() - widths.min() <= 1


@given(d=st.integers(1, 200), c=st.integers(1, 200), answers=st.lists(st.booleans()))
def test_split_counts_asks_once_per_chunk_depth_first(d, c, answers):
    c = min(c, d)
    asked, replies = [], iter(answers)

    def should_split(start, stop):
        asked.append((start, stop))
        return next(replies, False)

    counts = split_counts(d, c, should_split)
    assert counts.sum() == d and np.all(counts >= 1)
    assert all(stop - start >= 2 for start, stop in asked)
    assert len(set(asked)) == len(asked)
    # Depth first, left first: the chunks asked about start in non-decreasing order.
    assert [s for s, _ in asked] == sorted(s for s, _ in asked)


def test_tail_bound_of_a_mean_shift_is_the_reference():
    # k = 8 bits in 8 unit dimensions: λD_{1+λ} = λ(1+λ)·KL, the reference bound itself.
    bound = TailBound(*mean_shift(8), 2**18)
    assert bound.log_bound(0, 8) == pytest.approx(mean_shift_log_bound(8.0, 2**18), rel=1e-12)


@given(
    d=st.integers(1, 6),
    log2_n=st.floats(1.0, 12.0),
    seed=st.integers(0, 2**31 - 1),
    ratio=st.floats(0.3, 1.5),
)
def test_tail_bound_bounds_the_tail(d, log2_n, seed, ratio):
    rng = np.random.default_rng(seed)
    q_mean, p_mean = rng.normal(size=d), rng.normal(size=d)
    p_std = np.exp(0.3 * rng.normal(size=d))
    q_std = ratio * p_std
    bound = math.exp(TailBound(q_mean, q_std, p_mean, p_std, 2**log2_n).log_bound(0, d))
    assume(bound < 0.5)  # a bound of 1 or more holds for any tail: nothing to test
    n = 200_000
    z = q_mean + q_std * rng.standard_normal((n, d))
    log_w = np.sum(
        scipy.stats.norm.logpdf(z, q_mean, q_std) - scipy.stats.norm.logpdf(z, p_mean, p_std), 1
    )
    tail = np.mean(log_w >= log2_n * _LN2)
    # One-sided binomial test at z = 5 (false failure ~3e-7 per example).
    assert tail <= bound + 5 * math.sqrt(max(bound * (1 - bound), 1 / n) / n)


# Means on a 1/64 grid: a shift of 1e-250 is exact maths but rounds to ln w = 0 in the check.
_MEAN = st.integers(-256, 256).map(lambda i: i / 64)


@given(mq=_MEAN, sq=st.floats(0.2, 3), mp=_MEAN, sp=st.floats(0.2, 3), log_n=st.floats(0, 15))
def test_single_dimension_tail_is_exact(mq, sq, mp, sp, log_n):
    # Against 2·10⁵ draws of q: two-sided, 5 standard errors (false failure ~6e-7 per example).
    n = 200_000
    z = mq + sq * np.random.default_rng(0).standard_normal(n)
    log_w = scipy.stats.norm.logpdf(z, mq, sq) - scipy.stats.norm.logpdf(z, mp, sp)
    tail = np.mean(log_w >= log_n)
    exact = math.exp(single_dimension_log_tail(mq, sq, mp, sp, log_n))
    assert abs(tail - exact) <= 5 * math.sqrt(max(exact * (1 - exact), 1 / n) / n)
    # and never above its Chernoff bound (an upper bound, exactly computed)
    bound = TailBound(*(np.array([v]) for v in (mq, sq, mp, sp)), math.exp(log_n))
    assert exact <= math.exp(bound.log_bound(0, 1)) * (1 + 1e-9)


def test_mean_shift_tail_is_the_gaussian_tail_of_ln_w():
    # For a k-bit mean shift ln w ~ N(KL, 2 KL) exactly, whatever the dimension count.
    for k, n in ((8.0, 2**18), (2.0, 64), (14.0, 2**16)):
        kl = k * _LN2
        want = scipy.stats.norm.logsf((math.log(n) - kl) / math.sqrt(2 * kl))
        assert mean_shift_log_tail(k, n) == pytest.approx(want, rel=1e-12)
        one = single_dimension_log_tail(math.sqrt(2 * kl), 1.0, 0.0, 1.0, math.log(n))
        assert one == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("options", [{}, {"num_candidates": 2**18}])
def test_uniform_kl_needs_no_layout_bits(options):
    # 1 bit/dim everywhere: KL-balanced cuts are the equal-width ones and nothing splits (the
    # default may take chunks of 1.25 k, `_plan.BASE_SIZES`).
    data, info = rcc.encode(jax.random.key(0), *mean_shift(800), return_info=True, **options)
    segment = unpack(data, dim=800)[0].segments[0]
    assert np.all(info.chunk_dims == info.chunk_dims[0]) and segment.layout_q == 0
    assert info.chunk_dims[0] in ((8, 10) if not options else (8,))


def test_channel_splits_only_risky_chunks():
    # In the seed paper's channel the KL per dimension wanders: equal-width chunks with splits
    # are chosen, and every chunk, at its candidate count, is no riskier than the validated
    # reference; single dimensions that cannot split get more candidates instead.
    args = diffusion_channel(4000)
    kl = rcc.gaussian_kl_bits(*args)
    segment = plan_layout(*args, kl, 8.0, 2**18)
    assert segment.layout == "split" and segment.layout_q > 0
    bound = TailBound(*args, 2**18)
    limit = mean_shift_log_bound(8.0, 2**18)
    risks = bound.chunk_log_bounds(segment.counts, 0, segment.extra)
    assert np.all(risks <= limit + 1e-9 * abs(limit))
    assert np.all(segment.counts[segment.extra > 0] == 1)
    assert len(segment.counts) > segment.base_chunks
    # and each boosted chunk was too risky at one fewer doubling
    less = bound.chunk_log_bounds(segment.counts, 0, np.maximum(segment.extra - 1, 0))
    assert np.all(less[segment.extra > 0] > limit)


def test_a_larger_default_count_keeps_the_risk_reference():
    # With the per-message default N > 2^18, the layout and its risk reference stay those of
    # 2^18; a chunk that needed 2^18·2^e searches max(N, 2^18·2^e), i.e. e − log2(N / 2^18).
    q_mean = np.full(400, math.sqrt(2 * math.log(2)))
    q_mean[[50, 200, 333]] = (3.3, 3.5, 3.7)  # single dimensions of 7.9, 8.8 and 9.9 bits
    args = (q_mean, np.ones(400), np.zeros(400), np.ones(400))
    kl = rcc.gaussian_kl_bits(*args)
    reference = plan_layout(*args, kl, 8.0, 2**18)
    assert reference.extra.max() >= 3  # some chunks are boosted beyond 2^20
    larger = plan_layout(*args, kl, 8.0, 2**20, 2**18)
    assert np.array_equal(larger.counts, reference.counts)
    assert np.array_equal(larger.extra, np.maximum(reference.extra - 2, 0))


@given(
    d=st.integers(1, 300),
    c=st.integers(1, 300),
    answers=st.lists(st.booleans(), max_size=600),
    seed=st.integers(0, 2**31 - 1),
)
def test_layouts_survive_the_bitstream(d, c, answers, seed):
    c = min(c, d)
    replies = iter(answers)
    split = split_counts(d, c, lambda start, stop: next(replies, False))
    rng = np.random.default_rng(seed)
    cuts = np.diff(np.concatenate([[0], np.sort(rng.choice(d - 1, c - 1, replace=False)) + 1, [d]]))

    def exponents(n):  # some chunks boosted to 256·2^e candidates, e ≤ 2
        return rng.integers(1, 3, n) * (rng.random(n) < 0.2)

    split_q = 1 + seed % 255 if len(split) > c else 0
    segments = (
        Segment(80, 40, "split", split_q, c, split, exponents(len(split))),
        Segment(80, 40, "cuts", cut_scale_q(cuts), len(cuts), cuts, exponents(len(cuts))),
    )
    header = Header("float64", "pfr", True, d, 256, segments)
    indices = [rng.integers(0, 256 << s.extra) for s in segments]
    packed = pack(header, indices, b"context", send_dim=bool(seed % 2))
    parsed, got = unpack(packed.data, dim=None if seed % 2 else d, steps=2)
    assert parsed.dim == d
    for want, have, i, j in zip(segments, parsed.segments, indices, got, strict=True):
        # A single chunk has no layout to store: it reads back as "cuts".
        assert have.layout == (want.layout if len(want.counts) > 1 else "cuts")
        assert np.array_equal(have.counts, want.counts)
        assert np.array_equal(have.extra, want.extra)
        assert np.array_equal(i, j)


@given(
    values=st.lists(st.integers(0, 2**31), min_size=1, max_size=20),
    precision=st.sampled_from([None, 0, 1, 3, 7]),
    counts=st.lists(st.integers(2, 2**22), min_size=1, max_size=4),
)
def test_header_fields_round_trip_at_their_precision(values, precision, counts):
    # Every field is its bit length under a fixed law, then P raw bits (or all of them): a value
    # rounded to P + 1 significant bits reads back exactly, and costs its ideal codelength.
    import constriction

    from rdp_jax.rcc import _fields

    law = _fields.lengths().chunks
    rounded = [v if precision is None else _fields.round_significant(v, precision) for v in values]
    for v, r in zip(values, rounded, strict=True):
        if precision is not None:  # within half a unit of the last kept bit
            assert abs(r - v) <= 2 ** max(v.bit_length() - 1 - precision, 0) / 2
    encoder = constriction.stream.queue.RangeEncoder()
    out = _fields.Writer(encoder)
    for r in rounded:
        out.uint(r, law, precision)
    for n in counts:
        out.count(n)
    ideal = sum(
        law.bits([r.bit_length()])
        + (r.bit_length() - 1 if precision is None else min(precision, r.bit_length() - 1))
        * (r > 1)
        for r in rounded
    )
    for n in counts:
        e, rest = n.bit_length() - 1, n - (1 << (n.bit_length() - 1))
        ideal += _fields.exponent_table().bits([e]) + _fields.flag_table(16).bits([int(rest > 0)])
        ideal += e * (rest > 0)
    assert out.bits == pytest.approx(ideal, abs=1e-9)
    reader = _fields.Reader(constriction.stream.queue.RangeDecoder(encoder.get_compressed()))
    assert [reader.uint(law, precision) for _ in rounded] == rounded
    assert [reader.count() for _ in counts] == counts


def test_the_exported_helpers_name_bad_arguments():
    ones = np.ones(3)
    bad = [
        (lambda: rcc.chunk_counts(ones, 0.0), "`chunk_bits` must be a finite number > 0"),
        (lambda: rcc.chunk_counts(np.zeros(0), 1.0), "`kl_bits` must be a non-empty 1-D"),
        (lambda: rcc.chunk_counts(-ones, 1.0), "`kl_bits` must be a non-empty 1-D"),
        (lambda: rcc.gaussian_kl_bits(ones, -ones, ones, ones), "`q_std` must be finite and > 0"),
        (lambda: rcc.gaussian_kl_bits(ones, ones, ones[:2], ones), "`p_mean` has shape"),
        (lambda: rcc.gaussian_kl_bits(ones * np.nan, ones, ones, ones), "`q_mean` must be finite"),
        (lambda: rcc.progressive_expected_kl_bits(ones, []), "`sigmas` must be a non-empty"),
        (lambda: rcc.progressive_expected_kl_bits(-ones, [1.0]), "`variance` must be"),
    ]
    for call, message in bad:
        with pytest.raises(ValueError, match=message):
            call()
    assert rcc.chunk_counts([1.0, 2.0], 1.0).tolist() == [1, 1]  # a list is an array
