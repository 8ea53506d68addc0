"""Gradient-based maximum a posteriori (MAP) estimate.

L-BFGS-B (scipy) on the JAX log-posterior and its exact gradient, with bounds
from the flat priors. The parameters are rescaled by the curvature of the
log-posterior at the start so that x0 [arcsec] and vlsr [m/s] are steps of the
same size for the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from .posterior import Posterior


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


def find_map(posterior: Posterior, theta0, maxiter: int = 2000) -> MapEstimate:
    """Maximise the log-posterior from ``theta0`` (which must be in the prior)."""
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
                   bounds=bounds, options={"maxiter": maxiter, "ftol": 1e-12,
                                           "gtol": 1e-6})
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
