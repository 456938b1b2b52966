"""The truncation deficit of PFR with N candidates for a Gaussian mean shift (maths §12)."""

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
from jaxtyping import Array, ArrayLike, Float

from theory._validate import as_float, check, check_nonnegative, check_positive_finite

# Trapezoid nodes in x = ln s. The integrand is e^{−Λ(e^x)} ≤ 1 times e^x φ(·), a multiple of a
# normal density in x of mean ln N + m and sd √(2m) (the factor e^x tilts φ's mean by its
# variance), so nothing lies beyond 12 sd of that mean on either side. The window is that alone:
# reaching down to a fixed floor spread the nodes over tens of units, wider than the whole peak
# when m < 1e-6 (a 99 % error at KL = 1e-8 nats). The factor e^{−Λ} falls from 1 to 0 over a few
# units of x, resolved by nodes ≤ 0.05 apart for KL ≤ 300 nats; the quadrature is checked
# against scipy (tests/test_rcc_theory.py).
_NODES = 2**15
_SPAN_SD = 12.0
# Beyond these KLs (nats) the window no longer resolves e^{−Λ}'s fall at the dtype's precision,
# so larger values are refused: in float64 the deficit's √(2m)-scaled correction, (2m −
# deficit)/√(2m), holds at 1.504 up to 1e9 and reads 1.11 at 1e10 (garbage from 1e14); float32
# agrees with float64 to 1e-4 up to 1e4 and is 0.6 % off at 1e5, 17 % at 1e6.
MAX_KL = {"float64": 1e9, "float32": 1e4}
# The slope at kl = 0 is the quadrature's derivative at this KL (nats): the deficit is linear
# there up to a term in m^{3/2}, so its relative error is a few √m (2e-6 at N = 2, 1e-5 at
# N = 10). The second derivative in KL is infinite at 0 and comes out as 0 there.
_SLOPE_KL = 1e-12


def _log_ndtr(x: Array) -> Array:
    return jsp.log_ndtr(x)


def _quadrature(m: Array, n: Array) -> Array:
    """The deficit for m = KL > 0 by the trapezoid rule in x = ln s (the docstring's integral)."""
    sd = jnp.sqrt(2.0 * m)
    log_n = jnp.log(n)
    hi = log_n + m + _SPAN_SD * sd
    lo = log_n + m - _SPAN_SD * sd
    t = jnp.linspace(0.0, 1.0, _NODES, dtype=m.dtype)
    x = lo[..., None] + (hi - lo)[..., None] * t  # x = ln s
    c = log_n[..., None] - x  # ln(N/s)
    m_, sd_ = m[..., None], sd[..., None]
    log_lambda = jnp.logaddexp(
        x + _log_ndtr((c - m_) / sd_), log_n[..., None] + _log_ndtr(-(c + m_) / sd_)
    )
    log_density = -0.5 * ((c - m_) / sd_) ** 2 - 0.5 * jnp.log(2.0 * jnp.pi) + jnp.log(sd_)
    integrand = jnp.exp(x - jnp.exp(log_lambda) + log_density)  # ds = s dx
    step = (hi - lo) / (_NODES - 1)
    integral = step * (jnp.sum(integrand, axis=-1) - 0.5 * (integrand[..., 0] + integrand[..., -1]))
    return integral / -jnp.expm1(-n)


@jax.custom_jvp
def _at_zero_kl(m: Array, n: Array) -> Array:
    """The deficit at KL = 0, which is 0 for every N, with the slope in KL that the
    quadrature has just above 0 (finite: ~9.1e-4 at N = 10)."""
    return jnp.zeros_like(m)


@_at_zero_kl.defjvp
def _at_zero_kl_jvp(primals, tangents):
    (m, n), (dm, _) = primals, tangents  # no slope in N: the deficit is 0 for every N
    tiny = jnp.full_like(m, _SLOPE_KL)
    _, slope = jax.jvp(lambda k: _quadrature(k, n), (tiny,), (jnp.ones_like(m),))
    return jnp.zeros_like(m), slope * dm


def pfr_truncation_deficit(kl: ArrayLike, num_candidates: ArrayLike) -> Float[Array, "..."]:
    """E[KL − ln w(z_J)] in nats: how far the log-weight of the candidate chosen by PFR with
    N candidates falls short of q's mean, for q = N(Δ, I) against p = N(0, I) (maths §12).

    With L = ln w ~ N(m, 2m) under q (m = KL = ‖Δ‖²/2) and the points (T_j / w(z_j), z_j),
    T_j ≤ N, a Poisson process of intensity ds·q(dz) cut to s ≤ N/w (Li & El Gamal 2018), the
    first point has P(S > s) = e^{−Λ(s)},

    .. math::
        Λ(s) = \\mathbb{E}_q \\min(s, N e^{-L})
             = s\\,Φ\\Big(\\frac{\\ln(N/s) - m}{\\sqrt{2m}}\\Big)
             + N\\,\\bar Φ\\Big(\\frac{\\ln(N/s) + m}{\\sqrt{2m}}\\Big),

    and, since E_q[(m − L) 1(L < c)] = √(2m) φ((c − m)/√(2m)),

    .. math::
        \\text{deficit} = \\frac{1}{1 - e^{-N}} \\int_0^\\infty e^{-Λ(s)}\\,
            \\sqrt{2m}\\; φ\\Big(\\frac{\\ln(N/s) - m}{\\sqrt{2m}}\\Big)\\, ds .

    It is 0 without truncation (N → ∞) and m − E[ln w] of the winner in general; for k-bit
    chunks at N = 2^(k+10) it is 0.085 bits at k = 6 and 0.196 bits at k = 8. It applies to any
    chunk whose ln w is N(m, 2m) under q, e.g. a chunk of any equal-variance mean shift.

    **Arguments:**

    - `kl`: KL(q‖p) of the chunk in nats, in [0, `MAX_KL`] for its dtype.
    - `num_candidates`: N > 0 (the arrival times are cut at T ≤ N: the Poisson picture of N
      candidates).

    **Returns:** the deficit in nats, ≥ 0, broadcast over the arguments. Its derivatives are
    the quadrature's; at kl = 0, the quadrature's slope just above 0 (to ~1e-5 relative; the
    second derivative in `kl`, infinite there, comes out as 0).

    **Raises:** `ValueError` for a negative or NaN `kl`, or one above `MAX_KL` (10⁹ nats in
    float64, 10⁴ in float32), or a non-positive or non-finite `num_candidates` (under `jit`,
    `equinox.error_if`'s runtime error).
    """
    where = "pfr_truncation_deficit"
    m, n = as_float(kl, num_candidates)
    m = check_nonnegative(m, "kl", where)
    limit = MAX_KL["float64" if m.dtype.itemsize == 8 else "float32"]
    m = check(m, m > limit, f"{where}: `kl` must be at most {limit:g} nats in {m.dtype}.")
    n = check_positive_finite(n, "num_candidates", where)
    m, n = jnp.broadcast_arrays(m, n)
    zero = m == 0
    deficit = _quadrature(jnp.where(zero, 1.0, m), n)
    return jnp.where(zero, _at_zero_kl(m, n), deficit)
