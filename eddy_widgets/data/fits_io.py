"""Read rotation maps (``*_v0.fits``) and their uncertainties from FITS files.

Conventions follow astro-eddy so that results are comparable:

- sky axes in arcsec, offsets from the image centre
  (``3600 * cdelt * (arange(n) - (n - 1) / 2)``; CRPIX is ignored), with the
  pixel scale read by ``astropy.wcs`` (CDELT, PC x CDELT or CD); a grid
  rotated on the sky is read as if it were not, with a warning;
- the x axis decreases with column index (east to the left) and the y axis
  increases with row index; images stored the other way round are flipped;
- beam FWHM in arcsec and position angle in degrees modulo 180;
- velocities in m/s (maps in km/s are converted on load).

Unlike astro-eddy, nothing here ever prompts for input: every problem with a
file raises :class:`MapFormatError` (or ``FileNotFoundError``) with a message
naming the file, the problem and how to fix it, and the remaining soft
problems (no beam, no uncertainty map, a FOV larger than the map) give a
``warnings.warn``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import math
import os
from pathlib import Path
import re
import warnings

from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
import numpy as np

from .mapdata import (
    RotationMapData,
    beam_area,
    downsample_step,
    downsampled,
    fov_slices,
)

__all__ = ["MapFormatError", "RotationMapData", "read_rotation_map"]

#: Velocity units understood in BUNIT, mapped to their factor to m/s. The key
#: is the unit after lower-casing and removing spaces, dots and carets.
_VELOCITY_UNITS = {
    "m/s": ("m/s", 1.0),
    "ms-1": ("m/s", 1.0),
    "ms**-1": ("m/s", 1.0),
    "km/s": ("km/s", 1.0e3),
    "kms-1": ("km/s", 1.0e3),
    "kms**-1": ("km/s", 1.0e3),
}

#: Off-diagonal terms of the pixel-scale matrix (CD, or PC times CDELT) above
#: this fraction of the pixel size count as a rotated grid (about 0.06 deg).
_ROTATION_TOL = 1e-3


class MapFormatError(ValueError):
    """A FITS file cannot be used as a rotation map (or its uncertainty).

    The message names the file, the problem and what to change.
    """


@dataclass
class _Image:
    """One 2-D image as read from a file, before clipping (internal).

    ``arcsec_per_unit`` converts the header's beam (arcsec) to the axes'
    unit: 1 for the header's grid, the pixel size for ``force_center`` (axes
    in pixels), ``None`` when that pixel size is unknown.
    """

    data: np.ndarray
    xaxis: np.ndarray
    yaxis: np.ndarray
    dpix: float
    header: fits.Header
    beam_table: np.ndarray | None
    arcsec_per_unit: float | None = 1.0


# -- Public reader ---------------------------------------------------------- #


def read_rotation_map(path, uncertainty=None, FOV=None, downsample=None, *,
                      fill=None, force_center: bool = False,
                      peak=None) -> RotationMapData:
    """Read a rotation map and its uncertainty.

    Args:
        path: the v0 map, e.g. ``'HD163296_v0.fits'`` from bettermoments. A 2-D
            image (degenerate Stokes / frequency axes are fine) with BUNIT
            ``'m/s'`` or ``'km/s'`` and a pixel scale (CDELT1/2, optionally
            with a PC matrix, or a CD matrix). The grid is read with
            ``astropy.wcs``; a grid rotated on the sky is read as if it were
            not, with a warning.
        uncertainty: the uncertainty map on the same pixel grid. If ``None``,
            bettermoments' naming is tried (``X_v0.fits`` -> ``X_dv0.fits``,
            generally the last ``_suffix`` -> ``_dsuffix`` in the same folder);
            if that file does not exist a uniform uncertainty is used with a
            warning (10% of the median absolute deviation of v0 about its
            median, where v0 is finite).
        FOV: full side of a square field of view centred on the image centre
            [arcsec]; pixels with ``|x| < FOV / 2`` and ``|y| < FOV / 2`` are
            kept. ``None`` keeps the whole map.
        downsample: ``None`` or ``1`` for none; an integer ``N > 1`` keeps every
            N-th pixel starting at ``N // 2`` in both axes (astro-eddy's
            convention); ``'beam'`` uses ``N = ceil(bmaj / dpix)`` (a ratio
            within 1e-6 of an integer is that integer).
        fill: replace the NaN pixels of the v0 map with this value, in the
            unit of the file (astro-eddy's ``fill``, applied before km/s are
            converted to m/s). Filled pixels get an uncertainty of 0, so a
            fit never uses them.
        force_center: ignore the header's pixel grid and use pixel offsets
            from the array centre as axes (``dpix = 1``, x decreasing with
            the column index as in a normal file), for a header without one.
            The header's beam is converted to pixels when the header has a
            pixel scale. Applies to the uncertainty map too; ``FOV`` is then
            in pixels.
        peak: bettermoments' peak map (``X_Fnu.fits``), whose uncertainty
            ``X_dFnu.fits`` lies beside it: their ratio is the line's peak
            S/N, which ``noise='correlated'`` clips on. ``None``: the pair
            beside the map by bettermoments' naming (``X_v0.fits`` ->
            ``X_Fnu.fits``, ``X_dFnu.fits``), if both are there; ``False``:
            none. Must be on the map's pixel grid.

    Returns:
        :class:`RotationMapData` with velocities in m/s and axes in arcsec.

    Raises:
        FileNotFoundError: ``path`` or a given ``uncertainty`` does not exist
            (``IsADirectoryError``: is a folder).
        MapFormatError: a file is not a usable rotation map (not FITS, a cube,
            no pixel scale, no or unknown BUNIT, all NaN, uncertainty on
            another grid).
        ValueError: bad ``FOV``, ``downsample`` or ``fill`` argument.
    """
    _check_fov(FOV)
    downsample_step(downsample, 1.0, 1.0)  # checks the argument
    _check_fill(fill)
    force_center = bool(force_center)
    path = _existing_path(path, "rotation map")

    image = _read_image(path, force_center)
    unit, factor = _velocity_unit(image.header, path, required=True)
    data = image.data
    if not np.any(np.isfinite(data)):
        raise MapFormatError(
            f"{path}: every pixel of the map is NaN. Check that this is the v0 map "
            "you meant (e.g. bettermoments' *_v0.fits) and that its clipping "
            "threshold did not remove the whole disk.")
    filled = ~np.isfinite(data)
    if fill is not None:
        data = np.where(filled, float(fill), data)
    data = data * factor
    xaxis, yaxis = image.xaxis, image.yaxis
    dpix = image.dpix
    bmaj, bmin, bpa = _read_beam(image, path, dpix)
    area = beam_area(bmaj, bmin, dpix)

    # Uncertainty: given, bettermoments' sibling, or uniform fallback.
    error = None
    uncertainty_path = None
    if uncertainty is not None:
        uncertainty_path = _existing_path(uncertainty, "uncertainty map")
        note = f"read from {uncertainty_path.name}"
    else:
        candidate = _bettermoments_uncertainty(path)
        if candidate is not None and candidate.is_file():
            uncertainty_path = candidate
            note = f"read from {candidate.name} (found by bettermoments' naming)"
    if uncertainty_path is not None:
        error = _read_uncertainty(uncertainty_path, path, image, unit, data.shape,
                                  force_center)
    snr, snr_path = _read_snr(peak, path, image, force_center)

    # Field of view.
    if FOV is not None:
        keep_y, keep_x = fov_slices(xaxis, yaxis, dpix, FOV, path)
        data, xaxis, yaxis = data[keep_y, keep_x], xaxis[keep_x], yaxis[keep_y]
        filled = filled[keep_y, keep_x]
        if error is not None:
            error = error[keep_y, keep_x]
        if snr is not None:
            snr = snr[keep_y, keep_x]
        if np.all(filled):
            raise MapFormatError(
                f"{path}: every pixel inside FOV = {FOV:g} arcsec is NaN. Use a "
                "larger FOV (or FOV=None) or check the map.")

    if error is None:
        error, note = _fallback_uncertainty(data, ~filled, path)
    else:
        error = np.where(np.isfinite(error), np.abs(error), 0.0)
    error = np.where(filled, 0.0, error)

    full = RotationMapData(
        data=_native(data), error=_native(error), xaxis=_native(xaxis),
        yaxis=_native(yaxis), dpix=float(dpix), bmaj=float(bmaj), bmin=float(bmin),
        bpa=float(bpa), header=image.header, path=str(path),
        uncertainty_path=None if uncertainty_path is None else str(uncertainty_path),
        velocity_unit=unit, uncertainty_note=note, FOV=FOV, beamarea_arcsec=area,
        fill=None if fill is None else float(fill), force_center=force_center,
        snr=None if snr is None else _native(snr),
        snr_path=None if snr_path is None else str(snr_path))
    out = downsampled(full, downsample)
    out.downsample = downsample
    return out


# -- Argument checks -------------------------------------------------------- #


def _existing_path(path, what: str) -> Path:
    """``path`` (text, bytes or path-like) as an absolute ``Path``;
    ``FileNotFoundError`` if it is missing, ``IsADirectoryError`` if it is a
    folder."""
    p = Path(os.fsdecode(path)).expanduser()
    if p.is_dir():
        raise IsADirectoryError(f"{what} {p} is a folder, not a FITS file.")
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p.resolve()


def _check_fov(FOV) -> None:
    if FOV is None:
        return
    try:
        ok = math.isfinite(float(FOV)) and float(FOV) > 0.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"FOV must be None or a positive number of arcsec, got {FOV!r}.")


def _check_fill(fill) -> None:
    if fill is None:
        return
    ok = isinstance(fill, (int, float, np.integer, np.floating)) and not isinstance(
        fill, (bool, np.bool_)) and math.isfinite(float(fill))
    if not ok:
        raise ValueError(f"fill must be None or a finite number (the value NaN pixels "
                         f"of the v0 map take, in the unit of the file), got {fill!r}.")


# -- Reading one image ------------------------------------------------------ #


def _read_image(path: Path, force_center: bool = False) -> _Image:
    """Read the first image HDU of ``path`` as a 2-D float64 array with axes.

    Flips the image so that x decreases and y increases with index. With
    ``force_center`` the header's grid is not used: the axes are pixel
    offsets from the array centre, x decreasing with the column index.
    """
    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if h.is_image and h.data is not None), None)
            if hdu is None:
                raise MapFormatError(
                    f"{path}: the FITS file holds no image data. Pass the v0 map "
                    "(an image HDU), e.g. bettermoments' *_v0.fits.")
            header = hdu.header.copy()
            raw = np.array(hdu.data)
            beam_table = _beam_table(hdul, header)
    except MapFormatError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError...
        raise MapFormatError(
            f"{path}: not a readable FITS file ({type(exc).__name__}: {exc}). "
            "Pass a FITS image such as bettermoments' *_v0.fits; if the file was "
            "copied or downloaded, check it is complete.") from exc

    data = np.squeeze(raw)
    if data.ndim == 3:
        raise MapFormatError(
            f"{path}: this looks like a spectral cube ({data.shape[0]} planes of "
            f"{data.shape[1]} x {data.shape[2]} pixels), not a rotation map. Make a "
            "v0 map first (e.g. with bettermoments: `bettermoments cube.fits "
            "-method quadratic`) and pass the resulting *_v0.fits file.")
    if data.ndim != 2:
        raise MapFormatError(
            f"{path}: expected a 2-D image after removing length-1 axes, got shape "
            f"{raw.shape} ({data.ndim}-D). Pass a 2-D rotation map (*_v0.fits).")
    nx, ny = header.get("NAXIS1"), header.get("NAXIS2")
    if data.shape != (ny, nx):
        raise MapFormatError(
            f"{path}: the image has shape {data.shape} but NAXIS1 = {nx} and NAXIS2 = "
            f"{ny}: the first two FITS axes must be the spatial ones (RA, Dec). "
            "Reorder the axes of the file.")

    data = np.ascontiguousarray(data, dtype=np.float64)
    if force_center:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arcsec_per_pixel = _sky_grid(header, path)[2]
        except MapFormatError:
            arcsec_per_pixel = None
        xaxis = -(np.arange(nx) - 0.5 * (nx - 1.0))
        yaxis = np.arange(ny) - 0.5 * (ny - 1.0)
        return _Image(data, xaxis, yaxis, 1.0, header, beam_table, arcsec_per_pixel)
    xaxis, yaxis, dpix = _sky_grid(header, path)
    if xaxis.size > 1 and xaxis[1] > xaxis[0]:
        xaxis, data = xaxis[::-1], data[:, ::-1]
    if yaxis.size > 1 and yaxis[1] < yaxis[0]:
        yaxis, data = yaxis[::-1], data[::-1, :]
    return _Image(np.ascontiguousarray(data), np.ascontiguousarray(xaxis),
                  np.ascontiguousarray(yaxis), dpix, header, beam_table)


def _no_pixel_scale(path: Path, a: int) -> MapFormatError:
    """The error for a header without a (non-zero) pixel scale for axis ``a``."""
    return MapFormatError(
        f"{path}: no pixel scale for axis {a}: neither CDELT{a} nor CD{a}_{a} is "
        "in the header (or it is zero). Add CDELT1 (negative, e.g. -0.025/3600) "
        "and CDELT2 (positive) in degrees per pixel to the header.")


def _spatial_wcs(header: fits.Header, path: Path) -> WCS:
    """The two-axis WCS of the image plane: the celestial axes when they are
    FITS axes 1 and 2, else axes 1 and 2 as they are.

    Axis types wcslib does not know (e.g. an unknown projection code) do not
    change the pixel scale: such axes are read as linear ones.
    """
    try:
        return _wcs_of_first_axes(header)
    except Exception:  # astropy.wcs raises many error types
        linear = header.copy()
        for key in [k for k in linear if k.startswith("CTYPE")]:
            del linear[key]
        try:
            return _wcs_of_first_axes(linear)
        except Exception as exc:
            message = " ".join(str(exc).split())
            raise MapFormatError(
                f"{path}: the pixel grid keywords (CDELT, CD, PC, CRPIX...) cannot "
                f"be read ({type(exc).__name__}: {message}). Fix the header so that "
                "astropy.wcs.WCS reads it, with CDELT1 (negative) and CDELT2 "
                "(positive) in degrees per pixel.") from exc


def _wcs_of_first_axes(header: fits.Header) -> WCS:
    """:func:`_spatial_wcs` for one header; astropy's errors pass through."""
    with warnings.catch_warnings():
        # Header repairs (e.g. 'DEG' -> 'deg', MJD-OBS from DATE-OBS) are
        # reported by astropy as FITSFixedWarning: not the user's concern.
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
        if wcs.has_celestial and sorted((wcs.wcs.lng, wcs.wcs.lat)) == [0, 1]:
            wcs2 = wcs.celestial
        else:
            wcs2 = wcs.sub([1, 2])
        wcs2.wcs.set()  # checks the header's values
    return wcs2


