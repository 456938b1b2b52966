"""Brute-force references for the theory claims: scipy optimisers that share no code with `theory`.

They optimise directly over jointly Gaussian reconstructions (maths §1): per component a
correlation r_i ∈ [0, 1) and a std ŝ_i ≥ 0, which is all the freedom a Gaussian X̂ has against a
diagonal Gaussian X.
"""

from collections.abc import Callable

import numpy as np
from scipy import optimize

# Constraint violations below this are treated as feasible. It moves R by about λ times it, far
# under the claims' tolerances.
_FEASIBILITY = 1e-11


def _kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """KL(N(0, a²) ‖ N(0, b²)) in nats."""
    return np.log(b / a) + a**2 / (2 * b**2) - 0.5


def _unless_unbounded(P: float, slack: Callable[[np.ndarray], float]) -> Callable:
    """The slack itself, or a constant 1 when P = ∞ (∞ - ∞ would break finite differences)."""
    return (lambda s_hat: 1.0) if np.isinf(P) else slack


def perception_w2(P: float, s: np.ndarray) -> Callable[[np.ndarray], float]:
    """Slack of Σ (s_i - ŝ_i)² ≤ P."""
    return _unless_unbounded(P, lambda s_hat: P - np.sum((s - s_hat) ** 2))


def perception_kl(P: float, s: np.ndarray, direction: str) -> Callable[[np.ndarray], float]:
    """Slack of Σ KL ≤ P, forward KL(p_X ‖ p_X̂) or reverse KL(p_X̂ ‖ p_X)."""
    if direction == "forward":
        return _unless_unbounded(P, lambda s_hat: P - np.sum(_kl(s, np.maximum(s_hat, 1e-300))))
    return _unless_unbounded(P, lambda s_hat: P - np.sum(_kl(np.maximum(s_hat, 1e-300), s)))


def rdp_bruteforce(
    D: float,
    variances: np.ndarray,
    perception_slack: Callable[[np.ndarray], float],
    *,
    starts: int,
    seed: int,
) -> float:
    """min Σ -½ ln(1 - r_i²) over jointly Gaussian X̂, by multi-start SLSQP.

    **Arguments:**

    - `D`: total MSE budget.
    - `variances`: s_i², shape `(n,)`.
    - `perception_slack`: ŝ ↦ budget minus perception index (≥ 0 when feasible).
    - `starts`: number of random starting points.
    - `seed`: seeds the starting points.

    **Returns:** the best feasible objective found (nats); +∞ if no start ended feasible.
    """
    s = np.sqrt(np.asarray(variances, dtype=np.float64))
    n = s.size
    rng = np.random.default_rng(seed)

    def split(x):
        return x[:n], x[n:]

    def rate(x):
        r, _ = split(x)
        return float(np.sum(-0.5 * np.log1p(-(r**2))))

    def rate_grad(x):
        r, _ = split(x)
        return np.concatenate([r / (1 - r**2), np.zeros(n)])

    def distortion_slack(x):
        r, s_hat = split(x)
        return D - np.sum(s**2 + s_hat**2 - 2 * r * s * s_hat)

    constraints = [
        {"type": "ineq", "fun": distortion_slack},
        {"type": "ineq", "fun": lambda x: perception_slack(split(x)[1])},
    ]
    bounds = [(0.0, 1 - 1e-12)] * n + [(0.0, 3.0 * si) for si in s]
    best = np.inf
    for _ in range(starts):
        x0 = np.concatenate([rng.uniform(0.05, 0.999, n), s * rng.uniform(0.3, 1.2, n)])
        result = optimize.minimize(
            rate,
            x0,
            jac=rate_grad,
            method="SLSQP",
            bounds=bounds,
            constraints=constraints,
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        feasible = all(c["fun"](result.x) >= -_FEASIBILITY for c in constraints)
        if feasible:
            best = min(best, rate(result.x))
    return best


def dp_linear_bruteforce(
    P: float, variances: np.ndarray, noise_var: float, *, starts: int, seed: int
) -> float:
    """min MSE over estimators X̂_i = g_i Y_i + c_i Z_i (Z independent noise) with W2² ≤ P.

    Y = X + σN with X ~ N(0, diag(s²)); X̂_i is Gaussian with std √(g_i²(s_i²+σ²) + c_i²), so
    the W2² to p_X is Σ_i (s_i - std_i)², and the MSE is Σ_i (1-g_i)² s_i² + g_i² σ² + c_i².
    """
    v = np.asarray(variances, dtype=np.float64)
    s, n = np.sqrt(v), v.size
    rng = np.random.default_rng(seed)

    def mse(x):
        g, c = x[:n], x[n:]
        return float(np.sum((1 - g) ** 2 * v + g**2 * noise_var + c**2))

    def perception_slack(x):
        g, c = x[:n], x[n:]
        return P - np.sum((s - np.sqrt(g**2 * (v + noise_var) + c**2)) ** 2)

    constraint = {"type": "ineq", "fun": perception_slack}
    best = np.inf
    for _ in range(starts):
        x0 = np.concatenate([rng.uniform(0.0, 1.0, n), s * rng.uniform(0.0, 0.5, n)])
        result = optimize.minimize(
            mse,
            x0,
            method="SLSQP",
            bounds=[(0.0, 2.0)] * n + [(0.0, None)] * n,
            constraints=[constraint],
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        if perception_slack(result.x) >= -_FEASIBILITY:
            best = min(best, mse(result.x))
    return best
