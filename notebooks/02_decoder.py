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
# # 2. The decoder: the score-scaled PF-ODE and the distortion-perception tradeoff
#
# The decoder receives y = x + σn and integrates the score-scaled probability-flow ODE
#
# dx/dσ = -(1 + ρ) σ ∇log p_σ(x)
#
# from σ down to 0 (maths §7; Wang, Bi & Zhang 2026). ρ = 0 is the ordinary probability-flow
# ODE, whose output has the source's law (perfect perception); for a Gaussian source ρ = 1 lands
# on the MMSE estimate E[X | Y]. On a Gaussian the end point is known in closed form, so every
# figure below has an exact reference:
#
# 1. the DP curve D(P), the constant-ρ path, and the decoder's measured points;
# 2. why a constant ρ misses the curve on an anisotropic source, and the per-direction
#    geodesic ρ_i that puts it back;
# 3. the integrators: error against the number of function evaluations (NFE).

# %%
import math

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import theory
from rdp_jax import decode, experiments, metrics, scores

variances = jnp.array([4.0, 1.0, 0.05])
noise_var = 0.5
sigma = math.sqrt(noise_var)
model = scores.gaussian(jnp.zeros(3), variances)

# %% [markdown]
# ## The DP curve and the decoder on it
#
# The optimal tradeoff for estimating X from Y is D(P) = D* + (W2(p_X, p_X*) - √P)₊²
# (Freirich et al. 2021): D* is the MMSE, and W2(p_X, p_X*) how far the MMSE estimate's law is
# from the source's. The decoder is run on 20 000 samples at five values of ρ (`exp4`, 20 NFE);
# its distortion is the sample MSE and its perception the debiased Fréchet (Gaussian W2²)
# estimate, each with a jackknife standard error. Posterior sampling, the paper's realism
# baseline, costs 2D* at P = 0.

# %%
w2sq = float(theory.mmse_perception_awgn(variances, noise_var))
P_curve = jnp.linspace(0.0, 1.2 * w2sq, 200)
D_curve = theory.dp_awgn(P_curve, variances, noise_var)
rho_path = jnp.linspace(0.0, 1.0, 101)
D_rho, P_rho = theory.score_scaled_dp(rho_path[:, None] * jnp.ones(3), variances, noise_var)

rhos = (0.0, 0.25, 0.5, 0.75, 1.0)
points = experiments.empirical_dp(
    jax.random.key(0),
    model,
    model.sample,
    sigma,
    rhos,
    20_000,
    perception=lambda a, b: metrics.w2_gaussian(a, b, debias=True),
    num_steps=20,
)
fractions = (0.2, 0.5, 0.8)
geodesic = [
    experiments.linear_decoder_dp(model, sigma, theory.geodesic_rho(f * w2sq, variances, noise_var))
    for f in fractions
]

fig, (ax, zoom) = plt.subplots(1, 2, figsize=(12, 4.5))
for axis in (ax, zoom):
    axis.plot(P_curve, D_curve, "k-", lw=2, label="optimal D(P)")
    axis.plot(P_rho, D_rho, "C0--", label="constant ρ, closed form")
    axis.errorbar(
        [float(p.perception.value) for p in points],
        [float(p.distortion.value) for p in points],
        xerr=[2 * float(p.perception.stderr) for p in points],
        yerr=[2 * float(p.distortion.stderr) for p in points],
        fmt="o",
        color="C0",
        label="decoder, n = 20000 (±2 se)",
    )
    axis.plot([g[1] for g in geodesic], [g[0] for g in geodesic], "C3s", label="geodesic ρ_i")
    axis.set_xlabel("perception P = W2²(p_X, p_X̂)")
    axis.set_ylabel("distortion D = E‖X - X̂‖²")
