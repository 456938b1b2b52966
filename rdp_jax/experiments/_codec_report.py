"""Tables, files and figures of `codec_sweep`'s points."""

import csv
import json
import math
from collections.abc import Sequence

import numpy as np

import theory
from rdp_jax import scores
from rdp_jax.experiments._codec_sweep import CodecPoint

COLUMNS = (
    "noise",
    "sigma",
    "rho",
    "bits_per_dim",
    "bits_se",
    "kl_bits_per_dim",
    "header_bits_per_dim",
    "information_rate",
    "optimal_rate",
    "D",
    "D_se",
    "D_theory",
    "P",
    "P_se",
    "P_theory",
    "P_estimator",
)


def rate_fields(point) -> dict:
    """The rate columns every sweep row shares: the file's bits/dim with SE, its KL and header."""
    return {
        "bits_per_dim": float(point.bits_per_dim.value),
        "bits_se": float(point.bits_per_dim.stderr),
        "kl_bits_per_dim": point.kl_bits_per_dim,
        "header_bits_per_dim": point.header_bits_per_dim,
    }


def sweep_rows(points: Sequence[CodecPoint]) -> list[dict]:
    """One flat dict per point, keyed by `COLUMNS` (rates in bits/dim; D, P per item)."""
    return [
        {
            "noise": p.noise,
            "sigma": p.sigma,
            "rho": p.rho,
            **rate_fields(p),
            "information_rate": p.information_rate,
            "optimal_rate": p.optimal_rate,
            "D": float(p.distortion.value),
            "D_se": float(p.distortion.stderr),
            "D_theory": p.theory_distortion,
            "P": float(p.perception.value),
            "P_se": float(p.perception.stderr),
            "P_theory": p.theory_perception,
            "P_estimator": p.perception_estimator,
        }
        for p in points
    ]


def json_number(x):
    """`x` as strict JSON can hold it: NaN becomes null and ±∞ the strings "inf" and "-inf"
    (Python's `json` would write the non-standard NaN and Infinity); anything else unchanged."""
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def write_sweep(rows: Sequence[dict], path: str) -> None:
    """Writes the rows as CSV (`.csv`) or strict JSON (anything else; `json_number`), columns
    in the first row's key order (`sweep_rows`, `traversal_rows`).

    **Raises:** `OSError` when the file cannot be written.
    """
    with open(path, "w", newline="") as f:
        if path.endswith(".csv"):
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            clean = [{k: json_number(v) for k, v in row.items()} for row in rows]
            json.dump(clean, f, indent=1, allow_nan=False)


def sweep_table(rows: Sequence[dict]) -> str:
    """A plain-text table: rates in bits/dim (real ± SE, KL of the messages, I, R(D, P))."""
    head = f"{'noise':>9} {'σ':>6} {'ρ':>5} {'bits/dim':>15} {'KL':>7} {'I':>7} {'R(D,P)':>7}"
    head += f" {'D':>17} {'P':>17}"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['noise']:>9} {r['sigma']:>6.3g} {r['rho']:>5.2f} "
            f"{r['bits_per_dim']:>7.4f} ± {r['bits_se']:<5.3f} {r['kl_bits_per_dim']:>7.4f} "
            f"{r['information_rate']:>7.4f} {r['optimal_rate']:>7.4f} "
            f"{r['D']:>8.4f} ± {r['D_se']:<6.4f} {r['P']:>8.4f} ± {r['P_se']:<6.4f}"
        )
    return "\n".join(lines)


def _noise_legend(axes, points) -> None:
    """Legend entries for the markers: circles isotropic noise, squares spectrum-matched."""
    kinds = {p.noise for p in points}
    for noise, marker, label in (
        ("isotropic", "o", "isotropic noise"),
        ("matched", "s", "spectrum-matched noise"),
    ):
        if noise in kinds:
            axes.plot([], [], marker, color="0.4", ms=4, mfc="none", label=label)


def plot_sweep(points: Sequence[CodecPoint], model: scores.Gaussian, path: str | None = None):
    """Measured points over the analytic curves: (D, P) against the framework's DP curves at
    each σ (maths §7), and rate against D: the real bits and the messages' KL against
    R(D, P) along the framework's points (maths §8).

    **Arguments:** `points` of `codec_sweep`; `model` the Gaussian swept; `path` where to save
    the figure (PNG, SVG, ...), or `None` to only return it.

    **Returns:** the matplotlib `Figure`.

    **Raises:** `ValueError` when matplotlib is not installed (the `notebooks` extra).
    """
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plot: matplotlib is needed (pip install 'rdp-jax[notebooks]').") from None
    lam = np.asarray(model.eigenvalues, np.float64)
    dim = lam.size
    fig, (dp, rd) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    dense = np.linspace(0, 1, 101)
    sigmas = sorted({p.sigma for p in points})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, sigma in enumerate(sigmas):
        color = colors[i % len(colors)]
        D, P = theory.score_scaled_dp(dense[:, None], lam, sigma**2)
        dp.plot(np.asarray(D) / dim, np.asarray(P) / dim, color=color, lw=1, label=f"σ = {sigma:g}")
        for p in (p for p in points if p.sigma == sigma):
            marker = "o" if p.noise == "isotropic" else "s"
            dp.errorbar(
                float(p.distortion.value) / dim,
                float(p.perception.value) / dim,
                xerr=float(p.distortion.stderr) / dim,
                yerr=float(p.perception.stderr) / dim,
                fmt=marker,
                color=color,
                ms=4,
                mfc="none" if p.noise == "matched" else color,
            )
    dp.set(
        xlabel="D per dim (MSE)",
        ylabel="P per dim (W2²)",
        title="measured (D, P), curves: ρ ∈ [0, 1]",
    )
    _noise_legend(dp, points)
    dp.legend(fontsize=8)
    grid = np.geomspace(min(sigmas) / 2, max(sigmas) * 2, 60)
    for rho in sorted({p.rho for p in points}):
        D, P = theory.score_scaled_dp(rho, lam, grid[:, None] ** 2)
        R = theory.rdp_w2_vector(D, np.maximum(P, 0.0), lam)
        rd.plot(np.asarray(D) / dim, np.asarray(R) / math.log(2) / dim, lw=1, color="0.6")
    for p in points:
        D = float(p.distortion.value) / dim
        marker = "o" if p.noise == "isotropic" else "s"
        rd.errorbar(
            D,
            float(p.bits_per_dim.value),
            yerr=float(p.bits_per_dim.stderr),
            fmt=marker,
            color="C3",
            ms=4,
        )
        rd.plot(D, p.kl_bits_per_dim, marker, color="C0", ms=4, mfc="none")
    rd.plot([], [], "o", color="C3", ms=4, label="real bits (file, header incl.)")
    rd.plot([], [], "o", color="C0", ms=4, mfc="none", label="KL of the coded messages")
    rd.plot([], [], "-", color="0.6", label="R(D, P) along the framework (per ρ)")
    rd.set(xlabel="D per dim (MSE)", ylabel="bits / dim", title="rate: real bits over R(D, P)")
    _noise_legend(rd, points)
    rd.legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
