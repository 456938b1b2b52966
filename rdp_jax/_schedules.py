"""Noise schedules and their exact conversions to the equivalent AWGN level σ (maths §7).

A schedule's time t names one Gaussian channel. In VE coordinates X_σ = X + σε; a VP schedule
X_t = √ᾱ_t X + √(1 - ᾱ_t) ε is the same channel scaled by √ᾱ_t,

.. math::
    X_t = \\sqrt{\\bar α_t}\\,(X + σ ε), \\qquad σ^2 = \\frac{1 - \\bar α_t}{\\bar α_t},

so every schedule reduces to a monotone map t ↦ σ(t) and a scale √ᾱ_t. Each conversion below is
closed-form in both directions (no root finding) and written with `log1p`/`expm1` or product
identities, so that small σ (t → 0), where 1 - ᾱ_t cancels, keeps full relative precision.

Every method is elementwise over arrays of t or σ. Out-of-range input raises `ValueError` naming
the argument when it is concrete; under `jit` it raises at run time via `equinox.error_if`.
"""

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from rdp_jax._validate import as_float, check

Times = Float[ArrayLike, "*shape"]
Sigmas = Float[ArrayLike, "*shape"]
Values = Float[Array, "*shape"]


class AbstractSchedule(eqx.Module):
    """A diffusion noise schedule: time t ↦ AWGN level σ(t) and scale √ᾱ(t), both exact.

    The forward SDE is dX_t = f(t) X_t dt + g(t) dW_t with X_t = scale(t)·(X_0 + σ(t) ε).
    Times lie in [0, t_max] (VPCosine: [0, 1), see there); σ(0) = 0 and σ increases strictly.
    Hyperparameters are static fields: they are configuration, not data, and as Python floats
    they stay weakly typed, so float32 input gives float32 output even with x64 enabled.
    """

    t_max: eqx.AbstractClassVar[float]

    @abc.abstractmethod
    def _sigma(self, t: Array) -> Array: ...

    @abc.abstractmethod
    def _t_of_sigma(self, sigma: Array) -> Array: ...

    @abc.abstractmethod
    def _scale(self, t: Array) -> Array: ...

    @abc.abstractmethod
    def _drift_coeff(self, t: Array) -> Array: ...

    @abc.abstractmethod
    def _diffusion_sq(self, t: Array) -> Array: ...

    def _t_is_bad(self, t: Array) -> Array:
        return ~((t >= 0) & (t <= self.t_max) & jnp.isfinite(t))

    def _checked(self, method: str, t: Times) -> Array:
        value, bad = _fused_time_method(self, f"_{method}", as_float(t))
        message = f"{type(self).__name__}.{method}: `t` must lie in {self._domain}."
        return check(value, (bad, message))

    @property
    def _domain(self) -> str:
        return f"[0, {self.t_max}]"

    def sigma(self, t: Times) -> Values:
        """σ(t), the AWGN level of the channel at time t (in VE coordinates).

        **Arguments:**

        - `t`: times in the schedule's domain, any shape.

        **Returns:** σ(t) ≥ 0, the shape of `t`.

        **Raises:** `ValueError` naming `t` when it is outside the domain or not finite.
        """
        return self._checked("sigma", t)

    def t_of_sigma(self, sigma: Sigmas) -> Values:
        """The exact inverse of `sigma`: the time whose channel has AWGN level σ.

        **Arguments:**

        - `sigma`: σ > 0, finite, at most σ(t_max); any shape.

        **Returns:** t, the shape of `sigma`.

        **Raises:** `ValueError` naming `sigma` when σ ≤ 0, not finite or beyond the schedule.
        """
        t, bad = _fused_t_of_sigma(self, as_float(sigma))
        msg = (
            f"{type(self).__name__}.t_of_sigma: `sigma` must be finite and > 0, with "
            f"t(sigma) in {self._domain}."
        )
        return check(t, (bad, msg))

    def scale(self, t: Times) -> Values:
        """√ᾱ(t), the factor with X_t = √ᾱ(t)·(X + σ(t) ε); 1 for VE.

        **Arguments / Raises:** as `sigma`.

        **Returns:** the scale in (0, 1], the shape of `t`.
        """
        return self._checked("scale", t)

    def drift_coeff(self, t: Times) -> Values:
        """f(t) of the forward SDE's linear drift f(t)·x: 0 for VE, -½β(t) for VP.

        **Arguments / Raises:** as `sigma`.

        **Returns:** f(t) ≤ 0, the shape of `t`.
        """
        return self._checked("drift_coeff", t)

    def diffusion_sq(self, t: Times) -> Values:
        """g(t)², the forward SDE's squared diffusion: dσ²/dt for VE, β(t) for VP.

        **Arguments / Raises:** as `sigma`.

        **Returns:** g(t)² ≥ 0, the shape of `t`.
        """
        return self._checked("diffusion_sq", t)