def _sky_grid(header: fits.Header, path: Path):
    """``(xaxis, yaxis, dpix)``: sky offsets of the columns and rows from the
    image centre [arcsec] and the pixel size [arcsec] (mean spacing of the
    rows).

    The pixel scales are the lengths of the pixel-scale matrix's columns
    (``astropy.wcs.utils.proj_plane_pixel_scales``), which is right for a CD
    matrix and for CDELT with a PC matrix alike; each axis takes the sign of
    its diagonal term. A rotated grid (off-diagonal CD or PC terms) is read as
    if it were not, with a warning.
    """
    has_cd = any(f"CD{i}_{j}" in header for i in (1, 2) for j in (1, 2))
    if not has_cd:
        # wcslib would take a missing CDELT as 1 degree: check it is there.
        for a in (1, 2):
            try:
                cdelt = float(header.get(f"CDELT{a}"))
            except (TypeError, ValueError):
                cdelt = math.nan
            if not np.isfinite(cdelt) or cdelt == 0.0:
                raise _no_pixel_scale(path, a)
    wcs2 = _spatial_wcs(header, path)
    matrix = np.asarray(wcs2.pixel_scale_matrix, dtype=np.float64)
    scales = np.asarray(proj_plane_pixel_scales(wcs2), dtype=np.float64)
    to_arcsec = [_arcsec_per_unit(wcs2, j) for j in (0, 1)]
    for j in (0, 1):
        if not (np.all(np.isfinite(matrix[:, j])) and scales[j] > 0.0):
            raise _no_pixel_scale(path, j + 1)
    off_diagonal = max(abs(matrix[0, 1]) / scales[1], abs(matrix[1, 0]) / scales[0])
    if off_diagonal > _ROTATION_TOL:
        _warn_rotated(header, path, matrix, has_cd)
    axes = []
    for j in (0, 1):
        n = int(header[f"NAXIS{j + 1}"])
        sign = np.sign(matrix[j, j]) or (-1.0 if j == 0 else 1.0)
        step = sign * scales[j] * to_arcsec[j]
        axes.append(step * (np.arange(n) - 0.5 * (n - 1)))
    yaxis = axes[1]
    dpix = np.mean(np.abs(np.diff(yaxis))) if yaxis.size > 1 else scales[1] * to_arcsec[1]
    return axes[0], yaxis, float(dpix)


