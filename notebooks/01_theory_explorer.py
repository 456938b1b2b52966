# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The theory explorer: Gaussian rate-distortion-perception in closed form
#
# Everything here comes from the `theory` package, the analytic truth that `rdp-jax verify`
# judges the machinery against (the formulas and their sources are in `docs/maths.md`). Rates
# are in nats; distortion D is the mean squared error; perception P is a budget on a divergence
# between the source law p_X and the reconstruction's p_X̂.
#
# 1. The scalar R(D, P) surface for three perception measures: the squared 2-Wasserstein
#    distance W2², and the KL divergence in either direction (maths §3-§4).
# 2. Vector sources: reverse water-filling (Shannon's R(D)), and what a perception budget does
#    to the allocation across components (maths §2, §5).

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import theory

# %% [markdown]
# ## R(D, P) of a scalar Gaussian, s² = 1
#
# For each perception measure the surface is drawn as contours of the rate over the (D, P)
# plane. At P = ∞ the budget does not bind and R is Shannon's ½ ln(s²/D); at P = 0 (perfect
# realism: p_X̂ = p_X) the rate is higher, and stays positive until D = 2s², twice the
# zero-rate MSE, since a realistic reconstruction cannot simply output the mean.

# %%
var = 1.0
D = jnp.linspace(0.02, 2.0, 200)
P = jnp.linspace(0.0, 0.6, 150)
surfaces = {
    "W2²": theory.rdp_w2(D[None, :], P[:, None], var),
    "KL(p_X ‖ p_X̂)  (forward)": theory.rdp_kl(D[None, :], P[:, None], var, "forward"),
    "KL(p_X̂ ‖ p_X)  (reverse)": theory.rdp_kl(D[None, :], P[:, None], var, "reverse"),
}

fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
levels = [0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0]
for ax, (name, R) in zip(axes, surfaces.items(), strict=True):
    filled = ax.contourf(D, P, R, levels=[0.0, *levels, 4.0], cmap="viridis")
    lines = ax.contour(D, P, R, levels=levels, colors="white", linewidths=0.6)
    ax.clabel(lines, fontsize=7, fmt="%.2f")
    ax.set_title(f"R(D, P), perception {name}")
    ax.set_xlabel("distortion D (MSE)")
axes[0].set_ylabel("perception budget P")
fig.colorbar(filled, ax=axes, label="rate (nats)")
plt.show()

# %% [markdown]
# The same surfaces as slices: R against D at a few budgets. The KL directions differ: the
# forward KL(p_X ‖ p_X̂) punishes a reconstruction narrower than the source much harder than
# the reverse one, so at the same P it forces the reconstruction's spread, and the rate, up.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), sharey=True)
for ax, budget in zip(axes, (0.0, 0.05, 0.3), strict=True):
    ax.plot(D, theory.rdp_w2(D, jnp.inf, var), "k:", label="Shannon R(D)")
    ax.plot(D, theory.rdp_w2(D, budget, var), label="W2²")
    ax.plot(D, theory.rdp_kl(D, budget, var, "forward"), label="forward KL")
    ax.plot(D, theory.rdp_kl(D, budget, var, "reverse"), "--", label="reverse KL")
    ax.set_title(f"P = {budget}")
    ax.set_xlabel("D")
    ax.set_ylim(0, 2.0)
axes[0].set_ylabel("R (nats)")
axes[0].legend()
plt.show()

# %% [markdown]
# ## A vector source: reverse water-filling, with and without a perception budget
#
# Four independent components with variances s² = (4, 1, 0.25, 0.04) and a total MSE budget.
# Without a perception constraint (P = ∞) the optimum is reverse water-filling: every
# component gets distortion min(θ, s_i²) for one water level θ, and the weakest components are
# not sent at all. A W2² budget P on the whole vector changes that: a component left at
# zero rate would be reconstructed as a constant, whose W2² to the source is s_i², so the
# budget forces rate into the small components too, and the reconstruction's spread ŝ_i
# towards s_i (maths §5, Qian et al. 2025).

# %%
variances = jnp.array([4.0, 1.0, 0.25, 0.04])
labels = [f"s² = {float(v):g}" for v in variances]


def allocation_figure(D_total: float, P_total: float):
    """Bars of each component's distortion and perception at the optimum, P = ∞ against P."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    x = np.arange(len(variances))
    for ax, budget in zip(axes, (jnp.inf, P_total), strict=True):
        R, alloc = theory.rdp_w2_vector(D_total, budget, variances, return_allocation=True)
        ax.bar(x - 0.2, variances, 0.4, color="lightgray", label="variance s_i²")
        ax.bar(x - 0.2, alloc.distortion, 0.4, color="C0", label="distortion D_i")
        ax.bar(x + 0.2, alloc.perception, 0.4, color="C3", label="perception (s_i - ŝ_i)²")
        for xi, rate in zip(x, np.asarray(alloc.rate), strict=True):
            ax.annotate(f"{rate:.2f} nats", (xi, 0.02), ha="center", fontsize=8, rotation=90)
        title = "P = ∞ (reverse water-filling)" if budget == jnp.inf else f"P = {budget:g}"
        ax.set_title(f"{title}: R = {float(R):.4f} nats")
        ax.set_xticks(x, labels)
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 6)
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"total D = {D_total:g}")
    plt.show()


allocation_figure(1.0, 0.05)

# %% [markdown]
# The price of realism in rate, for this source: R(D, P) against D for several total W2²
# budgets, with Shannon's R(D) below them all.

# %%
D_vec = jnp.linspace(0.05, 5.0, 60)
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(D_vec, theory.rate_distortion(D_vec, variances), "k:", label="Shannon R(D)")
for budget in (0.0, 0.05, 0.3, 1.0):
    ax.plot(D_vec, theory.rdp_w2_vector(D_vec, budget, variances), label=f"P = {budget}")
ax.set_xlabel("total distortion D")
ax.set_ylabel("R (nats)")
ax.set_ylim(0, 4)
ax.legend()
plt.show()

# %% [markdown]
# ## Explore
#
# In a live Jupyter kernel with `ipywidgets` (part of `pip install ".[notebooks]"`), the
# sliders below redraw the allocation for any total D and P. Without widgets (a plain kernel,
# or a static view of the notebook) the figure above is what there is; change the arguments of
# `allocation_figure` to explore by hand.

# %%
try:
    import ipywidgets
except ImportError:
    print("ipywidgets is not installed: call allocation_figure(D, P) instead of the sliders.")
else:
    ipywidgets.interact(
        allocation_figure,
        D_total=ipywidgets.FloatSlider(value=1.0, min=0.05, max=5.0, step=0.05),
        P_total=ipywidgets.FloatSlider(value=0.05, min=0.0, max=2.0, step=0.01),
    )
