"""A rotation map in memory and the operations on its pixel grid.

:class:`RotationMapData` holds the values, axes and beam of a map as read by
:func:`~eddy_widgets.data.read_rotation_map`. The field-of-view clipping and
the downsampling live here so that the reader and ``rotationmap``'s
``clip_cube_spatial`` / ``downsample_cube`` use one piece of code, with
astro-eddy's rules (so that the same pixels are fitted).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import math
from pathlib import Path
import warnings

from astropy.io import fits
import numpy as np

__all__ = ["RotationMapData", "beam_area", "clipped", "downsample_step",
           "downsampled", "fov_slices"]

#: Relative tolerance of ``downsample='beam'``: ``bmaj / dpix`` within this of
#: an integer counts as that integer (header values carry float noise, e.g.
#: 0.15" / 0.05" read as 3.000000000000014).
BEAM_STEP_RTOL = 1e-6


@dataclass
class RotationMapData:
    """A rotation map and its uncertainty, ready for the model.

    All arrays are native-endian float64 and go straight into ``jax.numpy``.

    Attributes:
        data: line-of-sight velocity v0 [m/s], shape ``(ny, nx)``; NaN where
            there is no data (unless ``fill`` was given).
        error: uncertainty of v0 [m/s], same shape; absolute values, 0 where
            unknown (NaN in the file, or a pixel filled by ``fill``).
        xaxis: sky x offset of each column from the image centre [arcsec],
            decreasing (east to the left); pixels with ``force_center``.
        yaxis: sky y offset of each row from the image centre [arcsec],
            increasing (north up).
        dpix: pixel size [arcsec] (mean spacing of ``yaxis``).
        bmaj, bmin: beam FWHM along the major and minor axes [arcsec].
        bpa: beam position angle, east of north [deg], in ``[0, 180)``.
        header: astropy header of the v0 file.
        path: path of the v0 file.
        uncertainty_path: path of the uncertainty file, or ``None`` when the
            uniform fallback was used.
        velocity_unit: unit of the v0 file as read (``'m/s'`` or ``'km/s'``).
        uncertainty_note: where ``error`` came from, in words.
        FOV, downsample: the arguments the map was read with (``downsample``
            is the step actually used once ``downsample_cube`` changed it).
        beamarea_arcsec: beam solid angle [arcsec^2] (``pi bmaj bmin / 4 ln 2``,
            or the pixel area when the beam is the pixel), with the pixel size
            of the file as astro-eddy computes it.
        fill: the value NaN pixels were replaced with (in the file's unit), or
            ``None``.
        force_center: whether the axes are pixel offsets from the array
            centre (``dpix = 1``) instead of the header's grid.
        snr: the line's peak S/N, bettermoments' ``Fnu / dFnu`` (NaN where
            unknown), or ``None`` without a peak map; the correlated
            likelihood's low-S/N clip uses it.
        snr_path: the peak map (``*_Fnu.fits``) it came from.
    """

    data: np.ndarray
    error: np.ndarray
    xaxis: np.ndarray
    yaxis: np.ndarray
    dpix: float
    bmaj: float
    bmin: float
    bpa: float
    header: fits.Header
    path: str
    uncertainty_path: str | None
    velocity_unit: str
    uncertainty_note: str
    FOV: float | None = None
    downsample: int | str | None = None
    beamarea_arcsec: float = math.nan
    fill: float | None = None
    force_center: bool = False
    snr: np.ndarray | None = None
    snr_path: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the map."""
        return self.data.shape

    @property
    def nxpix(self) -> int:
        """Number of columns."""
        return int(self.xaxis.size)

    @property
    def nypix(self) -> int:
        """Number of rows."""
        return int(self.yaxis.size)

    @property
    def mask(self) -> np.ndarray:
        """Pixels with a finite v0 (astro-eddy's ``rotationmap.mask``)."""
        return np.isfinite(self.data)

    @property
    def fname(self) -> str:
        """File name of the v0 map."""
        return Path(self.path).name

    @property
    def extent(self) -> list[float]:
        """``[x max, x min, y min, y max]`` of the pixel edges [arcsec], for
        ``imshow(..., origin='lower', extent=...)``."""
        half = 0.5 * self.dpix
        return [float(self.xaxis.max() + half), float(self.xaxis.min() - half),
                float(self.yaxis.min() - half), float(self.yaxis.max() + half)]

    def extent_au(self, dist: float = 1.0) -> np.ndarray:
        """:attr:`extent` in [au] for a source at ``dist`` [pc]."""
        return dist * np.asarray(self.extent)

    @property
    def beam(self) -> tuple[float, float, float]:
        """``(bmaj, bmin, bpa)`` in [arcsec], [arcsec], [deg]."""
        return self.bmaj, self.bmin, self.bpa

    @property
    def beamarea_str(self) -> float:
        """Beam solid angle [sr]."""
        return float(self.beamarea_arcsec * np.radians(1.0 / 3600.0) ** 2)

    @property
    def pix_per_beam(self) -> float:
        """Pixels (of the current grid) per beam."""
        return float(self.beamarea_arcsec / self.dpix ** 2)

    @property
    def beams_per_pix(self) -> float:
        """Beams per pixel (of the current grid)."""
        return float(self.dpix ** 2 / self.beamarea_arcsec)


def beam_area(bmaj: float, bmin: float, dpix: float) -> float:
    """Beam solid angle [arcsec^2]: ``pi bmaj bmin / (4 ln 2)`` for a Gaussian
    beam, ``dpix^2`` when the beam is the pixel (astro-eddy's convention)."""
    if bmaj == dpix and bmin == dpix:
        return float(bmaj * bmin)
    return float(np.pi * bmaj * bmin / (4.0 * np.log(2.0)))


# -- Field of view ---------------------------------------------------------- #


def fov_slices(xaxis, yaxis, dpix, FOV, path):
    """Slices of the field of view, with astro-eddy's rule so that the same
    pixels are fitted: every pixel with ``|offset| < FOV / 2`` plus, on each
    side, the first pixel at or beyond ``FOV / 2``. An axis shorter than the
    FOV is kept whole with a warning."""
    half = 0.5 * float(FOV)
    tol = 1e-9 * abs(dpix)
    slices = []
    for name, axis in (("y", yaxis), ("x", xaxis)):
        outer_hi = np.flatnonzero(axis >= half - tol)
        outer_lo = np.flatnonzero(axis <= -half + tol)
        if outer_hi.size == 0 or outer_lo.size == 0:
            warnings.warn(
                f"{path}: FOV = {FOV:g} arcsec is larger than the map along {name} "
                f"({np.ptp(axis) + abs(dpix):.4g} arcsec): keeping the whole {name} "
                f"axis.", stacklevel=3)
            slices.append(slice(None))
            continue
        hi = outer_hi[np.argmin(axis[outer_hi])]
        lo = outer_lo[np.argmax(axis[outer_lo])]
        i0, i1 = sorted((int(lo), int(hi)))
        slices.append(slice(i0, i1 + 1))
    return slices[0], slices[1]


def clipped(data: RotationMapData, FOV: float) -> RotationMapData:
    """``data`` clipped to a square field of view of side ``FOV`` [arcsec]
    centred on the image centre (astro-eddy's ``clip_cube_spatial``).

    Raises ``ValueError`` for a FOV larger than the map, as astro-eddy does.
    """
    if not (isinstance(FOV, (int, float, np.integer, np.floating))
            and math.isfinite(float(FOV)) and float(FOV) > 0.0):
        raise ValueError(f"FOV must be a positive number of arcsec, got {FOV!r}.")
    span = float(data.xaxis.max() - data.xaxis.min())
    if FOV > span:
        raise ValueError(f"Cannot apply a larger FOV: FOV = {FOV:g} arcsec but the map "
                         f"spans {span:.4g} arcsec (pixel centres) along x.")
    rows, cols = fov_slices(data.xaxis, data.yaxis, data.dpix, FOV, data.path)
    return replace(data, data=_copy(data.data[rows, cols]),
                   error=_copy(data.error[rows, cols]), xaxis=_copy(data.xaxis[cols]),
                   yaxis=_copy(data.yaxis[rows]), FOV=float(FOV),
                   snr=None if data.snr is None else _copy(data.snr[rows, cols]))


# -- Downsampling ----------------------------------------------------------- #


def downsample_step(downsample, bmaj: float, dpix: float) -> int:
    """The step ``N`` of ``downsample``: ``None`` -> 1, an int as given, and
    ``'beam'`` -> ``ceil(bmaj / dpix)`` where a ratio within
    :data:`BEAM_STEP_RTOL` of an integer is that integer (astro-eddy takes
    the plain ceiling, so float noise in the header, e.g. 3.000000000000014,
    gives it one more)."""
    if downsample is None:
        return 1
    if isinstance(downsample, str) and downsample == "beam":
        return max(1, int(math.ceil(bmaj / dpix - BEAM_STEP_RTOL)))
    if isinstance(downsample, (bool, np.bool_)) or not isinstance(
            downsample, (int, np.integer)) or downsample < 1:
        raise ValueError(f"downsample must be None, 1, an integer N > 1, or 'beam'; "
                         f"got {downsample!r}.")
    return int(downsample)


def downsampled(data: RotationMapData, downsample, offset=None) -> RotationMapData:
    """Every ``N``-th pixel of ``data`` in both axes, ``N`` from
    :func:`downsample_step`.

    Args:
        data: the map.
        downsample: ``None``, an int ``N >= 1`` or ``'beam'``.
        offset: ``(column, row)`` of the first pixel kept; astro-eddy's
            ``N // 2`` in both axes by default.
    """
    step = downsample_step(downsample, data.bmaj, data.dpix)
    if step == 1:
        return data
    x0, y0 = (step // 2, step // 2) if offset is None else (int(offset[0]),
                                                           int(offset[1]))
    if x0 >= data.nxpix or y0 >= data.nypix:
        raise ValueError(f"downsample = {downsample!r} (every {step}th pixel from "
                         f"pixel {max(x0, y0)}) keeps no pixel of the "
                         f"{data.nypix} x {data.nxpix} map: use a step below "
                         f"{2 * min(data.nxpix, data.nypix)}, or none.")
    yaxis = data.yaxis[y0::step]
    dpix = float(np.mean(np.diff(yaxis))) if yaxis.size > 1 else data.dpix * step
    # What the map went through, for the result's record of its set-up.
    record = downsample if offset is None else f"{step} from ({x0}, {y0})"
    if data.downsample not in (None, 1):
        record = f"{data.downsample} then {record}"
    return replace(data, data=_copy(data.data[y0::step, x0::step]),
                   error=_copy(data.error[y0::step, x0::step]),
                   xaxis=_copy(data.xaxis[x0::step]), yaxis=_copy(yaxis), dpix=dpix,
                   downsample=record,
                   snr=None if data.snr is None else _copy(data.snr[y0::step, x0::step]))


def _copy(a) -> np.ndarray:
    """Contiguous native-endian float64 copy of ``a``."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64))
