"""Test configuration: float64 JAX and the hypothesis profiles.

Profiles: `ci` (derandomized, few examples, reproducible) is loaded when the environment variable
`CI` is set, `dev` (more random examples) otherwise; `HYPOTHESIS_PROFILE=<name>` overrides both.
"""

import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from hypothesis import HealthCheck, settings  # noqa: E402

# Make `theory` importable when pytest is run without installing the project (`python -m pytest`
# already puts the working directory on sys.path; plain `pytest` does not).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, max_examples=30, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=100, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
