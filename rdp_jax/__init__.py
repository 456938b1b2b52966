"""rdp-jax: diffusion-based compression measured against the Gaussian RDP function.

The closed-form truth lives in the separate `theory` package; `rdp_jax` holds the machinery and
the `rdp-jax` command line (`rdp-jax verify`).
"""

__version__ = "0.1.0"
