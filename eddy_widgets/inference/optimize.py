"""Gradient-based maximum a posteriori (MAP) estimate.

L-BFGS-B (scipy) on the JAX log-posterior and its exact gradient, with bounds
from the flat priors. The parameters are rescaled by the curvature of the
log-posterior at the start so that x0 [arcsec] and vlsr [m/s] are steps of the
same size for the optimiser.

``fit_map(optimize_kwargs=...)`` keeps astro-eddy's two keys: ``'method'``
(here only ``'L-BFGS-B'``) and ``'options'`` (L-BFGS-B's options for
``scipy.optimize.minimize``); see :func:`optimizer_options`.
"""

from __future__ import annotations

from dataclasses import dataclass
import difflib
import inspect

import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from .posterior import Posterior
from .spec import FitInputError

#: Our L-BFGS-B settings (stricter than astro-eddy's maxiter=10000,
#: ftol=1e-3: the gradient is exact and the steps are scaled to the posterior).
DEFAULT_OPTIONS = {"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-6}

#: L-BFGS-B options that only matter for a finite-difference gradient.
_FINITE_DIFFERENCE = ("eps", "finite_diff_rel_step", "workers")


def lbfgsb_option_names() -> tuple[str, ...]:
    """The options ``scipy.optimize.minimize(method='L-BFGS-B')`` takes (read
    from scipy's solver), without those of finite-difference gradients."""
    try:
        from scipy.optimize._lbfgsb_py import _minimize_lbfgsb
        names = [p.name for p in inspect.signature(_minimize_lbfgsb).parameters.values()
                 if p.default is not p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        names = [n for n in names if n not in ("args", "jac", "bounds", "callback")]
    except (ImportError, AttributeError, ValueError):  # another scipy layout
        names = ["disp", "maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter",
                 "iprint", "maxls", "finite_diff_rel_step"]
    return tuple(n for n in names if n not in _FINITE_DIFFERENCE)


def optimizer_options(optimize_kwargs: dict | None) -> dict:
    """L-BFGS-B options from astro-eddy's ``optimize_kwargs``, over
    :data:`DEFAULT_OPTIONS`.

    ``optimize_kwargs`` may hold ``'method'`` (only ``'L-BFGS-B'``, any case:
    the optimiser works on the exact JAX gradient with the flat priors as
    bounds) and ``'options'``, a dict of L-BFGS-B options such as
    ``maxiter``, ``ftol`` (relative change of -log p) or ``gtol`` (largest
    projected gradient, here per posterior width since the parameters are
    scaled by the curvature). Anything else raises
    :class:`~eddy_widgets.inference.spec.FitInputError` naming the valid keys.
    """
    out = dict(DEFAULT_OPTIONS)
    if optimize_kwargs is None:
        return out
    if not isinstance(optimize_kwargs, dict):
        raise FitInputError(f"optimize_kwargs must be a dict with the keys 'method' "
                            f"and/or 'options', got {optimize_kwargs!r}.")
    extra = sorted(set(optimize_kwargs) - {"method", "options"})
    valid = lbfgsb_option_names()
    if extra:
        nested = [k for k in extra if k in valid]
        hint = (f" Solver options go under 'options', e.g. optimize_kwargs="
                f"{{'options': {{{nested[0]!r}: ...}}}}." if nested else "")
        raise FitInputError(f"optimize_kwargs has unknown keys {extra}: it takes "
                            f"'method' and 'options' (as astro-eddy).{hint}")
    method = optimize_kwargs.get("method", "L-BFGS-B")
    if str(method).upper() != "L-BFGS-B":
        raise FitInputError(
            f"optimize_kwargs['method'] = {method!r}: the optimiser is always "
            f"L-BFGS-B, "
            f"on the exact JAX gradient of the log-posterior with the flat priors as "
            f"bounds and the parameters scaled by the posterior's curvature. Tune it "
            f"with optimize_kwargs={{'options': {{...}}}} ({', '.join(valid)}), or "
            f"pass optimize=False and your own p0.")
    options = optimize_kwargs.get("options") or {}
    if not isinstance(options, dict):
        raise FitInputError(f"optimize_kwargs['options'] must be a dict of L-BFGS-B "
                            f"options ({', '.join(valid)}), got {options!r}.")
    for key, value in options.items():
        if key in _FINITE_DIFFERENCE:
            raise FitInputError(f"optimize_kwargs['options'][{key!r}] sets the step of "
                                f"a finite-difference gradient; the optimiser uses the "
                                f"exact JAX gradient. Valid options: "
                                f"{', '.join(valid)}.")
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise FitInputError(f"optimize_kwargs['options'][{key!r}] is not an option "
                                f"of L-BFGS-B; valid options: {', '.join(valid)}."
                                f"{hint}")
        out[key] = value
    return out


@dataclass
class MapEstimate:
    theta: np.ndarray
    log_prob: float
    success: bool
    message: str
    nit: int
    log_prob_start: float = float("nan")
    #: Largest gradient of the log-posterior at the start and at the end, per
    #: posterior width (curvature-scaled), with directions that push against
    #: a bound left out: ~0 at an optimum, >> 1 far from it.
    gradient_start: float = float("nan")
    gradient_end: float = float("nan")

    def outcome(self, theta0) -> dict:
        """What the optimiser did, for the result's settings and verdict:
        success, message, iterations, log-posterior before and after, and
        whether the start moved at all."""
        theta0 = np.asarray(theta0, dtype=float)
        moved = bool(self.nit > 0 and not np.array_equal(self.theta, theta0)
                     and self.log_prob > self.log_prob_start)
        return {"success": bool(self.success), "message": self.message,
                "nit": int(self.nit), "moved": moved,
                "at_optimum": bool(self.gradient_start < GRADIENT_TOLERANCE),
                "log_prob_start": self.log_prob_start, "log_prob": self.log_prob,
                "gradient_start": self.gradient_start,
                "gradient_end": self.gradient_end}


#: A scaled gradient below this is an optimum: the log-posterior changes by
#: less than this over one posterior width.
GRADIENT_TOLERANCE = 0.1


def hessian_fd(value_and_grad, theta, step=None) -> np.ndarray:
    """Hessian of a function by central differences of its (compiled) exact
    gradient: ``2 * ndim`` gradient calls and no new compilation.

    Args:
        value_and_grad: ``theta -> (value, grad)`` (JAX or numpy).
        theta: where to evaluate.
        step: per-parameter steps (default ``1e-5 * (|theta| + 1e-2)``).
    """
    theta = np.asarray(theta, dtype=float)
    if step is None:
        step = 1e-5 * (np.abs(theta) + 1e-2)
    n = theta.size
    hess = np.empty((n, n))
    for i in range(n):
        dt = np.zeros(n)
        dt[i] = step[i]
        g_hi = np.asarray(value_and_grad(jnp.asarray(theta + dt))[1])
        g_lo = np.asarray(value_and_grad(jnp.asarray(theta - dt))[1])
        hess[i] = (g_hi - g_lo) / (2.0 * step[i])
    return 0.5 * (hess + hess.T)


def curvature_scale(posterior: Posterior, theta) -> np.ndarray:
    """Per-parameter step ``1 / sqrt(-d2 logp / dtheta2)`` at ``theta``.

    Falls back to 10% of ``|theta|`` (or 0.1) where the curvature is not
    positive (far from the peak).
    """
    theta = np.asarray(theta, dtype=float)
    curv = -np.diag(hessian_fd(posterior.value_and_grad, theta))
    fallback = np.where(np.abs(theta) > 0, 0.1 * np.abs(theta), 0.1)
    ok = np.isfinite(curv) & (curv > 0)
    return np.where(ok, 1.0 / np.sqrt(np.where(ok, curv, 1.0)), fallback)


def find_map(posterior: Posterior, theta0, maxiter: int | None = None,
             options: dict | None = None) -> MapEstimate:
    """Maximise the log-posterior from ``theta0`` (which must be in the prior).

    ``options`` are L-BFGS-B options (see :func:`optimizer_options`, whose
    defaults are used for those not given); ``maxiter`` overrides theirs.
    """
    options = {**DEFAULT_OPTIONS, **(options or {})}
    if maxiter is not None:
        options["maxiter"] = int(maxiter)
    theta0 = np.asarray(theta0, dtype=float)
    scale = curvature_scale(posterior, theta0)
    bounds = []
    for prior, t0, s in zip(posterior.priors, theta0, scale):
        lo, hi = prior.bounds
        bounds.append((None if lo is None else (lo - t0) / s,
                       None if hi is None else (hi - t0) / s))

    def objective(u):
        theta = theta0 + scale * u
        value, grad = posterior.value_and_grad(jnp.asarray(theta))
        value, grad = float(value), np.asarray(grad) * scale
        if not np.isfinite(value):
            return 1e300, np.zeros_like(u)
        return -value, -grad

    res = minimize(objective, np.zeros_like(theta0), jac=True, method="L-BFGS-B",
                   bounds=bounds, options=options)
    theta = theta0 + scale * res.x
    # Stay inside the prior even if the optimiser stopped on a bound.
    for i, prior in enumerate(posterior.priors):
        lo, hi = prior.bounds
        theta[i] = np.clip(theta[i], -np.inf if lo is None else lo,
                           np.inf if hi is None else hi)
    g_start = _scaled_gradient(posterior, theta0, scale)
    g_end = _scaled_gradient(posterior, theta, curvature_scale(posterior, theta))
    success = bool(res.success) and g_end < GRADIENT_TOLERANCE
    message = str(res.message)
    if res.success and not success:
        message = (f"{message}, but the gradient there is still {g_end:.3g} per "
                   f"posterior width: not an optimum")
    return MapEstimate(theta, float(posterior.log_prob_jit(jnp.asarray(theta))),
                       success, message, int(res.nit),
                       float(posterior.log_prob_jit(jnp.asarray(theta0))), g_start, g_end)


def _scaled_gradient(posterior: Posterior, theta, scale) -> float:
    """Largest |d log p / d theta| x scale at ``theta``, leaving out the
    directions that push against a flat prior bound theta is on."""
    value, grad = posterior.value_and_grad(jnp.asarray(theta, dtype=float))
    if not np.isfinite(float(value)):
        return float("inf")
    g = np.asarray(grad) * scale
    for i, prior in enumerate(posterior.priors):
        lo, hi = prior.bounds
        if lo is not None and theta[i] <= lo and g[i] < 0:
            g[i] = 0.0
        if hi is not None and theta[i] >= hi and g[i] > 0:
            g[i] = 0.0
    g = g[np.isfinite(g)] if np.all(np.isfinite(g)) else np.array([np.inf])
    return float(np.max(np.abs(g))) if g.size else 0.0
