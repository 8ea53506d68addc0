"""Parse astro-eddy's ``params`` dictionary into free, fixed and mask settings.

In ``params``, an ``int`` is the index of a free parameter in ``p0``, a float
(or ``None``) is a fixed value, booleans are flags. Missing model parameters
take the default of the parameter table; missing mask settings take
astro-eddy's defaults. ``params['z_func']`` (astro-eddy's user emission
surface: radius [arcsec] -> height [arcsec], JAX-traceable) replaces the
analytic surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import difflib
import math
import warnings

import numpy as np

from ..parameters import (
    MASK_SETTINGS,
    MODEL_PARAMETERS,
    NOISE_PARAMETERS,
    NOISE_SETTINGS,
    PARAMETERS,
    combination_error,
)


class FitInputError(ValueError):
    """An argument of ``fit_map`` / ``prepare_fit`` that cannot be used; the
    message says what to change. Raised before any optimisation or
    compilation."""


def as_p0(p0, free=None) -> np.ndarray:
    """``p0`` as a 1-D float array (a single number is one value).

    Raises :class:`FitInputError` for ``None``, non-numbers and arrays of
    more than one dimension (e.g. one row per walker); ``free`` (the names of
    the free parameters) makes the message say how many values are expected.
    """
    expected = ("" if free is None else
                f" params has {len(free)} free parameters ({', '.join(free)}).")
    if p0 is None:
        raise FitInputError("p0 is missing: give the start values of the free "
                            "parameters, in the order of their indices in params."
                            + expected)
    try:
        array = np.asarray(p0, dtype=float)
    except (TypeError, ValueError):
        raise FitInputError(f"p0 must be a 1-D list of numbers (one start value per "
                            f"free parameter), got {p0!r}.{expected}") from None
    if array.ndim > 1:
        raise FitInputError(f"p0 must be 1-D (one start value per free parameter), "
                            f"got an array of shape {array.shape}.{expected} For a "
                            f"single start pass e.g. p0[0] or np.ravel(p0); the "
                            f"emcee walkers are spread around p0 by the 'scatter' "
                            f"option.")
    return np.atleast_1d(array)


#: The analytic surface's parameters, which a user ``z_func`` replaces.
SURFACE_PARAMETERS = ("z0", "psi", "r_cavity", "r_taper", "q_taper")

#: astro-eddy 3.2's ``params`` that this model does not have (warps, the
#: pressure term, the velocity tapers, the vortex), with astro-eddy's
#: defaults (its ``default_parameters.yml``). Its ``fit_map(returns='dict')``
#: holds every one, and so does ours: they are accepted at these values, so
#: that such a dict goes back into ``evaluate_models`` or ``fit_map``, and
#: refused at any other.
ASTRO_EDDY_UNMODELLED: dict = {
    "w_i": None, "w_r": None, "w_t": None,
    "r_pressure": None, "w_pressure": None,
    "vp_rtaper": None, "vp_qtaper": None, "vr_rtaper": None, "vr_qtaper": None,
    "r0_vortex": None, "p0_vortex": None, "chi_vortex": 5.0, "r_vortex": 0.1,
    "w_vortex": 0.05, "v_vortex": 20.0,
}
#: Entries astro-eddy's ``verify_params_dictionary`` derives from the others
#: (the rotation law, whether there is a vortex, a radial velocity): ignored
#: here, where the same is read from the parameters themselves.
ASTRO_EDDY_DERIVED = ("vfunc", "vortex", "vradial")


def is_index(value) -> bool:
    """Whether a ``params`` value marks a free parameter (an int, not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class FitSpec:
    """What is free, what is fixed and how the map is masked."""

    free: tuple[str, ...]
    fixed: dict = field(default_factory=dict)
    mask: dict = field(default_factory=dict)
    #: A user emission surface ``z(r)`` [arcsec -> arcsec], or ``None``.
    z_func: object = None

    @property
    def ndim(self) -> int:
        return len(self.free)

    @classmethod
    def parse(cls, params: dict, p0=None) -> "FitSpec":
        """Validate ``params`` (and ``p0`` if given) and split them.

        Raises ``ValueError`` with a message that names the offending key.
        """
        if not isinstance(params, dict):
            raise TypeError("params must be a dict such as {'mstar': 0, 'inc': 46.7}.")
        known = (set(PARAMETERS) | set(MASK_SETTINGS) | {"z_func", "shadowed"}
                 | set(ASTRO_EDDY_UNMODELLED) | set(ASTRO_EDDY_DERIVED))
        free: dict[int, str] = {}
        fixed: dict = {}
        mask = dict(MASK_SETTINGS)
        z_func = _surface_settings(params)
        for key, value in params.items():
            if key in ("z_func", "shadowed"):
                continue
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ValueError(f"Unknown parameter '{key}' in params.{hint} Known "
                                 f"model parameters: {', '.join(MODEL_PARAMETERS)}.")
            if key in MASK_SETTINGS:
                mask[key] = value
                continue
            if key in ASTRO_EDDY_UNMODELLED or key in ASTRO_EDDY_DERIVED:
                _check_unmodelled(key, value)
                continue
            if is_index(value):
                index = int(value)
                if index in free:
                    raise ValueError(f"params['{key}'] and params['{free[index]}'] both "
                                     f"point at p0[{index}]: give each free parameter "
                                     f"its own index.")
                free[index] = key
            elif value is None or isinstance(value, (float, np.floating)):
                fixed[key] = None if value is None else float(value)
            else:
                raise ValueError(f"params['{key}'] = {value!r}: use an int (index into "
                                 f"p0) for a free parameter or a float for a fixed one.")
        n = len(free)
        if sorted(free) != list(range(n)):
            raise ValueError(f"The free-parameter indices must be 0..{n - 1} with none "
                             f"missing; got {sorted(free)} for "
                             f"{[free[i] for i in sorted(free)]}.")
        order = tuple(free[i] for i in range(n))
        for name in MODEL_PARAMETERS:
            if name not in order and name not in fixed:
                fixed[name] = PARAMETERS[name].default
        _check_noise(mask, order, fixed)
        if p0 is not None:
            p0 = as_p0(p0, order)
            if n == 0 and p0.size:
                raise FitInputError(
                    f"p0 has {p0.size} value(s) but params has no free parameter "
                    f"(no int index into p0). Mark a free parameter with its index, "
                    f"e.g. params['mstar'] = 0 for p0[0].")
            if p0.size != n:
                raise ValueError(f"p0 has {p0.size} values but params has {n} free "
                                 f"parameters ({', '.join(order)}).")
            bad = [name for name, v in zip(order, p0) if not math.isfinite(v)]
            if bad:
                raise ValueError(f"p0 is not finite for {', '.join(bad)}.")
        _check_physical(fixed, order, p0)
        if z_func is not None:
            unused = [name for name in SURFACE_PARAMETERS if name in order]
            if unused:
                raise FitInputError(
                    f"params['z_func'] replaces the analytic emission surface, so "
                    f"{', '.join(unused)} would have no effect on the model: fix "
                    f"{'it' if len(unused) == 1 else 'them'} (or leave "
                    f"{'it' if len(unused) == 1 else 'them'} out of params), or drop "
                    f"z_func to fit the analytic surface.")
        spec = cls(order, fixed, mask, z_func)
        spec.check_model()
        return spec

    def require_free(self) -> None:
        """Raise :class:`FitInputError` if there is nothing to fit (every
        parameter fixed)."""
        if not self.free:
            raise FitInputError(
                "Nothing to fit: params has no free parameter (no int index into "
                "p0), so every value is fixed. Make parameters free with their "
                "index in p0, e.g. params['mstar'] = 0 and p0 = [2.0]; to compute "
                "the model of the fixed values use "
                "cube.evaluate_models(params=params).")

    def check_model(self) -> None:
        """Raise ``ValueError`` for combinations the model cannot evaluate."""
        message = combination_error(
            lambda name: name in self.free or self.fixed.get(name) is not None)
        if message:
            raise ValueError(message)
        check_radii(self.mask["r_min"], self.mask["r_max"])

    @property
    def noise(self) -> str:
        """The likelihood's noise model: ``'independent'`` or ``'correlated'``."""
        return self.mask.get("noise", "independent")

    def noise_value(self, name: str, theta):
        """A noise parameter's value: from ``theta`` if free, else fixed (the
        table's default when not given)."""
        if name in self.free:
            return theta[self.free.index(name)]
        value = self.fixed.get(name)
        return PARAMETERS[name].default if value is None else value

    def model_params(self, theta) -> dict:
        """Model parameters with the free ones taken from ``theta`` (and the
        user surface as ``'z_func'`` when there is one); the noise
        parameters are the likelihood's, not the model's, and left out."""
        params = {k: v for k, v in self.fixed.items() if k not in NOISE_PARAMETERS}
        for i, name in enumerate(self.free):
            if name in NOISE_PARAMETERS:
                continue
            params[name] = theta[i]
        if self.z_func is not None:
            params["z_func"] = self.z_func
        return params

    def to_params(self, theta=None) -> dict:
        """An astro-eddy ``params`` dict (fixed values, mask settings, the user
        surface and, if ``theta`` is given, free values filled in) for e.g.
        ``evaluate_models``."""
        out = {k: v for k, v in self.fixed.items()}
        for i, name in enumerate(self.free):
            out[name] = float(theta[i]) if theta is not None else i
        out.update({k: v for k, v in self.mask.items()
                    if k != "user_mask" and (self.noise != "independent"
                                             or k not in NOISE_SETTINGS)})
        if self.z_func is not None:
            out["z_func"] = self.z_func
        return out

    def to_json(self) -> dict:
        """A JSON-able description (the user mask is stored separately; a user
        surface by its name only, as a function cannot be stored)."""
        mask = {k: v for k, v in self.mask.items() if k != "user_mask"}
        fixed = {k: v for k, v in self.fixed.items()}
        out = {"free": list(self.free), "fixed": fixed, "mask": mask}
        if self.z_func is not None:
            out["z_func"] = getattr(self.z_func, "__name__", repr(self.z_func))
        return out

    @classmethod
    def from_json(cls, payload: dict, user_mask=None) -> "FitSpec":
        mask = dict(MASK_SETTINGS)
        mask.update(payload["mask"])
        mask["user_mask"] = user_mask
        return cls(tuple(payload["free"]), dict(payload["fixed"]), mask)


def _check_noise(mask: dict, free: tuple, fixed: dict) -> None:
    """The noise settings: a known model; the noise parameters only with
    ``noise='correlated'``, where the kernel's are fixed (estimated when
    ``None``) and ``noise_scale`` defaults to 1 when not given."""
    from .noise import NOISE_MODELS

    noise = mask.get("noise", "independent")
    if noise not in NOISE_MODELS:
        close = difflib.get_close_matches(str(noise), NOISE_MODELS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise FitInputError(f"noise = {noise!r} is not a noise model.{hint} Use "
                            f"'independent' (astro-eddy's: pixels independent) or "
                            f"'correlated' (correlated over the beam).")
    given = [n for n in NOISE_PARAMETERS if n in free or n in fixed]
    if noise == "independent":
        if given:
            raise FitInputError(
                f"{', '.join(given)} belong to the correlated noise model: pass "
                f"noise='correlated' to fit_map (or params['noise'] = 'correlated'), "
                f"or leave them out of params.")
        return
    for name in ("noise_nugget", "noise_width"):
        if name in free:
            raise FitInputError(
                f"params['{name}'] is an index, but the noise kernel is fixed for "
                f"the run: leave it out (or None) to estimate it from the residuals "
                f"at the optimised start, or give a number.")
        fixed.setdefault(name, None)
    if "noise_scale" not in free:
        fixed.setdefault("noise_scale", PARAMETERS["noise_scale"].default)
    scale = mask.get("noise_snr_scale")
    if scale is not None and not (isinstance(scale, (int, float)) and scale > 0):
        raise FitInputError(f"noise_snr_scale = {scale!r}: a positive number (the "
                            f"scale of dv0, by which bettermoments' Fnu / dFnu is "
                            f"corrected) or None to measure it at the start.")
    clip = mask.get("noise_clip")
    if clip is not None and not (isinstance(clip, (int, float)) and clip > 1):
        raise FitInputError(f"noise_clip = {clip!r}: give a number above 1 (pixels "
                            f"whose peak S/N, Fnu / dFnu, is below noise_clip are "
                            f"left out) or None for no clip.")


#: Values for which the model is not defined, refused before anything runs:
#: name -> (rule, what it is). Inclinations keep the model's convention
#: (inc >= 90 is inc - 180), so they are not here.
PHYSICAL = {"dist": (lambda v: v > 0.0, "the distance [pc] must be positive"),
            "mstar": (lambda v: v > 0.0, "the stellar mass [Msun] must be positive")}


def _check_physical(fixed: dict, order, p0) -> None:
    """Refuse a fixed value (or a start) that makes the model undefined
    (``dist = 0`` divides by zero, ``mstar <= 0`` has no Keplerian
    velocity), naming it, instead of a run whose every log-probability is
    NaN."""
    values = {k: v for k, v in fixed.items() if v is not None}
    nan = [k for k, v in values.items() if math.isnan(v)]
    if nan:
        raise FitInputError(f"params['{nan[0]}'] is NaN: give a number to fix it, an "
                            f"int index into p0 to fit it, or leave it out for its "
                            f"default.")
    if p0 is not None:
        values.update(zip(order, np.asarray(p0, dtype=float)))
    for name, (ok, what) in PHYSICAL.items():
        if name in values and not (math.isfinite(values[name]) and ok(values[name])):
            where = "p0 value" if name in order else "fixed value"
            raise FitInputError(f"params['{name}']: the {where} {values[name]:g} makes "
                                f"the model undefined: {what}.")


def with_noise(params: dict, p0, noise: str | None):
    """``fit_map``'s ``noise=`` folded into ``params`` (and ``p0``): with
    ``'correlated'`` and no ``noise_scale`` in ``params``, the noise scale is
    made free, as the last parameter, starting at 1. Returns new
    ``(params, p0)``; ``noise=None`` keeps ``params['noise']`` (default
    independent)."""
    params = dict(params)
    if noise is not None:
        params["noise"] = noise
    if params.get("noise") == "correlated" and "noise_scale" not in params \
            and p0 is not None:
        p0 = np.atleast_1d(np.asarray(p0, dtype=float))
        params["noise_scale"] = int(p0.size)
        p0 = np.append(p0, PARAMETERS["noise_scale"].default)
    return params, p0


def _check_unmodelled(key: str, value) -> None:
    """An astro-eddy key of :data:`ASTRO_EDDY_UNMODELLED` at its default, or
    of :data:`ASTRO_EDDY_DERIVED` (``vortex`` only False); else an error."""
    if key in ASTRO_EDDY_DERIVED:
        if key == "vortex" and value:
            raise FitInputError("params['vortex'] = True: astro-eddy's vortex is not "
                                "modelled here; leave 'vortex' out (or False).")
        return
    default = ASTRO_EDDY_UNMODELLED[key]
    if key in ("w_i", "w_r", "w_t") and isinstance(value, (float, np.floating)):
        # As disk_coords: astro-eddy 3.2 accepts a warp and ignores it.
        warnings.warn(f"{key}: warps are not modelled (astro-eddy 3.2 ignores them "
                      f"too); the disk is not warped.", UserWarning, stacklevel=4)
        return
    same = (value is None if default is None else
            not is_index(value) and isinstance(value, (int, float, np.floating))
            and float(value) == default)
    if not same:
        term = ("the vortex" if key.endswith("_vortex") else
                "the pressure term" if key.endswith("_pressure") else
                "a warp" if key.startswith("w_") else "a velocity taper")
        raise FitInputError(
            f"params['{key}'] = {value!r}: astro-eddy's {key} ({term}) is not "
            f"modelled here; leave it out of params (or at astro-eddy's default, "
            f"{default!r}, as fit_map(returns='dict') gives it).")


def _surface_settings(params: dict):
    """The user surface ``params['z_func']`` (or ``None``), checked, and
    ``params['shadowed']``, which must be False."""
    if params.get("shadowed", False):
        raise FitInputError(
            "params['shadowed'] = True (astro-eddy's slower deprojection of "
            "self-shadowed surfaces, which regrids a disk-frame grid onto the sky and "
            "has no gradient) is not supported: the model finds one surface point "
            "per line of sight. Leave 'shadowed' out of params.")
    z_func = params.get("z_func")
    if z_func is not None and not callable(z_func):
        raise FitInputError(f"params['z_func'] must be a function of the radius "
                            f"[arcsec] returning the height [arcsec], written with "
                            f"jax.numpy, got {z_func!r}.")
    return z_func


def check_radii(r_min, r_max) -> None:
    """The one rule on the mask's radii (``None``: no limit), for ``fit_map``
    and the dashboard: ``ValueError`` unless ``r_min < r_max``."""
    if r_min is not None and r_max is not None and not r_min < r_max:
        raise ValueError(f"r_min ({r_min:g}) must be smaller than r_max ({r_max:g}).")
