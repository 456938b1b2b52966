"""Runge-Kutta decoders through `diffrax.diffeqsolve`: the adaptive reference and EDM baselines.

- `tsit5`: Tsitouras 5(4) with a PID controller, in u = ln σ where the field
  dx/du = κ (x - D(x, e^u)) is bounded and decays as σ → 0, down to a tiny σ_min, then one
  Tweedie step. The reference: its error is set by `rtol`/`atol`, not by a budget.
- `euler`, `heun`: fixed steps in σ on the EDM grid (Karras et al. 2022, Alg. 1), field
  dx/dσ = κ (x - D(x, σ)) / σ, down to σ_min, then one Tweedie step x̂ = D(x, σ_min), the
  flow's limit as σ → 0 for every ρ (an Euler step to σ = 0 would instead land at
  x - κ (x - D), which is D only where κ = 1).

All of them can integrate in a VP schedule's time t instead, with z = √ᾱ(t) x (maths §7: the
ρ-scaled ODE is the same in either convention); the result must agree with VE.
"""

import diffrax
import jax.numpy as jnp
from jaxtyping import Array, Float

from rdp_jax._decoder._grids import edm_sigma_grid
from rdp_jax._schedules import VE
from rdp_jax.scores import ScoreSource

# diffrax's Tsit5 evaluates the field once at the start and 6 times per step (first same as
# last); Heun twice per step; Euler once.
_EVALS_PER_STEP = {"tsit5": 6, "heun": 2, "euler": 1}


class _FirstStageCounter(diffrax.AbstractAdaptiveStepSizeController):
    """A PID controller that also counts the rejected steps before the first accepted one.

    Tsit5's first stage is the previous step's last (first same as last), so diffrax evaluates
    it afresh only until a step is accepted: once at the start and again after each of these
    early rejections. A rejection later reuses it. This count makes `nfe` exact.
    """

    inner: diffrax.PIDController

    @property
    def rtol(self):
        return self.inner.rtol

    @property
    def atol(self):
        return self.inner.atol

    @property
    def norm(self):
        return self.inner.norm

    def wrap(self, direction):
        return _FirstStageCounter(self.inner.wrap(direction))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        t_next, state = self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return t_next, (state, jnp.asarray(False), jnp.asarray(0, jnp.int32))

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        inner, accepted, early = state
        keep, next_t0, next_t1, jump, inner, result = self.inner.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, inner
        )
        early = early + (~accepted & ~keep).astype(jnp.int32)
        return keep, next_t0, next_t1, jump, (inner, accepted | keep, early), result


def _log_sigma_field(model: ScoreSource, kappa: Array):
    def field(u, x, args):
        return kappa * (x - model.denoise(x, jnp.exp(u)))

    return field


def _sigma_field(model: ScoreSource, kappa: Array):
    def field(sigma, x, args):
        return kappa * (x - model.denoise(x, sigma)) / sigma

    return field


def _vp_field(model: ScoreSource, kappa: Array, schedule):
    """dz/dt = f(t) z - ½ κ g(t)² ∇_z log p_t(z), with ∇_z log p_t(z) = ∇ log p_σ(z/√ᾱ)/√ᾱ."""

    def field(t, z, args):
        scale = schedule.scale(t)
        score = model.score(z / scale, schedule.sigma(t)) / scale
        return schedule.drift_coeff(t) * z - 0.5 * kappa * schedule.diffusion_sq(t) * score

    return field


def diffrax_decode(
    model: ScoreSource,
    y: Float[Array, "*event"],
    sigma: Float[Array, ""],
    kappa: Float[Array, "*event"],
    *,
    method: str,
    num_steps: int | None,
    sigma_min: float,
    rtol: float,
    atol: float,
    max_steps: int,
    schedule=None,
) -> tuple[Float[Array, "*event"], Array]:
    """Decodes one observation; returns `(x̂, nfe)`.

    **Arguments:**

    - `method`: "tsit5" (adaptive), "euler" or "heun" (fixed steps, `num_steps` NFE budget).
    - `schedule`: `None` for VE (ln σ for tsit5, σ for euler/heun) or a VP schedule whose time
      is integrated instead.
    - the rest as `exponential_decode`; `rtol`, `atol`, `max_steps` for the PID controller.
    """
    schedule = VE() if schedule is None else schedule
    vp = not isinstance(schedule, VE)
    sigma_end = jnp.minimum(sigma_min, sigma / 2)
    if method == "tsit5":
        solver = diffrax.Tsit5()
        controller = _FirstStageCounter(
            diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=0.3, icoeff=0.4)
        )
        saveat = diffrax.SaveAt(t1=True, controller_state=True)
        if vp:
            t0, t1 = schedule.t_of_sigma(sigma), schedule.t_of_sigma(sigma_end)
            term, y0 = diffrax.ODETerm(_vp_field(model, kappa, schedule)), schedule.scale(t0) * y
        else:
            t0, t1 = jnp.log(sigma), jnp.log(sigma_end)
            term, y0 = diffrax.ODETerm(_log_sigma_field(model, kappa)), y
        dt0 = (t1 - t0) / 64
    else:
        solver = {"euler": diffrax.Euler(), "heun": diffrax.Heun()}[method]
        # Heun spends 2 evaluations per step; the final Tweedie step costs one more.
        steps = (num_steps - 1) // _EVALS_PER_STEP[method]
        grid = edm_sigma_grid(sigma, sigma_min, steps + 1)
        if vp:
            grid = schedule.t_of_sigma(grid)
            term, y0 = (
                diffrax.ODETerm(_vp_field(model, kappa, schedule)),
                schedule.scale(grid[0]) * y,
            )
        else:
            term, y0 = diffrax.ODETerm(_sigma_field(model, kappa)), y
        t0, t1, dt0 = grid[0], grid[-1], None
        controller = diffrax.StepTo(ts=grid)
        saveat = diffrax.SaveAt(t1=True)
    solution = diffrax.diffeqsolve(
        term,
        solver,
        t0,
        t1,
        dt0,
        y0,
        saveat=saveat,
        stepsize_controller=controller,
        max_steps=max_steps,
    )
    x_end = solution.ys[-1] / schedule.scale(t1) if vp else solution.ys[-1]
    x_hat = model.denoise(x_end, sigma_end)
    stats = solution.stats
    evals = _EVALS_PER_STEP[method] * stats["num_steps"] + 1  # + the final Tweedie step
    if method == "tsit5":
        # The first stage at the start and after each rejection before the first accepted step
        # (`_FirstStageCounter`; counted with a callback in tests/test_decoder.py).
        evals = evals + 1 + solution.controller_state[2]
    return x_hat, evals
