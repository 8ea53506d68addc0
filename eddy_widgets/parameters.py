"""The one table of model parameters.

Every layer reads this table: the model (which keys exist and their defaults),
``fit_map`` (default priors, labels in the printed parameter order), the plots
(axis labels) and the parameter editor widget (rows, units, descriptions).

Conventions follow astro-eddy so that scripts and results carry over: angles in
degrees, sky offsets and radii in arcsec, velocities in m/s, masses in solar
masses, distances in parsec. A default of ``None`` means the model component is
switched off unless the user gives a value.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

INF = math.inf


@dataclass(frozen=True)
class Parameter:
    """One model parameter.

    Attributes:
        name: key used in ``params`` dictionaries.
        unit: unit of the value, as shown to the user.
        label: matplotlib (LaTeX) label for plots.
        default: value used when ``params`` does not give one (``None`` = off).
        prior: default prior as ``(type, (a, b))``; ``'flat'`` takes
            ``(low, high)``, ``'gaussian'`` takes ``(mean, sigma)``.
        group: where the editor lists it.
        description: one line for tooltips and tutorials.
        short: a few words the editor shows under the name (at most ~26
            characters, so a row stays one line high).
        rare: whether the editor folds the row away under "more parameters"
            until it is used (free, or set away from its default).
    """

    name: str
    unit: str
    label: str
    default: float | None
    prior: tuple[str, tuple[float, float]]
    group: str
    description: str
    short: str = ""
    rare: bool = False


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in [
        # Geometry.
        Parameter("x0", "arcsec", r"$x_0$", 0.0, ("flat", (-0.5, 0.5)), "geometry",
                  "offset of the disk centre from the image centre, east positive",
                  short="centre offset, east +"),
        Parameter("y0", "arcsec", r"$y_0$", 0.0, ("flat", (-0.5, 0.5)), "geometry",
                  "offset of the disk centre from the image centre, north positive",
                  short="centre offset, north +"),
        Parameter("inc", "deg", r"$i$", 0.0, ("flat", (-90.0, 90.0)), "geometry",
                  "inclination; its sign sets the rotation sense (>= 90 means inc - 180)",
                  short="inclination (sign: spin)"),
        Parameter("PA", "deg", r"${\rm PA}$", 0.0, ("flat", (-360.0, 360.0)), "geometry",
                  "position angle of the red-shifted major axis, east of north",
                  short="PA of the red-shifted side"),
        # Star.
        Parameter("mstar", "Msun", r"$M_{\star}$", 1.0, ("flat", (0.01, 10.0)), "star",
                  "stellar mass driving the Keplerian rotation",
                  short="stellar mass"),
        Parameter("dist", "pc", r"$d$", 100.0, ("flat", (0.0, 1000.0)), "star",
                  "distance to the source",
                  short="distance"),
        Parameter("vlsr", "m/s", r"$v_{\rm LSR}$", 0.0, ("flat", (-1.0e4, 1.0e4)), "star",
                  "systemic velocity",
                  short="systemic velocity"),
        # Emission surface.
        Parameter("z0", "arcsec", r"$z_0$", None, ("flat", (0.0, 5.0)), "surface",
                  "height of the emission surface 1 arcsec outside r_cavity, before "
                  "the taper (None: flat disk)",
                  short="surface height at 1 arcsec"),
        Parameter("psi", "", r"$\psi$", 1.0, ("flat", (0.0, 5.0)), "surface",
                  "flaring index of the emission surface",
                  short="surface flaring index"),
        Parameter("r_cavity", "arcsec", r"$r_{\rm cav}$", 0.0, ("flat", (0.0, 1000.0)),
                  "surface", "radius inside which the surface lies in the midplane",
                  short="surface cavity radius"),
        Parameter("r_taper", "arcsec", r"$r_{\rm taper}$", INF, ("flat", (0.0, INF)),
                  "surface", "radius of the exponential taper of the surface, "
                  "measured from r_cavity",
                  short="surface taper radius"),
        Parameter("q_taper", "", r"$q_{\rm taper}$", 1.0, ("flat", (0.0, 15.0)),
                  "surface", "exponent of the exponential taper",
                  short="surface taper exponent"),
        # Velocity profiles.
        Parameter("vp_100", "m/s", r"$v_{\phi,100}$", None, ("flat", (0.0, 1.0e4)),
                  "velocity", "power-law rotation speed at 100 au (replaces Keplerian)",
                  short="rotation speed at 100 au", rare=True),
        Parameter("vp_q", "", r"$q_{\phi}$", None, ("flat", (-2.0, 0.0)), "velocity",
                  "power-law index of the rotation speed",
                  short="rotation power-law index", rare=True),
        Parameter("vr_100", "m/s", r"$v_{r,100}$", None, ("flat", (-1.0e3, 1.0e3)),
                  "velocity", "radial speed at 100 au (positive: outflow)",
                  short="radial speed at 100 au", rare=True),
        Parameter("vr_q", "", r"$q_{r}$", 0.0, ("flat", (-2.0, 2.0)), "velocity",
                  "power-law index of the radial speed",
                  short="radial power-law index", rare=True),
        Parameter("mdisk", "Msun", r"$M_{\rm disk}$", None, ("flat", (0.0, 10.0)),
                  "velocity", "disk mass for the pseudo self-gravity term",
                  short="disk mass (self-gravity)", rare=True),
        Parameter("gamma", "", r"$\gamma$", 1.0, ("flat", (-20.0, 20.0)), "velocity",
                  "surface-density index of the self-gravity term",
                  short="self-gravity density index", rare=True),
        Parameter("r_in", "arcsec", r"$r_{\rm in}$", 0.0, ("flat", (0.0, 10.0)),
                  "velocity", "inner radius of the self-gravitating disk",
                  short="self-gravity inner radius", rare=True),
        Parameter("r_out", "arcsec", r"$r_{\rm out}$", 10.0, ("flat", (0.0, 100.0)),
                  "velocity", "outer radius of the self-gravitating disk",
                  short="self-gravity outer radius", rare=True),
        # Noise (noise='correlated'; see eddy_widgets.inference.noise).
        Parameter("noise_scale", "", r"$s$", 1.0, ("flat", (0.05, 20.0)), "noise",
                  "scale of the uncertainty map: the residuals' scatter is "
                  "noise_scale x dv0 (free with noise='correlated')",
                  short="scatter / uncertainty map"),
        Parameter("noise_nugget", "", r"$a$", None, ("flat", (0.0, 1.0)), "noise",
                  "uncorrelated share of the noise (None: estimated from the "
                  "residuals at the optimised start)",
                  short="uncorrelated share", rare=True),
        Parameter("noise_width", "beam", r"$w$", None, ("flat", (0.05, 4.0)), "noise",
                  "width of the noise correlation in units of the beam's (None: "
                  "estimated from the residuals at the optimised start)",
                  short="correlation width / beam", rare=True),
    ]
}

#: The noise model's parameters (used with ``noise='correlated'`` only):
#: the likelihood reads them, the velocity model does not.
NOISE_PARAMETERS: tuple[str, ...] = tuple(name for name, p in PARAMETERS.items()
                                          if p.group == "noise")

#: Names of the parameters the model reads, in table order.
MODEL_PARAMETERS: tuple[str, ...] = tuple(name for name in PARAMETERS
                                          if name not in NOISE_PARAMETERS)

#: The parameters that place a pixel in the disk frame: the geometry
#: arguments of :func:`~eddy_widgets.model.disk_coords`, in astro-eddy's
#: keyword order.
GEOMETRY: tuple[str, ...] = ("x0", "y0", "inc", "PA", "z0", "psi", "r_cavity",
                             "r_taper", "q_taper")

#: The table's groups in display order, with their titles: the parameter
#: editor's sections and the model explorer's tabs.
GROUPS: dict[str, str] = {"geometry": "Geometry", "star": "Star",
                          "surface": "Emission surface",
                          "velocity": "Velocity profiles", "noise": "Noise"}


def velocity_switches() -> tuple[str, ...]:
    """Parameters that switch a velocity term on beyond plain Keplerian
    rotation: those of the ``velocity`` group whose default is ``None``
    (``vp_100``, ``vp_q``, ``vr_100``, ``mdisk``). Read from the table at each
    call, so that a term added to the table is never skipped by the model's
    fast path for plain Keplerian rotation."""
    return tuple(name for name, p in PARAMETERS.items()
                 if p.group == "velocity" and p.default is None)


def combination_error(given) -> str | None:
    """The one rule on combinations of velocity terms: the message for a
    combination the model cannot evaluate, or ``None``. ``given(name)`` says
    whether a parameter has a value (free, or fixed to something but None)."""
    if given("vp_100") and not given("vp_q"):
        return "A power-law rotation needs both 'vp_100' and 'vp_q'."
    if given("mdisk") and given("vp_100"):
        return ("'mdisk' adds self-gravity to Keplerian rotation; it cannot be used "
                "with a power-law rotation ('vp_100').")
    return None

#: Mask and switch settings accepted in ``params`` besides model parameters,
#: with astro-eddy's defaults. They are never free.
MASK_SETTINGS: dict[str, object] = {
    "r_min": 0.0,
    "r_max": INF,
    "exclude_r": False,
    "phi_min": -180.0,
    "phi_max": 180.0,
    "exclude_phi": False,
    "abs_phi": False,
    "v_min": None,
    "v_max": None,
    "exclude_v": False,
    "beam": False,
    "user_mask": None,
    # The likelihood: 'independent' (astro-eddy's) or 'correlated' (over the
    # beam; eddy_widgets.inference.noise), and under 'correlated' the
    # low-S/N clip: pixels whose peak S/N (bettermoments' Fnu / dFnu, from
    # the *_Fnu.fits and *_dFnu.fits beside the map) is below noise_clip are
    # left out before sampling (None: no clip; no peak map: no clip, said).
    "noise": "independent",
    "noise_clip": 15.0,
    # The scale of dv0 measured at the optimised start (a robust width of
    # the residuals / dv0), set by the fit: bettermoments' dFnu is off by the
    # same factor as dv0 (both come from the rms it was given), so the clip
    # uses Fnu / (dFnu x this). None: not measured yet, no clip.
    "noise_snr_scale": None,
}
#: The mask settings of the correlated noise model (absent from an
#: independent fit's params).
NOISE_SETTINGS = ("noise", "noise_clip", "noise_snr_scale")


def label(name: str) -> str:
    """Plot label of a parameter, falling back to its name."""
    p = PARAMETERS.get(name)
    return p.label if p is not None else name


def label_with_unit(name: str) -> str:
    """Plot label with the unit in brackets when the parameter has one."""
    p = PARAMETERS.get(name)
    if p is None or not p.unit:
        return label(name)
    return f"{p.label} [{p.unit}]"