def _arcsec_per_unit(wcs2: WCS, j: int) -> float:
    """Arcsec per world unit of axis ``j`` (celestial axes are in degrees;
    other axes use CUNIT when it is an angle, else degrees as for CDELT)."""
    if wcs2.has_celestial:
        return 3600.0
    try:
        return float(u.Unit(wcs2.wcs.cunit[j]).to(u.arcsec))
    except (u.UnitsError, ValueError, TypeError):
        return 3600.0


def _warn_rotated(header: fits.Header, path: Path, matrix: np.ndarray,
                  has_cd: bool) -> None:
    """Say that a rotated grid is read as unrotated, and what to do."""
    sy = np.sign(matrix[1, 1]) or 1.0
    angle = math.degrees(math.atan2(-matrix[0, 1] * sy, matrix[1, 1] * sy))
    if has_cd:
        keys = "CD1_2 / CD2_1 non-zero"
    elif any(f"PC{i}_{j}" in header for i in (1, 2) for j in (1, 2)):
        keys = "PC1_2 / PC2_1 non-zero"
    else:
        keys = f"CROTA2 = {header.get('CROTA2', header.get('CROTA1'))}"
    warnings.warn(
        f"{path}: the pixel grid is rotated by {angle:.3g} deg on the sky ({keys}). "
        "The reader assumes the columns run east-west and the rows south-north, so "
        "the rotation is ignored: x and y are offsets along the pixel grid (with "
        "the pixel size of the full CD or PC x CDELT matrix), a fitted PA is "
        f"measured from the grid's y axis instead of from north (about "
        f"{abs(angle):.3g} deg off) and the beam is drawn at BPA from that axis "
        "too. To fit on-sky angles, regrid the map and its uncertainty onto an "
        "unrotated RA/Dec grid first (e.g. with "
        "reproject.reproject_interp).", stacklevel=5)