ax.axhline(2 * float(theory.mmse_awgn(variances, noise_var)), color="gray", ls=":", label="2D*")
ax.set_title(f"s² = {[float(v) for v in variances]}, σ² = {noise_var}")
ax.legend(fontsize=8)
zoom.set_xlim(0.2 * w2sq, 0.8 * w2sq)
zoom.set_ylim(
    float(theory.dp_awgn(0.8 * w2sq, variances, noise_var)) - 0.01,
    float(theory.dp_awgn(0.2 * w2sq, variances, noise_var)) + 0.01,
)
zoom.set_title("zoom: the constant-ρ path runs just above the curve")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Constant ρ against geodesic ρ_i
#
# In each eigen-direction the decoder multiplies y by a_i^{(1+ρ)/2}, with a_i = s_i²/(s_i² + σ²)
# the Wiener gain. The optimal estimator at budget P instead moves along the W2 geodesic between
# the MMSE estimate and its optimal transport, which needs a different ρ_i in every direction
# (maths §7). With equal a_i both coincide; here the a_i differ, so a constant ρ reaches the
# curve only at its two ends. The gap is small (about 6e-4 in D at its widest) but real, and
# `theory.geodesic_rho` closes it.

# %%
fractions_path = jnp.linspace(0.0, 1.0, 101)
rho_i = theory.geodesic_rho(fractions_path * w2sq, variances, noise_var)
gap = D_rho - theory.dp_awgn(P_rho, variances, noise_var)  # the constant-ρ path above

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
for i, v in enumerate(np.asarray(variances)):
    left.plot(fractions_path, rho_i[:, i], label=f"ρ_{i + 1}, s² = {v:g}")
left.set_xlabel("P / W2²(p_X, p_X*)")
left.set_ylabel("geodesic ρ_i")
left.legend()
left.set_title("per-direction ρ_i that land on the curve")
right.plot(rho_path, gap, "C0")
right.set_xlabel("constant ρ")
right.set_ylabel("D - D(P) at the decoder's P")
right.set_title("how far a constant ρ is above the curve")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Error against NFE, per integrator
#
# The decoder's methods: `heun` (and `euler`) on the EDM σ grid (Karras et al. 2022), and the
# multistep exponential integrators `exp1` ... `exp4` in ln σ (`exp1` is the ρ-scaled DDIM),
# all with a fixed budget of denoiser evaluations, and the adaptive `tsit5` reference. The error is
# measured exactly: on a Gaussian the decoder is linear in y, so decoding the basis vectors reads
# off its per-direction gain, compared with the closed form a_i^{(1+ρ)/2}. The error shown is
# the largest relative gain error over the three directions, at ρ = 0.5.

# %%
rho = 0.5
exact_gain = np.asarray(theory.score_scaled_gain(rho, variances, noise_var))
# The mean and the mean plus each basis vector, as `experiments.linear_decoder_dp` decodes
# them: the same batch shape reuses the decoders compiled above.
probes = jnp.concatenate([jnp.zeros((1, 3)), jnp.eye(3)])


def gain_error(**kwargs) -> tuple[float, int]:
    x_hat, info = decode(probes, sigma, rho, model, return_info=True, **kwargs)
    gain = np.diag(np.asarray(x_hat[1:] - x_hat[0]))
    return float(np.max(np.abs(gain - exact_gain) / exact_gain)), int(np.max(info.nfe))


budgets = (6, 12, 24)
methods = ("heun", "exp1", "exp2", "exp4")  # add "euler" or "exp3": a few seconds each
fig, ax = plt.subplots(figsize=(7, 4.5))
for method in methods:
    errors = [gain_error(method=method, num_steps=n) for n in budgets]
    ax.loglog([n for _, n in errors], [e for e, _ in errors], "o-", label=method)
error_ref, nfe_ref = gain_error()
ax.loglog([nfe_ref], [error_ref], "k*", ms=12, label=f"tsit5 (adaptive, rtol 1e-8): {nfe_ref} NFE")
ax.set_xlabel("denoiser evaluations per sample (NFE)")
ax.set_ylabel("max relative gain error")
ax.set_title("the decoder's integrators on s² = (4, 1, 0.05), σ² = 0.5, ρ = 0.5")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The exponential integrators integrate the linear part of the ODE exactly and only
# interpolate the denoiser's output, so their error falls fastest with the budget; `exp4` at
# 20 NFE (the default of `decode(..., num_steps=20)`) is within about 2e-4 of the closed form
# in D on the decoder benchmark (`benchmarks/README.md`).
