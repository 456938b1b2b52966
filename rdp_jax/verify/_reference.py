"""Brute-force references for the theory claims: scipy optimisers that share no code with `theory`.

They optimise directly over jointly Gaussian reconstructions (maths §1): per component a
correlation r_i ∈ [0, 1) and a std ŝ_i ≥ 0, which is all the freedom a Gaussian X̂ has against a
diagonal Gaussian X.
"""

from collections.abc import Callable

import numpy as np
from scipy import optimize

# Constraint violations below this are treated as feasible by `rdp_bruteforce`. It moves R by
# about λ times it where the budgets are smooth, and at P = 0, where R has a √P kink, by up to
# ~√(1e-11)·|∂R/∂√P| (1e-8 seen): under the claims' tolerance either way.
_FEASIBILITY = 1e-11


def _kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """KL(N(0, a²) ‖ N(0, b²)) in nats; +∞ where b² underflows to 0.

    The optimiser's bounds let ŝ reach 0 (floored at 1e-300 by `perception_kl`, whose square
    underflows), where the forward KL is +∞ and the constraint simply infeasible: the division
    by zero is the intended value, not an accident to warn about.
    """
    with np.errstate(divide="ignore"):
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
    # Estimators with std_i = s_i exactly are feasible for every P ≥ 0; at P = 0 (or a P at
    # rounding level, as a transport map's written-out P is) they are the only ones SLSQP can
    # not find, so they are searched apart and the better of the two searches is kept.
    perfect_realism = _dp_linear_perfect_realism(v, noise_var, starts=starts, rng=rng)

    def mse(x):
        g, c = x[:n], x[n:]
        return float(np.sum((1 - g) ** 2 * v + g**2 * noise_var + c**2))

    def std(x):
        return np.sqrt(x[:n] ** 2 * (v + noise_var) + x[n:] ** 2)

    def perception_slack(x):
        return P - np.sum((s - std(x)) ** 2)

    def repaired(x):
        """x with every output std pulled towards s_i by one factor until W2² ≤ P holds exactly:
        within SLSQP's tolerance a constraint violation of ε lowers D by ~2W2√ε near P = 0
        (D(P)'s slope is infinite there), so only exactly feasible points are kept."""
        t, used = std(x), np.sum((s - std(x)) ** 2)
        if used <= P:
            return x
        target = s + (t - s) * np.sqrt(P / used)
        return x * np.concatenate([target / t, target / t])

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
        best = min(best, mse(repaired(result.x)))
    return min(best, perfect_realism)


def _dp_linear_perfect_realism(
    v: np.ndarray, noise_var: float, *, starts: int, rng: np.random.Generator
) -> float:
    """min MSE over the estimators of `dp_linear_bruteforce` whose output std is exactly s_i.

    SLSQP handles the constraint Σ (s_i - std_i)² ≤ 0 badly (its gradient vanishes on the whole
    feasible set), so this set is parametrised instead: the noise c_i² = s_i² -
    g_i²(s_i² + σ²) ≥ 0 makes std_i = s_i for any gain g_i ∈ [0, s_i/√(s_i² + σ²)], and the MSE
    is minimised over those box-bounded gains by L-BFGS-B.
    """
    y_var = v + noise_var

    def mse(g):
        return float(np.sum((1 - g) ** 2 * v + g**2 * noise_var + (v - g**2 * y_var)))

    bounds = [(0.0, float(b)) for b in np.sqrt(v / y_var)]
    best = np.inf
    for _ in range(starts):
        x0 = np.array([rng.uniform(0.0, hi) for _, hi in bounds])
        result = optimize.minimize(
            mse, x0, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-16, "gtol": 1e-14}
        )
        best = min(best, float(result.fun))
    return best


def score_scaled_gain(rho: np.ndarray, variances: np.ndarray, noise_var: float) -> np.ndarray:
    """g_i = a_i^{(1+ρ_i)/2}, a_i = s_i²/(s_i² + σ²): the endpoint gain of the score-scaled PF-ODE
    on a Gaussian source (Wang, Bi & Zhang 2026, Lemma 1 and Prop. 2; maths §7)."""
    v = np.asarray(variances, dtype=np.float64)
    return (v / (v + noise_var)) ** ((1 + np.asarray(rho, dtype=np.float64)) / 2)


def linear_decoder(gain: np.ndarray, variances: np.ndarray, noise_var) -> tuple[float, float]:
    """(D, P) of X̂_i = g_i Y_i from Y = X + σN, X ~ N(0, diag(s²)): D = Σ E(X_i - g_i Y_i)² =
    Σ (1 - g_i)² s_i² + g_i² σ_i², and P = Σ (s_i - g_i √(s_i² + σ_i²))², X̂_i being Gaussian
    with std g_i √(s_i² + σ_i²)."""
    v, g = np.asarray(variances, dtype=np.float64), np.asarray(gain, dtype=np.float64)
    D = np.sum((1 - g) ** 2 * v + g**2 * noise_var)
    P = np.sum((np.sqrt(v) - g * np.sqrt(v + noise_var)) ** 2)
    return float(D), float(P)


def awgn_rate(variances: np.ndarray, noise_var) -> float:
    """I(X; Y) = Σ ½ ln(1 + s_i²/σ_i²) of Y = X + σN (maths §8)."""
    v = np.asarray(variances, dtype=np.float64)
    return float(np.sum(0.5 * np.log1p(v / noise_var)))
