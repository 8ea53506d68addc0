"""Maps on a rotation map's pixel grid written to FITS.

The header of a written map is the header of the map as read, with its pixel
grid rebuilt by ``astropy.wcs`` for the pixels kept in memory (FOV clipping,
downsampling and the reader's axis flips): ``CRPIX``, ``CDELT`` and, for a
rotated grid, ``PC`` are set so that every written pixel has the world
coordinates (RA, Dec) of the pixel it came from. The beam (``BMAJ``,
``BMIN``, ``BPA``) is the map's, and ``BUNIT`` says the unit of the values
written (``'m/s'`` for velocities: maps read in km/s are in m/s in memory).

Files are written to a temporary file in the destination's folder and renamed
over it only when complete, so a failed write (a full disk, a kill) leaves
any earlier file whole; with ``overwrite=False`` an existing file is never
replaced (:class:`FileExistsError`).
"""

from __future__ import annotations

from pathlib import Path
import re
import warnings

from astropy.io import fits
from astropy.wcs import WCS
import numpy as np

from ..atomic import write_atomic
from ..data import RotationMapData
from ..data.fits_io import _sky_grid, _spatial_wcs

__all__ = ["grid_wcs", "map_header", "output_paths", "write_map"]

#: Header keywords that describe the file's layout, its pixel grid or its
#: beam and unit: rebuilt for the written map, never copied from the input.
#: Axis keywords of every axis (and of alternate WCSs, e.g. ``CTYPE1A``) go.
_REBUILT = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|BSCALE|BZERO|BLANK|DATAMIN|DATAMAX|"
    r"CHECKSUM|DATASUM|WCSAXES[A-Z]?|WCSNAME[A-Z]?|LONPOLE[A-Z]?|LATPOLE[A-Z]?|"
    r"(CTYPE|CRVAL|CDELT|CRPIX|CUNIT|CROTA|CRDER|CSYER|CNAME)\d+[A-Z]?|"
    r"(PC|CD|PV|PS)\d+_\d+[A-Z]?|PC0\d+_0\d+|BUNIT|BMAJ|BMIN|BPA|CASAMBM)$")

#: Relative tolerance for matching in-memory offsets to the file's pixels.
_MATCH_RTOL = 1e-6


def _index_map(axis_in_memory: np.ndarray, axis_in_file: np.ndarray, what: str):
    """``(first, step)`` with ``file index = first + step * memory index``.

    ``axis_in_file`` are the reader's offsets of the file's pixels before any
    flip, clip or downsampling; ``axis_in_memory`` those kept, in memory order.
    """
    spacing = np.abs(np.diff(axis_in_file)).mean() if axis_in_file.size > 1 else 1.0
    idx = np.array([np.argmin(np.abs(axis_in_file - v)) for v in axis_in_memory])
    if not np.allclose(axis_in_file[idx], axis_in_memory, rtol=0.0,
                       atol=_MATCH_RTOL * spacing):
        raise ValueError(f"the {what} offsets in memory are not pixels of the file "
                         "read: the map's axes were changed after reading, so its "
                         "pixel grid cannot be written. Pass a header.")
    step = int(idx[1] - idx[0]) if idx.size > 1 else 1
    if step == 0 or np.any(idx != idx[0] + step * np.arange(idx.size)):
        raise ValueError(f"the {what} pixels in memory are not evenly spaced pixels "
                         "of the file read. Pass a header.")
    return int(idx[0]), step


def grid_wcs(data: RotationMapData) -> WCS:
    """The celestial WCS of the map's pixel grid as held in memory.

    Pixel ``(column, row)`` of ``data.data`` has, under this WCS, the world
    coordinates that the file's WCS gives to the pixel it was read from. The
    input's pixel-scale matrix (``CDELT``, ``PC x CDELT`` or ``CD``) is
    written as ``CDELT`` (the pixel size, signed as the axis runs) times a
    ``PC`` matrix that is the identity on an unrotated grid, which astro-eddy
    (reading ``CDELT`` only) also reads right.

    Args:
        data: the map as read (:func:`eddy_widgets.data.read_rotation_map`).

    Returns:
        A two-axis :class:`astropy.wcs.WCS` with ``pixel_shape = (nx, ny)``.
    """
    header, path = data.header, Path(data.path)
    with warnings.catch_warnings():
        # A rotated grid was reported when the map was read.
        warnings.simplefilter("ignore")
        wcs_file = _spatial_wcs(header, path)
        if _pixel_axes(data):
            nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
            x_file = -(np.arange(nx) - 0.5 * (nx - 1.0))
            y_file = np.arange(ny) - 0.5 * (ny - 1.0)
        else:
            x_file, y_file, _ = _sky_grid(header, path)
    first_x, step_x = _index_map(data.xaxis, x_file, "x")
    first_y, step_y = _index_map(data.yaxis, y_file, "y")
    steps = np.array([step_x, step_y], dtype=float)
    firsts = np.array([first_x, first_y], dtype=float)
    # FITS pixel P_file = first + step * (P_new - 1) + 1 (1-based), so
    # P_file - CRPIX = step * (P_new - CRPIX_new).
    crpix = (wcs_file.wcs.crpix - firsts - 1.0) / steps + 1.0
    matrix = np.asarray(wcs_file.pixel_scale_matrix, dtype=float) * steps[None, :]
    cdelt = np.hypot(matrix[:, 0], matrix[:, 1])
    cdelt *= np.where(np.diag(matrix) < 0.0, -1.0, 1.0)
    pc = matrix / cdelt[:, None]

    out = wcs_file.to_header()
    grid_keys = re.compile(r"^(PC|CD)\d+_\d+$|^CDELT\d+$|^CRPIX\d+$")
    for key in [k for k in out if grid_keys.match(k)]:
        del out[key]
    for j in (0, 1):
        out[f"CRPIX{j + 1}"] = float(crpix[j])
        out[f"CDELT{j + 1}"] = float(cdelt[j])
    if not np.allclose(pc, np.eye(2), rtol=0.0, atol=1e-12):
        for i in (0, 1):
            for j in (0, 1):
                out[f"PC{i + 1}_{j + 1}"] = float(pc[i, j])
    wcs = WCS(out)
    wcs.pixel_shape = (data.xaxis.size, data.yaxis.size)
    return wcs


