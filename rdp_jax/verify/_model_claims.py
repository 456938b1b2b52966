"""Model claims: the shipped learned denoisers against the exact MMSE and the Gaussian baseline,
and the decoder's distortion-perception tradeoff driven by a learned model (maths §7, §14).
"""

import functools
import math

import jax
import numpy as np
import scipy.stats

from rdp_jax import datasets, models
from rdp_jax.scores import gaussian_mixture
from rdp_jax.verify._registry import Measurement, claim

# The shipped gmm2d model must be within 3 % of the MMSE at every σ of the benchmark's grid;
# the claim checks six of them, on the 10,000 test samples.
_GMM2D_SIGMAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0)
_GMM2D_TOLERANCE = 0.03
# Differences judged in standard errors: > 3 SE, a false-pass rate of 1.3e-3 per comparison
# under the null of no difference, for SEs over iid (paired) items; a jackknife SE over B
# blocks is judged against Student's t quantile with B − 1 degrees of freedom at that rate.
_Z = 3.0
_FALSE_PASS = float(scipy.stats.norm.sf(_Z))


@claim(
    "shipped gmm2d denoiser = exact mixture MMSE (within 3 %)",
    "Tweedie's E[X | X_σ] of the 4-component mixture in closed form (maths §7), σ in [0.01, 10]",
    group="models",
    evidence="Monte Carlo",
)
def _gmm2d_denoiser() -> Measurement:
    exact = gaussian_mixture(*datasets.gmm2d_parameters())
    learned = models.pretrained("gmm2d")
    x = datasets.load("gmm2d", "test", dtype=np.float64)
    rows = [
        models.compare_denoisers(jax.random.key(i), learned, exact, x, sigma)
        for i, sigma in enumerate(_GMM2D_SIGMAS)
    ]
    worst = max(rows, key=lambda r: abs(r.excess))
    detail = "; ".join(
        f"σ={r.sigma:g}: {100 * r.excess:+.2f}±{100 * r.excess_stderr:.2f}%" for r in rows
    )
    return Measurement(
        abs(worst.excess),
        0.0,
        _GMM2D_TOLERANCE,
        "at_most",
        detail=f"learned/exact MSE − 1 on n = {len(x)} test samples: {detail}",
    )


@claim(
    "digits: learned denoiser beats the Gaussian fit by ≥ 25 % at σ = 0.5 std",
    "the Wiener filter of the training set's full-covariance Gaussian (maths §6, §14)",
    group="models",
    evidence="Monte Carlo",
    full=True,
)
def _digits_denoiser() -> Measurement:
    test = datasets.load("digits", "test", dtype=np.float64)
    learned = models.pretrained("digits")
    r = models.compare_denoisers(
        jax.random.key(3), learned, learned.gaussian_fit(), test, 0.5 * float(test.std()),
        repeats=4,
    )  # fmt: skip
    return Measurement(
        r.excess,
        -0.25,
        _Z * r.excess_stderr,
        "at_most",
        detail=f"learned {r.mse:.4e}, Gaussian fit {r.reference_mse:.4e} per pixel, "
        f"n = {len(test)} images × 4 noises; excess {100 * r.excess:+.2f} ± "
        f"{100 * r.excess_stderr:.2f} % (SE over images; tolerance 3 SE)",
    )


# One codec file of the whole digits test set (359 images) at σ = 0.4 (one-shot, ≈ 1 bit/dim):
# coding it takes minutes on 2 cores, hence the full tier. (On its first 128 images the MSE
# difference was 2.7 paired SE: too few images to tell it at 3 SE.)
_CODEC_N, _CODEC_SIGMA = 359, 0.4


@functools.cache
def _digits_codec_file() -> tuple[np.ndarray, bytes]:
    from rdp_jax import codec

    x = datasets.load("digits", "test", dtype=np.float64)[:_CODEC_N]
    data = codec.compress(
        jax.random.key(5), x, models.pretrained("digits"), _CODEC_SIGMA, mode="oneshot"
    )
    return x, data


