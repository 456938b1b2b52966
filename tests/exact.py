"""Exact references for the wide-range tests, and central differences with an error bound.

mpmath evaluates the definitions of maths §2-§8 at 50 significant digits, written from the
formulas and sharing no code with `theory`, so a float64 result of `theory` can be judged against
the truth at any rate, noise level or variance ratio. (50 digits absorb every cancellation of
these tests but one: a gain a^x within 1e-40 of 1, taken as 1 + expm1(x ln a).) Error
bounds follow the standard model fl(a ∘ b) = (a ∘ b)(1 + δ), |δ| ≤ u = 2⁻⁵³ (Higham, *Accuracy
and Stability of Numerical Algorithms*, 2nd ed., §1.5 and §2.2).
"""

import mpmath
import numpy as np

_DIGITS = 50
# The unit roundoff of float64.
UNIT_ROUNDOFF = 2.0**-53
# The smallest normal float64: XLA on CPU flushes subnormal results to zero, so every rounding may
# also err by this much absolutely (the standard model with underflow, Higham §2.1).
_TINY = float(np.finfo(np.float64).tiny)


def _mp(x):
    """An mpf as is; a float (or a float array's element) as an exact mpf."""
    return x if isinstance(x, mpmath.mpf) else mpmath.mpf(float(x))


def _per_component(x, n):
    """A scalar repeated n times, or the n values of a sequence or array (mpf values kept)."""
    return list(np.ravel(np.asarray(x, dtype=object))) if np.ndim(x) > 0 else [x] * n


def mp_rdp_scalar(D, P, var, perception="w2"):
    """R(D, P) of N(0, var), maths §3-§4: ŝ_min = (s - √P)₊, or s·θ(P) from mpmath's Lambert W
    for a forward/reverse KL budget; the Shannon rate when ŝ_min ≤ √(s² - D)₊."""
    with mpmath.workdps(_DIGITS):
        D, P, var = _mp(D), _mp(P), _mp(var)
        s = mpmath.sqrt(var)
        if perception == "w2":
            s_min = max(s - mpmath.sqrt(P), mpmath.mpf(0))
        elif P == 0:
            s_min = s
        else:
            x = -mpmath.exp(-1 - 2 * P)
            if perception == "forward":
                s_min = s / mpmath.sqrt(-mpmath.lambertw(x, -1).real)
            else:
                s_min = s * mpmath.sqrt(-mpmath.lambertw(x, 0).real)
        if D == 0:
            return mpmath.inf
        if s_min <= mpmath.sqrt(max(var - D, mpmath.mpf(0))):
            return max(mpmath.log(var / D) / 2, mpmath.mpf(0))
        if D >= var + s_min**2:
            return mpmath.mpf(0)
        half_excess = (var + s_min**2 - D) / 2  # r s ŝ
        return mpmath.log(var * s_min**2 / (var * s_min**2 - half_excess**2)) / 2


def mp_distortion_rate_perception(R, P, var):
    """D(R, P) = s² e^{-2R} + (s(1 - r) - √P)₊², r = √(1 - e^{-2R}) (maths §3)."""
    with mpmath.workdps(_DIGITS):
        R, P, var = _mp(R), _mp(P), _mp(var)
        r = mpmath.sqrt(-mpmath.expm1(-2 * R))
        return var * mpmath.exp(-2 * R) + max(mpmath.sqrt(var) * (1 - r) - mpmath.sqrt(P), 0) ** 2


def mp_rate_distortion(D, variances):
    """Shannon's R(D) by reverse water-filling (maths §2), the water level found piece by piece."""
    with mpmath.workdps(_DIGITS):
        v, D = sorted(_mp(x) for x in variances), _mp(D)
        if D >= sum(v):
            return mpmath.mpf(0)
        for k in range(len(v)):  # θ = (D - Σ_{j<k} v_j)/(n - k) on the piece v_{k-1} ≤ θ ≤ v_k
            theta = (D - sum(v[:k])) / (len(v) - k)
            if theta <= v[k]:
                break
        return sum(mpmath.log(x / min(theta, x)) / 2 for x in v)


