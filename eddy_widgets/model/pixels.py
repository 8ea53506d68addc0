"""Disk-frame coordinates of a grid's pixels and astro-eddy's selection of
pixels by radius and azimuth, on the host (numpy arrays in and out).

The fit's mask (:func:`eddy_widgets.inference.posterior.fit_mask`), the
after-fit analysis (deprojections, annuli), the facade's ``disk_coords`` and
the map panel's readout all place pixels in the disk with these.
"""

from __future__ import annotations

import jax
import numpy as np

from ..parameters import GEOMETRY, PARAMETERS
from .geometry import FLARED_NITER, disk_coords

__all__ = ["azimuth_mask", "pixel_coords", "region_mask"]

_disk_coords_jit = jax.jit(disk_coords, static_argnames=("niter", "z_func"))


def pixel_coords(xaxis, yaxis, params: dict, niter: int = FLARED_NITER):
    """``(r, phi, z)`` [arcsec, rad, arcsec] of every pixel of the grid, as
    numpy arrays, for model parameters ``params`` (values; a ``'z_func'``
    replaces the analytic surface, ``psi=None`` means 1)."""
    p = {k: params.get(k, PARAMETERS[k].default) for k in GEOMETRY}
    p["psi"] = 1.0 if p["psi"] is None else p["psi"]
    p["r_taper"] = np.inf if p["r_taper"] is None else p["r_taper"]
    x_sky, y_sky = np.meshgrid(np.asarray(xaxis, float), np.asarray(yaxis, float))
    r, phi, z = _disk_coords_jit(x_sky, y_sky, *(p[k] for k in GEOMETRY), niter=niter,
                                 z_func=params.get("z_func"))
    return np.asarray(r), np.asarray(phi), np.asarray(z)


def region_mask(r, phi, r_min=None, r_max=None, exclude_r=False, phi_min=None,
                phi_max=None, exclude_phi=False, abs_phi=False) -> np.ndarray:
    """astro-eddy's radial and azimuthal selection of pixels.

    Args:
        r, phi: disk-frame radius [arcsec] and polar angle [rad] of each pixel.
        r_min, r_max: radial range [arcsec] (inclusive); ``None`` is the
            smallest / largest radius of the map.
        exclude_r: select the pixels outside the range instead.
        phi_min, phi_max: polar-angle range [deg] (inclusive); ``None`` is the
            smallest / largest angle of the map.
        exclude_phi: select the pixels outside the angle range instead.
        abs_phi: use ``|phi|`` (0 to 180 deg).

    Returns:
        Boolean map of the selected pixels (NaN coordinates are never in).

    Raises:
        ValueError: an empty range (``r_min >= r_max`` or ``phi_min >=
            phi_max`` once the defaults are in).
    """
    r = np.asarray(r, dtype=float)
    r_min = np.nanmin(r) if r_min is None else r_min
    r_max = np.nanmax(r) if r_max is None else r_max
    if r_min >= r_max:
        raise ValueError(f"r_min ({r_min:g}) must be smaller than r_max ({r_max:g}).")
    with np.errstate(invalid="ignore"):
        keep_r = (r >= r_min) & (r <= r_max)
    keep_r = ~keep_r & np.isfinite(r) if exclude_r else keep_r
    return keep_r & azimuth_mask(phi, phi_min, phi_max, exclude_phi, abs_phi)


def azimuth_mask(phi, phi_min=None, phi_max=None, exclude_phi=False,
                 abs_phi=False) -> np.ndarray:
    """The azimuthal part of :func:`region_mask`: pixels with polar angle
    ``phi`` [rad] within ``phi_min`` .. ``phi_max`` [deg] (or outside, with
    ``exclude_phi``; of ``|phi|`` with ``abs_phi``). NaN angles are never in."""
    phi = np.abs(phi) if abs_phi else np.asarray(phi, dtype=float)
    phi_min = np.nanmin(phi) if phi_min is None else np.radians(phi_min)
    phi_max = np.nanmax(phi) if phi_max is None else np.radians(phi_max)
    if phi_min >= phi_max:
        raise ValueError(f"phi_min ({np.degrees(phi_min):g} deg) must be smaller than "
                         f"phi_max ({np.degrees(phi_max):g} deg).")
    with np.errstate(invalid="ignore"):
        keep_phi = (phi >= phi_min) & (phi <= phi_max)
    return ~keep_phi & np.isfinite(phi) if exclude_phi else keep_phi