def _velocity_unit(header: fits.Header, path: Path, required: bool):
    """``(unit, factor to m/s)`` from BUNIT, or ``(None, None)`` if absent and
    not ``required``."""
    bunit = header.get("BUNIT")
    if bunit is None or not str(bunit).strip():
        if not required:
            return None, None
        raise MapFormatError(
            f"{path}: no BUNIT keyword, so the velocity unit is unknown. Add "
            f"BUNIT = 'm/s' or 'km/s' to the header of {path.name}, e.g. "
            f"astropy.io.fits.setval('{path.name}', 'BUNIT', value='km/s').")
    key = re.sub(r"[\s.^]", "", str(bunit).lower())
    if key in _VELOCITY_UNITS:
        return _VELOCITY_UNITS[key]
    hint = ""
    if "jy" in key or key in ("k", "kelvin"):
        hint = (" This looks like an intensity map, not a line-of-sight velocity "
                "map: pass the v0 map (e.g. bettermoments' *_v0.fits).")
    raise MapFormatError(
        f"{path}: BUNIT = {bunit!r} is not a velocity unit this reader knows.{hint} "
        f"If the map is a velocity, set BUNIT = 'm/s' or 'km/s' in the header of "
        f"{path.name}.")


# -- Beam ------------------------------------------------------------------- #


