"""The experiment helpers behind the decoder claims."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import bures_w2

import theory
from rdp_jax import experiments, metrics, scores


def test_linear_decoder_dp_matches_the_closed_form():
    variances = jnp.array([4.0, 1.0, 0.05])
    model = scores.gaussian(jnp.array([1.0, -2.0, 0.5]), variances)
    D, P = experiments.linear_decoder_dp(model, 0.7, 0.3)
    D_exact, P_exact = theory.score_scaled_dp(0.3, variances, 0.49)
    # The adaptive reference (rtol 1e-8) makes the gains, and so D and P, good to ~1e-8.
    np.testing.assert_allclose([D, P], [D_exact, P_exact], rtol=1e-6, atol=1e-10)


def test_gaussian_w2sq_matches_commuting_formula_and_is_symmetric():
    a, b = jnp.diag(jnp.array([4.0, 1.0])), jnp.diag(jnp.array([1.0, 0.25]))
    np.testing.assert_allclose(metrics.gaussian_w2sq(a, b), 1.0 + 0.25, rtol=1e-12)
    rot = jnp.array([[0.6, -0.8], [0.8, 0.6]])
    c = rot @ b @ rot.T
    np.testing.assert_allclose(metrics.gaussian_w2sq(a, c), metrics.gaussian_w2sq(c, a), rtol=1e-10)
    # Non-commuting: the Bures formula through scipy's sqrtm (well-conditioned, full rank).
    zero = np.zeros(2)
    reference = bures_w2(zero, np.asarray(a), zero, np.asarray(c))
    np.testing.assert_allclose(metrics.gaussian_w2sq(a, c), reference, rtol=1e-12)


def test_empirical_dp_and_bound_estimate_the_gaussian_truth():
    model = scores.gaussian(jnp.zeros(1), 1.0)
    sigma, n = 1.0, 20_000
    (point,) = experiments.empirical_dp(
        jax.random.key(0), model, model.sample, sigma, [0.0], n, num_steps=20
    )
    bound = experiments.empirical_dp_bound(
        jax.random.key(1), model, model.sample, sigma, n, metrics.w2_gaussian
    )
    # Means of 20,000 i.i.d. terms against the closed forms, 5 standard errors (~6e-7 each).
    assert (
        abs(point.distortion.value - theory.dp_awgn(0.0, 1.0, 1.0)) <= 5 * point.distortion.stderr
    )
    assert abs(bound.mmse.value - theory.mmse_awgn(1.0, 1.0)) <= 5 * bound.mmse.stderr


def test_the_codec_sweep_rejects_bad_arguments():
    model, key = scores.gaussian(jnp.zeros(2), 1.0), jax.random.key(0)
    for kwargs, match in (
        ({"dtype": "int32"}, "`dtype` must be 'float32' or 'float64'"),  # items rounded before
        ({"num_items": 4.5}, "`num_items` must be an integer"),
        ({"num_items": 3}, "`num_items` must be a multiple of `blocks`"),
    ):
        args = {"num_items": 4, "blocks": 2} | kwargs
        with pytest.raises(ValueError, match=match):
            experiments.codec_sweep(key, model, [1.0], [0.5], **args)