def mp_rdp_perfect_realism(D, variances):
    """Vector R(D, 0), maths §5 at ŝ_i = s_i: r_i = 2a_i/(√(1 + 4a_i²) + 1), a_i = 2λ s_i²,
    with Σ 2 s_i² (1 - r_i) = D solved for ln λ by the bracketing Illinois method on [-300, 300]
    (the total distortion falls monotonically from 2Σs² to 0 across it)."""
    with mpmath.workdps(_DIGITS):
        v, D = [_mp(x) for x in variances], _mp(D)
        if D >= 2 * sum(v):
            return mpmath.mpf(0)

        def correlations(log_lam):
            a = [2 * mpmath.exp(log_lam) * x for x in v]
            return [2 * ai / (mpmath.sqrt(1 + 4 * ai**2) + 1) for ai in a]

        def excess(log_lam):
            return sum(2 * x * (1 - r) for x, r in zip(v, correlations(log_lam), strict=True)) - D

        log_lam = mpmath.findroot(excess, (-300, 300), solver="illinois", maxsteps=500)
        return sum(-mpmath.log(1 - r**2) / 2 for r in correlations(log_lam))


def mp_linear_decoder(rho, variances, noise_var):
    """(I(X; Y), D, P) of x̂_i = g_i y_i, g_i = a_i^{(1+ρ_i)/2}, a_i = s_i²/(s_i² + σ_i²), from
    Y = X + σN, X ~ N(0, diag(s²)) (maths §7-§8): I = Σ ½ ln(1 + s²/σ²),
    D = Σ E(X - gY)² = Σ (1 - g)² s² + g² σ², and P = Σ (s - t)², t = g √(s² + σ²) = s a^{ρ/2}
    the std of x̂_i (√(s² + σ²) = s a^{-1/2}), so that P is exactly 0 at ρ = 0, the transport.
    `rho` and `noise_var` are scalars or one value per component."""
    n = len(variances)
    rho, noise_var = _per_component(rho, n), _per_component(noise_var, n)
    rate = D = P = mpmath.mpf(0)
    with mpmath.workdps(_DIGITS):
        for v, sigma_sq, r in zip(variances, noise_var, rho, strict=True):
            v, sigma_sq, r = _mp(v), _mp(sigma_sq), _mp(r)
            # a^x - 1 as expm1(x ln a): for ρ (or 1 + ρ) near 0 the gain is 1 - O(ρ), whose
            # difference from 1 would otherwise keep only the digits that 50 leave beyond it.
            log_a = -mpmath.log1p(sigma_sq / v)
            rate += mpmath.log1p(v / sigma_sq) / 2
            D += mpmath.expm1((1 + r) / 2 * log_a) ** 2 * v + mpmath.exp((1 + r) * log_a) * sigma_sq
            P += v * mpmath.expm1(r / 2 * log_a) ** 2
        return rate, D, P


def mp_geodesic_rho(P, variances, noise_var):
    """ρ_i = 2 ln g_i / ln a_i - 1 with g_i = (1 - α) a_i + α √a_i, α = 1 - √P / W2(p_X, p_X*)
    (maths §7: the gain of the W2 geodesic of Freirich et al. between X* and T(X*)); ρ_i = 1
    once P ≥ W2². Returns the list of ρ_i."""
    with mpmath.workdps(_DIGITS):
        v = [_mp(x) for x in variances]
        sigma_sq = [_mp(x) for x in _per_component(noise_var, len(v))]
        a = [x / (x + y) for x, y in zip(v, sigma_sq, strict=True)]
        w2 = mpmath.sqrt(sum(x * (1 - mpmath.sqrt(ai)) ** 2 for x, ai in zip(v, a, strict=True)))
        mmse_weight = min(mpmath.sqrt(_mp(P)) / w2, mpmath.mpf(1))  # 1 - α
        return [
            2 * mpmath.log(mmse_weight * ai + (1 - mmse_weight) * mpmath.sqrt(ai)) / mpmath.log(ai)
            - 1
            for ai in a
        ]


def mp_dp_awgn(P, variances, noise_var):
    """D(P) = D* + (W2(p_X, p_X*) - √P)₊² of Freirich et al. (maths §6), from D* = Σ s²σ²/(s²+σ²)
    and W2² = Σ (s - a √(s² + σ²))², a = s²/(s² + σ²)."""
    with mpmath.workdps(_DIGITS):
        v = [_mp(x) for x in variances]
        sigma_sq = [_mp(x) for x in _per_component(noise_var, len(v))]
        mmse = sum(x * y / (x + y) for x, y in zip(v, sigma_sq, strict=True))
        w2 = mpmath.sqrt(
            sum(
                (mpmath.sqrt(x) - x / mpmath.sqrt(x + y)) ** 2
                for x, y in zip(v, sigma_sq, strict=True)
            )
        )
        return mmse + max(w2 - mpmath.sqrt(_mp(P)), mpmath.mpf(0)) ** 2


