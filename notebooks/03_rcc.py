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
# # 3. Reverse channel coding: one Gaussian sample as real bytes
#
# The encoder knows q = N(μ_q, diag σ_q²); the decoder knows only the prior p = N(μ_p, diag σ_p²)
# and a key shared with the encoder. Reverse channel coding sends a sample of q at about
# KL(q ‖ p) bits (maths §10): both sides draw the same candidates z_j ~ p from the key, and the
# encoder sends the index of the one that Poisson functional representation (PFR) selects. The
# KL is split into chunks of about `chunk_bits` bits, each searched among N candidates, and the
# indices are range-coded.
#
# This notebook uses only the public API of `rdp_jax.rcc`:
#
# 1. one stream dissected: its size, header, chunk layout and indices;
# 2. bits against KL over a range of rates;
# 3. the bias frontier: what chunk size and candidate count buy in rate and cost in bias;
# 4. the portability check: the stream decodes to the same bits in another process whose
#    NumPy and XLA use other CPU instructions.

# %%
import hashlib
import os
import platform
import subprocess
import sys

import jax

# Float64 candidates: float32 ones reach only ±5.42 prior standard deviations (see `encode`).
jax.config.update("jax_enable_x64", True)

import matplotlib.pyplot as plt
import numpy as np
from numpy._core import _multiarray_umath as umath

from rdp_jax import rcc

d = 64
p_mean, p_std = np.zeros(d), np.ones(d)
q_mean, q_std = np.full(d, 1.18), np.ones(d)  # a mean shift: about 1 bit per dimension
key = jax.random.key(0)

# %% [markdown]
# ## One stream, dissected
#
# `encode(..., return_info=True)` reports what went into the stream next to the bytes.

# %%
data, info = rcc.encode(key, q_mean, q_std, p_mean, p_std, return_info=True)
print(f"KL(q ‖ p)      {info.kl_bits:8.2f} bits")
print(f"stream         {8 * len(data):8d} bits ({len(data)} bytes)")
print(f"  header+CRC   {info.header_bits:8d} bits")
print(f"  payload      {info.payload_bits:8d} bits (ideal index codelength {info.index_bits:.1f})")
print(f"chunks         {info.num_chunks:8d}, layout {info.layout!r}")
print("bytes         ", data.hex(" "))

sample = rcc.decode(key, data, p_mean, p_std)
assert np.asarray(sample).tobytes() == np.asarray(info.sample).tobytes()  # bit-exact
print("decoded sample is bit-identical to the encoder's")

# %% [markdown]
# Each chunk is a run of contiguous dimensions carrying about `chunk_bits` = 8 bits of KL. The
# selected index of a chunk is roughly 2^{KL of the chunk} in size (PFR's index law), which is
# why coding the indices costs about the KL; log2 w = log2 q(z)/p(z) of the selected candidate is
# what the search found, and the shortfall E[KL - log2 w] is the truncation bias ("deficit"),
# 0 for an unbounded search.

# %%
chunks = np.arange(info.num_chunks)
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6))
left.bar(chunks, info.chunk_dims, color="gray")
left.set_xlabel("chunk")
left.set_ylabel("dimensions")
left.set_title(f"layout: {info.layout}")
right.bar(chunks - 0.2, info.chunk_kl_bits, 0.4, label="KL of the chunk (bits)")
right.bar(chunks + 0.2, np.log2(np.asarray(info.indices) + 1.0), 0.4, label="log2(index + 1)")
right.plot(chunks, info.chunk_log2_weight, "k_", ms=14, mew=2, label="log2 w of the selected z")
right.set_xlabel("chunk")
right.set_ylabel("bits")
right.legend(fontsize=8)
right.set_title("what each chunk carries")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Bits against KL
#
# The same construction at several rates: mean shifts from 0.3 to 2.4 prior standard
# deviations in every dimension, so KL from about 4 to about 260 bits. The stream's payload grows
# linearly with the KL, at a constant factor above it (PFR's index law costs a little more than
# the KL per chunk, and each chunk pays for its own granularity); the header is a fixed cost.

# %%
shifts = (0.3, 0.7, 1.18, 1.7, 2.4)
kl, payload, total = [], [], []
for shift in shifts:
    stream, stream_info = rcc.encode(
        key, np.full(d, shift), q_std, p_mean, p_std, num_candidates=2**16, return_info=True
    )
    kl.append(stream_info.kl_bits)
    payload.append(stream_info.payload_bits)
    total.append(8 * len(stream))

fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.plot(kl, total, "o-", label="whole stream")
ax.plot(kl, payload, "s-", label="payload (range-coded indices and layout)")
ax.plot([0, max(kl)], [0, max(kl)], "k:", label="KL(q ‖ p)")
for x, y in zip(kl, payload, strict=True):
    ax.annotate(f"{y / x:.2f}×", (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8)
ax.set_xlabel("KL(q ‖ p) (bits)")
ax.set_ylabel("bits sent")
ax.legend(fontsize=8)
ax.set_title(f"d = {d}, chunk_bits = 8, N = 2^16")
plt.show()

# %% [markdown]
# ## The bias frontier
#
# A chunk searches N candidates; PFR is exact only as N → ∞, and a chunk whose KL is close to
# log2 N is selected with a bias towards p. Larger chunks cost fewer bits per KL bit (fewer
# chunks, less granularity) but, at a fixed N, more bias. Below, at N = 2^14 candidates, each
# chunk size is encoded with 16 keys and the mean deficit E[KL - log2 w] per chunk (with two
# standard errors) plotted against the rate factor. The deficit is a bias measure that can be
# read off one encoding: its expectation is 0 for an exact sample of q (maths §10).

# %%
keys = jax.random.split(jax.random.key(1), 16)
frontier = []
for chunk_bits in (4, 6, 8, 10):
    deficits, factors = [], []
    for k in keys:
        _, run_info = rcc.encode(
            k,
            q_mean,
            q_std,
            p_mean,
            p_std,
            chunk_bits=chunk_bits,
            num_candidates=2**14,
            return_info=True,
        )
        deficits.extend(np.asarray(run_info.chunk_kl_bits) - np.asarray(run_info.chunk_log2_weight))
        factors.append(run_info.payload_bits / run_info.kl_bits)
    deficits = np.asarray(deficits)
    frontier.append(
        (
            chunk_bits,
            np.mean(factors),
            deficits.mean(),
            deficits.std(ddof=1) / np.sqrt(deficits.size),
        )
    )

fig, ax = plt.subplots(figsize=(6.5, 4.2))
for chunk_bits, factor, deficit, stderr in frontier:
    ax.errorbar(factor, deficit, yerr=2 * stderr, fmt="o", color="C0")
    ax.annotate(f"k = {chunk_bits}", (factor, deficit), textcoords="offset points", xytext=(6, 4))
ax.axhline(0.0, color="k", ls=":")
ax.set_xlabel("payload / KL")
ax.set_ylabel("mean deficit per chunk, E[KL - log2 w] (bits)")
ax.set_title("rate against bias at N = 2^14 candidates per chunk")
plt.show()

# %% [markdown]
# The default `chunk_bits=8` with N = 2^18 candidates sits where the deficit is statistically
# zero (the measured frontier, at larger sample sizes, is in `benchmarks/README.md`).
#
# ## The portability check
#
# A stream must decode to the same bits on any machine. The candidates are specified to the bit
# and every probability table is integer (maths §11), so nothing that steers decoding depends
# on how a CPU rounds a transcendental function. Here the stream above is decoded again in a
# fresh process with NumPy's SIMD kernels switched off and XLA limited to SSE4.2 (no AVX, no
# FMA), and the sample's bytes compared.

# %%
child = """
import sys, hashlib
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from rdp_jax import rcc
data = sys.stdin.buffer.read()
x = rcc.decode(jax.random.key(0), data, np.zeros(64), np.ones(64))
print(hashlib.sha256(np.asarray(x).tobytes()).hexdigest())
"""
env = {**os.environ, "JAX_PLATFORMS": "cpu"}
if platform.machine().lower() in ("x86_64", "amd64"):
    env["XLA_FLAGS"] = "--xla_cpu_max_isa=SSE4_2"  # an x86 flag
# NumPy's SIMD dispatch targets that this CPU has, switched off: NumPy runs its baseline kernels.
dispatched = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
if dispatched:
    env["NPY_DISABLE_CPU_FEATURES"] = " ".join(dispatched)
print(
    "child process settings:",
    {k: env[k] for k in ("XLA_FLAGS", "NPY_DISABLE_CPU_FEATURES") if k in env},
)
result = subprocess.run(
    [sys.executable, "-c", child], input=data, capture_output=True, check=True, env=env
)
here = hashlib.sha256(np.asarray(sample).tobytes()).hexdigest()
there = result.stdout.decode().strip()
print("this process :", here)
print("other process:", there)
assert here == there
print("the same bits")