def _beam_table(hdul, header: fits.Header):
    """``(n, 3)`` array of per-channel beams [arcsec, arcsec, deg] from a CASA
    beam table, or ``None``."""
    if not header.get("CASAMBM", False):
        return None
    for hdu in hdul[1:]:
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        names = [n.upper() for n in hdu.columns.names]
        if not all(k in names for k in ("BMAJ", "BMIN", "BPA")):
            continue
        columns = []
        defaults = (("BMAJ", "arcsec"), ("BMIN", "arcsec"), ("BPA", "deg"))
        for key, default_unit in defaults:
            column = hdu.columns[names.index(key)]
            values = np.asarray(hdu.data[column.name], dtype=np.float64)
            unit = (column.unit or default_unit).strip().lower()
            if key != "BPA" and unit in ("deg", "degree", "degrees"):
                values = values * 3600.0
            elif key == "BPA" and unit in ("rad", "radian", "radians"):
                values = np.degrees(values)
            columns.append(values)
        return np.stack(columns, axis=1)
    return None


def _read_beam(image: _Image, path: Path, dpix: float):
    """``(bmaj, bmin, bpa)`` in [arcsec, arcsec, deg mod 180].

    Uses the median of a CASA beam table if there is one, else BMAJ / BMIN /
    BPA (degrees) from the header, else the pixel size with a warning.
    """
    header = image.header
    found = True
    if image.beam_table is not None and len(image.beam_table):
        bmaj, bmin, bpa = np.nanmedian(image.beam_table, axis=0)
    elif header.get("BMAJ") is not None and header.get("BMIN") is not None:
        bmaj = 3600.0 * float(header["BMAJ"])
        bmin = 3600.0 * float(header["BMIN"])
        bpa = float(header.get("BPA", 0.0))
    else:
        found = False
    if found and image.arcsec_per_unit is None:
        warnings.warn(
            f"{path}: force_center=True puts the axes in pixels, but the header has "
            "no pixel scale to convert its beam (arcsec) to pixels: using one "
            "pixel as the beam.", stacklevel=3)
        bmaj, bmin, bpa = dpix, dpix, 0.0
    elif found:
        bmaj, bmin = bmaj / image.arcsec_per_unit, bmin / image.arcsec_per_unit
    else:
        warnings.warn(
            f"{path}: no beam found (no BMAJ/BMIN in the header, no CASA beam "
            f"table): using the pixel size ({dpix:.4g} arcsec) as the beam. Add "
            "BMAJ, BMIN (deg) and BPA to the header if beam convolution or "
            "downsample='beam' matter.", stacklevel=3)
        bmaj, bmin, bpa = dpix, dpix, 0.0
    return float(bmaj), float(bmin), float(bpa) % 180.0


