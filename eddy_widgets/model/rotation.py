"""The rotation-map model: line-of-sight velocity v0 of a disk (pure JAX)."""

from __future__ import annotations

import jax.numpy as jnp

from ..parameters import PARAMETERS, combination_error, velocity_switches
from .beam import beam_padding, convolve_padded, padded_axes
from .geometry import (
    FLARED_NITER,
    effective_inclination,
    polar_from_point,
    surface_point,
)
from .velocity import keplerian, keplerian_los, power_law, project

#: The velocity switches (:func:`~eddy_widgets.parameters.velocity_switches`)
#: whose terms :func:`v0_model` evaluates. A switch of the table that is not
#: here is refused when set, never ignored: add its term below, then its name.
TERMS_EVALUATED = ("vp_100", "vp_q", "vr_100", "mdisk")


def complete(params: dict) -> dict:
    """Fill missing model parameters with the defaults of the parameter table
    (and keep a user surface ``z_func``, ``None`` if not given)."""
    out = {name: params.get(name, p.default) for name, p in PARAMETERS.items()}
    out["z_func"] = params.get("z_func")
    return out


def rotation_speed(r, z, p: dict):
    """Rotation speed v_phi [m/s] at radius ``r`` and height ``z`` [arcsec]:
    Keplerian with height (``mstar``, ``dist``, optional ``mdisk``
    self-gravity), or a power law if ``vp_100`` is set. ``p`` is a completed
    parameter dict (see :func:`complete`)."""
    if p["vp_100"] is not None:
        return power_law(r, p["dist"], p["vp_100"], p["vp_q"])
    return keplerian(r, z, p["mstar"], p["dist"], p["mdisk"], p["gamma"], p["r_in"],
                     p["r_out"])


def check_combination(params: dict) -> None:
    """Raise ``ValueError`` for parameter combinations the model cannot use
    (the table's one rule, :func:`~eddy_widgets.parameters.combination_error`)."""
    message = combination_error(lambda name: params.get(name) is not None)
    if message:
        raise ValueError(message)


def v0_model(x_sky, y_sky, params: dict, niter: int = FLARED_NITER,
             rolled: bool = False):
    """Line-of-sight velocity [m/s] at the given sky offsets.

    Args:
        x_sky, y_sky: sky offsets [arcsec] (east and north of the image
            centre), any equal shape, e.g. a meshgrid or a list of pixels.
        params: model parameters by name (see :mod:`eddy_widgets.parameters`);
            missing names take their table default, ``None`` switches a
            component off. Values may be floats or JAX tracers. A callable
            ``params['z_func']`` (radius [arcsec] -> height [arcsec])
            replaces the analytic emission surface.
        niter: fixed-point iterations for a flared surface.
        rolled: compile the iterations as a loop (faster when no gradient is
            taken; see :func:`~eddy_widgets.model.geometry.surface_point`).

    Components:
        - rotation: Keplerian with height (``mstar``, ``dist``, optional
          ``mdisk`` self-gravity), or a power law if ``vp_100`` is set;
        - optional radial flow ``vr_100 * (r / 100 au) ** vr_q``;
        - projection ``v cos(phi) sin|i| + vlsr``.
    """
    p = complete(params)
    check_combination(p)
    x_mid, y, r2, z = surface_point(
        x_sky, y_sky, p["x0"], p["y0"], p["inc"], p["PA"], p["z0"], p["psi"],
        p["r_cavity"], p["r_taper"], p["q_taper"], niter, rolled, p["z_func"])
    inc = effective_inclination(p["inc"])
    switched_on = [name for name in velocity_switches() if p[name] is not None]
    if not switched_on:
        # The hot path: Keplerian rotation seen along the line of sight,
        # without square roots or angles.
        v_los = keplerian_los(x_mid, r2, z, p["mstar"], p["dist"])
        return v_los * jnp.abs(jnp.sin(jnp.radians(inc))) + p["vlsr"]
    missing = [name for name in switched_on if name not in TERMS_EVALUATED]
    if missing:
        raise NotImplementedError(
            f"The model has no velocity term for {', '.join(missing)} (in the "
            f"parameter table's velocity group): add it to "
            f"eddy_widgets.model.rotation.v0_model and TERMS_EVALUATED.")
    r, cos_phi, sin_phi = polar_from_point(x_mid, y, r2)
    v_phi = rotation_speed(r, z, p)
    v_r = None
    if p["vr_100"] is not None:
        v_r = power_law(r, p["dist"], p["vr_100"], p["vr_q"])
    return project(v_phi, v_r, cos_phi, sin_phi, inc, p["vlsr"])


def v0_map(xaxis, yaxis, params: dict, kernel=None, niter: int = FLARED_NITER):
    """Model v0 map [m/s] on an image grid, optionally beam-convolved.

    Args:
        xaxis: sky x offsets of the columns [arcsec] (decreasing: east left).
        yaxis: sky y offsets of the rows [arcsec].
        params: model parameters (see :func:`v0_model`).
        kernel: beam kernel from :func:`eddy_widgets.model.beam_kernel`, or
            ``None`` for no convolution.

    Returns:
        ``(len(yaxis), len(xaxis))`` array. With a ``kernel`` the model is
        evaluated on the grid padded by the kernel's half-width, convolved
        and cropped (:func:`~eddy_widgets.model.beam.convolve_padded`), so
        the border pixels see the model beyond the field.
    """
    if kernel is None:
        x_sky, y_sky = jnp.meshgrid(jnp.asarray(xaxis), jnp.asarray(yaxis))
        return v0_model(x_sky, y_sky, params, niter)
    xpad, ypad = padded_axes(xaxis, yaxis, beam_padding(kernel))
    x_sky, y_sky = jnp.meshgrid(jnp.asarray(xpad), jnp.asarray(ypad))
    return convolve_padded(v0_model(x_sky, y_sky, params, niter), kernel)
