"""The verify references run quietly: `rdp-jax verify` must print no warning."""

import warnings

import numpy as np

from rdp_jax.verify._reference import perception_kl


def test_forward_kl_of_a_point_mass_is_infinite_without_a_warning():
    slack = perception_kl(0.1, np.array([1.0]), "forward")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert slack(np.array([0.0])) == -np.inf  # budget minus an infinite KL: infeasible
