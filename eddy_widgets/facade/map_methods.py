"""astro-eddy's ``rotationmap`` attributes and its methods on the map's
grid: the data's attributes (``ivar``, ``mask``, ``nxpix``, ``vlsr_kms``,
``extent_au``, ...), ``downsample_cube`` and ``clip_cube_spatial``, disk-frame
coordinates (``disk_coords``), region masks (``get_mask``) and models
(``evaluate_models``). A mixin of :class:`eddy_widgets.rotationmap.rotationmap`;
the map itself is ``self.map``, a :class:`~eddy_widgets.data.RotationMapData`.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from ..data import clipped, downsampled
from ..inference.spec import FitSpec
from ..model import FLARED_NITER, beam_kernel, complete, rotation_speed, v0_map
from ..model.pixels import pixel_coords, region_mask
from ..model.velocity import MSUN
from ..parameters import MASK_SETTINGS, MODEL_PARAMETERS, PARAMETERS

#: Attributes of the map that scripts may assign, as in astro-eddy
#: (``cube.error = ...``); they go to the map the fit reads.
MAP_FIELDS = ("data", "error", "xaxis", "yaxis", "bmaj", "bmin", "bpa", "header",
              "path")


class MapMethods:
    """The map's attributes, coordinates, masks and models (astro-eddy's names)."""

    #: Solar mass [kg] and FWHM / sigma of a Gaussian, as astro-eddy's.
    msun = MSUN
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0))
    #: Fixed-point iterations of the flared deprojection.
    flared_niter = FLARED_NITER

    # -- Data access -----------------------------------------------------------

    def __getattr__(self, name):
        # data, error, xaxis, yaxis, dpix, bmaj, ..., nxpix, mask, extent_au, ...
        if name != "map" and "map" in self.__dict__ and hasattr(self.map, name):
            return getattr(self.map, name)
        raise AttributeError(name)

    def __setattr__(self, name, value):
        if name in MAP_FIELDS and "map" in self.__dict__:
            if name in ("data", "error"):
                value = np.ascontiguousarray(np.broadcast_to(
                    np.asarray(value, dtype=np.float64), self.map.shape))
                if name == "error":
                    value = np.where(np.isfinite(value), np.abs(value), 0.0)
            setattr(self.map, name, value)
            return
        super().__setattr__(name, value)

    @property
    def vlsr(self) -> float:
        """Median line-of-sight velocity of the data [m/s]."""
        return float(np.nanmedian(self.map.data))

    @property
    def vlsr_kms(self) -> float:
        """Median line-of-sight velocity of the data [km/s]."""
        return self.vlsr / 1e3

    @property
    def FOV(self) -> float:  # noqa: N802 - astro-eddy's name
        """Field of view [arcsec]: the mean span of the pixel centres along x
        and y (astro-eddy's ``FOV`` property)."""
        xaxis, yaxis = self.map.xaxis, self.map.yaxis
        return float(np.mean([xaxis[0] - xaxis[-1], yaxis[-1] - yaxis[0]]))

    @property
    def ivar(self) -> np.ndarray:
        """Inverse variance ``error**-2`` [s^2 m^-2] of the pixels the last fit
        used, 0 elsewhere (astro-eddy sets it in ``fit_map``); before a fit,
        of every pixel with finite data and ``error > 0``."""
        error = self.map.error
        mask = self._fit_mask
        if mask is None or mask.shape != error.shape:
            mask = np.isfinite(self.map.data) & (error > 0.0)
        with np.errstate(divide="ignore"):
            return np.where(mask, error ** -2.0, 0.0)

    def print_beam(self) -> None:
        """Print the beam: major x minor axis [arcsec] at position angle [deg]."""
        print('{:.2f}" x {:.2f}" at {:.1f} deg'.format(*self.map.beam))

    @staticmethod
    def backend() -> str:
        """The device JAX computes on: ``'cpu'``, ``'gpu'`` or ``'tpu'``."""
        return jax.default_backend()

    def downsample_cube(self, N, randomize: bool = False) -> None:
        """Keep every ``N``-th pixel (``'beam'``: ``ceil(bmaj / dpix)``), from
        pixel ``N // 2`` or, with ``randomize``, a random one in each axis."""
        offset = None
        if randomize:
            step = int(np.ceil(self.map.bmaj / self.map.dpix)) if N == "beam" else N
            offset = tuple(np.random.randint(0, max(int(step), 1), 2))
        self.map = downsampled(self.map, N, offset)
        self._fit_mask = None

    def clip_cube_spatial(self, FOV: float) -> None:
        """Clip the map (and its uncertainty) to a square field of view of side
        ``FOV`` [arcsec]; a FOV larger than the map is a ``ValueError``."""
        self.map = clipped(self.map, FOV)
        self._fit_mask = None

    def force_relative_offset_axes(self) -> None:
        """Make the axes evenly spaced offsets from the image centre [arcsec]."""
        dx = 0.5 * (self.map.xaxis.max() - self.map.xaxis.min())
        dy = 0.5 * (self.map.yaxis.max() - self.map.yaxis.min())
        self.map.xaxis = np.linspace(dx, -dx, self.map.nxpix)
        self.map.yaxis = np.linspace(-dy, dy, self.map.nypix)

    # -- Disk coordinates and masks ------------------------------------------------

    def disk_coords(self, x0=0.0, y0=0.0, inc=0.0, PA=0.0, z0=None, psi=None,
                    r_cavity=0.0, r_taper=None, q_taper=1.0, z_func=None,
                    shadowed=False, outframe="cylindrical", flatten=False, **kwargs):
        """Disk-frame coordinates of every pixel (astro-eddy's arguments).

        Args:
            x0, y0: disk centre [arcsec].
            inc, PA: inclination and position angle [deg].
            z0, psi, r_cavity, r_taper, q_taper: emission surface [arcsec];
                ``z0=None`` is a flat disk, ``psi=None`` means 1 and
                ``r_taper=None`` no taper.
            z_func: a JAX-traceable ``z(r)`` [arcsec -> arcsec] replacing the
                analytic surface.
            shadowed: astro-eddy's slower deprojection; not supported.
            outframe: ``'cylindrical'`` for ``(r, phi, z)`` [arcsec, rad,
                arcsec] or ``'cartesian'`` for ``(x, y, z)`` [arcsec].
            flatten: return 1-D arrays.
        """
        outframe = str(outframe).lower()
        if outframe not in ("cylindrical", "cartesian"):
            raise ValueError("outframe must be 'cylindrical' or 'cartesian'.")
        _refuse_shadowed(shadowed)
        _warn_warps(kwargs)
        params = {"x0": x0, "y0": y0, "inc": inc, "PA": PA, "z0": z0, "psi": psi,
                  "r_cavity": r_cavity, "r_taper": r_taper, "q_taper": q_taper,
                  "z_func": z_func}
        r, t, z = pixel_coords(self.map.xaxis, self.map.yaxis, params,
                               self.flared_niter)
        if flatten:
            r, t, z = r.ravel(), t.ravel(), z.ravel()
        if outframe == "cylindrical":
            return r, t, z
        return r * np.cos(t), r * np.sin(t), z

    def get_mask(self, r_min=None, r_max=None, exclude_r=False, phi_min=None,
                 phi_max=None, exclude_phi=False, abs_phi=False, x0=0.0, y0=0.0,
                 inc=0.0, PA=0.0, z0=0.0, psi=1.0, r_cavity=0.0, r_taper=np.inf,
                 q_taper=1.0, w_i=None, w_r=None, w_t=None, z_func=None,
                 shadowed=False, mask_frame="disk", user_mask=None) -> np.ndarray:
        """Pixels in a region of the disk (``mask_frame='disk'``) or of the sky
        about ``(x0, y0)`` (``'sky'``: inc, PA and the surface are ignored).

        Radii in [arcsec], polar angles ``phi`` in [deg] (0 on the red-shifted
        major axis); ``None`` limits are the map's extremes. Returns a boolean
        map, times ``user_mask`` when one is given (astro-eddy's).
        """
        mask_frame = str(mask_frame).lower()
        if mask_frame not in ("disk", "sky"):
            raise ValueError("mask_frame must be 'disk' or 'sky'.")
        if mask_frame == "sky":
            inc, PA = 0.0, 0.0
        r, phi, _ = self.disk_coords(x0, y0, inc, PA, z0, psi, r_cavity, r_taper,
                                     q_taper, z_func, shadowed, w_i=w_i, w_r=w_r,
                                     w_t=w_t)
        mask = region_mask(r, phi, r_min, r_max, exclude_r, phi_min, phi_max,
                           exclude_phi, abs_phi)
        if not mask.any():
            raise ValueError("There are zero pixels in the mask.")
        return mask if user_mask is None else mask * np.asarray(user_mask)

    # -- Parameters ------------------------------------------------------------

    @property
    def default_parameters(self) -> dict:
        """Default value and prior of every parameter, in the layout of
        astro-eddy's ``default_parameters.yml``: ``{name: {'default': ...,
        'prior_type': 'flat' | 'gaussian', 'prior_values': [a, b]}}``."""
        return {name: {"default": p.default, "prior_type": p.prior[0],
                       "prior_values": list(p.prior[1])}
                for name, p in PARAMETERS.items()}

    def verify_params_dictionary(self, params: dict) -> dict:
        """``params`` checked and completed with the defaults of every model
        parameter and mask setting (astro-eddy's, without its internal
        ``vfunc`` / ``vortex`` / ``vradial`` entries)."""
        FitSpec.parse(params)
        out = {name: PARAMETERS[name].default for name in MODEL_PARAMETERS}
        out.update(MASK_SETTINGS)
        out.update(z_func=None, shadowed=False)
        out.update(params)
        return out

    # -- Models ------------------------------------------------------------------

    def evaluate_models(self, samples=None, params=None, draws=50,
                        collapse_func=np.median, coords_only=False,
                        profile_only=False):
        """The model of ``params`` on this map's grid (astro-eddy's meanings).

        Args:
            samples: ``(n, nfree)`` samples of the free parameters of
                ``params``, or ``None`` if ``params`` gives every value.
            params: the ``params`` dict of ``fit_map`` (or of values).
            draws: an int: that many random draws from ``samples`` are
                evaluated and collapsed with ``collapse_func``; a float in
                [0, 1]: the model at that percentile of the samples (0.5 is
                the median; astro-eddy reads it in percent, see
                docs/astro_eddy_compatibility.md).
            collapse_func: how draws are combined (takes ``axis``).
            coords_only: return the disk coordinates ``(r, phi, z)``
                [arcsec, rad, arcsec] instead (an array of three maps when
                draws are collapsed).
            profile_only: return ``(r, v_phi)``: every pixel's radius [arcsec],
                sorted, and the rotation speed there [m/s] (with the height
                of the surface, not projected).

        Returns:
            The v0 model map [m/s], or the coordinates or profile above.
        """
        if params is None:
            raise ValueError("Must provide the model parameters dictionary.")
        spec = FitSpec.parse(dict(params))
        many = (samples is not None and isinstance(draws, (int, np.integer))
                and draws > 1)
        one = self._model_function(spec, coords_only, profile_only, compiled=many)
        if samples is None:
            if spec.free:
                raise ValueError(f"params has free parameters ({', '.join(spec.free)}) "
                                 f"but no samples were given.")
            return one(np.zeros(0))
        samples = np.atleast_2d(np.asarray(samples, dtype=float))
        if samples.shape[1] != spec.ndim:
            raise ValueError(f"samples have {samples.shape[1]} columns but params has "
                             f"{spec.ndim} free parameters.")
        if not callable(collapse_func):
            raise ValueError("'collapse_func' must be callable.")
        if isinstance(draws, (float, np.floating)) and 0.0 <= draws <= 1.0:
            return one(np.percentile(samples, 100.0 * draws, axis=0))
        if isinstance(draws, (bool, np.bool_)) or not isinstance(
                draws, (int, np.integer)) or draws < 1:
            raise ValueError(f"draws must be an int >= 1 (random draws, collapsed) or "
                             f"a float in [0, 1] (a percentile of the samples, 0.5 "
                             f"the median), got {draws!r}.")
        picks = np.random.default_rng(0).integers(0, samples.shape[0], int(draws))
        models = [one(samples[i]) for i in picks]
        if profile_only:
            return (collapse_func([m[0] for m in models], axis=0),
                    collapse_func([m[1] for m in models], axis=0))
        return collapse_func(models, axis=0)

    def _model_function(self, spec: FitSpec, coords_only: bool, profile_only: bool,
                        compiled: bool = False):
        """``theta -> model`` (or coordinates, or profile) for
        :meth:`evaluate_models`; the model is compiled once if ``compiled``
        (worth it for many draws)."""
        xaxis, yaxis = self.map.xaxis, self.map.yaxis
        if coords_only or profile_only:
            def one(theta):
                params = spec.model_params(theta)
                r, t, z = pixel_coords(xaxis, yaxis, params, self.flared_niter)
                if coords_only:
                    return r, t, z
                order = np.argsort(r.ravel())
                r, z = r.ravel()[order], z.ravel()[order]
                return r, np.asarray(rotation_speed(r, z, complete(params)))
            return one
        kernel = None
        if spec.mask.get("beam"):
            kernel = beam_kernel(self.map.bmaj, self.map.bmin, self.map.bpa,
                                 self.map.dpix)
        def model(theta):
            return v0_map(xaxis, yaxis, spec.model_params(theta), kernel,
                          self.flared_niter)

        model = jax.jit(model) if compiled else model
        return lambda theta: np.asarray(model(np.asarray(theta, dtype=float)))


def _refuse_shadowed(shadowed) -> None:
    if shadowed:
        raise NotImplementedError(
            "shadowed=True (astro-eddy's slower deprojection of self-shadowed "
            "surfaces, which regrids a disk-frame grid onto the sky) is not "
            "supported: the model finds one surface point per line of sight. Use "
            "shadowed=False.")


def _warn_warps(kwargs: dict) -> None:
    """astro-eddy 3.2 accepts and ignores warp parameters; say so."""
    given = [k for k in ("w_i", "w_r", "w_t") if kwargs.get(k) is not None]
    if given:
        warnings.warn(f"{', '.join(given)}: warps are not modelled (astro-eddy 3.2 "
                      f"ignores them too); the disk is not warped.", stacklevel=3)


def choices(value, allowed, default, what) -> list[str]:
    """A ``plots`` or ``returns`` argument of the facade's methods as a list of
    lower-case names from ``allowed`` (``default`` for ``None``; ``'none'``
    among plots means no plot)."""
    if value is None:
        return list(default)
    items = [str(v).lower() for v in np.atleast_1d(value)]
    bad = [v for v in items if v not in allowed]
    if bad:
        raise ValueError(f"Unknown {what} {bad}: choose from {', '.join(allowed)}.")
    return [] if "none" in items and what == "plots" else items
