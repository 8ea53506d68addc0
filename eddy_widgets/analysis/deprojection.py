"""Maps in the disk's own frame: pixel coordinates of the fitted geometry and
emission surface, and any map (data, model, residual) regridded onto a polar
``(r, phi)`` grid or a face-on cartesian grid.

Coordinates come from the model layer (:func:`eddy_widgets.model.disk_coords`),
so a deprojection uses exactly the surface the fit used. Regridding is
``scipy.interpolate.griddata`` over the finite pixels, ``method='nearest'``
by default as in astro-eddy 3.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.interpolate import griddata

from ..model.pixels import pixel_coords
from ..parameters import GEOMETRY

#: Geometry parameters, in astro-eddy's keyword order (the parameter table's
#: :data:`~eddy_widgets.parameters.GEOMETRY`).
GEOMETRY_NAMES = GEOMETRY


@dataclass(frozen=True)
class DiskGeometry:
    """Disk geometry and emission surface, with astro-eddy's defaults.

    Attributes:
        x0, y0: disk centre, offsets from the image centre [arcsec].
        inc: inclination [deg]; its sign sets the rotation sense.
        PA: position angle of the red-shifted major axis, east of north [deg].
        z0: surface height at 1 arcsec outside ``r_cavity`` [arcsec];
            ``None`` is a flat disk.
        psi: flaring index; ``None`` means 1 (a conical surface).
        r_cavity: radius inside which the surface is the midplane [arcsec].
        r_taper: taper radius [arcsec], measured from ``r_cavity``; ``None``
            or ``inf`` is no taper.
        q_taper: taper exponent.
        z_func: ``z(r)`` [arcsec] of a midplane radius [arcsec], replacing
            the analytic surface.
        shadowed: astro-eddy's slower deprojection of self-shadowed surfaces
            (not supported: see :meth:`coords`).
    """

    x0: float = 0.0
    y0: float = 0.0
    inc: float = 0.0
    PA: float = 0.0
    z0: float | None = None
    psi: float | None = None
    r_cavity: float = 0.0
    r_taper: float | None = None
    q_taper: float = 1.0
    z_func: Callable | None = None
    shadowed: bool = False

    @classmethod
    def from_params(cls, params: dict, z_func: Callable | None = None,
                    shadowed: bool = False) -> "DiskGeometry":
        """The geometry of a dict of model parameters (values, not indices)."""
        return cls(**{k: params[k] for k in GEOMETRY_NAMES if k in params},
                   z_func=z_func, shadowed=shadowed)

    def sky_frame(self) -> "DiskGeometry":
        """Polar coordinates on the sky about the disk centre (astro-eddy's
        ``mask_frame='sky'``: ``inc = PA = 0``, flat)."""
        return DiskGeometry(x0=self.x0, y0=self.y0)

    def coords(self, xaxis, yaxis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(r, phi, z)`` [arcsec, rad, arcsec] of every pixel of the grid
        ``(len(yaxis), len(xaxis))``; ``phi`` is 0 on the red-shifted major
        axis, in ``[-pi, pi]``.

        Raises:
            NotImplementedError: ``shadowed=True``.
        """
        if self.shadowed:
            raise NotImplementedError(
                "shadowed=True (astro-eddy's slower deprojection of self-shadowed "
                "surfaces, which regrids a disk-frame grid onto the sky) is not "
                "supported: eddy_widgets finds one surface point per line of "
                "sight, as the fitted model does. Use shadowed=False.")
        params = {"x0": self.x0, "y0": self.y0, "inc": self.inc, "PA": self.PA,
                  "z0": self.z0, "psi": self.psi, "r_cavity": self.r_cavity,
                  "r_taper": self.r_taper, "q_taper": self.q_taper,
                  "z_func": self.z_func}
        r, phi, z = pixel_coords(xaxis, yaxis, params)
        return r, phi, z * np.ones_like(r)


