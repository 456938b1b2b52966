"""How a segment's chunk layout and candidate counts are coded: symbols and their integer laws.

Two layouts (`_layout`):

- **cuts**: the changes from chunk to chunk of the width excess over `balanced_cuts(d, C)`
  (C − 1 symbols), under a Cauchy-shaped law on [−D, D], D = min(d, `MAX_DEVIATION`), with
  f(x) ∝ ⌊2³⁶ a² / (a² + 256 x²)⌋ for the header's scale a (in 1/16 dimension); a = 0 means
  equal widths, and nothing is coded.
- **split**: the flags of `split_counts(d, C₀, ·)` in its visiting order, under P(split) =
  a/256 (a = 0: no chunk split, nothing coded).

Candidate counts: a chunk may search N·2^e candidates, 0 ≤ e ≤ E = ⌊log2(2²²/N)⌋ (`_plan`
gives more to chunks whose truncation risk is too high). With B chunks boosted (a header field),
the C exponents are coded under weights (C − B)·E for e = 0 and B for each e ≥ 1; B = 0 codes
nothing.

Every law is an integer table (`_tables`), so the decoder rebuilds the layout from the header
fields on any machine. A segment here is `_bitstream.Segment`.
"""

import functools
import math

import numpy as np

from rdp_jax.rcc._fields import cost, round_layout_q, write_layout
from rdp_jax.rcc._layout import balanced_cuts, split_counts
from rdp_jax.rcc._tables import Table, table_from_weights

LAYOUTS = ("cuts", "split")
CUT_SCALE = 16  # the cut law's scale a is in 1/16 dimension
MAX_CUT_SCALE = 2**20  # keeps a² + 256 x² exact in float64
MAX_DEVIATION = 2**15  # the cut law's support [−D, D]; wider deviations rule the mode out
SPLIT_SCALE = 256  # P(split) in 1/256
MAX_CANDIDATES = 2**22


def width_deviations(counts: np.ndarray) -> np.ndarray:
    """Cut mode: how much each of the first C − 1 chunks deviates from the balanced width
    (`balanced_cuts(d, C)`) more than its predecessor did. Slowly varying KL (smooth image
    regions) makes most of them 0, and a uniform KL all of them."""
    excess = counts - np.diff(balanced_cuts(int(counts.sum()), len(counts)))
    return np.diff(excess[:-1], prepend=0)


def split_flags(dim: int, base_chunks: int, counts: np.ndarray) -> np.ndarray:
    """Split mode: the answers that make `split_counts(dim, base_chunks, ·)` rebuild `counts`."""
    ends = np.cumsum(counts)
    leaves = set(zip((ends - counts).tolist(), ends.tolist(), strict=True))
    flags = []

    def answer(start: int, stop: int) -> bool:
        flags.append((start, stop) not in leaves)
        return flags[-1]

    if not np.array_equal(split_counts(dim, base_chunks, answer), counts):
        raise ValueError("encode: internal error: the chunk layout is not a split layout.")
    return np.array(flags, dtype=np.int32)


def deviation_bound(dim: int) -> int:
    """D = min(d, 2¹⁵): the cut law's support is [−D, D]."""
    return min(dim, MAX_DEVIATION)


def cut_bits_estimate(deviations: np.ndarray, scale: float) -> float:
    """Σ −log2 P(x) under a Cauchy(0, scale) law quantised to the integers, to choose the scale
    (the coded law is `cut_table`'s). For |x| ≥ 1, atan((x+½)/s) − atan((x−½)/s) =
    atan(s / (s² + x² − ¼)) avoids the cancellation of two angles near π/2."""
    x2 = np.asarray(deviations, dtype=np.float64) ** 2
    nonzero = x2 > 0.0
    arg = scale / np.where(nonzero, scale * scale + x2 - 0.25, 1.0)
    p = np.where(nonzero, np.arctan(arg), 2.0 * np.arctan(0.5 / scale)) / math.pi
    return float(-np.sum(np.log2(p)))


def cut_scale_q(counts: np.ndarray) -> int:
    """The cut law's scale a in 1/16 dimension that codes `width_deviations` in the fewest bits
    (a grid search), or 0 for equal widths. Cauchy-shaped, not Laplace: deviations are mostly 0
    with a few large ones where the KL per dimension jumps (region edges), and a heavy tail pays
    for those in O(log) bits without making the zeros costly."""
    deviations = width_deviations(counts)
    if not deviations.any():
        return 0
    top = min(CUT_SCALE * int(counts.sum()), MAX_CUT_SCALE)
    grid = np.unique(np.round(np.geomspace(1, top, 64)).astype(int))
    return int(min(grid, key=lambda q: cut_bits_estimate(deviations, q / CUT_SCALE)))