# -- Uncertainty ------------------------------------------------------------ #


def _bettermoments_uncertainty(path: Path) -> Path | None:
    """bettermoments' name of the uncertainty of ``path``: the last
    ``_suffix`` becomes ``_dsuffix`` (``X_v0.fits`` -> ``X_dv0.fits``)."""
    if "_" not in path.name:
        return None
    stem, suffix = path.name.rsplit("_", 1)
    return path.with_name(f"{stem}_d{suffix}")


def _read_uncertainty(upath: Path, path: Path, image: _Image, unit: str,
                      shape, force_center: bool = False) -> np.ndarray:
    """Uncertainty map [m/s] on the grid of ``image`` (before FOV clipping):
    the same grid, or a larger one with the same pixels (e.g. the original
    ``*_dv0.fits`` of a map written by ``to_fits`` after a ``FOV`` cut), cut
    to the map. Refused, saying why, when the pixels are not the map's: another
    pixel scale, another pointing, or axes that run the other way."""
    uimage = _read_image(upath, force_center)
    rows, cols = _aligned(uimage, image, upath, path)
    data = uimage.data[rows, cols]
    uimage = replace(uimage, data=data)
    if data.shape != shape:     # cannot happen after _aligned; kept as a guard
        raise MapFormatError(f"{upath}: the uncertainty map is not on the grid of "
                             f"{path.name}.")
    u_unit, factor = _velocity_unit(uimage.header, upath, required=False)
    if u_unit is None:
        factor = _VELOCITY_UNITS[unit][1]
        warnings.warn(
            f"{upath}: the uncertainty map has no BUNIT keyword, so it is assumed to "
            f"be in the unit of the map {path.name} ({unit}). Set BUNIT = '{unit}' "
            f"(or its true unit) in the header of {upath.name} to silence this "
            f"warning, e.g. astropy.io.fits.setval('{upath.name}', 'BUNIT', "
            f"value='{unit}').", stacklevel=3)
    return uimage.data * factor