# Each public method runs as ONE compiled call returning the value and its validity flag: called
# eagerly, a dozen primitives would otherwise each compile separately for every new shape (most
# of a first call's cost). Under an outer `jit` these inline. The flag is then checked outside,
# so concrete input still raises `ValueError` at once.


@eqx.filter_jit
def _fused_time_method(schedule: AbstractSchedule, name: str, t: Array) -> tuple[Array, Array]:
    return getattr(schedule, name)(t), schedule._t_is_bad(t)


@eqx.filter_jit
def _fused_t_of_sigma(schedule: AbstractSchedule, sigma: Array) -> tuple[Array, Array]:
    t = schedule._t_of_sigma(sigma)
    return t, ~((sigma > 0) & jnp.isfinite(sigma)) | schedule._t_is_bad(t)


class VE(AbstractSchedule):
    """Variance exploding with σ as time, X_t = X + t ε (Song et al. 2021 §3.4; Karras et al. 2022).

    .. math::
        σ(t) = t, \\qquad f(t) = 0, \\qquad g(t)^2 = \\frac{dσ^2}{dt} = 2t.

    The domain is t ∈ [0, ∞); only finiteness is required.
    """

    t_max: ClassVar[float] = math.inf

    def _sigma(self, t):
        return t

    def _t_of_sigma(self, sigma):
        return sigma

    def _scale(self, t):
        return jnp.ones_like(t)

    def _drift_coeff(self, t):
        return jnp.zeros_like(t)

    def _diffusion_sq(self, t):
        return 2 * t

    @property
    def _domain(self) -> str:
        return "[0, inf)"


class VPLinear(AbstractSchedule):
    """Variance preserving with linear β(t) = β_min + (β_max - β_min) t on t ∈ [0, 1].

    Song et al. 2021 (score_sde, App. B), with B(t) = ∫_0^t β = β_min t + ½(β_max - β_min) t²:

    .. math::
        \\bar α(t) = e^{-B(t)}, \\qquad σ(t) = \\sqrt{\\operatorname{expm1} B(t)}, \\qquad
        t(σ) = \\frac{2B}{β_{min} + \\sqrt{β_{min}^2 + 2(β_{max} - β_{min}) B}},\\;
        B = \\operatorname{log1p}(σ^2),

    the root of the quadratic in its cancellation-free form. f(t) = -½β(t), g(t)² = β(t).

    **Arguments:**

    - `beta_min`, `beta_max`: 0 ≤ β_min ≤ β_max, β_max > 0 (so σ increases strictly).

    **Raises:** `ValueError` naming `beta_min` or `beta_max`.
    """

    beta_min: float = eqx.field(default=0.1, static=True)
    beta_max: float = eqx.field(default=20.0, static=True)
    t_max: ClassVar[float] = 1.0

    def __check_init__(self):
        if not (math.isfinite(self.beta_min) and self.beta_min >= 0):
            raise ValueError(f"VPLinear: `beta_min` must be finite and >= 0, got {self.beta_min}.")
        if not (math.isfinite(self.beta_max) and self.beta_max > 0):
            raise ValueError(f"VPLinear: `beta_max` must be finite and > 0, got {self.beta_max}.")
        if self.beta_max < self.beta_min:
            raise ValueError(
                f"VPLinear: `beta_max` must be >= `beta_min`, got {self.beta_max} < "
                f"{self.beta_min}."
            )

    def _integrated_beta(self, t):
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def _beta(self, t):
        return self.beta_min + (self.beta_max - self.beta_min) * t

    def _sigma(self, t):
        return jnp.sqrt(jnp.expm1(self._integrated_beta(t)))

    def _t_of_sigma(self, sigma):
        B = jnp.log1p(sigma**2)
        root = jnp.sqrt(self.beta_min**2 + 2 * (self.beta_max - self.beta_min) * B)
        t = 2 * B / (self.beta_min + root)
        # σ = σ(1) can round to t = 1 + a few ulp: pull such t back into the domain, reject more.
        return jnp.where(t <= 1 + 64 * jnp.finfo(t.dtype).eps, jnp.minimum(t, 1.0), t)

    def _scale(self, t):
        return jnp.exp(-0.5 * self._integrated_beta(t))

    def _drift_coeff(self, t):
        return -0.5 * self._beta(t)

    def _diffusion_sq(self, t):
        return self._beta(t)