def split_probability_q(flags: np.ndarray) -> int:
    """P(split) of the split mode in 1/256, in [1, 255] when any flag is set, else 0."""
    if not flags.any():
        return 0
    return int(np.clip(round(SPLIT_SCALE * float(np.mean(flags))), 1, SPLIT_SCALE - 1))


@functools.lru_cache(maxsize=16)
def cut_table(dim: int, scale_q: int) -> Table:
    """The integer law of the width deviations on [−D, D] (symbol x + D), D = min(d, 2¹⁵).

    f(x) ∝ ⌊2³⁶ a² / (a² + 256 x²)⌋: numerator and denominator are exact float64 integers and
    IEEE division rounds them the same way everywhere."""
    bound = deviation_bound(dim)
    a2 = float(scale_q) ** 2
    x = np.arange(-bound, bound + 1, dtype=np.float64)
    return table_from_weights(np.floor(2.0**36 * a2 / (a2 + 256.0 * x * x)).astype(np.int64))


@functools.lru_cache(maxsize=16)
def split_table(probability_q: int) -> Table:
    """The Bernoulli law of the split flags: P(1) = a/256."""
    return table_from_weights(np.array([SPLIT_SCALE - probability_q, probability_q]))


def max_extra(num_candidates: int) -> int:
    """E = ⌊log2(2²² / N)⌋, the largest candidate-count exponent a chunk may take."""
    return (MAX_CANDIDATES // num_candidates).bit_length() - 1


@functools.lru_cache(maxsize=16)
def extra_table(num_chunks: int, boosted: int, num_candidates: int) -> Table:
    """The law of the chunks' candidate-count exponents: weights (C − B)·E, then B for each
    e = 1, …, E."""
    top = max_extra(num_candidates)
    return table_from_weights(np.array([(num_chunks - boosted) * top] + [boosted] * top))


def layout_symbols(dim: int, segment) -> tuple[np.ndarray, Table | None]:
    """The symbols that code `segment`'s layout and their table; none when its parameter is 0
    (cuts: all widths equal; split: no chunk split)."""
    if segment.layout == "cuts":
        symbols = width_deviations(segment.counts)
        bound = deviation_bound(dim)
        if np.any(np.abs(symbols) > bound):
            raise ValueError("encode: internal error: a width deviation is out of range.")
        symbols, table = symbols + bound, cut_table(dim, max(segment.layout_q, 1))
        zero = bound
    else:
        symbols = split_flags(dim, segment.base_chunks, segment.counts)
        table, zero = split_table(max(segment.layout_q, 1)), 0
    if segment.layout_q == 0:
        if np.any(symbols != zero):
            raise ValueError("encode: internal error: layout symbols with a zero parameter.")
        return symbols[:0], None
    return symbols.astype(np.int32), table


def layout_bits(dim: int, segment) -> float:
    """What `segment`'s layout costs in bits: its header fields (`_fields.write_layout`, the
    parameter rounded as the stream carries it), and the ideal codelength of its symbols (the
    range coder adds < 1 bit per block)."""
    num_chunks = len(segment.counts)
    if num_chunks == 1:
        return 0.0
    layout_q = round_layout_q(segment.layout, segment.layout_q)
    segment = segment._replace(layout_q=layout_q)
    header = cost(
        lambda out: write_layout(out, segment.layout, layout_q, segment.base_chunks, num_chunks)
    )
    symbols, table = layout_symbols(dim, segment)
    return header + (table.bits(symbols) if table is not None else 0.0)


def decode_layout(decoder, dim: int, segment) -> np.ndarray:
    """The chunk widths of `segment`, read from a constriction range decoder."""
    num_chunks = len(segment.counts)
    if segment.layout == "cuts":
        deviations = np.zeros(num_chunks - 1, dtype=np.int64)
        if num_chunks > 1 and segment.layout_q:
            bound = deviation_bound(dim)
            symbols = decoder.decode(cut_table(dim, segment.layout_q).model, num_chunks - 1)
            deviations = symbols.astype(np.int64) - bound
        widths = np.diff(balanced_cuts(dim, num_chunks))
        widths[:-1] += np.cumsum(deviations, dtype=np.int64)
        widths[-1] = dim - widths[:-1].sum()
        return widths
    if segment.layout_q == 0:
        return split_counts(dim, segment.base_chunks, lambda start, stop: False)
    model = split_table(segment.layout_q).model
    return split_counts(dim, segment.base_chunks, lambda start, stop: bool(decoder.decode(model)))