def input_condition(f, args, budgets=None, step=1e-20):
    """Σ_j |x_j ∂f/∂x_j| at `args`, for each output of `f` (an mpmath function returning one
    value or a tuple), by secants in mpmath over a relative `step`; coordinates x_j = 0
    contribute 0. Each slope is the larger of the forward and the backward secant: at a kink
    (the zero-rate boundary D = Σ s_i², say) within `step` of x, a perturbation either way is a
    rounding the input may have had. (At 50 digits a step of 1e-20 keeps 30; the secants'
    truncation, relative ~ the step, is immaterial to a bound that needs only a magnitude.)

    With `budgets=k`, f is a rate whose first k arguments are budgets (D, and P for W2²) and the
    rest variances: homogeneous of degree 0 in all of them, never rising with a budget nor
    falling with a variance. Euler's relation Σ_j x_j ∂f/∂x_j = 0 then makes the variances'
    terms sum to the budgets' (all of one sign), so only the k budgets are differenced and the
    sum is twice theirs.

    A float64 evaluation that is backward stable, the exact value at inputs each perturbed by
    at most k u relatively, errs by at most k u times this (to first order), plus k u |f| for
    rounding the result: the accuracy that the inputs' own rounding leaves possible.
    """
    with mpmath.workdps(_DIGITS):
        args, step = [_mp(x) for x in args], _mp(step)
        base = _as_tuple(f(*args))
        total = [mpmath.mpf(0)] * len(base)
        for j, x in enumerate(args[:budgets]):
            if x == 0:
                continue
            up, down = (_as_tuple(f(*args[:j], x * (1 + s), *args[j + 1 :])) for s in (step, -step))
            total = [
                t + max(abs(u - b), abs(b - d)) / step
                for t, u, d, b in zip(total, up, down, base, strict=True)
            ]
        if budgets is not None:
            total = [2 * t for t in total]
        return base, total


def _as_tuple(value):
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def stable_error_bound(f, args, operations=16, budgets=None):
    """`operations`·(u(|f| + Σ_j |x_j ∂f/∂x_j|) + tiny) for each output of `f`: what a
    backward-stable float64 evaluation with at most `operations` roundings on its longest path
    may err by (see `input_condition`, which also explains `budgets`; tiny for underflow). The
    slopes are secants over the perturbation itself, `operations`·u, so that a kink that close
    to the input (D rounded onto the zero-rate boundary) counts with its steeper side.
    Returns `(exact, bound)` as floats, or a list of them when `f` returns several values."""
    values, conditions = input_condition(f, args, budgets, step=operations * UNIT_ROUNDOFF)
    pairs = [
        (float(v), float(operations * (UNIT_ROUNDOFF * (abs(v) + c) + _TINY)))
        for v, c in zip(values, conditions, strict=True)
    ]
    return pairs if len(pairs) > 1 else pairs[0]


def central_differences(f, x, rel_step=1e-6, wide=100.0):
    """∂f/∂x_j for every j by central differences, with their truncation error bounds.

    `f` maps an array of points, shape (m, k), to m values (one batched call). The step h_j =
    `rel_step`·|x_j| is taken as the rounded (x_j + h) - (x_j - h) over 2, so the rounding of the
    stencil points does not enter. Truncation error of the central difference: h²|f'''|/6, with
    f''' from the third central difference at step H = `wide`·h (its own round-off, 3δ/H³, adds
    h²δ/(2H³) to the bound, negligible beside the round-off δ/h of the difference itself).

    **Returns:** `(value, fd, truncation, steps, stencil)`: f(x); the differences; their
    truncation bounds; the steps h_j; and the points of the stencil, shape (k, 6, k), for the
    caller to check that they lie on one smooth piece of f. The caller adds the round-off bound
    δ/h_j, δ the error of one evaluation of f.
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    offsets = np.array([1.0, -1.0, wide, -wide, 2 * wide, -2 * wide])
    stencil = np.repeat(np.repeat(x[None, None, :], 6, axis=1), k, axis=0)
    for j in range(k):
        stencil[j, :, j] = x[j] + offsets * rel_step * abs(x[j])
    values = np.asarray(f(np.concatenate([x[None], stencil.reshape(6 * k, k)])), dtype=float)
    value, f_st = values[0], values[1:].reshape(k, 6)
    steps = (stencil[np.arange(k), 0, np.arange(k)] - stencil[np.arange(k), 1, np.arange(k)]) / 2
    wide_steps = (
        stencil[np.arange(k), 2, np.arange(k)] - stencil[np.arange(k), 3, np.arange(k)]
    ) / 2
    fd = (f_st[:, 0] - f_st[:, 1]) / (2 * steps)
    third = (f_st[:, 4] - 2 * f_st[:, 2] + 2 * f_st[:, 3] - f_st[:, 5]) / (2 * wide_steps**3)
    return value, fd, steps**2 * np.abs(third) / 6, steps, stencil
