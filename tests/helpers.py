"""Independent brute-force references for the tests: numpy + scipy only, no code from `theory`.

Each function solves the defining optimisation problem of maths §1-§6 numerically instead of
using the closed form, so agreement with `theory` checks the derivations, not just the code.
"""

import math

import numpy as np
import scipy.linalg
from scipy.optimize import brentq, linear_sum_assignment, minimize, minimize_scalar

# ---------------------------------------------------------------------------------------------
# (a) Scalar RDP: minimise over the reconstruction std ŝ.
# ---------------------------------------------------------------------------------------------


def gaussian_rate(D, s, s_hat):
    """min I(X; X̂) over the correlation r ≥ 0 for X ~ N(0, s²), X̂ ~ N(0, ŝ²) and E(X-X̂)² ≤ D.

    D = s² + ŝ² - 2 r s ŝ fixes r; r ≤ 0 means zero rate, r ≥ 1 means D cannot be reached.
    """
    if s_hat <= 0:
        return 0.0 if D >= s * s else math.inf
    r = (s * s + s_hat * s_hat - D) / (2 * s * s_hat)
    if r <= 0:
        return 0.0
    if r >= 1:
        return math.inf
    return -0.5 * math.log1p(-r * r)


def min_rate_over_std(D, var, lo, hi):
    """min over ŝ in [lo, hi] of `gaussian_rate`: dense grid, then bounded Brent, plus the ends."""
    s = math.sqrt(var)
    grid = np.linspace(lo, hi, 401)
    values = [gaussian_rate(D, s, t) for t in grid]
    k = int(np.argmin(values))
    candidates = [values[0], values[-1], values[k]]
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    if b > a:
        res = minimize_scalar(
            lambda t: gaussian_rate(D, s, t),
            bounds=(a, b),
            method="bounded",
            options={"xatol": 1e-13 * max(b, 1.0), "maxiter": 500},
        )
        candidates.append(res.fun)
    return float(min(candidates))


def std_interval_w2(P, var):
    """The ŝ ≥ 0 with (s - ŝ)² ≤ P."""
    s, root = math.sqrt(var), math.sqrt(P)
    return max(s - root, 0.0), s + root


def _kl_forward(t):
    """KL(N(0, 1) ‖ N(0, t²))."""
    return math.log(t) + 0.5 / (t * t) - 0.5


def _kl_reverse(t):
    """KL(N(0, t²) ‖ N(0, 1))."""
    return -math.log(t) + 0.5 * t * t - 0.5


def std_interval_kl(P, var, direction):
    """The ŝ with KL ≤ P, from brentq on the KL expression in u = ln(ŝ/s)."""
    kl = {"forward": _kl_forward, "reverse": _kl_reverse}[direction]
    s = math.sqrt(var)
    if P == 0:
        return s, s

    def excess(u):
        return kl(math.exp(u)) - P

    ends = []
    for sign in (-1.0, 1.0):
        far = sign
        while excess(far) < 0:  # KL grows without bound on both sides of ŝ = s
            far *= 2
        ends.append(s * math.exp(brentq(excess, 0.0, far, xtol=1e-15, rtol=1e-15)))
    return ends[0], ends[1]


def rdp_scalar_brute(D, P, var, perception="w2"):
    """R(D, P) of N(0, var) with MSE ≤ D and perception ≤ P ('w2', 'forward' or 'reverse' KL)."""
    if perception == "w2":
        lo, hi = std_interval_w2(P, var)
    else:
        lo, hi = std_interval_kl(P, var, perception)
    return min_rate_over_std(D, var, lo, hi)


def rdp_scalar_perfect_realism(D, var):
    """R(D, 0) = ½ ln(4 s⁴ / (D (4 s² - D))) for D < 2 s² (maths §3 with ŝ = s), else 0."""
    if D >= 2 * var:
        return 0.0
    return 0.5 * math.log(4 * var * var / (D * (4 * var - D)))


# ---------------------------------------------------------------------------------------------
# (b) Diagonal vector RDP with W2²: multi-start SLSQP over (r_i, ŝ_i).
# ---------------------------------------------------------------------------------------------


def _repair(r, s_hat, s, D, P):
    """Moves an SLSQP end point onto the feasible set, so its objective is a true upper bound.

    The perception excess is removed by pulling ŝ towards s, the distortion excess by raising all
    r_i by a common fraction of 1 - r_i (the distortion is linear in r).
    """
    r, s_hat = np.clip(r, 0.0, 1.0), np.maximum(s_hat, 0.0)
    used = np.sum((s - s_hat) ** 2)
    if used > P:
        s_hat = s + (s_hat - s) * math.sqrt(P / used) * (1 - 1e-14)
    excess = np.sum(s**2 + s_hat**2 - 2 * r * s * s_hat) - D
    if excess > 0:
        room = 2 * np.sum((1 - r) * s * s_hat)
        if room <= excess:
            return None
        r = r + (1 - r) * min(excess / room * (1 + 1e-13), 1.0)
    return r, s_hat


