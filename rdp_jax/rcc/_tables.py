"""Integer probability tables: the only form in which a law reaches the range coder.

Every law the stream is coded with (the index law, the chunk-layout laws, the candidate-count
law) is built from header integers into integer frequencies f_s ≥ 1 that sum to 2²⁴, by exact
integer arithmetic from whatever the law's shape is computed with (`_portable_math`). Encoder and
decoder therefore hold the same table on every machine, as CompressAI's integer CDF tables do
(Bégaint et al. 2020; Ballé et al. 2019, "Integer networks for data compression").

constriction's range coder works at 24-bit precision. Its `Categorical(w, perfect=False)` model
maps weights w_s summing to 2²⁴ − n to the fixed-point probabilities (w_s + 1)/2²⁴ exactly: it
scales by (2²⁴ − n)/Σw = 1 and floors an exact integer cumulative sum, then adds one per symbol
(`fast_quantized_cdf` in constriction ≥ 0.4). So a table is handed over as w = f − 1, and the
coder uses f itself (checked by `tests/test_rcc_portable.py` through codelengths).
"""

import zlib
from typing import NamedTuple

import constriction
import numpy as np

PRECISION = 24
TOTAL = 1 << PRECISION
MAX_SYMBOLS = 1 << 23  # leaves at least half the mass to the law when every symbol gets 1


class Table(NamedTuple):
    """An integer law on {0, …, n−1}: `freq` (int64, each ≥ 1, summing to 2²⁴), its constriction
    `model`, and a CRC32 `digest` of the frequencies (folded into a stream's CRC)."""

    freq: np.ndarray
    model: object
    digest: int

    def bits(self, symbols: np.ndarray) -> float:
        """The ideal codelength Σ −log2 (f_s / 2²⁴) of `symbols`, in bits."""
        return float(np.sum(PRECISION - np.log2(self.freq[np.asarray(symbols)])))


def table_from_cumulative(knots: np.ndarray, cumulative: list[int], total: int) -> Table:
    """The table whose mass on [knots[i], knots[i+1]) is (the integer part of) the share
    (cumulative[i+1] − cumulative[i]) / total of what is left after one unit per symbol.

    **Arguments:**

    - `knots`: increasing integers from 0 to n, the symbol count (n ≤ `MAX_SYMBOLS`).
    - `cumulative`: nondecreasing Python integers, one per knot, from 0 to `total`.
    - `total`: a positive Python integer.

    Inside an interval the mass is spread evenly, the first (mass mod width) symbols taking one
    unit more, so the table depends on nothing but these integers.
    """
    knots = np.asarray(knots, dtype=np.int64)
    num_symbols = int(knots[-1])
    if not 2 <= num_symbols <= MAX_SYMBOLS or knots[0] != 0 or np.any(np.diff(knots) < 1):
        raise ValueError(f"a table needs 2 to {MAX_SYMBOLS} symbols and increasing knots.")
    if cumulative[0] != 0 or cumulative[-1] != total or total <= 0:
        raise ValueError("a table's cumulative weights must run from 0 to `total`.")
    free = TOTAL - num_symbols
    # Python integers: cumulative · free can exceed 64 bits.
    cut = np.array([c * free // total for c in cumulative], dtype=np.int64)
    mass, width = np.diff(cut), np.diff(knots)
    if np.any(mass < 0):
        raise ValueError("a table's cumulative weights must be nondecreasing.")
    offset = np.arange(num_symbols) - np.repeat(knots[:-1], width)
    freq = 1 + np.repeat(mass // width, width) + (offset < np.repeat(mass % width, width))
    return table_from_frequencies(freq)


def table_from_weights(weights: np.ndarray) -> Table:
    """The table of nonnegative integer `weights` (one per symbol, not all 0), in proportion."""
    cumulative = np.concatenate([[0], np.cumsum(np.asarray(weights, dtype=np.int64))])
    return table_from_cumulative(
        np.arange(len(weights) + 1), [int(c) for c in cumulative], int(cumulative[-1])
    )


def table_from_frequencies(freq: np.ndarray) -> Table:
    """Wraps frequencies (integers ≥ 1 summing to 2²⁴) as a `Table`."""
    freq = np.asarray(freq, dtype=np.int64)
    if freq.min() < 1 or int(freq.sum()) != TOTAL:
        raise ValueError("table frequencies must be >= 1 and sum to 2^24.")
    model = constriction.stream.model.Categorical((freq - 1).astype(np.float64), perfect=False)
    return Table(freq, model, zlib.crc32(freq.astype("<u4").tobytes()))