def _pixel_axes(data: RotationMapData) -> bool:
    """Whether the map's axes are pixel offsets (astro-eddy's
    ``force_center``), not arcsec read from the header."""
    return bool(getattr(data, "force_center", False))


def map_header(data: RotationMapData, bunit: str = "m/s",
               history: str | None = None) -> fits.Header:
    """Header for a 2-D map on ``data``'s grid: the input header's own
    keywords (object, telescope, rest frequency, history, ...), the grid of
    :func:`grid_wcs`, the beam and ``BUNIT``.

    Args:
        data: the map as read.
        bunit: unit of the values to be written (``'m/s'`` for velocities).
        history: a line added as ``HISTORY``.

    Returns:
        An :class:`astropy.io.fits.Header` without ``SIMPLE`` / ``BITPIX`` /
        ``NAXIS`` (set by the writer from the array).
    """
    header = fits.Header()
    for card in data.header.cards:
        if not _REBUILT.match(card.keyword):
            header.append(card)
    header.update(grid_wcs(data).to_header())
    header["BUNIT"] = (bunit, "unit of the values")
    if _pixel_axes(data):
        # The beam in memory is in pixels: the file's own beam is kept.
        for key in ("BMAJ", "BMIN", "BPA"):
            if key in data.header:
                header[key] = data.header[key]
    else:
        header["BMAJ"] = (data.bmaj / 3600.0, "[deg] beam FWHM, major axis")
        header["BMIN"] = (data.bmin / 3600.0, "[deg] beam FWHM, minor axis")
        header["BPA"] = (data.bpa, "[deg] beam position angle, east of north")
    grid = []
    if data.FOV is not None:
        grid.append(f"FOV = {data.FOV:g} arcsec")
    if data.downsample not in (None, 1):
        grid.append(f"downsample = {data.downsample}")
    # A header holds printable ASCII only: other characters of the file's
    # name as Python escapes (Scheibe_\xfc_v0.fits).
    name = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii")
                   for c in Path(data.path).name)
    header["HISTORY"] = (f"eddy_widgets: on the grid of {name}"
                         + (f" ({', '.join(grid)})" if grid else "") + ".")
    if history:
        header["HISTORY"] = history
    return header


def output_paths(paths, overwrite: bool) -> list[Path]:
    """``paths`` as :class:`Path`; with ``overwrite=False`` a
    :class:`FileExistsError` naming every one that exists."""
    paths = [Path(p).expanduser() for p in paths]
    if not overwrite:
        existing = [str(p) for p in paths if p.exists()]
        if existing:
            one = len(existing) == 1
            raise FileExistsError(
                f"{', '.join(existing)} already exist{'s' if one else ''} and "
                f"overwrite=False: nothing was written. Pass overwrite=True to "
                f"replace {'it' if one else 'them'}, or choose another file name.")
    return paths


def write_map(path, values, header: fits.Header, overwrite: bool = False) -> Path:
    """Write ``values`` with ``header`` as a FITS image, atomically.

    Args:
        path: the file to write.
        values: the image, ``(ny, nx)`` (or any shape ``header`` describes).
        header: its header (e.g. :func:`map_header`).
        overwrite: replace an existing file; if ``False`` an existing file is
            a :class:`FileExistsError` and is left untouched.

    Returns:
        The path written.
    """
    path = output_paths([path], overwrite)[0]
    hdu = fits.PrimaryHDU(np.asarray(values), header=header)
    return write_atomic(path, hdu.writeto, overwrite=overwrite)
