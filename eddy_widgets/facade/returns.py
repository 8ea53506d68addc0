"""What ``rotationmap.fit_map(returns=...)`` gives, as astro-eddy 3.2 gives it.

- **The order.** astro-eddy's ``fit_map`` appends its items in one fixed
  order whatever the order of the list (``eddy/rotationmap.py``, the end of
  ``fit_map``): ``samples``, ``sampler``, ``lnprob``, ``percentiles``,
  ``dict``, ``model``, ``residual``; ours (``result``) comes last. A single
  item comes alone, ``'none'`` anywhere gives ``None``.
- **``sampler``**: what astro-eddy returns for the backend, made by the
  backend (:meth:`~eddy_widgets.inference.backends.base.Backend.astro_eddy_sampler`):
  emcee's and zeus's own ``EnsembleSampler`` filled with the run, astro-eddy's
  NUTS adapter for numpyro.
- **``samples``**: its sampler's ``get_chain(discard=nburnin, flat=True)``
  (emcee step-major, NUTS chain-major, zeus walker-major), PA in [0, 360).
- **``dict``**: astro-eddy's 52 keys (its ``default_parameters.yml`` and what
  its ``verify_params_dictionary`` adds) with its defaults, the medians of the
  free parameters and the values the fit used; the keys of the parameters
  this model does not have at astro-eddy's defaults. The noise model's keys
  appear only in a fit with ``noise=``.
- **``fit_map``'s mask defaults** (:func:`with_fit_map_defaults`): astro-eddy's
  ``fit_map`` fits ``r <= 10`` arcsec and ``-10 <= v0 <= 30`` km/s unless
  ``params`` says otherwise; so does ours, and the dict says so.
"""

from __future__ import annotations

import math

import numpy as np

from ..inference.spec import ASTRO_EDDY_UNMODELLED
from ..model.rotation import complete, rotation_speed
from ..parameters import PARAMETERS

#: What ``returns`` may name.
RETURNS = ("samples", "sampler", "lnprob", "percentiles", "dict", "model",
           "residual", "residuals", "result", "none")

#: The order of the returned items: astro-eddy's, then ours.
ORDER = ("samples", "sampler", "lnprob", "percentiles", "dict", "model", "residual",
         "result")

#: astro-eddy 3.2's ``default_parameters.yml``: every key of its ``params``
#: with its default, in the file's order (the order of its returned dict).
ASTRO_EDDY_DEFAULTS: dict = {
    "x0": 0.0, "y0": 0.0, "inc": 0.0, "PA": 0.0, "vlsr": 0.0, "dist": 100.0,
    "z0": None, "psi": None, "r_cavity": 0.0, "r_taper": math.inf, "q_taper": 1.0,
    "w_i": None, "w_r": None, "w_t": None,
    "mdisk": None, "r_in": None, "r_out": None, "gamma": None,
    "mstar": 1.0, "r_pressure": None, "w_pressure": None,
    "vp_100": None, "vp_q": None, "vp_rtaper": None, "vp_qtaper": None,
    "vr_100": None, "vr_q": None, "vr_rtaper": None, "vr_qtaper": None,
    "r0_vortex": None, "p0_vortex": None, "chi_vortex": 5.0, "r_vortex": 0.1,
    "w_vortex": 0.05, "v_vortex": 20.0,
    "r_min": 0.0, "r_max": 10.0, "exclude_r": False, "phi_min": -180.0,
    "phi_max": 180.0, "exclude_phi": False, "abs_phi": False,
    "v_min": -10000.0, "v_max": 30000.0, "exclude_v": False, "beam": False,
}

#: The mask settings whose default in astro-eddy's ``fit_map`` (its yml) is
#: not "everything": radius [arcsec] and v0 [m/s] limits.
FIT_MAP_MASK_DEFAULTS = {"r_max": 10.0, "v_min": -10000.0, "v_max": 30000.0}

#: Our parameters whose default differs from astro-eddy's (``None``) and the
#: switch without which they do nothing: while it is off the dict gives
#: astro-eddy's ``None``.
INERT_WITHOUT = {"psi": "z0", "vr_q": "vr_100", "gamma": "mdisk", "r_in": "mdisk",
                 "r_out": "mdisk"}

