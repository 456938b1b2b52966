"""Portability harness: golden streams, and decoding in fresh processes with other CPU settings.

A stream must decode to the same bits whatever kernels the decoding machine picks. Three process
settings change them without another machine:

- `NPY_DISABLE_CPU_FEATURES`: NumPy's SIMD dispatch targets that this CPU has are switched off,
  so NumPy runs its baseline kernels (which targets exist depends on the machine; the assertion,
  bit equality, does not);
- `XLA_FLAGS=--xla_cpu_max_isa=SSE4_2` (x86 only): XLA compiles without AVX or FMA;
- `OPENBLAS_NUM_THREADS`: another BLAS thread count, hence other summation orders.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "rcc_golden_v7.json"


def cpu_variants() -> dict[str, dict[str, str] | None]:
    """Named environment changes for a decoding subprocess (see the module docstring); `None`
    for a change this machine cannot make (no optional NumPy SIMD targets, not x86), which the
    tests report as skipped rather than drop silently."""
    from numpy._core import _multiarray_umath as umath

    dispatched = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "")
    return {
        "fresh process": {},
        "numpy baseline kernels": (
            {"NPY_DISABLE_CPU_FEATURES": " ".join(dispatched)} if dispatched else None
        ),
        "XLA SSE4.2": {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2"} if x86 else None,
        "BLAS threads": {"OPENBLAS_NUM_THREADS": "3" if threads != "3" else "1"},
    }


def all_cpu_changes() -> dict[str, str]:
    """Every change of `cpu_variants` this machine can make, at once."""
    return {k: v for changes in cpu_variants().values() if changes for k, v in changes.items()}


def run_python(code: str, env_changes: dict[str, str], *args: str) -> str:
    """Runs `code` in a fresh interpreter with `env_changes`; returns its stdout.

    `JAX_PLATFORMS=cpu` and one CPU device keep the child's own setup out of the comparison.
    """
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1", **env_changes}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600
    )
    if out.returncode:
        raise AssertionError(f"subprocess failed ({env_changes}):\n{out.stderr[-3000:]}")
    return out.stdout


def to_hex(array) -> str:
    return np.ascontiguousarray(array).tobytes().hex()


def from_hex(text: str, dtype) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text), dtype=np.dtype(dtype).newbyteorder("<")).copy()


def closure_model(weights: dict[str, np.ndarray]):
    """A learned-looking ε model whose weights live in a closure, wrapped by `from_model`: the
    fingerprint must see them, and its float outputs vary with the machine's kernels."""
    import jax.numpy as jnp

    from rdp_jax import scores

    w1, b1, w2 = (jnp.asarray(weights[k]) for k in ("w1", "b1", "w2"))

    def eps_model(x, t):
        hidden = jnp.tanh(w1 @ jnp.append(x, jnp.log(t)) + b1)
        return w2 @ hidden

    return scores.from_model(eps_model, parametrization="eps")


def golden_model(spec: dict, dtype):
    """The score model of a progressive golden case."""
    from rdp_jax import scores

    arrays = {k: from_hex(v, dtype).reshape(spec["shapes"][k]) for k, v in spec["arrays"].items()}
    if spec["kind"] == "gaussian":
        return scores.gaussian(arrays["mean"], arrays["var"])
    return closure_model(arrays)


def decode_golden(case: dict) -> np.ndarray:
    """Decodes one golden case with the key, prior and model it records."""
    import jax

    from rdp_jax import rcc

    dtype, key = case["dtype"], jax.random.key(case["key"])
    data = bytes.fromhex(case["stream"])
    if case["kind"] == "oneshot":
        p_mean, p_std = (from_hex(case[k], dtype) for k in ("p_mean", "p_std"))
        return np.asarray(rcc.decode(key, data, p_mean, p_std))
    grid, prior_mean, prior_std = (
        from_hex(case[k], dtype) for k in ("grid", "prior_mean", "prior_std")
    )
    model = golden_model(case["model"], dtype)
    x = rcc.progressive_decode(key, data, grid, model, prior_mean=prior_mean, prior_std=prior_std)
    return np.asarray(x)


def load_golden() -> list[dict]:
    return json.loads(GOLDEN.read_text())["cases"]


# Decodes every golden case and the one-shot streams of a JSON file argument; prints hex samples.
DECODE_SCRIPT = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import portability
from rdp_jax import rcc
cases = portability.load_golden() + json.loads(open(sys.argv[1]).read())
print(json.dumps([portability.to_hex(portability.decode_golden(case)) for case in cases]))
"""
