"""`experiments.traversal_sweep`: a learned model's files decoded across ρ, with baselines."""

import math

import jax
import numpy as np
import pytest

from rdp_jax import datasets, decode, experiments, models

SIGMAS, RHOS = (1.0, 2.0), (1.0, 0.0)


@pytest.fixture(scope="module")
def sweep():
    model = models.pretrained("gmm2d")
    x = np.asarray(datasets.load("gmm2d", "test")[:8])
    points = experiments.traversal_sweep(
        jax.random.key(0),
        model,
        x,
        SIGMAS,
        RHOS,
        blocks=2,
        steps=6,
        posterior_steps=4,
        keep=3,
        decode_options={"num_steps": 4},
    )
    return x, points


def test_every_mode_sigma_and_decoder_is_measured_on_the_same_files(sweep):
    x, points = sweep
    keys = [(p.mode, p.sigma, p.decoder, p.rho) for p in points]
    per_rate = [(d, r) for r in RHOS for d in ("learned", "gaussian fit")]
    per_rate += [("tweedie", math.nan), ("posterior", math.nan)]
    want = [(m, s, d, r) for m in ("oneshot", "progressive") for s in SIGMAS for d, r in per_rate]
    assert len(keys) == len(want)
    for got, expected in zip(keys, want, strict=True):
        assert got[:3] == expected[:3]
        assert got[3] == expected[3] or (math.isnan(got[3]) and math.isnan(expected[3]))
    for p in points:
        assert p.samples.shape == (3, *x.shape[1:]) and np.all(np.isfinite(p.samples))
        for e in (p.bits_per_dim, p.mse, p.perception):
            assert np.isfinite(e.value) and np.isfinite(e.stderr) and e.stderr >= 0
        same = [q for q in points if (q.mode, q.sigma) == (p.mode, p.sigma)]
        # One set of files per (mode, σ): every decoder's rate is that of the same bytes.
        assert {float(q.bits_per_dim.value) for q in same} == {float(p.bits_per_dim.value)}
        assert 0 < p.header_bits_per_dim < float(p.bits_per_dim.value)
    rows = experiments.traversal_rows(points)
    assert len(rows) == len(points) and "bits/dim" in experiments.traversal_table(rows)


def test_each_decoder_is_what_its_name_says(sweep):
    """Every point's reconstructions, recomputed from its own X_σ: the learned and the Gaussian
    fit's PF-ODE at its ρ, and the learned denoiser (the posterior sample is random). On a
    batch of `keep` items rather than the sweep's, so equal to float32 rounding (the ODE's few
    steps pass on a few ulp of |x̂|; 1e-5), where a swapped baseline differs by O(1)."""
    _, points = sweep
    model = models.pretrained("gmm2d")
    fit = model.gaussian_fit()
    checked = set()
    for p in points:
        if p.decoder == "tweedie":
            want = jax.vmap(model.denoise, (0, None))(p.noisy, np.float32(p.sigma))
        elif p.decoder == "learned":
            want = decode(p.noisy, p.sigma, p.rho, model, num_steps=4)
        elif p.decoder == "gaussian fit":
            want = decode(p.noisy.astype(fit.mean.dtype), p.sigma, p.rho, fit, num_steps=4)
        else:
            continue
        np.testing.assert_allclose(p.samples, want, rtol=1e-5, atol=1e-5, err_msg=str(p[:4]))
        checked.add(p.decoder)
    assert checked == {"tweedie", "learned", "gaussian fit"}


def test_the_one_shot_messages_cost_less_at_the_larger_sigma(sweep):
    # One-shot coding sends q = N(z, σ²) against p = N(0, λ + σ²) for the same items' z at
    # every σ; KL(q‖p) is strictly decreasing in σ² for every z and λ > 0 (its derivative is
    # −(λ²/σ² + z²)/(λ + σ²)²), so this ordering is deterministic, not statistical.
    _, points = sweep
    kl = {p.sigma: p.kl_bits_per_dim for p in points if p.mode == "oneshot"}
    assert kl[SIGMAS[0]] > kl[SIGMAS[1]] > 0


def test_the_sweep_rejects_bad_arguments():
    model = models.pretrained("gmm2d")
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="`modes`"):
        experiments.traversal_sweep(jax.random.key(0), model, x, (1.0,), modes=("lossless",))
    with pytest.raises(ValueError, match="`x`"):
        experiments.traversal_sweep(jax.random.key(0), model, x[:, :1], (1.0,))
    with pytest.raises(ValueError, match="`blocks`"):
        experiments.traversal_sweep(jax.random.key(0), model, x[:3], (1.0,))
    with pytest.raises(ValueError, match="gaussian_fit"):
        experiments.traversal_sweep(jax.random.key(0), model.gaussian_fit(), x, (1.0,))
    # (3, 4) holds 6 items of 2 dimensions when flattened: refused, not reshaped.
    for reference in (np.zeros((3, 4), np.float32), np.zeros((1, 2), np.float32)):
        with pytest.raises(ValueError, match="`reference`"):
            experiments.traversal_sweep(jax.random.key(0), model, x, (1.0,), reference=reference)
