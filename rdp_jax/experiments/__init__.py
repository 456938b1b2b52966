"""Experiments: decoder and codec measurements (Gaussian sweeps against theory; the traversal
of learned models across ρ) reused by `rdp-jax verify`, the benchmarks and
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
from rdp_jax.experiments._traversal import (
    DECODERS as DECODERS,
    PERCEPTION_ESTIMATOR as PERCEPTION_ESTIMATOR,
    TraversalPoint as TraversalPoint,
    traversal_rows as traversal_rows,
    traversal_sweep as traversal_sweep,
    traversal_table as traversal_table,
)
from rdp_jax.experiments._traversal_report import (
    plot_reconstructions as plot_reconstructions,
    plot_traversal as plot_traversal,
)