def rdp_vector_brute(D, P, variances, starts=8, seed=0):
    """min Σ -½ ln(1 - r_i²) s.t. Σ s_i² + ŝ_i² - 2 r_i s_i ŝ_i ≤ D, Σ (s_i - ŝ_i)² ≤ P.

    Returns the best objective over `starts` SLSQP runs, each repaired to exact feasibility.
    """
    s = np.sqrt(np.asarray(variances, dtype=float))
    n = s.size
    rng = np.random.default_rng(seed)

    def rate(x):
        r = x[:n]
        return -0.5 * np.sum(np.log1p(-(r**2)))

    def rate_grad(x):
        r = x[:n]
        return np.concatenate([r / (1 - r**2), np.zeros(n)])

    constraints = [
        {
            "type": "ineq",
            "fun": lambda x: D - np.sum(s**2 + x[n:] ** 2 - 2 * x[:n] * s * x[n:]),
            "jac": lambda x: np.concatenate([2 * s * x[n:], -2 * x[n:] + 2 * x[:n] * s]),
        },
        {
            "type": "ineq",
            "fun": lambda x: P - np.sum((s - x[n:]) ** 2),
            "jac": lambda x: np.concatenate([np.zeros(n), 2 * (s - x[n:])]),
        },
    ]
    bounds = [(0.0, 1 - 1e-12)] * n + [(0.0, None)] * n
    best = math.inf
    for _ in range(starts):
        x0 = np.concatenate([rng.uniform(0.05, 0.95, n), s * rng.uniform(0.5, 1.0, n)])
        res = minimize(
            rate,
            x0,
            jac=rate_grad,
            method="SLSQP",
            bounds=bounds,
            constraints=constraints,
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        repaired = _repair(res.x[:n], res.x[n:], s, D, P)
        if repaired is not None and np.all(repaired[0] < 1):
            best = min(best, rate(repaired[0]))
    return float(best)


def rdp_vector_perfect_realism(D, variances):
    """R(D, 0) of maths §5 with ŝ_i = s_i: r_i = (√(1 + 4a_i²) - 1)/(2a_i), a_i = 2λ s_i²,
    D_i = 2 s_i² (1 - r_i), with λ bisected (in ln λ) so that Σ D_i = D < 2 Σ s_i²."""
    v = np.asarray(variances, dtype=float)

    def parts(log_lam):
        a = 2 * math.exp(log_lam) * v
        one_minus_r = 1 - 2 * a / (np.sqrt(1 + 4 * a * a) + 1)  # r_i = 2a_i/(√(1+4a_i²)+1)
        return one_minus_r, np.sum(2 * v * one_minus_r)

    lo, hi = -60.0, 60.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if parts(mid)[1] > D else (lo, mid)
    q = parts((lo + hi) / 2)[0]
    return float(-0.5 * np.sum(np.log(q * (2 - q))))


# ---------------------------------------------------------------------------------------------
# (c) Shannon R(D): reverse water-filling by bisection on the water level.
# ---------------------------------------------------------------------------------------------


def rate_distortion_brute(D, variances):
    """Σ ½ ln(s_i² / min(θ, s_i²)) with Σ min(θ, s_i²) = D, θ bisected."""
    v = np.atleast_1d(np.asarray(variances, dtype=float))
    if D >= v.sum():
        return 0.0
    lo, hi = 0.0, float(v.max())
    for _ in range(300):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(mid, v).sum() < D else (lo, mid)
    theta = (lo + hi) / 2
    return float(0.5 * np.sum(np.log(v / np.minimum(theta, v))))


# ---------------------------------------------------------------------------------------------
# (d) Distortion-perception under AWGN: optimise x̂_i = g_i y_i + c_i z_i directly.
# ---------------------------------------------------------------------------------------------


def dp_awgn_brute(P, variances, noise_var, starts=6, seed=0):
    """min Σ E(X_i - g_i Y_i - c_i Z_i)² s.t. Σ (s_i - √(g_i²(s_i² + σ²) + c_i²))² ≤ P.

    Y = X + σN, Z ~ N(0, I) independent: a linear estimator plus independent Gaussian noise,
    which contains the optimum for a diagonal Gaussian source (and posterior sampling).
    """
    v = np.atleast_1d(np.asarray(variances, dtype=float))
    s, n, y_var = np.sqrt(v), v.size, v + noise_var
    rng = np.random.default_rng(seed)

    def mse(x):
        g, c = x[:n], x[n:]
        return np.sum(v - 2 * g * v + g**2 * y_var + c**2)

    def mse_grad(x):
        g, c = x[:n], x[n:]
        return np.concatenate([-2 * v + 2 * g * y_var, 2 * c])

    def out_std(x):
        return np.maximum(np.sqrt(x[:n] ** 2 * y_var + x[n:] ** 2), 1e-300)

    def perception_slack(x):
        return P - np.sum((s - out_std(x)) ** 2)

    def perception_slack_grad(x):
        t = out_std(x)
        k = 2 * (s - t) / t
        return np.concatenate([k * x[:n] * y_var, k * x[n:]])

    constraints = []
    if math.isfinite(P):  # SLSQP cannot handle an infinite constraint value
        constraints = [{"type": "ineq", "fun": perception_slack, "jac": perception_slack_grad}]
    bounds = [(0.0, None)] * (2 * n)
    best = math.inf
    for _ in range(starts):
        x0 = np.concatenate([rng.uniform(0.2, 1.0, n), s * rng.uniform(0.05, 0.6, n)])
        res = minimize(
            mse,
            x0,
            jac=mse_grad,
            method="SLSQP",
            bounds=bounds,
            constraints=constraints,
            options={"ftol": 1e-16, "maxiter": 1000},
        )
        # Repair to exact feasibility (pull each output std towards s_i by a common factor), so
        # the MSE is a true upper bound on D(P).
        x, t = res.x.copy(), out_std(res.x)
        used = np.sum((s - t) ** 2)
        if used > P:
            target = s + (t - s) * math.sqrt(P / used) * (1 - 1e-14)
            x *= np.concatenate([target / t, target / t])
        best = min(best, mse(x))
    return float(best)


def matches_digits(value, reference):
    """True when `value` rounds to the decimal string `reference` (to its last digit)."""
    decimals = len(reference.split(".")[1]) if "." in reference else 0
    return abs(float(value) - float(reference)) <= 0.5 * 10.0**-decimals * (1 + 1e-9)


def diffusion_channel(d, seed=0, abar=0.75):
    """(q_mean, q_std, p_mean, p_std) of the seed paper's encoder channel X_t = √ᾱ X + √(1−ᾱ) ε,
    X ~ N(0, I): q = N(√ᾱ x, 1 − ᾱ), p = N(0, 1), I(X; X_t) = ½ log2(1 + ᾱ/(1−ᾱ)) bits per dim.
    The KL of a dimension grows with x², so it varies from one dimension to the next."""
    x = np.random.default_rng(seed).standard_normal(d)
    return math.sqrt(abar) * x, np.full(d, math.sqrt(1 - abar)), np.zeros(d), np.ones(d)


# ---------------------------------------------------------------------------------------------
# (e) Round-off: how far two evaluations of one computation may differ in floating point.
# ---------------------------------------------------------------------------------------------

# Roundings on one output component's path per solver evaluation, an over-count: the analytic
# Gaussian denoiser μ + λ/(λ + σ²)·(x - μ) rounds 5 times; a VP schedule's √ᾱ(t), σ(t), f(t)
# and g(t)² (each a log1p/expm1/sin expression of ≤ 6 roundings) and the field's 6 products and
# sums add ≤ 30; the solver's combination of ≤ 6 stored values adds ≤ 12 (a product and a sum
# each) and its step coefficients (e^{κh}, φ_j, the grid) ≤ 16 more: 63, rounded up to 64.
ROUNDINGS_PER_EVALUATION = 64
# Hoeffding: a sum Σ c_i δ_i of n independent mean-zero |δ_i| ≤ u with |c_i| ≤ 1 exceeds
# λ u √n with probability ≤ 2 exp(-λ²/2): 3e-8 per output component at λ = 6.
ROUNDOFF_LAMBDA = 6.0


def roundoff_bound(dtype, evaluations, roundings=ROUNDINGS_PER_EVALUATION, lam=ROUNDOFF_LAMBDA):
    """λ u √(m N): a bound on the relative round-off of N solver evaluations of m roundings each.

    The standard model fl(a ∘ b) = (a ∘ b)(1 + δ), |δ| ≤ u = eps/2, with the δ independent and
    of mean zero (the probabilistic model of Higham & Mary 2019, *A new approach to
    probabilistic rounding error analysis*, SIAM J. Sci. Comput. 41(5)): to first
    order the output's relative error is Σ c_i δ_i over the n = m·N roundings, with c_i the gain
    from the i-th rounded value to the output. On a Gaussian source the decoder is linear and
    diagonal in the eigenbasis (x̂ - μ = G (x_n - μ)), so a relative perturbation of an
    intermediate value reaches the output unchanged: |c_i| ≤ 1, and Hoeffding's inequality gives
    the bound with probability ≥ 1 - 2 exp(-λ²/2). The worst case (all δ aligned) is m N u;
    the √ form is what independent roundings give, and λ = 6 keeps a false failure at 3e-8.

    **Arguments:** `dtype` (its eps), `evaluations` N, `roundings` m, `lam` λ.

    **Returns:** the relative bound, to be multiplied by the output's scale.
    """
    u = float(np.finfo(dtype).eps) / 2
    return lam * math.sqrt(roundings * evaluations) * u


def bures_w2(m1, c1, m2, c2) -> float:
    """The Gaussian W2² through scipy.linalg.sqrtm, sharing no code with the package."""
    r1 = scipy.linalg.sqrtm(c1)
    cross = np.real(scipy.linalg.sqrtm(r1 @ c2 @ r1))
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * cross))


def assignment_w2(x, y) -> float:
    """Mean squared cost of the optimal assignment (equal sizes): exact discrete W2²."""
    x, y = np.reshape(x, (len(x), -1)), np.reshape(y, (len(y), -1))
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())