class VPCosine(AbstractSchedule):
    """Variance preserving cosine schedule (Nichol & Dhariwal 2021, eq. 17), continuous in t.

    With h = π / (2(1 + s)) and θ(t) = h (t + s), ᾱ(t) = cos²θ(t) / cos²θ(0). ᾱ reaches 0 at
    t = 1 (θ = π/2), so σ(1) = ∞: the domain is t ∈ [0, 1), open at 1. Using
    cos²a - cos²b = sin(b - a) sin(b + a) and cos θ(t) = sin(h(1 - t)),

    .. math::
        σ(t) = \\frac{\\sqrt{\\sin(h t)\\, \\sin(h (t + 2s))}}{\\sin(h (1 - t))}, \\qquad
        \\sqrt{\\bar α(t)} = \\frac{\\sin(h(1 - t))}{\\cos(h s)},

    exact for small t and for t near 1. The inverse solves tan θ = √(sin²θ_0 + σ²) / cos θ_0 and
    subtracts θ_0 with the tangent difference formula (T = √(sin²θ_0 + σ²)):

    .. math::
        t(σ) = \\frac1h \\arctan\\frac{σ^2 \\cos θ_0 / (T + \\sin θ_0)}{\\cos^2 θ_0 + T \\sin θ_0}.

    β(t) = -d ln ᾱ/dt = 2h tan θ(t), the continuous limit of the paper's β_t = 1 - ᾱ_t/ᾱ_{t-1}
    (which it clips at 0.999; here nothing is clipped). f(t) = -½β(t), g(t)² = β(t).

    **Arguments:**

    - `s`: the offset s ≥ 0 (0.008 in the paper) that keeps β small near t = 0.

    **Raises:** `ValueError` naming `s`; `t_of_sigma` rejects σ so large that t rounds to 1.
    """

    s: float = eqx.field(default=0.008, static=True)
    t_max: ClassVar[float] = 1.0

    def __check_init__(self):
        if not (math.isfinite(self.s) and self.s >= 0):
            raise ValueError(f"VPCosine: `s` must be finite and >= 0, got {self.s}.")

    @property
    def _h(self) -> float:
        return math.pi / (2 * (1 + self.s))

    def _t_is_bad(self, t):
        return ~((t >= 0) & (t < 1))

    @property
    def _domain(self) -> str:
        return "[0, 1)"

    def _sigma(self, t):
        h = self._h
        return jnp.sqrt(jnp.sin(h * t) * jnp.sin(h * (t + 2 * self.s))) / jnp.sin(h * (1 - t))

    def _t_of_sigma(self, sigma):
        h = self._h
        c0, s0 = math.cos(h * self.s), math.sin(h * self.s)
        T = jnp.hypot(s0, sigma)
        # σ²/(T + sin θ_0) written as σ·(σ/(T + sin θ_0)) so that huge σ does not overflow.
        numerator = sigma * (sigma / (T + s0)) * c0
        return jnp.arctan2(numerator, c0**2 + T * s0) / h

    def _scale(self, t):
        return jnp.sin(self._h * (1 - t)) / math.cos(self._h * self.s)

    def _drift_coeff(self, t):
        return -0.5 * self._diffusion_sq(t)

    def _diffusion_sq(self, t):
        u = self._h * (1 - t)  # tan θ(t) = cot(h(1 - t)), exact as t → 1
        return 2 * self._h * jnp.cos(u) / jnp.sin(u)
