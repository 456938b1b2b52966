"""Transcendental functions that give the same bits on every machine (NumPy, float64).

NumPy's own `log` and `exp` dispatch to SIMD kernels chosen per CPU (AVX-512, AVX2, SSE, NEON),
whose results differ in the last bit, and XLA may contract a·b + c into one FMA on one ISA and
not on another. What steers decoding (the integer probability tables, the regenerated
candidates) is therefore computed here from IEEE 754 basic operations only: +, −, ×, ÷ and √,
which every conforming platform rounds identically, plus the exact `frexp`, `ldexp` and `rint`.
Each NumPy ufunc call rounds its result to float64 in memory, so no contraction can happen, and
every expression below is evaluated in a fixed order. No input here is subnormal, so
flush-to-zero modes cannot change a result either.

Accuracy (checked against mpmath in `tests/test_rcc_portable.py`): `log` and `exp` within 2 ulp,
`ndtri_centered` within 1.1e-15 relative (Wichura's AS 241 is accurate to about 1e-16), and
`ndtri_centered_float32` (Giles' single-precision erfinv) within 1e-6 relative.
"""

import decimal
import math

import numpy as np
from jaxtyping import Float

# ln 2 split for Cody–Waite range reduction: the high part has 32 significant bits, so n · hi is
# exact for |n| < 2^21; both parts come from a correctly rounded decimal ln 2.
_LN2 = decimal.Context(prec=40).ln(decimal.Decimal(2))
_LN2_HI = float(int(_LN2 * 2**31) / 2**31)  # exact: 31 fraction bits
_LN2_LO = float(_LN2 - decimal.Decimal(_LN2_HI))
_INV_LN2 = float(1 / _LN2)
# ln 2 rounded once, from 40 digits (not libm's log, whose last bit is not specified).
LN2 = float(_LN2)
_SQRT_HALF = float(decimal.Context(prec=40).sqrt(decimal.Decimal("0.5")))

# log: ln m = 2 atanh(s) = 2 Σ s^(2n+1) / (2n+1), s = (m − 1)/(m + 1), |s| ≤ 0.1716 for
# m ∈ [√½, √2); twelve terms leave a truncation below 2^-60 relative.
_ATANH_COEFFS = tuple(1.0 / (2 * n + 1) for n in range(11, -1, -1))
# exp: Taylor series of e^r for |r| ≤ ln(2)/2; the degree-15 remainder is below 2^-60.
_EXP_COEFFS = tuple(1.0 / math.factorial(n) for n in range(15, -1, -1))
# 1 − e^(−y) = y Σ_{n≥0} (−y)^n / (n+1)!; sixteen terms at 0 ≤ y < ½ leave less than 2^-60.
_ONE_MINUS_EXP_COEFFS = tuple((-1.0) ** n / math.factorial(n + 1) for n in range(15, -1, -1))


def _horner(coeffs: tuple[float, ...], z, xp=np):
    out = xp.full_like(z, coeffs[0])
    for c in coeffs[1:]:
        out = out * z + c
    return out


def log(x: Float[np.ndarray, "..."]) -> Float[np.ndarray, "..."]:
    """ln x for positive, normal float64 x, within 2 ulp, the same bits everywhere.

    x = 2^e m with m ∈ [√½, √2), then ln x = e ln 2 + 2 atanh((m − 1)/(m + 1)); m − 1 is exact
    (Sterbenz), and e ln 2 is carried as e·ln2_hi (exact) + e·ln2_lo.
    """
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(x)
    low = m < _SQRT_HALF
    m = np.where(low, 2.0 * m, m)
    e = (e - low).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    atanh2 = 2.0 * s * _horner(_ATANH_COEFFS, s * s)
    return e * _LN2_HI + (atanh2 + e * _LN2_LO)


def exp(x: Float[np.ndarray, "..."]) -> Float[np.ndarray, "..."]:
    """e^x for float64 x in [−700, 700], within 2 ulp, the same bits everywhere.

    n = rint(x / ln 2) and r = (x − n·ln2_hi) − n·ln2_lo, |r| ≤ ½ ln 2 (Cody & Waite 1980);
    e^x = 2^n · e^r with e^r from its Taylor series.
    """
    x = np.asarray(x, dtype=np.float64)
    if np.any(np.abs(x) > 700.0):
        raise ValueError("exp: arguments must lie in [-700, 700].")
    n = np.rint(x * _INV_LN2)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    return np.ldexp(_horner(_EXP_COEFFS, r), n.astype(np.int32))


def one_minus_exp_neg(y: Float[np.ndarray, "..."]) -> Float[np.ndarray, "..."]:
    """1 − e^(−y) for y ≥ 0 without cancellation near 0 (a series below ½), the same bits
    everywhere; 1 for y > 700."""
    y = np.asarray(y, dtype=np.float64)
    small = y < 0.5
    series = y * _horner(_ONE_MINUS_EXP_COEFFS, np.where(small, y, 0.0))
    direct = 1.0 - exp(-np.minimum(np.where(small, 1.0, y), 700.0))
    return np.where(small, series, direct)


