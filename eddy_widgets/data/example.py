"""The bundled example: an HD 163296-like rotation map with known truths.

``HD163296_like_v0.fits`` and ``HD163296_like_dv0.fits`` are a synthetic v0
map and its uncertainty in bettermoments' naming, made by
``scripts/make_example.py`` from this package's own model with the parameters
in ``truths.json`` (geometry and stellar mass close to HD 163296's), plus
Gaussian noise of the stated uncertainty. They let tutorials and tests run
without any download, and a fit of them should recover the truths.

The grid is 400 x 400 pixels of 0.025 arcsec (10 arcsec across) with BUNIT
'm/s' and an ALMA-like beam in the header (the map itself is not convolved).

A second example, ``load_example('kink')``, is the same disk on a 200 x 200
grid of 0.05 arcsec with a localised, planet-like perturbation of the
line-of-sight velocity (100 m/s, 0.15 arcsec wide) at a radius and azimuth
given in ``example.perturbation``: something to find in the residuals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
import json
from pathlib import Path

__all__ = ["DEFAULT_COUNTS", "EMCEE_MOVES", "ExampleMap", "MAIN_JOB_MOVES", "RUN_DEFAULTS",
           "TUTORIAL_P0", "TUTORIAL_PARAMS", "example_paths", "load_example"]

# The tutorial's set-up on the bundled example, the main job's
# (``eddy-widgets-example``, ``eddy-widgets-fit`` without a map, the cache
# warmer), in the astro-eddy tutorial's form.
#: The tutorial's 9-parameter fit of an HD 163296-like disk.
TUTORIAL_PARAMS = {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4, "z0": 5, "psi": 6,
                   "r_taper": 7, "q_taper": 8, "inc": 46.7, "dist": 101.0}
TUTORIAL_P0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]
#: Default counts, long enough to converge by the verdict's rules on the
#: bundled example: emcee 32 walkers x (500 + 3000) steps with differential-
#: evolution moves (tau ~ 40 steps, so the chain is ~70 tau long; emcee's
#: default stretch move has tau ~ 100 here); NUTS 2 chains x (500 + 1000), so
#: that R-hat compares two chains. Measured on the tutorial's 9-parameter
#: set-up with the default options (target_accept_prob 0.8): 2 x (500 + 1000)
#: converged with seeds 0-3 (R-hat <= 1.005, bulk and tail ESS >= 870; ~35 s
#: on 2 busy CPU cores); 2 x (500 + 500) failed with seed 1 (R-hat 1.018);
#: 1 x (300 + 100), fit_map's, gave R-hat 1.034 and bulk ESS 67.
DEFAULT_COUNTS = {"emcee": (32, 500, 3000), "numpyro": (2, 500, 1000),
                  "zeus": (32, 500, 3000)}
#: The counts a run starts with where none are given, as ``fit_map``'s count
#: arguments, by backend: one table for the dashboard (a new
#: ``FitDashboard``, for the backends its set-up did not give counts for) and
#: the command line (``eddy-widgets-fit``; ``eddy-widgets-example`` takes
#: ``DEFAULT_COUNTS``). NUTS: ``DEFAULT_COUNTS``', which converge on the
#: bundled example with the dashboard's default options (see above).
#: emcee and zeus are not in it: their ``DEFAULT_COUNTS``
#: converge with the main job's differential-evolution moves only, not with
#: the stretch move a new dashboard starts with, so they keep ``fit_map``'s.
#: ``fit_map``'s own defaults stay astro-eddy's.
RUN_DEFAULTS = {"numpyro": dict(zip(("nwalkers", "nburnin", "nsteps"),
                                    DEFAULT_COUNTS["numpyro"]))}
#: emcee moves of the main job: emcee's differential-evolution mixture (the
#: dashboard's "de+snooker", session.EMCEE_MOVES names the choices).
MAIN_JOB_MOVES = [("DEMove", 0.8), ("DESnookerMove", 0.2)]
#: Its name before; the same list.
EMCEE_MOVES = MAIN_JOB_MOVES

#: The bundled examples: name -> (v0 file, dv0 file, truths file).
EXAMPLES = {
    "HD163296_like": ("HD163296_like_v0.fits", "HD163296_like_dv0.fits",
                      "truths.json"),
    "kink": ("kink_v0.fits", "kink_dv0.fits", "kink_truths.json"),
}


def _example_dir() -> Path:
    """Folder holding the example files (inside the installed package)."""
    return Path(str(resources.files(__package__).joinpath("example")))


def example_paths(name: str = "HD163296_like") -> dict[str, str]:
    """Absolute paths of the example maps.

    Args:
        name: ``'HD163296_like'`` (the default) or ``'kink'``.

    Returns:
        ``{'v0': ..._v0.fits, 'dv0': ..._dv0.fits}`` (v0 and its uncertainty,
        both in m/s), ready for ``read_rotation_map(paths['v0'])``.

    Raises:
        FileNotFoundError: the example files are missing from the installation
            (regenerate them with ``python scripts/make_example.py``).
    """
    folder = _example_dir()
    v0_name, dv0_name, _ = _files(name)
    paths = {"v0": folder / v0_name, "dv0": folder / dv0_name}
    for p in paths.values():
        if not p.is_file():
            raise FileNotFoundError(
                f"example map not found: {p}. Regenerate it with "
                "`python scripts/make_example.py` from the repository root.")
    return {key: str(p.resolve()) for key, p in paths.items()}


@dataclass
class ExampleMap:
    """The bundled example.

    Attributes:
        v0: absolute path of the v0 map [m/s].
        dv0: absolute path of its uncertainty [m/s].
        truths: model parameters the map was made with (names of
            :mod:`eddy_widgets.parameters`; arcsec, deg, Msun, pc, m/s).
        description: how the map was made (grid, beam, noise, seed).
        perturbation: for ``'kink'``: ``r`` [arcsec], ``phi`` [deg],
            ``amplitude`` [m/s] and ``width`` [arcsec] of the perturbation
            (``None`` for an unperturbed example).
    """

    v0: str
    dv0: str
    truths: dict[str, float]
    description: dict = field(default_factory=dict)
    perturbation: dict | None = None


def _files(name: str) -> tuple[str, str, str]:
    if name not in EXAMPLES:
        raise ValueError(f"No bundled example {name!r}: choose one of "
                         f"{', '.join(repr(k) for k in EXAMPLES)}.")
    return EXAMPLES[name]


def load_example(name: str = "HD163296_like") -> ExampleMap:
    """Paths and true parameters of a bundled example (by default the
    HD 163296-like map; ``'kink'`` for the one with a perturbation).

    Example:
        >>> from eddy_widgets.data import load_example, read_rotation_map
        >>> ex = load_example()
        >>> data = read_rotation_map(ex.v0, FOV=8.0, downsample=4)
        >>> ex.truths['inc']
        46.7
    """
    paths = example_paths(name)
    info = json.loads((_example_dir() / _files(name)[2]).read_text())
    return ExampleMap(v0=paths["v0"], dv0=paths["dv0"], truths=dict(info["truths"]),
                      description={k: v for k, v in info.items()
                                   if k not in ("truths", "perturbation")},
                      perturbation=info.get("perturbation"))