def regrid(points, values, xi, griddata_kwargs: dict | None = None) -> np.ndarray:
    """``scipy.interpolate.griddata`` of the finite ``values`` at ``points``
    onto ``xi``; ``method`` defaults to ``'nearest'`` (astro-eddy's). The
    caller's ``griddata_kwargs`` is not modified."""
    kwargs = dict(griddata_kwargs or {})
    kwargs.setdefault("method", "nearest")
    values = np.asarray(values, dtype=float).ravel()
    finite = np.isfinite(values)
    pts = tuple(np.asarray(p, dtype=float).ravel()[finite] for p in points)
    return griddata(pts, values[finite], xi, **kwargs)


def polar_deprojection(data, xaxis, yaxis, geometry: DiskGeometry, rgrid=None,
                       tgrid=None, griddata_kwargs: dict | None = None):
    """Regrid a sky map onto a polar grid in the disk frame.

    Args:
        data: map on the sky grid, shape ``(len(yaxis), len(xaxis))``.
        xaxis, yaxis: sky offsets of the columns and rows [arcsec].
        geometry: the disk geometry and emission surface.
        rgrid: radii [arcsec]; default ``arange(0, max(xaxis), dpix)``.
        tgrid: polar angles [rad] in ``[-pi, pi]``; default
            ``linspace(-pi, pi, len(xaxis))``.
        griddata_kwargs: passed to ``scipy.interpolate.griddata``.

    Returns:
        ``(rgrid, tgrid, gridded)`` with ``gridded[j, i]`` the value at
        ``phi = tgrid[j]``, ``r = rgrid[i]`` (shape ``(ntheta, nr)``).
    """
    xaxis, yaxis = np.asarray(xaxis, float), np.asarray(yaxis, float)
    if rgrid is None:
        rgrid = np.arange(0.0, xaxis.max(), pixel_size(yaxis))
    if tgrid is None:
        tgrid = np.linspace(-np.pi, np.pi, xaxis.size)
    rgrid, tgrid = np.asarray(rgrid, float), np.asarray(tgrid, float)
    r, t, _ = geometry.coords(xaxis, yaxis)
    gridded = regrid((r, t), _as_map(data, r), (rgrid[None, :], tgrid[:, None]),
                     griddata_kwargs)
    return rgrid, tgrid, gridded


def cartesian_deprojection(data, xaxis, yaxis, geometry: DiskGeometry, grid=None,
                           griddata_kwargs: dict | None = None):
    """Regrid a sky map onto a face-on cartesian grid in the disk frame.

    Disk-frame ``x`` runs along the red-shifted major axis (``phi = 0``),
    ``y`` along ``phi = +90`` deg, both on the emission surface.

    Args:
        data: map on the sky grid, shape ``(len(yaxis), len(xaxis))``.
        xaxis, yaxis: sky offsets of the columns and rows [arcsec].
        geometry: the disk geometry and emission surface.
        grid: face-on axis [arcsec], used for both ``x`` and ``y``; default
            ``yaxis``.
        griddata_kwargs: passed to ``scipy.interpolate.griddata``.

    Returns:
        ``(grid, gridded)`` with, as in astro-eddy, ``gridded[i, j]`` the
        value at disk ``x = grid[i]``, ``y = grid[j]`` (rows run along the
        major axis; ``gridded.T`` puts ``x`` along the columns).
    """
    xaxis, yaxis = np.asarray(xaxis, float), np.asarray(yaxis, float)
    grid = yaxis.copy() if grid is None else np.asarray(grid, float)
    r, t, _ = geometry.coords(xaxis, yaxis)
    gridded = regrid((r * np.cos(t), r * np.sin(t)), _as_map(data, r),
                     (grid[:, None], grid[None, :]), griddata_kwargs)
    return grid, gridded


def pixel_size(yaxis) -> float:
    """Mean spacing of a sky axis [arcsec]."""
    yaxis = np.asarray(yaxis, float)
    return float(np.mean(np.abs(np.diff(yaxis)))) if yaxis.size > 1 else 1.0


def _as_map(data, like: np.ndarray) -> np.ndarray:
    data = np.asarray(data, dtype=float)
    if data.shape != like.shape:
        raise ValueError(f"data has shape {data.shape} but the map is {like.shape} "
                         f"(rows = yaxis, columns = xaxis).")
    return data