def _read_snr(peak, path: Path, image: _Image, force_center: bool):
    """The peak S/N ``Fnu / dFnu`` on the grid of ``image`` and the peak
    map's path, or ``(None, None)``: ``peak`` given, or bettermoments'
    ``X_Fnu.fits`` and ``X_dFnu.fits`` beside ``path`` (both must exist)."""
    if peak is False:
        return None, None
    if peak is None:
        if "_" not in path.name:
            return None, None
        stem = path.name.rsplit("_", 1)[0]
        fpath = path.with_name(f"{stem}_Fnu.fits")
        if not (fpath.is_file() and path.with_name(f"{stem}_dFnu.fits").is_file()):
            return None, None
    else:
        fpath = _existing_path(peak, "peak map")
    dpath = _bettermoments_uncertainty(fpath)
    if dpath is None or not dpath.is_file():
        raise FileNotFoundError(
            f"{fpath}: no uncertainty of the peak map beside it (bettermoments "
            f"writes X_dFnu.fits next to X_Fnu.fits); the peak S/N needs both.")
    maps = []
    for p in (fpath, dpath):
        pimage = _read_image(p, force_center)
        rows, cols = _aligned(pimage, image, p, path)
        maps.append(pimage.data[rows, cols])
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = maps[0] / np.abs(maps[1])
    return np.where(np.isfinite(snr), snr, np.nan), fpath


#: Pixel offsets below this share of a pixel count as the same pixel.
_ALIGN_TOL = 0.01