assert set(ASTRO_EDDY_UNMODELLED) <= set(ASTRO_EDDY_DEFAULTS)


def with_fit_map_defaults(params: dict, r_max=None) -> dict:
    """``params`` (a copy) with astro-eddy's ``fit_map`` mask defaults
    (:data:`FIT_MAP_MASK_DEFAULTS`) where neither ``params`` nor the
    ``r_max`` argument gives them."""
    out = dict(params)
    for key, value in FIT_MAP_MASK_DEFAULTS.items():
        if key == "r_max" and r_max is not None:
            continue
        out.setdefault(key, value)
    return out


def order_returns(returns) -> list[str]:
    """The items of ``returns`` (checked names) in the order ``fit_map``
    returns them; ``'residuals'`` is ``'residual'``."""
    wanted = {"residual" if item == "residuals" else item for item in returns}
    return [item for item in ORDER if item in wanted]


def fit_map_returns(cube, run, returns):
    """``fit_map``'s return value for ``returns`` (checked names) after
    ``run``."""
    if "none" in returns:
        return None
    result, backend = run.result, run.backend
    model = None
    out = []
    for item in order_returns(returns):
        if item == "samples":
            out.append(backend.astro_eddy_samples(result))
        elif item == "sampler":
            out.append(backend.astro_eddy_sampler(run))
        elif item == "lnprob":
            # astro-eddy's lnprobability[nburnin:] (it fails there: nburnin
            # is an array): the post-burn-in log-probabilities,
            # (nsteps, nwalkers) as emcee's get_log_prob(discard=nburnin).
            out.append(result.log_prob["sampling"].T)
        elif item == "percentiles":
            out.append(result.percentiles())
        elif item == "dict":
            out.append(astro_eddy_dict(cube, run))
        elif item in ("model", "residual"):
            model = cube.median_model(run) if model is None else model
            out.append(model if item == "model" else cube.map.data - model)
        elif item == "result":
            out.append(result)
    if not out:
        return None
    return out if len(out) > 1 else out[0]


def astro_eddy_dict(cube, run) -> dict:
    """astro-eddy's ``returns='dict'`` for ``run``: every key of
    :data:`ASTRO_EDDY_DEFAULTS` in its order, then ``vfunc``, ``vortex``,
    ``vradial``, ``z_func``, ``shadowed``, ``user_mask`` (what astro-eddy's
    ``verify_params_dictionary`` adds), then, in a fit with ``noise=``, the
    noise model's settings and parameters. The free parameters are at their
    posterior medians; the dict goes back into ``evaluate_models`` and
    ``fit_map``."""
    spec = run.posterior.spec
    ours = spec.to_params(run.result.percentiles([50])[0])
    out = {}
    for key, default in ASTRO_EDDY_DEFAULTS.items():
        if key not in ours:        # not modelled here: astro-eddy's default
            out[key] = default
            continue
        value = ours[key]
        switch = INERT_WITHOUT.get(key)
        if (switch is not None and ours.get(switch) is None
                and value == PARAMETERS[key].default):
            value = default
        out[key] = value
    out["vfunc"] = rotation_law
    out["vortex"] = False
    out["vradial"] = ours.get("vr_100") is not None
    out["z_func"] = spec.z_func
    out["shadowed"] = False
    user_mask = spec.mask.get("user_mask")
    out["user_mask"] = (np.ones(cube.map.data.shape) if user_mask is None
                        else user_mask)
    out.update({k: v for k, v in ours.items() if k not in out})
    return out


def rotation_law(rvals, tvals, zvals, params):
    """astro-eddy's ``params['vfunc']``, with its signature: the rotation
    speed v_phi [m/s] at radius ``rvals`` and height ``zvals`` [arcsec]
    (``tvals``, the polar angle, unused) for ``params``: Keplerian, with the
    self-gravity term if ``mdisk`` is set, or the power law if ``vp_100``
    is."""
    return rotation_speed(rvals, zvals, complete(params))
