"""Azimuthal averages and residual decompositions in the disk frame.

Radial profiles and the azimuthally averaged background use astro-eddy 3.2's
binning and uncertainties; residuals are split into rotational, radial and
vertical velocity components with the model's projection; a map is mirrored
about the disk's minor or major axis (Huang et al. 2018; Izquierdo et al.
2021) in the face-on frame and put back on the sky.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.interpolate import RegularGridInterpolator, interp1d

from .deprojection import DiskGeometry, _as_map, pixel_size, regrid


def radial_sampling(rbins=None, rvals=None, dr=None, *, bmaj: float, dpix: float,
                    r_max: float):
    """Bin edges and centres (astro-eddy's ``radial_sampling``).

    Args:
        rbins: bin edges [arcsec]; or
        rvals: bin centres [arcsec] (equally spaced); or neither, and
        dr: bin width [arcsec] for bins from 0 to ``r_max``; default a
            quarter of the beam (two pixels if the pixel is the beam).
        bmaj, dpix: beam major axis and pixel size [arcsec].
        r_max: outer edge of the default bins [arcsec].

    Returns:
        ``(rbins, rvals)`` [arcsec].
    """
    if rbins is not None and rvals is not None:
        raise ValueError("Specify only 'rbins' or 'rvals', not both.")
    default_dr = 2.0 * dpix if dpix == bmaj else bmaj / 4.0
    if rvals is not None:
        rvals = np.atleast_1d(np.asarray(rvals, float))
        half = 0.5 * np.diff(rvals)[0] if rvals.size > 1 else default_dr
        rbins = np.linspace(rvals[0] - half, rvals[-1] + half, rvals.size + 1)
    if rbins is None:
        rbins = np.arange(0.0, r_max, default_dr if dr is None else dr)
    rbins = np.asarray(rbins, float)
    return rbins, 0.5 * (rbins[1:] + rbins[:-1])


def binned(values, r, rbins) -> list[np.ndarray]:
    """The finite ``values`` whose radius falls in each bin
    ``rbins[k] <= r < rbins[k + 1]``."""
    values, r = np.ravel(values), np.ravel(r)
    index = np.digitize(r, rbins)
    finite = np.isfinite(values)
    return [values[(index == k) & finite] for k in range(1, len(rbins))]


def radial_profile(data, r, rbins, bmaj: float, assume_correlated: bool = True,
                   percentiles: bool = False):
    """Azimuthally averaged profile of a map (astro-eddy's ``radial_profile``).

    Args:
        data: map values; ``r``: their disk-frame radii [arcsec] (same shape).
        rbins: bin edges [arcsec].
        bmaj: beam major axis [arcsec].
        assume_correlated: divide the scatter by the square root of the number
            of beams around each ring, ``2 pi r / bmaj``; otherwise ``dy`` is
            the scatter itself (not an error of the mean), as in astro-eddy.
        percentiles: median and 16th / 84th percentiles instead of mean and
            standard deviation.

    Returns:
        ``(rvals, y, dy)``: bin centres [arcsec], the profile and its
        uncertainty (shape ``(2, n)``, below and above, with
        ``percentiles``), in the units of ``data``; NaN for empty bins.
    """
    rbins = np.asarray(rbins, float)
    rvals = 0.5 * (rbins[1:] + rbins[:-1])
    nbeams = 2.0 * np.pi * rvals / bmaj if assume_correlated else np.ones_like(rvals)
    groups = binned(data, r, rbins)
    if percentiles:
        stats = np.array([np.percentile(g, [16, 50, 84]) if g.size else
                          np.full(3, np.nan) for g in groups]).T
        y = stats[1]
        dy = np.array([stats[1] - stats[0], stats[2] - stats[1]]) / np.sqrt(nbeams)
    else:
        y = np.array([g.mean() if g.size else np.nan for g in groups])
        dy = np.array([g.std() if g.size else np.nan for g in groups]) / np.sqrt(nbeams)
    return rvals, y, dy


def background_residual(data, r, rbins, bmaj: float, return_background: bool = False):
    """The map minus its azimuthal average (astro-eddy's
    ``background_residual``): the radial profile, linearly interpolated at
    each pixel's radius (NaN outside the bin centres), is the background."""
    rvals, y, _ = radial_profile(data, r, rbins, bmaj)
    good = np.isfinite(y)
    background = interp1d(rvals[good], y[good], bounds_error=False)(r)
    return background if return_background else np.asarray(data, float) - background


def deproject_residual(residual, phi, z, inc: float):
    """Split a velocity residual into disk-frame components, each as if it
    alone made the residual.

    With the model's projection ``v0 = v_phi cos(phi) sin|i| - v_r sin(phi)
    sin(i) - v_z cos(i) + vlsr``: ``v_p = dv / (cos(phi) sin|i|)``,
    ``v_r = -dv / (sin(phi) sin(i))`` (positive away from the star) and
    ``v_z = -dv / cos(i)``, sign flipped where ``z < 0`` so that positive is
    away from the midplane.

    Args:
        residual: data - model [m/s]; ``phi`` [rad], ``z`` [arcsec]: pixel
            coordinates; ``inc`` [deg].

    Returns:
        ``(v_p, v_r, v_z)`` [m/s], each shaped like ``residual``
        (they diverge where ``cos(phi)``, ``sin(phi)`` vanish).
    """
    inc = inc if inc < 90.0 else inc - 180.0
    sin_i, cos_i = np.sin(np.radians(inc)), np.cos(np.radians(inc))
    residual = np.asarray(residual, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        v_p = residual / (np.cos(phi) * abs(sin_i))
        v_r = -residual / (np.sin(phi) * sin_i)
        v_z = -residual / cos_i
    v_z = np.where(np.asarray(z) >= 0.0, v_z, -v_z)
    return v_p, v_r, v_z


def mirror_residual(to_mirror, xaxis, yaxis, geometry: DiskGeometry,
                    mirror_axis: str = "minor", add: bool = False,
                    return_deprojected: bool = False,
                    deprojected_dpix_scale: float = 1.0):
    """Subtract (or add) a map's mirror image about the disk's minor or major
    axis, in the face-on frame.

    Args:
        to_mirror: map on the sky grid (e.g. a velocity residual [m/s]).
        xaxis, yaxis: sky axes [arcsec]; ``geometry``: the disk.
        mirror_axis: ``'minor'`` (``phi -> 180 deg - phi``) or ``'major'``
            (``phi -> -phi``).
        add: add the mirror image instead of subtracting it (for the
            line-of-sight velocity, antisymmetric about the minor axis).
        return_deprojected: return the face-on map instead of putting it back
            on the sky.
        deprojected_dpix_scale: face-on pixel size in sky pixels.

    Returns:
        ``(x, y, residual)``: with ``return_deprojected`` the face-on axis
        twice [arcsec] and the face-on map, indexed ``[i, j]`` at
        ``(x[i], y[j])`` with the mirror axis along ``y = 0``; else
        ``xaxis``, ``yaxis`` and the map on the sky grid (NaN where
        ``to_mirror`` is NaN or the face-on map has no value).
    """
    axis = mirror_axis.lower()
    if axis not in ("minor", "major"):
        raise ValueError(f"mirror_axis must be 'minor' or 'major': {mirror_axis!r}.")
    xaxis, yaxis = np.asarray(xaxis, float), np.asarray(yaxis, float)
    to_mirror = _as_map(to_mirror, np.empty((yaxis.size, xaxis.size)))
    r, t, _ = geometry.coords(xaxis, yaxis)
    # Rotate the frame so that the mirror axis is the second face-on axis.
    if axis == "minor":
        t = t + 0.5 * np.pi
    xs, ys = r * np.cos(t), r * np.sin(t)
    finite = np.isfinite(to_mirror)
    if not finite.any():
        raise ValueError("The map to mirror has no finite pixel.")
    extent = np.nanmax(np.where(finite, r, np.nan))
    x = np.arange(-extent, extent, deprojected_dpix_scale * pixel_size(yaxis))
    x -= 0.5 * (x[0] + x[-1])
    face_on = regrid((xs, ys), to_mirror, (x[:, None], x[None, :]),
                     {"method": "linear"})
    mirrored = face_on[:, ::-1]
    face_on = face_on + mirrored if add else face_on - mirrored
    if return_deprojected:
        return x, x, face_on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        back = RegularGridInterpolator((x, x), face_on, method="linear",
                                       bounds_error=False, fill_value=np.nan)
        on_sky = back(np.stack([xs.ravel(), ys.ravel()], axis=-1)).reshape(xs.shape)
    return xaxis, yaxis, np.where(finite, on_sky, np.nan)