# Wichura (1988), Algorithm AS 241 "PPND16", Appl. Statist. 37(3): 477-484: rational
# approximations of the standard normal quantile, relative accuracy about 1e-16. Coefficients
# from the highest degree down (Horner order); each denominator's constant term is 1.
_CENTRAL_NUM = (
    2509.0809287301226727,
    33430.575583588128105,
    67265.770927008700853,
    45921.953931549871457,
    13731.693765509461125,
    1971.5909503065514427,
    133.14166789178437745,
    3.387132872796366608,
)
_CENTRAL_DEN = (
    5226.495278852854561,
    28729.085735721942674,
    39307.89580009271061,
    21213.794301586595867,
    5394.1960214247511077,
    687.1870074920579083,
    42.313330701600911252,
    1.0,
)
_NEAR_NUM = (
    7.7454501427834140764e-4,
    0.0227238449892691845833,
    0.24178072517745061177,
    1.27045825245236838258,
    3.64784832476320460504,
    5.7694972214606914055,
    4.6303378461565452959,
    1.42343711074968357734,
)
_NEAR_DEN = (
    1.05075007164441684324e-9,
    5.475938084995344946e-4,
    0.0151986665636164571966,
    0.14810397642748007459,
    0.68976733498510000455,
    1.6763848301838038494,
    2.05319162663775882187,
    1.0,
)
_FAR_NUM = (
    2.01033439929228813265e-7,
    2.71155556874348757815e-5,
    0.0012426609473880784386,
    0.026532189526576123093,
    0.29656057182850489123,
    1.7848265399172913358,
    5.4637849111641143699,
    6.6579046435011037772,
)
_FAR_DEN = (
    2.04426310338993978564e-15,
    1.4215117583164458887e-7,
    1.8463183175100546818e-5,
    7.868691311456132591e-4,
    0.0148753612908506148525,
    0.13692988092273580531,
    0.59983220655588793769,
    1.0,
)


def quantile_centered(x, xp, log):
    """Φ⁻¹((1 + x)/2), the standard normal quantile at u = (1 + x)/2, for x ∈ (−1, 1), with the
    array module `xp` (NumPy or jax.numpy) and its `log`; see `ndtri_centered`."""
    q = 0.5 * x
    central = xp.abs(q) <= 0.425
    r = 0.180625 - q * q
    inner = q * _horner(_CENTRAL_NUM, r, xp) / _horner(_CENTRAL_DEN, r, xp)
    r = xp.sqrt(-log(xp.where(central, 0.5, 0.5 * (1.0 - xp.abs(x)))))
    near = r <= 5.0
    t = xp.where(near, r - 1.6, r - 5.0)
    num = xp.where(near, _horner(_NEAR_NUM, t, xp), _horner(_FAR_NUM, t, xp))
    den = xp.where(near, _horner(_NEAR_DEN, t, xp), _horner(_FAR_DEN, t, xp))
    outer = num / den
    return xp.where(central, inner, xp.where(q < 0.0, -outer, outer))


def ndtri_centered(x: Float[np.ndarray, "..."]) -> Float[np.ndarray, "..."]:
    """Φ⁻¹((1 + x)/2), the standard normal quantile at u = (1 + x)/2, for float64 x ∈ (−1, 1),
    within 1e-15 relative, the same bits everywhere.

    Taking x = 2u − 1 rather than u keeps both tails exact: u − ½ = x/2 and min(u, 1 − u) =
    (1 − |x|)/2 are computed without rounding. AS 241: a rational function of
    0.180625 − (u − ½)² when |u − ½| ≤ 0.425, else of r − 1.6 (r ≤ 5) or r − 5 with
    r = √(−ln min(u, 1 − u)).
    """
    return quantile_centered(np.asarray(x, dtype=np.float64), np, log)


# Giles (2012), "Approximating the erfinv function" (GPU Computing Gems, Jade ed.), single
# precision: erfinv(x) = x·P(w) with w = −ln((1 − x)(1 + x)), P a degree-8 polynomial in
# w − 2.5 (w < 5) or in √w − 3. The coefficients are float32 numbers (held here as the floats
# they are exactly), so a float32 evaluation and a float64 one start from the same constants.
_GILES_CENTRAL = tuple(float(np.float32(c)) for c in (
    2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941,
))  # fmt: skip
_GILES_TAIL = tuple(float(np.float32(c)) for c in (
    -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
    -0.0076224613, 0.00943887047, 1.00167406, 2.83297682,
))  # fmt: skip
_SQRT2_FLOAT32 = float(np.float32(math.sqrt(2.0)))


def giles_quantile_centered(x, xp, log):
    """√2·erfinv(x) = Φ⁻¹((1 + x)/2) by Giles' single-precision approximation (relative error
    below 1e-6, within a few float32 ulps), with the array module `xp` and its `log`.

    (1 − x)(1 + x) rather than 1 − x²: for the x of float32 candidates both factors are exact in
    float32 but for a rounding of 1 + x, and their product is exact in float64, so the tails do
    not cancel.
    """
    cast = np.dtype(x.dtype).type  # typed constants keep a float32 evaluation in float32
    w = -log((1.0 - x) * (1.0 + x))
    central = _horner(tuple(map(cast, _GILES_CENTRAL)), w - cast(2.5), xp)
    tail = _horner(tuple(map(cast, _GILES_TAIL)), xp.sqrt(w) - cast(3.0), xp)
    return cast(_SQRT2_FLOAT32) * (xp.where(w < 5.0, central, tail) * x)


def ndtri_centered_float32(x: Float[np.ndarray, "..."]) -> Float[np.ndarray, "..."]:
    """`giles_quantile_centered` evaluated in float64 from IEEE basic operations and `log`, then
    rounded once to float32: the same bits everywhere, and the correctly rounded value of the
    approximation for x on the float32 candidate grid."""
    x = np.asarray(x, dtype=np.float64)
    return giles_quantile_centered(x, np, log).astype(np.float32)
