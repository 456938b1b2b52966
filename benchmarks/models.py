"""Quality of the shipped learned models against the truth or the Gaussian baseline.

- gmm2d: the learned denoiser's test MSE against the exact mixture denoiser's (the MMSE) on a
  grid of σ in [0.01, 10]; target: within 3 % everywhere.
- digits, patches: test denoising MSE against the Tweedie denoiser (Wiener filter) of the
  full-covariance Gaussian fitted to the training set, on σ = (0.05 ... 5) × the data's
  standard deviation; targets: ≥ 25 % (digits) / 15 % (patches) lower at 0.5 × std, never more
  than 2 % higher.
- PF-ODE samples (ρ = 0 from σ = 10): Fréchet distance to the test set in pixel space (and, for
  digits, in the features of the shipped classifier), against the training set's.
- PF-ODE decoding speed of the digits test set at 20 NFE, in images/s.

Run: `python benchmarks/models.py [gmm2d|digits|patches|speed ...]` (all by default).
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from rdp_jax import datasets, decode, metrics, models, scores
from rdp_jax.models import compare_denoisers

GMM2D_SIGMAS = np.geomspace(0.01, 10.0, 13)
IMAGE_SIGMA_FACTORS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
SAMPLE_SIGMA = 10.0
NFE = 20


def denoising_table(name: str, reference, sigmas, x, repeats: int) -> list:
    model = models.pretrained(name)
    x = np.asarray(x, np.float64)
    rows = []
    for i, sigma in enumerate(sigmas):
        # `repeats` noises per item; the SEs are over the items (their noises are not
        # independent observations).
        rows.append(
            compare_denoisers(jax.random.key(i), model, reference, x, float(sigma), repeats=repeats)
        )
        r = rows[-1]
        print(
            f"  σ = {sigma:7.4f}: learned {r.mse:.4e} ± {r.mse_stderr:.1e}, reference "
            f"{r.reference_mse:.4e} ± {r.reference_mse_stderr:.1e}, learned / reference − 1 = "
            f"{100 * r.excess:+6.2f} % ± {100 * r.excess_stderr:.2f} %",
            flush=True,
        )
    return rows


def gmm2d() -> None:
    print("gmm2d: learned denoiser vs the exact MMSE (10,000 test samples × 5 noise draws)")
    exact = scores.gaussian_mixture(*datasets.gmm2d_parameters())
    rows = denoising_table("gmm2d", exact, GMM2D_SIGMAS, datasets.load("gmm2d", "test"), 5)
    worst = max(rows, key=lambda r: abs(r.excess))
    print(
        f"  worst |excess| {100 * abs(worst.excess):.2f} % at σ = {worst.sigma:.4f} (target ≤ 3 %)"
    )
    samples("gmm2d", datasets.load("gmm2d", "test"), datasets.load("gmm2d", "train")[:10_000])


def images(name: str) -> None:
    test = datasets.load(name, "test")
    std = float(test.std())
    sigmas = std * np.asarray(IMAGE_SIGMA_FACTORS)
    model = models.pretrained(name)
    repeats = max(1, 4000 // len(test))
    print(
        f"{name}: learned vs the Gaussian fit's Wiener filter (test std {std:.3f}, "
        f"{len(test)} test items × {repeats} noise draws)"
    )
    rows = denoising_table(name, model.gaussian_fit(), sigmas, test, repeats)
    half = rows[IMAGE_SIGMA_FACTORS.index(0.5)]
    print(
        f"  at 0.5 × std: {100 * half.excess:+.2f} % ± {100 * half.excess_stderr:.2f} %; "
        f"worst {100 * max(r.excess for r in rows):+.2f} %"
    )
    samples(name, test, datasets.load(name, "train"))


def pf_ode_samples(model, n: int, seed: int = 7) -> jnp.ndarray:
    """n PF-ODE samples (ρ = 0) from y = μ + σ_max ε, σ_max = SAMPLE_SIGMA, at 2 × NFE steps."""
    key = jax.random.key(seed)
    mean = np.asarray(model.data_mean).reshape(model.event_shape)
    y = mean + SAMPLE_SIGMA * jax.random.normal(key, (n, *model.event_shape), jnp.float64)
    return decode(y, SAMPLE_SIGMA, 0.0, model, num_steps=2 * NFE)


def samples(name: str, test: np.ndarray, train: np.ndarray) -> None:
    model = models.pretrained(name)
    n = min(len(train), 4000)
    x = np.asarray(pf_ode_samples(model, n)).reshape(n, -1)
    flat_test = test.reshape(len(test), -1).astype(np.float64)
    flat_train = train[:n].reshape(n, -1).astype(np.float64)
    fd = metrics.w2_gaussian(x, flat_test)
    ref = metrics.w2_gaussian(flat_train, flat_test)
    print(
        f"  PF-ODE samples (n = {n}): pixel Fréchet distance to test {float(fd.value):.4f} ± "
        f"{float(fd.stderr):.4f}; training set to test {float(ref.value):.4f} ± "
        f"{float(ref.stderr):.4f}"
    )
    if name == "digits":
        classifier = models.pretrained_classifier("digits")
        feats = [np.asarray(classifier.features(a), np.float64) for a in (x, flat_test, flat_train)]
        fd = metrics.w2_gaussian(feats[0], feats[1])
        ref = metrics.w2_gaussian(feats[2], feats[1])
        print(
            f"  classifier-feature Fréchet distance to test: samples {float(fd.value):.4f} ± "
            f"{float(fd.stderr):.4f}, training set {float(ref.value):.4f} ± "
            f"{float(ref.stderr):.4f}; ratio {float(fd.value / ref.value):.2f} (target ≤ 2)"
        )


def speed() -> None:
    model = models.pretrained("digits")
    test = jnp.asarray(datasets.load("digits", "test"), jnp.float32)
    y = test + 0.3 * jax.random.normal(jax.random.key(0), test.shape, jnp.float32)
    run = jax.jit(lambda y: decode(y, 0.3, 0.5, model, num_steps=NFE))
    run(y).block_until_ready()
    start = time.perf_counter()
    reps = 3
    for _ in range(reps):
        run(y).block_until_ready()
    seconds = (time.perf_counter() - start) / reps
    print(
        f"digits: PF-ODE decoding at {NFE} NFE, float32, {len(test)} images: "
        f"{len(test) / seconds:,.0f} images/s on {jax.devices()[0].platform}"
    )


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    parts = {
        "gmm2d": gmm2d,
        "digits": lambda: images("digits"),
        "patches": lambda: images("patches"),
        "speed": speed,
    }
    for part in sys.argv[1:] or parts:
        parts[part]()