def _flat(a) -> np.ndarray:
    return np.asarray(a).reshape(len(a), -1)


@claim(
    "digits codec file: ρ = 0 has lower perception and higher MSE than ρ = 1 (3 SE, t₁₅)",
    "Wang, Bi & Zhang 2026, decode-time traversal of one compressed file (one-shot, σ = 0.4)",
    group="models",
    evidence="Monte Carlo",
    full=True,
)
def _codec_tradeoff() -> Measurement:
    from rdp_jax import codec, metrics

    x, data = _digits_codec_file()
    model = models.pretrained("digits")
    x0, x1 = (codec.decompress(data, model, rho, num_steps=20) for rho in (0.0, 1.0))
    x0, x1, xf = _flat(x0), _flat(x1), _flat(x)
    # Both decodes start from the same X_σ, so the differences are paired: the MSE difference
    # per image, and the perception difference by a delete-a-block jackknife (16 blocks).
    err = np.sum((x0 - xf) ** 2, 1) - np.sum((x1 - xf) ** 2, 1)
    z_mse = err.mean() / (err.std(ddof=1) / math.sqrt(len(err)))

    def gap(keep):
        p0 = metrics.w2_gaussian(x0[keep], xf[keep]).value
        return float(metrics.w2_gaussian(x1[keep], xf[keep]).value - p0)

    blocks = np.array_split(np.arange(len(xf)), 16)
    whole = gap(np.arange(len(xf)))
    leave = np.array([gap(np.setdiff1d(np.arange(len(xf)), b)) for b in blocks])
    se = math.sqrt((len(blocks) - 1) / len(blocks) * np.sum((leave - leave.mean()) ** 2))
    z_perception = whole / se
    t_perception = float(scipy.stats.t.isf(_FALSE_PASS, len(blocks) - 1))
    detail = (
        f"{len(data)} bytes, {8 * len(data) / x.size:.3f} bits/dim, n = {len(x)}; MSE(ρ=0) − "
        f"MSE(ρ=1) = {err.mean():.4f} per image ({z_mse:.1f} SE, paired, against {_Z:g}); "
        f"W2²(ρ=1) − W2²(ρ=0) = {whole:.3f} ({z_perception:.1f} SE, 16-block jackknife, against "
        f"t₁₅ = {t_perception:.2f}); measured: the smaller of the two ratios to their thresholds"
    )
    measured = min(z_mse / _Z, z_perception / t_perception)
    return Measurement(measured, 1.0, 0.0, "at_least", detail=detail)


@claim(
    "digits codec file: ρ = 1 beats posterior sampling in MSE at the same bits",
    "Wang, Bi & Zhang 2026, baselines at one rate: reverse-SDE posterior sample from the same X_σ",
    group="models",
    evidence="Monte Carlo",
    full=True,
)
def _codec_vs_posterior() -> Measurement:
    from rdp_jax import codec, metrics, posterior_sample

    x, data = _digits_codec_file()
    model = models.pretrained("digits")
    x1, info = codec.decompress(data, model, 1.0, num_steps=20, return_info=True)
    xp = posterior_sample(jax.random.key(9), info.noisy, _CODEC_SIGMA, model)
    # Paired per-image differences: the SE of the mean difference is direct.
    diff = np.sum(_flat(xp - x) ** 2, 1) - np.sum(_flat(np.asarray(x1) - x) ** 2, 1)
    diff = diff / x[0].size
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    d1 = metrics.mse(_flat(x), _flat(x1))
    dp = metrics.mse(_flat(x), _flat(xp))
    detail = (
        f"same file ({8 * len(data) / x.size:.3f} bits/dim): ρ=1 MSE {float(d1.value):.4f}, "
        f"posterior sample {float(dp.value):.4f}; posterior − ρ=1 = {diff.mean():.4f} ± {se:.4f}"
        " per pixel (measured, in SE against 3)"
    )
    return Measurement(float(diff.mean() / se), _Z, 0.0, "at_least", detail=detail)