def _aligned(uimage: _Image, image: _Image, upath: Path, path: Path):
    """``(rows, cols)`` slices of ``uimage`` (an uncertainty map) that hold
    the pixels of ``image`` (the map), both as read (x decreasing, y
    increasing); raises :class:`MapFormatError` naming what differs."""
    scale_u = np.abs(np.diff(uimage.xaxis[:2])), np.abs(np.diff(uimage.yaxis[:2]))
    scale_m = np.abs(np.diff(image.xaxis[:2])), np.abs(np.diff(image.yaxis[:2]))
    if any(a.size and b.size and not np.allclose(a, b, rtol=1e-4)
           for a, b in zip(scale_u, scale_m)):
        raise MapFormatError(
            f"{upath}: the uncertainty map has another pixel scale (CDELT1/CDELT2) "
            f"than {path.name}: the uncertainty must be on the map's pixels. Pass "
            f"the *_dv0.fits made with the map, or regrid it first.")
    signs_u, centre_u = _orientation(uimage, upath)
    signs_m, centre_m = _orientation(image, path)
    if signs_u is not None and signs_m is not None and signs_u != signs_m:
        axis = "CDELT1" if signs_u[0] != signs_m[0] else "CDELT2"
        raise MapFormatError(
            f"{upath}: its {axis} has the other sign from {path.name}'s, so one of "
            f"the two files runs the other way (or its header says so wrongly): "
            f"bettermoments writes both with the cube's header. Pass the "
            f"uncertainty made with the map, or correct the header.")
    dx = dy = 0.0
    if centre_u is not None and centre_m is not None:
        # The map's centre in the uncertainty's frame [arcsec]: x east, y north.
        ra_u, dec_u = centre_u
        ra_m, dec_m = centre_m
        dra = (ra_m - ra_u + 180.0) % 360.0 - 180.0
        dx = dra * np.cos(np.radians(dec_u)) * 3600.0
        dy = (dec_m - dec_u) * 3600.0
    index = []
    for uaxis, maxis, shift in ((uimage.yaxis, image.yaxis, dy),
                                (uimage.xaxis, image.xaxis, dx)):
        step = uaxis[1] - uaxis[0] if uaxis.size > 1 else 1.0
        where = (maxis + shift - uaxis[0]) / step
        first = int(round(float(where[0])))
        if (np.max(np.abs(where - np.round(where))) > _ALIGN_TOL or first < 0
                or first + maxis.size > uaxis.size):
            if uimage.data.shape == image.data.shape:
                what = ("another pointing (CRVAL1/CRVAL2: its centre lies "
                        f"{np.hypot(dx, dy):.3g} arcsec from the map's)")
            else:
                what = (f"a grid of shape {uimage.data.shape} that does not hold the "
                        f"map's {image.data.shape} pixels on the same sky positions")
            raise MapFormatError(
                f"{upath}: the uncertainty map has {what}: the uncertainty must "
                f"be on the map's pixels. Pass the *_dv0.fits made with "
                f"{path.name}, or regrid it first.")
        index.append(slice(first, first + maxis.size))
    return tuple(index)


def _orientation(image: _Image, path: Path):
    """The signs of the header's pixel steps (CDELT1, CDELT2) and the sky
    position (deg) of the image centre, or ``None`` for each where the
    header has no celestial grid."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs2 = _spatial_wcs(image.header, path)
            matrix = np.asarray(wcs2.pixel_scale_matrix, dtype=float)
            signs = (bool(matrix[0, 0] > 0), bool(matrix[1, 1] > 0))
            if not wcs2.has_celestial:
                return signs, None
            ny, nx = image.data.shape
            centre = wcs2.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
            return signs, (float(centre[0]), float(centre[1]))
    except Exception:  # no usable grid (force_center on a bare header)
        return None, None


def _fallback_uncertainty(data: np.ndarray, finite: np.ndarray, path: Path):
    """Uniform uncertainty [m/s] where ``data`` is finite, and its note."""
    values = data[finite]
    sigma = 0.1 * float(np.median(np.abs(values - np.median(values))))
    if not sigma > 0.0:
        sigma = 1.0
        how = "1 m/s (the map has no spread to scale from)"
    else:
        how = (f"{sigma:.4g} m/s (10% of the median absolute deviation of v0 about "
               "its median)")
    candidate = _bettermoments_uncertainty(path)
    missing = (f"{candidate.name} not found" if candidate is not None
               else "no bettermoments-style name (X_v0.fits -> X_dv0.fits) to look for")
    note = f"uniform fallback: {how}"
    warnings.warn(
        f"No uncertainty map given and {missing}: using a uniform uncertainty of "
        f"{how}. Pass uncertainty='...' to use a real one.", stacklevel=3)
    return np.where(finite, sigma, 0.0), note


def _native(a) -> np.ndarray:
    """Contiguous native-endian float64 copy of ``a``."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64))
