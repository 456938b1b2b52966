"""Decoder benchmark: accuracy against NFE, and throughput against scipy's solve_ivp.

Run: `python benchmarks/decoder.py` (add `--quick` for a smaller throughput batch).

1. Accuracy. 16-dim diagonal Gaussians with variances log-spaced over two decades [0.1, 10],
   σ ∈ {0.1, 0.3, 1, 3, 10}, ρ ∈ {0, 0.25, 0.5, 0.75, 1}. On a Gaussian the decoder is linear,
   so its gains are read off by decoding the basis vectors and its D is exact; the error is
   the worst |D/D_closed - 1| over the 25 (σ, ρ) cases (maths §7 closed form).
2. Throughput. 10,000 samples of a 64-dim Gaussian decoded at ρ = 0.5, σ = 1: rdp-jax's best
   fixed-budget method against `scipy.integrate.solve_ivp` (RK45 on the whole flattened batch,
   as score_sde's ODE sampler does, with the jitted denoiser as its right-hand side), at
   matched accuracy. Compile time is reported separately and excluded from samples/s.
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import theory  # noqa: E402
from rdp_jax import decode, scores  # noqa: E402

SIGMAS = (0.1, 0.3, 1.0, 3.0, 10.0)
RHOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def worst_relative_error(model, variances, **decode_kwargs) -> tuple[float, int]:
    d = variances.shape[0]
    worst, nfe = 0.0, 0
    for sigma in SIGMAS:
        for rho in RHOS:
            gains, info = decode(jnp.eye(d), sigma, rho, model, return_info=True, **decode_kwargs)
            g = jnp.diag(gains)
            D = jnp.sum((1 - g) ** 2 * variances + g**2 * sigma**2)
            D_exact, _ = theory.score_scaled_dp(rho, variances, sigma**2)
            worst = max(worst, abs(float(D / D_exact) - 1))
            nfe = max(nfe, int(info.nfe.max()))
    return worst, nfe


def accuracy_table() -> dict:
    variances = jnp.logspace(-1, 1, 16)
    model = scores.gaussian(jnp.zeros(16), variances)
    rows = []
    for rtol in (1e-4, 1e-6, 1e-8):
        err, nfe = worst_relative_error(
            model, variances, method="tsit5", rtol=rtol, atol=rtol * 1e-2
        )
        rows.append(("tsit5", f"rtol={rtol:g}", nfe, err))
    for method in ("euler", "heun", "exp1", "exp2", "exp3", "exp4"):
        for steps in (8, 12, 16, 20, 32, 64):
            err, nfe = worst_relative_error(model, variances, method=method, num_steps=steps)
            rows.append((method, f"steps={steps}", nfe, err))
    print("\n## Worst relative D error against NFE (16-dim Gaussian benchmark)\n")
    print("| method | setting | max NFE | worst rel. D error |")
    print("|---|---|---|---|")
    for method, setting, nfe, err in rows:
        print(f"| {method} | {setting} | {nfe} | {err:.2e} |")
    return {(m, s): (n, e) for m, s, n, e in rows}


def _time(fn, repeats=5) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def throughput(batch: int, num_steps: int) -> None:
    d, sigma, rho = 64, 1.0, 0.5
    variances = jnp.logspace(-1, 1, d)
    model = scores.gaussian(jnp.zeros(d), variances)
    x = model.sample(jax.random.key(0), batch)
    y = x + sigma * jax.random.normal(jax.random.key(1), x.shape)
    exact = y * theory.score_scaled_gain(rho, variances, sigma**2)

    start = time.perf_counter()
    jax.block_until_ready(decode(y, sigma, rho, model, num_steps=num_steps))
    compile_and_run = time.perf_counter() - start
    ours = _time(lambda: decode(y, sigma, rho, model, num_steps=num_steps))
    ours_err = float(jnp.max(jnp.abs(decode(y, sigma, rho, model, num_steps=num_steps) - exact)))

    # score_sde's ode_sampler: solve_ivp on the flattened batch, field evaluated by JAX.
    denoise = jax.jit(jax.vmap(model.denoise, in_axes=(0, None)))
    kappa = 1 + rho

    def field(log_sigma, flat):
        xs = jnp.asarray(flat.reshape(batch, d))
        return np.asarray(kappa * (xs - denoise(xs, np.exp(log_sigma)))).ravel()

    y_np = np.asarray(y).ravel()
    field(0.0, y_np)  # compile

    def scipy_decode(rtol):
        sol = solve_ivp(
            field, (np.log(sigma), np.log(1e-3)), y_np, method="RK45", rtol=rtol, atol=rtol * 1e-2
        )
        x_end = jnp.asarray(sol.y[:, -1].reshape(batch, d))
        return denoise(x_end, 1e-3), sol.nfev + 1

    # Match accuracy: the loosest RK45 tolerance at least as accurate as ours.
    for rtol in (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6):
        out, nfev = scipy_decode(rtol)
        scipy_err = float(jnp.max(jnp.abs(out - exact)))
        if scipy_err <= ours_err:
            break
    scipy_time = _time(lambda: scipy_decode(rtol)[0], repeats=3)
    print(f"\n## Throughput: {batch} samples × {d} dims, ρ = {rho}, σ = {sigma}\n")
    print("| decoder | NFE | max |x̂ - exact| | seconds | samples/s |")
    print("|---|---|---|---|---|")
    print(
        f"| rdp-jax exp4 (jit, vmap) | {num_steps} | {ours_err:.1e} | {ours:.3f} "
        f"| {batch / ours:,.0f} |"
    )
    print(
        f"| solve_ivp RK45 rtol={rtol:g} | {nfev} | {scipy_err:.1e} | {scipy_time:.3f} "
        f"| {batch / scipy_time:,.0f} |"
    )
    print(
        f"\nspeed-up at matched accuracy: {scipy_time / ours:.1f}x; rdp-jax compile + first run "
        f"{compile_and_run:.2f} s (excluded above)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 samples instead of 10,000")
    args = parser.parse_args()
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    accuracy_table()
    throughput(1_000 if args.quick else 10_000, num_steps=20)


if __name__ == "__main__":
    main()
