"""Figures of `traversal_sweep`: the RDP curves, and reconstructions across ρ."""

import math
from collections.abc import Sequence

import numpy as np
from jaxtyping import ArrayLike

from rdp_jax.experiments._traversal import TraversalPoint


def _pyplot(path):
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plot: matplotlib is needed (pip install 'rdp-jax[notebooks]').") from None
    return plt


def plot_traversal(points: Sequence[TraversalPoint], title: str = "", path: str | None = None):
    """Perception against distortion, one panel per coding mode: per σ, the learned decoder's
    curve across ρ (solid, ρ = 1 at the low-MSE end) and the Gaussian fit's on the same X_σ
    (dashed), with the Tweedie denoiser (×) and the posterior sample (★) at the same bits.

    **Arguments:** `points` of `traversal_sweep`; `title` (e.g. the dataset); `path` where to
    save the figure, or `None` to only return it.

    **Returns:** the matplotlib `Figure`.

    **Raises:** `ValueError` when matplotlib is not installed (the `notebooks` extra).
    """
    plt = _pyplot(path)
    modes = list(dict.fromkeys(p.mode for p in points))
    fig, axes = plt.subplots(
        1, len(modes), figsize=(5.5 * len(modes), 4.2), constrained_layout=True, squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, mode in zip(axes[0], modes, strict=True):
        ours = [p for p in points if p.mode == mode]
        for i, sigma in enumerate(dict.fromkeys(p.sigma for p in ours)):
            at = [p for p in ours if p.sigma == sigma]
            color = colors[i % len(colors)]
            bits = float(at[0].bits_per_dim.value)
            for decoder, style in (("learned", "o-"), ("gaussian fit", "s--")):
                curve = sorted((p for p in at if p.decoder == decoder), key=lambda p: p.rho)
                ax.errorbar(
                    [float(p.mse.value) for p in curve],
                    [float(p.perception.value) for p in curve],
                    xerr=[float(p.mse.stderr) for p in curve],
                    yerr=[float(p.perception.stderr) for p in curve],
                    fmt=style,
                    color=color,
                    ms=4,
                    mfc=color if decoder == "learned" else "none",
                    label=f"σ = {sigma:g} ({bits:.2f} bits/dim), {decoder}",
                )
            for decoder, marker in (("tweedie", "x"), ("posterior", "*")):
                (p,) = (p for p in at if p.decoder == decoder)
                ax.errorbar(
                    float(p.mse.value),
                    float(p.perception.value),
                    xerr=float(p.mse.stderr),
                    yerr=float(p.perception.stderr),
                    fmt=marker,
                    color=color,
                    ms=9,
                )
        ax.plot([], [], "kx", label="Tweedie E[X | X_σ]")
        ax.plot([], [], "k*", label="posterior sample")
        ax.set(
            xlabel="MSE per dimension",
            ylabel="sliced W2² to the test set",
            title=f"{title} {mode}: ρ from 1 (left) to 0 (±1 SE)".strip(),
        )
        ax.legend(fontsize=7)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_reconstructions(
    points: Sequence[TraversalPoint],
    originals: ArrayLike,
    sigmas: Sequence[float],
    mode: str = "oneshot",
    path: str | None = None,
):
    """An image grid per σ: rows original, ρ = 1 … 0 (learned decoder), posterior sample;
    columns the first items kept by `traversal_sweep`.

    **Arguments:** `points` of `traversal_sweep` with 2-D items; `originals` the items swept
    (the first `keep` are shown); `sigmas` the rates to show, each of the sweep; `mode` the
    files' coding; `path` where to save the figure, or `None`.

    **Returns:** the matplotlib `Figure`.

    **Raises:** `ValueError` naming `sigmas` or `mode` when the sweep has no such points, and
    when matplotlib is not installed.
    """
    plt = _pyplot(path)
    chosen = {}
    for sigma in sigmas:
        at = [p for p in points if p.mode == mode and math.isclose(p.sigma, sigma)]
        learned = sorted((p for p in at if p.decoder == "learned"), key=lambda p: -p.rho)
        posterior = [p for p in at if p.decoder == "posterior"]
        if not learned or not posterior:
            raise ValueError(f"plot_reconstructions: no {mode!r} points at `sigmas` {sigma:g}.")
        chosen[sigma] = learned + posterior
    originals = np.asarray(originals)[: len(points[0].samples)]
    rows = 1 + len(next(iter(chosen.values())))
    cols = len(originals)
    fig, axes = plt.subplots(
        rows,
        cols * len(chosen),
        figsize=(0.8 * cols * len(chosen) + 1.2, 0.85 * rows),
        squeeze=False,
        layout="constrained",
    )
    low, high = float(originals.min()), float(originals.max())
    for j, (sigma, column) in enumerate(chosen.items()):
        labels = ["original"] + [
            "posterior" if p.decoder == "posterior" else f"ρ = {p.rho:g}" for p in column
        ]
        images = [originals] + [p.samples for p in column]
        for r, (label, row) in enumerate(zip(labels, images, strict=True)):
            for c in range(cols):
                ax = axes[r, j * cols + c]
                ax.imshow(row[c], cmap="gray", vmin=low, vmax=high)
                ax.set_xticks([]), ax.set_yticks([])
                if c == 0 and j == 0:
                    ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
        bits = float(column[0].bits_per_dim.value)
        axes[0, j * cols].set_title(f"σ = {sigma:g}, {bits:.2f} bits/dim", fontsize=8, loc="left")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
