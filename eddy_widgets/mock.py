"""Mock observations: our model's rotation -> a spectral line cube -> v0 maps.

For tests, benchmarks, tutorials and classes: a rotation map made the way an
observed one is, so that what a fit of it should find is known. The steps:

1. the model's line-of-sight velocity ``v_model`` on the pixel grid
   (:func:`eddy_widgets.model.v0_map`, optionally averaged over sub-pixels);
2. a Gaussian line in every pixel, ``I(v) = peak(r) exp(-(v - v_model)^2 /
   linewidth^2)`` (``linewidth`` the Doppler width), each channel holding the
   line's mean over its width, ``peak(r)`` a Gaussian in the deprojected
   radius of the emission surface;
3. optionally Hanning smoothing along the spectral axis (``[1/4, 1/2, 1/4]``,
   ALMA's default spectral response);
4. every channel convolved with the beam (the package's own
   :func:`~eddy_widgets.model.beam_kernel`: FWHM in arcsec, position angle
   east of north);
5. noise: white Gaussian noise per channel, convolved with the same beam (and
   Hanning-smoothed along the spectral axis with ``hanning=True``, so that
   neighbouring channels are correlated as in ALMA data), scaled so that its
   standard deviation per channel is ``rms``;
6. the line centre ``v0``, its uncertainty ``dv0`` and the line peak ``Fnu``
   by the quadratic method of bettermoments (Teague & Foreman-Mackey 2018,
   RNAAS 2, 173; ``bettermoments.methods.collapse_quadratic``), given the
   true ``rms`` or, with ``noise_channels=N``, bettermoments' own estimate
   from the first and last ``N`` channels (``estimate_RMS``).

The noise-free cube goes through the same steps 1-4 and 6, giving
``v0_true``: the line centres as the beam and the channels leave them, which
is what a fit of the noisy map should find (the beam smears the model's
velocities, most near the star).

What the maps are like (4 seeds of the default 120 x 120 map, 3-pixel FWHM
beam, pixels 1-3.5 arcsec from the star at peak S/N 5-40; ``z = (v0 -
v0_true) / dv0``; ``tests/test_mock.py`` checks them on smaller maps):

- ``v0_true`` is within ~1 m/s of ``v_model`` (median), 100 m/s channels;
- independent channels, true rms: ``dv0`` is the scatter of ``v0`` where the
  S/N is high (robust std of ``z`` 1.03 at S/N 20-40) and too small below
  (1.12 at 10-20, 1.38 at 5-10, with 1-4% of pixels beyond 5 dv0): the
  quadratic method's linear propagation fails when the line's curvature over
  three channels is poorly measured. ``1 / dv0`` follows the S/N loosely
  (correlation ~0.5);
- ``hanning=True``: ``dv0`` too large by ~1/0.74 (the quadratic method
  assumes independent channels; bettermoments 2 can be given the channels'
  correlation, ``acf``, which the mock does not do), and nothing beyond
  5 dv0;
- ``noise_channels=N`` with edge channels that hold line emission (the inner
  disk's fast wings; e.g. ``nchan=51`` for the default disk): the rms, and
  with it ``dv0``, ~6 times too large. With the default ``nchan`` the edge
  channels are nearly line-free (rms ~1.1 times too large);
- ``z`` is correlated over the beam, but only where neighbouring pixels'
  lines peak in the same channels: the correlation of neighbours is ~0.7
  where the velocity changes by ~25 m/s per pixel, ~0.55 at ~50 m/s and ~0
  at ~150 m/s (1.5 channels) per pixel; Hanning smoothing correlates the
  channels and raises it (0.8, 0.7, 0.2).

bettermoments is the optional extra ``mock``: ``pip install
"eddy_widgets[mock]"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import math
from pathlib import Path
from typing import Callable

from astropy.io import fits
import numpy as np

from .atomic import write_atomic
from .model import beam_kernel, v0_map
from .model.pixels import pixel_coords
from .parameters import MODEL_PARAMETERS, PARAMETERS

__all__ = ["DEFAULT_PARAMS", "MockObservation", "mock_observation"]

#: The disk of :func:`mock_observation` when no parameters are given (arcsec,
#: deg, Msun, m/s, pc): Keplerian rotation, a flared emission surface.
DEFAULT_PARAMS = {"x0": 0.0, "y0": 0.0, "inc": 40.0, "PA": 60.0, "mstar": 1.5,
                  "vlsr": 5000.0, "dist": 100.0, "z0": 0.25, "psi": 1.25}

#: Sky position written in the headers [deg]: a made-up one.
RA, DEC = 180.0, -30.0

#: With ``nchan=None`` the channels cover the model's velocities of the
#: pixels at least this many beam FWHM from the disk centre, plus
#: ``COVER_MARGIN`` Doppler widths on each side. Closer in, the Keplerian
#: speed climbs out of any cube, as it does in real data: those pixels' line
#: centres land on the edge channels (bettermoments gives no dv0 there).
COVER_BEAMS = 2.0
COVER_MARGIN = 3.0

#: Hanning smoothing along the spectral axis.
HANNING = np.array([0.25, 0.5, 0.25])

_INSTALL = 'pip install "eddy_widgets[mock]"'


@dataclass
class MockObservation:
    """A mock rotation map and what it was made from.

    Maps are ``(ny, nx)`` arrays on the grid of ``xaxis`` / ``yaxis`` (rows
    north, x decreasing with the column index: the data arrays' layout).

    Attributes:
        v0, dv0: line centre and its uncertainty [m/s] by bettermoments'
            quadratic method. Where the brightest channel is the first or
            the last, bettermoments gives that channel's velocity as ``v0``
            and NaN as ``dv0``; NaN too where ``clip`` removed a pixel.
        Fnu, dFnu: line peak and its uncertainty [Jy/beam].
        v0_true: ``v0`` of the noise-free cube through the same pipeline:
            the beam-smeared, channelised line centres [m/s].
        Fnu_true: line peak of the noise-free cube [Jy/beam].
        v_model: the model's line-of-sight velocity at the pixel centres,
            no beam [m/s].
        xaxis, yaxis: sky offsets of the columns and rows from the image
            centre [arcsec] (x decreasing: east to the left).
        params: model parameters (names of :mod:`eddy_widgets.parameters`).
        beam: ``(bmaj, bmin, bpa)``: FWHM [arcsec] and position angle east
            of north [deg].
        pixel_scale: pixel size [arcsec].
        velax: channel velocities [m/s].
        rms: the noise per channel of the cube [Jy/beam].
        rms_used: the rms bettermoments was given [Jy/beam] (``rms``, or its
            estimate from the edge channels with ``noise_channels``).
        settings: every argument of :func:`mock_observation`, JSON-ready.
    """

    v0: np.ndarray
    dv0: np.ndarray
    Fnu: np.ndarray
    dFnu: np.ndarray
    v0_true: np.ndarray
    Fnu_true: np.ndarray
    v_model: np.ndarray
    xaxis: np.ndarray
    yaxis: np.ndarray
    params: dict
    beam: tuple[float, float, float]
    pixel_scale: float
    velax: np.ndarray
    rms: float
    rms_used: float
    settings: dict = field(default_factory=dict)

    @property
    def true_snr(self) -> np.ndarray:
        """Peak S/N of the noise-free cube, ``Fnu_true / rms``."""
        return self.Fnu_true / self.rms

    def header(self, bunit: str, what: str, name: str = "mock") -> fits.Header:
        """FITS header of a map of this grid: a SIN projection centred on the
        image centre (CDELT1 < 0: east to the left), the beam in degrees,
        ``bunit`` (``'m/s'`` or ``'Jy/beam'``) and ``what`` as its comment."""
        ny, nx = self.v0.shape
        h = fits.Header()
        h["BUNIT"] = (bunit, what)
        h["OBJECT"] = name
        h["BMAJ"] = (self.beam[0] / 3600.0, "deg")
        h["BMIN"] = (self.beam[1] / 3600.0, "deg")
        h["BPA"] = (self.beam[2], "deg")
        for axis, ctype, crval, cdelt, n in ((1, "RA---SIN", RA, -self.pixel_scale, nx),
                                             (2, "DEC--SIN", DEC, self.pixel_scale, ny)):
            h[f"CTYPE{axis}"] = ctype
            h[f"CRVAL{axis}"] = crval
            h[f"CDELT{axis}"] = cdelt / 3600.0
            h[f"CRPIX{axis}"] = 0.5 * (n + 1)
            h[f"CUNIT{axis}"] = "deg"
        h["RADESYS"] = "ICRS"
        h["EQUINOX"] = 2000.0
        h["COMMENT"] = "Mock observation (eddy_widgets.mock), not an observation."
        h["HISTORY"] = "Model line cube, beam, noise, bettermoments' quadratic method."
        h["HISTORY"] = "True parameters and settings in the _truths.json file."
        return h

    def write(self, folder, name: str = "mock", overwrite: bool = True) -> dict:
        """Write the maps as bettermoments does, plus the truths.

        Files in ``folder`` (created if needed): ``{name}_v0.fits``,
        ``{name}_dv0.fits`` (BUNIT ``'m/s'``), ``{name}_Fnu.fits``,
        ``{name}_dFnu.fits`` (``'Jy/beam'``), ``{name}_v0_true.fits`` (the
        noise-free cube's v0) and ``{name}_truths.json`` (``'truths'``: the
        model parameters; ``'settings'``, ``'units'``, ``'description'``).
        Each is written atomically. ``eddy_widgets.rotationmap(paths['v0'])``
        reads the map and finds its dv0 by bettermoments' naming.

        Returns:
            ``{'v0', 'dv0', 'Fnu', 'dFnu', 'v0_true', 'truths'}`` -> path
            (str).
        """
        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        maps = {"v0": (self.v0, "m/s", "line centre (quadratic method)"),
                "dv0": (self.dv0, "m/s", "uncertainty of v0"),
                "Fnu": (self.Fnu, "Jy/beam", "line peak (quadratic method)"),
                "dFnu": (self.dFnu, "Jy/beam", "uncertainty of Fnu"),
                "v0_true": (self.v0_true, "m/s", "v0 of the noise-free cube")}
        paths = {}
        for key, (values, bunit, what) in maps.items():
            hdu = fits.PrimaryHDU(np.asarray(values, dtype=np.float64),
                                  header=self.header(bunit, what, name))
            path = folder / f"{name}_{key}.fits"
            paths[key] = str(write_atomic(path, hdu.writeto, overwrite=overwrite))
        info = {
            "truths": {k: _jsonable(v) for k, v in self.params.items()},
            "units": {k: PARAMETERS[k].unit for k in self.params if k in PARAMETERS},
            "settings": self.settings,
            "description": (
                "Mock observation made by eddy_widgets.mock.mock_observation: the "
                "model's line-of-sight velocity -> a Gaussian line cube -> beam "
                "and noise -> v0, dv0, Fnu by bettermoments' quadratic method "
                "(Teague & Foreman-Mackey 2018). v0_true is the noise-free cube's "
                "v0. Not an observation."),
            "files": [Path(p).name for p in paths.values()],
        }
        text = json.dumps(info, indent=2) + "\n"
        path = folder / f"{name}_truths.json"
        paths["truths"] = str(write_atomic(path, lambda fh: fh.write(text.encode()),
                                           overwrite=overwrite))
        return paths


def _jsonable(value):
    """A parameter value for the truths file (a callable by its name)."""
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return value


def _bettermoments():
    """``(collapse_quadratic, estimate_RMS, version)`` from bettermoments, or
    an ImportError that says how to install it."""
    try:
        import bettermoments
        from bettermoments.collapse_cube import estimate_RMS
        from bettermoments.methods import collapse_quadratic
    except ImportError as err:
        raise ImportError(
            "Mock observations need bettermoments (its quadratic method makes "
            f"the v0 and dv0 maps): {_INSTALL}, or pip install bettermoments."
        ) from err
    return collapse_quadratic, estimate_RMS, getattr(bettermoments, "__version__", "?")


def _checked_params(params: dict | None) -> dict:
    """The model parameters of a mock (``DEFAULT_PARAMS`` for ``None``);
    unknown names are an error, never ignored."""
    params = dict(DEFAULT_PARAMS if params is None else params)
    unknown = sorted(k for k in params if k not in MODEL_PARAMETERS and k != "z_func")
    if unknown:
        raise ValueError(f"Unknown model parameter(s) {', '.join(map(repr, unknown))}: "
                         f"a mock takes the names of eddy_widgets.parameters "
                         f"({', '.join(MODEL_PARAMETERS)}).")
    return params


def _grid_axes(n: int, pixel_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Sky x (decreasing) and y offsets [arcsec] of an ``n x n`` grid's pixels
    from its centre."""
    offsets = pixel_scale * (np.arange(n) - 0.5 * (n - 1))
    return -offsets, offsets


def _channels(velax: np.ndarray, v_los: np.ndarray, peak: np.ndarray,
              linewidth: float) -> np.ndarray:
    """``(nchan, ny, nx)`` cube of a Gaussian line of Doppler width
    ``linewidth`` [m/s] centred on ``v_los`` with peak ``peak``, each channel
    holding the line's mean over its width (the channels' spacing)."""
    from scipy.special import erf

    width = abs(velax[1] - velax[0]) if velax.size > 1 else linewidth
    lo = (velax[:, None, None] - 0.5 * width - v_los[None]) / linewidth
    hi = (velax[:, None, None] + 0.5 * width - v_los[None]) / linewidth
    return peak[None] * (0.5 * math.sqrt(math.pi) * linewidth / width) * (erf(hi) - erf(lo))


def mock_observation(params: dict | None = None, *, npix: int = 120,
                     pixel_scale: float = 0.05,
                     beam: tuple[float, float, float] = (0.15, 0.15, 0.0),
                     channel_width: float = 100.0, nchan: int | None = None,
                     linewidth: float = 250.0, peak: float = 0.1,
                     peak_radius: float = 2.5,
                     intensity: Callable | None = None, rms: float = 0.002,
                     hanning: bool = False, noise_channels: int | None = None,
                     clip: float | None = None, oversample: int = 1,
                     seed: int = 0) -> MockObservation:
    """A mock rotation map of the model at ``params``, made through a line cube.

    Args:
        params: model parameters by name (:mod:`eddy_widgets.parameters`;
            values only: arcsec, deg, Msun, pc, m/s); missing names take the
            table's defaults. ``None``: :data:`DEFAULT_PARAMS`.
        npix: the map is ``npix x npix`` pixels.
        pixel_scale: pixel size [arcsec].
        beam: ``(bmaj, bmin, bpa)``: FWHM [arcsec] and position angle east of
            north [deg] of the Gaussian beam the channels and the noise are
            convolved with. A beam much smaller than a pixel leaves the
            pixels (and the noise) independent.
        channel_width: channel spacing [m/s].
        nchan: number of channels, centred on ``vlsr``. ``None``: enough to
            cover the model's velocities of the pixels at least
            :data:`COVER_BEAMS` beams from the disk centre, plus
            :data:`COVER_MARGIN` Doppler widths on each side.
        linewidth: Doppler width of the line [m/s] (``I ~ exp(-(v - v0)^2 /
            linewidth^2)``: ``linewidth = sqrt(2) sigma``).
        peak, peak_radius: the line's peak intensity before the beam
            [Jy/beam] is ``peak * exp(-(r / peak_radius)^2)``, ``r`` the
            deprojected radius of the emission surface [arcsec].
        intensity: instead, a function of that radius [arcsec] returning the
            peak intensity [Jy/beam] (numpy in, numpy out).
        rms: standard deviation of the noise per channel, after the beam
            (and Hanning smoothing) [Jy/beam].
        hanning: Hanning-smooth the cube, noise included, along the spectral
            axis (``[1/4, 1/2, 1/4]``): neighbouring channels' noise is then
            correlated (0.67 at one channel, 0.17 at two), which the
            quadratic method's dv0 does not know.
        noise_channels: ``None``: bettermoments is given the true ``rms``.
            An integer ``N``: it is given ``estimate_RMS(cube, N)``, the
            scatter of the first and last ``N`` channels over the central
            half of the map, as its command line does: too large when those
            channels hold line emission.
        clip: if given, pixels whose line peak ``Fnu`` is below ``clip`` times
            the rms bettermoments was given are NaN in ``v0``, ``dv0``,
            ``Fnu`` and ``dFnu`` (a simple form of bettermoments' ``-clip``).
            ``v0_true`` is never clipped.
        oversample: the model's velocity and intensity are averaged over
            ``oversample x oversample`` sub-pixels (the line of every
            sub-pixel enters the cube), which matters where the velocity
            changes within a pixel (near the star).
        seed: seed of the noise (``numpy.random.default_rng``).

    Returns:
        :class:`MockObservation` (its ``write`` gives bettermoments-style
        FITS files).

    Raises:
        ImportError: bettermoments is not installed (``pip install
            "eddy_widgets[mock]"``).
        ValueError: an unknown parameter name or a bad setting.

    Example:
        >>> from eddy_widgets.mock import mock_observation
        >>> obs = mock_observation(seed=1)
        >>> paths = obs.write("mocks", "disk")
        >>> from eddy_widgets import rotationmap
        >>> cube = rotationmap(paths["v0"], uncertainty=paths["dv0"])
    """
    collapse_quadratic, estimate_RMS, bm_version = _bettermoments()
    params = _checked_params(params)
    bmaj, bmin, bpa = (float(b) for b in beam)
    if not (npix >= 8 and pixel_scale > 0 and bmaj >= bmin > 0):
        raise ValueError("Need npix >= 8, pixel_scale > 0 and beam = (bmaj, bmin, "
                         "bpa) with bmaj >= bmin > 0 (arcsec).")
    if not (channel_width > 0 and linewidth > 0 and rms > 0 and oversample >= 1):
        raise ValueError("channel_width, linewidth and rms must be positive, "
                         "oversample at least 1.")
    if nchan is not None and nchan < 3:
        raise ValueError("The quadratic method needs at least 3 channels.")

    # The grid, padded by the beam kernel's half-width so that the beam
    # convolution sees emission (and noise) beyond the map's edge.
    kernel = beam_kernel(bmaj, bmin, bpa, pixel_scale)
    half = kernel.shape[0] // 2
    xaxis, yaxis = _grid_axes(npix, pixel_scale)
    xpad, ypad = _grid_axes(npix + 2 * half, pixel_scale)
    inner = (slice(half, half + npix),) * 2

    # The model's line-of-sight velocity at the pixel centres, and the
    # channels that cover it.
    v_model = np.asarray(v0_map(xpad, ypad, params), dtype=float)
    r_disk = pixel_coords(xpad, ypad, params)[0]
    vlsr = float(params.get("vlsr", PARAMETERS["vlsr"].default))
    if nchan is None:
        covered = (r_disk >= COVER_BEAMS * bmaj) & np.isfinite(v_model)
        reach = np.max(np.abs(v_model[covered] - vlsr)) if covered.any() else 0.0
        reach += COVER_MARGIN * linewidth
        nchan = 2 * int(math.ceil(reach / channel_width)) + 1
    velax = vlsr + channel_width * (np.arange(nchan) - 0.5 * (nchan - 1))
    # Hanning smoothing needs one more channel on each side.
    extra = 1 if hanning else 0
    velax_ext = vlsr + channel_width * (np.arange(-extra, nchan + extra)
                                        - 0.5 * (nchan - 1))

    def peak_of(r):
        r = np.where(np.isfinite(r), r, np.inf)
        if intensity is not None:
            return np.asarray(intensity(r), dtype=float)
        return peak * np.exp(-(r / peak_radius) ** 2)

    # The line cube, averaged over sub-pixels.
    sub = pixel_scale * ((np.arange(oversample) + 0.5) / oversample - 0.5)
    cube = np.zeros((velax_ext.size, npix + 2 * half, npix + 2 * half))
    for dy in sub:
        for dx in sub:
            if oversample == 1:
                v, r = v_model, r_disk
            else:
                v = np.asarray(v0_map(xpad + dx, ypad + dy, params), dtype=float)
                r = pixel_coords(xpad + dx, ypad + dy, params)[0]
            cube += _channels(velax_ext, np.nan_to_num(v, nan=vlsr), peak_of(r),
                              linewidth)
    cube /= oversample ** 2

    # Noise on the padded grid, white per channel before beam and Hanning.
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(cube.shape)
    cube = _smooth(cube, kernel, hanning)
    noise = _smooth(noise, kernel, hanning)
    # Unit variance: the convolutions scaled white noise's variance by the
    # sum of the squared kernel weights.
    gain = np.sum(kernel ** 2) * (np.sum(HANNING ** 2) if hanning else 1.0)
    noisy = cube + noise * (rms / math.sqrt(gain))

    rms_used = float(rms if noise_channels is None
                     else estimate_RMS(noisy, int(noise_channels)))
    with np.errstate(invalid="ignore", divide="ignore"):
        v0, dv0, Fnu, dFnu = collapse_quadratic(velax, noisy, rms_used)
        v0_true, _, Fnu_true, _ = collapse_quadratic(velax, cube, rms_used)
    if clip is not None:
        with np.errstate(invalid="ignore"):
            low = ~(Fnu >= clip * rms_used)
        for a in (v0, dv0, Fnu, dFnu):
            a[low] = np.nan

    settings = {
        "npix": int(npix), "pixel_scale": float(pixel_scale),
        "beam": [bmaj, bmin, bpa], "channel_width": float(channel_width),
        "nchan": int(nchan), "velax_first": float(velax[0]),
        "linewidth": float(linewidth), "peak": float(peak),
        "peak_radius": float(peak_radius),
        "intensity": None if intensity is None else _jsonable(intensity),
        "rms": float(rms), "rms_used": rms_used, "hanning": bool(hanning),
        "noise_channels": None if noise_channels is None else int(noise_channels),
        "clip": None if clip is None else float(clip), "oversample": int(oversample),
        "seed": int(seed), "bettermoments": bm_version, "method": "quadratic",
    }
    return MockObservation(
        v0=v0, dv0=dv0, Fnu=Fnu, dFnu=dFnu, v0_true=v0_true, Fnu_true=Fnu_true,
        v_model=v_model[inner], xaxis=xaxis, yaxis=yaxis, params=params,
        beam=(bmaj, bmin, bpa), pixel_scale=float(pixel_scale), velax=velax,
        rms=float(rms), rms_used=rms_used, settings=settings)


def _smooth(cube: np.ndarray, kernel: np.ndarray, hanning: bool) -> np.ndarray:
    """Convolve every channel of a padded cube with the beam ``kernel`` and,
    with ``hanning``, the spectra with :data:`HANNING`; keep only the
    pixels (and channels) the kernels covered whole."""
    from scipy.signal import fftconvolve

    out = fftconvolve(cube, kernel[None], mode="valid", axes=(1, 2))
    if hanning:
        out = HANNING[0] * out[:-2] + HANNING[1] * out[1:-1] + HANNING[2] * out[2:]
    return out
