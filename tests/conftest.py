"""Test configuration: float64 JAX and the hypothesis profiles.

Profiles: `ci` (derandomized, reproducible) is loaded when the environment variable `CI` is set,
`dev` (random examples) otherwise; `HYPOTHESIS_PROFILE=<name>` overrides both.

Each profile comes in two sizes. The profile itself (30 examples in `ci`) governs the system
tests, where one example is a reverse-channel-coding round trip or an ODE solve and costs up
to seconds. Its `-closed-form` twin governs the property tests of `theory` and the metrics
(`strategies.closed_form`), where an example costs milliseconds, so that many more examples
reach the corners of the wide strategies: 150 in `ci`, 1000 in `dev`.
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
settings.register_profile("ci-closed-form", settings.get_profile("ci"), max_examples=150)
settings.register_profile("dev-closed-form", settings.get_profile("dev"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
