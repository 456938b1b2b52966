"""Experiments: decoder and codec measurements reused by `rdp-jax verify`, the benchmarks and
notebooks."""

from rdp_jax.experiments._codec_report import (
    plot_sweep as plot_sweep,
    sweep_rows as sweep_rows,
    sweep_table as sweep_table,
    write_sweep as write_sweep,
)
from rdp_jax.experiments._codec_sweep import (
    NOISES as NOISES,
    CodecPoint as CodecPoint,
    codec_sweep as codec_sweep,
)
from rdp_jax.experiments._dp import (
    DPBound as DPBound,
    DPPoint as DPPoint,
    empirical_dp as empirical_dp,
    empirical_dp_bound as empirical_dp_bound,
    linear_decoder_dp as linear_decoder_dp,
)
