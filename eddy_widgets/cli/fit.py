"""Fit your own rotation map from the command line.

    eddy-widgets-fit MAP_v0.fits [--uncertainty MAP_dv0.fits] [--fov 8]
        [--downsample 4] [--free x0=0 --free PA=312 ...] [--fixed inc=46.7 ...]
        [--prior r_taper=flat:0:50 ...] [--r-min 0.2] [--r-max 4]
        [--mcmc emcee|numpyro] [--nwalkers N] [--nburnin N] [--nsteps N]
        [--noise independent|correlated]
        [--config fit.toml] [--out DIR]

or with every setting in a small TOML file (options on the command line win)::

    [map]
    path = "HD163296_v0.fits"     # relative to the TOML file
    uncertainty = "HD163296_dv0.fits"
    FOV = 8.0
    downsample = 4

    [free]                        # free parameters and their start values
    x0 = 0.0
    PA = 312.0
    mstar = 2.0

    [fixed]                       # inc is required, here or in [free]
    inc = 46.7
    dist = 101.0

    [priors]                      # [type, a, b]: flat low high / gaussian mean sigma
    r_taper = ["flat", 0.0, 50.0]

    [mask]                        # astro-eddy's mask settings
    r_min = 0.2
    r_max = 4.0
    noise = "correlated"          # or "independent" (the default; --noise)

    [fit]
    mcmc = "emcee"
    nwalkers = 32
    nburnin = 500
    nsteps = 3000
    seed = 0
    checkpoint_interval = 30.0    # seconds (--checkpoint-interval)

An unknown section or key, a value of the wrong type, a map that cannot be
read or a set-up the fit would refuse is one ``eddy-widgets-fit: ...`` line
naming the file, section, key and value (:mod:`.config`), before anything is
created.

Without a map it fits the bundled example with the tutorial's set-up. Every
run writes into a new folder (``fit-<map>-<n>`` unless ``--out`` names one;
an existing, non-empty ``--out`` is an error, never overwritten): the result
(also the run's checkpoint), the figures, the model and residual as FITS, the
residual deprojected onto (r, phi), and the rotation curve in annuli.
Needs no JupyterLab (the widgets are an extra).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import math
from pathlib import Path
import re
import sys
import time
from typing import TYPE_CHECKING

from eddy_widgets.cli.config import (  # noqa: F401  (public here too)
    DEFAULT_CHECKPOINT_INTERVAL,
    SECTIONS,
    ConfigError,
    check_value,
    read_config,
    unknown_message,
)
from eddy_widgets.inference.backends import BACKENDS, COUNT_ARGS
from eddy_widgets.parameters import PARAMETERS
from eddy_widgets.products import PRODUCTS, save_figure, write_products  # noqa: F401  (public here too)

if TYPE_CHECKING:
    from eddy_widgets.facade.rotationmap import rotationmap

#: The option that sets each key of the set-up (for messages).
OPTIONS = {("map", "path"): "MAP", ("map", "uncertainty"): "--uncertainty",
           ("map", "FOV"): "--fov", ("map", "downsample"): "--downsample",
           ("mask", "r_min"): "--r-min", ("mask", "r_max"): "--r-max",
           ("mask", "noise"): "--noise",
           ("fit", "checkpoint_interval"): "--checkpoint-interval",
           **{("fit", key): f"--{key}" for key in ("mcmc", *COUNT_ARGS, "seed")}}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eddy-widgets-fit",
        description="Fit a rotation map (a bettermoments *_v0.fits) and write the "
                    "result, figures, model and residual FITS, the polar residual and "
                    "the rotation curve into a new folder. Without MAP: the bundled "
                    "example.")
    p.add_argument("map", nargs="?", help="the v0 map (FITS)")
    p.add_argument("--config", help="TOML file with the set-up (see the module help)")
    p.add_argument("--uncertainty", help="the uncertainty map (default: "
                                         "bettermoments' *_dv0.fits next to MAP)")
    p.add_argument("--fov", type=float, help="field of view [arcsec]")
    p.add_argument("--downsample", help="integer or 'beam'")
    p.add_argument("--free", action="append", default=[], metavar="NAME=START",
                   help="a free parameter and its start value (repeat)")
    p.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed parameter (repeat); inc is required, free or fixed")
    p.add_argument("--prior", action="append", default=[],
                   metavar="NAME=flat:LOW:HIGH|gaussian:MEAN:SIGMA", help="(repeat)")
    p.add_argument("--r-min", type=float, help="inner radius of the fit [arcsec]")
    p.add_argument("--r-max", type=float, help="outer radius of the fit [arcsec]")
    p.add_argument("--noise", choices=("independent", "correlated"),
                   help="the likelihood: pixels independent (default, astro-eddy's) "
                        "or noise correlated over the beam with a free noise scale")
    p.add_argument("--mcmc", choices=sorted(BACKENDS))
    for arg in COUNT_ARGS:
        p.add_argument(f"--{arg}", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output folder (new; default fit-<map>-<n>)")
    p.add_argument("--checkpoint-interval", type=float,
                   help=f"seconds between checkpoints (default: [fit] "
                        f"checkpoint_interval, else {DEFAULT_CHECKPOINT_INTERVAL:g})")
    p.add_argument("--no-progress", action="store_true")
    return p


def _pairs(items, what: str) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--{what} {item!r}: write NAME=VALUE, e.g. "
                              f"--{what} mstar=2.0.")
        name = name.strip()
        if name not in PARAMETERS:
            raise ConfigError(unknown_message(f"--{what} {item}:", "parameter",
                                              [name], PARAMETERS))
        out[name] = value.strip()
    return out


def _number(name: str, value, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} = {value!r} is not a number.") from None


def _option(section: str, key: str, value):
    """``value`` of a command-line option, checked as the TOML's."""
    try:
        return check_value(section, key, value)
    except ConfigError as err:
        shown = f"{value:g}" if isinstance(value, float) else value
        raise ConfigError(f"{OPTIONS[section, key]} {shown}: {err}") from None


def merge(args: argparse.Namespace) -> dict:
    """The TOML file's set-up with the command line's options on top, each
    value checked."""
    config = read_config(args.config) if args.config else {}
    config = {s: dict(config.get(s, {})) for s in SECTIONS}
    for section, key in OPTIONS:
        dest = "map" if key == "path" else key.lower()
        value = getattr(args, dest)
        if value is not None:
            config[section][key] = _option(section, key, value)
    for what, other in (("free", "fixed"), ("fixed", "free")):
        for name, value in _pairs(getattr(args, what), what).items():
            number = _number(name, value, f"--{what}")
            try:
                config[what][name] = check_value(what, name, number)
            except ConfigError as err:
                raise ConfigError(f"--{what} {name}={value}: {err}") from None
            config[other].pop(name, None)
    for name, value in _pairs(args.prior, "prior").items():
        kind, *numbers = value.split(":")
        if len(numbers) != 2 or kind not in ("flat", "gaussian"):
            raise ConfigError(f"--prior {name}={value}: write flat:LOW:HIGH or "
                              f"gaussian:MEAN:SIGMA.")
        config["priors"][name] = [kind, *(_number(name, v, "--prior") for v in numbers)]
    return config


def check(config: dict) -> None:
    """Raise :class:`ConfigError` naming what is wrong in a merged set-up
    whose keys and values are each known to be right (:func:`merge`)."""
    if not config["free"]:
        raise ConfigError("No free parameter: give start values with --free NAME=START "
                          "or in the [free] section.")
    inc = config["fixed"].get("inc", config["free"].get("inc"))
    if inc is None:
        raise ConfigError("No inclination: give it with --fixed inc=DEG (or --free "
                          "inc=START), or as inc in [fixed] or [free]; the model's "
                          "default, 0, is a face-on disk, whose rotation is not seen.")
    if "inc" in config["fixed"] and not math.isfinite(inc):
        raise ConfigError(f"The fixed inc = {inc:g} is not an inclination: give it "
                          f"in degrees.")
    if "inc" in config["fixed"] and math.remainder(inc, 180.0) == 0.0:
        raise ConfigError(f"The fixed inc = {inc:g} is a face-on disk, whose rotation "
                          f"is not seen: fix or free the inclination the disk has.")


@dataclass
class FitSetup:
    """A set-up checked against its map, ready to run (:func:`prepare`)."""

    cube: rotationmap
    free: list
    p0: list
    params: dict
    mcmc: str
    counts: dict
    mcmc_kwargs: dict
    checkpoint_interval: float


def prepare(config: dict) -> FitSetup:
    """Read the map and check the set-up against it (priors, start values,
    fitted pixels, the sampler's counts and options) as the fit would, so
    that nothing is created for a run that cannot start; a
    :class:`ConfigError` naming what is wrong."""
    import matplotlib

    matplotlib.use("Agg")
    from eddy_widgets.facade.rotationmap import rotationmap
    from eddy_widgets.inference.backends import (
        check_count_values,
        get_backend,
        split_options,
    )
    from eddy_widgets.inference.posterior import fit_mask
    from eddy_widgets.inference.spec import FitSpec, with_noise

    m, fit = config["map"], dict(config["fit"])
    try:
        cube = rotationmap(m["path"], FOV=m.get("FOV"), uncertainty=m.get("uncertainty"),
                           downsample=m.get("downsample"))
    except (OSError, ValueError) as err:
        raise ConfigError(str(err)) from None
    for name, (kind, a, b) in config["priors"].items():
        try:
            cube.set_prior(name, [a, b], kind)
        except ValueError as err:
            raise ConfigError(f"[priors] {name}: {err}") from None
    free = list(config["free"])
    p0 = [float(config["free"][name]) for name in free]
    for name, value in zip(free, p0):
        prior = cube.priors[name]
        if not prior.contains(value):
            raise ConfigError(f"The start {name} = {value:g} is outside its prior "
                              f"{prior.describe()}: change the start, or the prior "
                              f"(--prior {name}=flat:LOW:HIGH or [priors]).")
    params = {name: i for i, name in enumerate(free)}
    params.update({k: float(v) for k, v in config["fixed"].items()})
    params.update(config["mask"])
    mcmc = fit.pop("mcmc", "emcee")
    counts = {a: fit.pop(a, None) for a in COUNT_ARGS}
    interval = fit.pop("checkpoint_interval", DEFAULT_CHECKPOINT_INTERVAL)
    try:
        backend = get_backend(mcmc)
        all_params, start = with_noise(params, p0, None)
        spec = FitSpec.parse(all_params, start)
        spec.require_free()
        split_options(backend, fit, spec.ndim)
        for arg in COUNT_ARGS:
            check_count_values(backend, arg, counts[arg], spec.ndim)
        fitted = fit_mask(cube.map, spec, start)
    except ValueError as err:
        # The library's words for Python (mcmc_kwargs['seed']) in the file's.
        raise ConfigError(re.sub(r"mcmc_kwargs\['(\w+)'\]", r"[fit] \1", str(err))
                          ) from None
    if not fitted.any():
        raise ConfigError("No pixel is left to fit: check [mask] r_min / r_max "
                          "(--r-min, --r-max), x0 / y0 and the uncertainty map.")
    return FitSetup(cube, free, p0, params, mcmc, counts, fit, float(interval))


def new_folder(out, map_path) -> Path:
    """A folder that holds no earlier run: ``out`` if it is new or empty,
    else (without ``out``) ``fit-<map>-<n>`` with the first free n."""
    if out is not None:
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--out {folder} is a file: name a new folder.")
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(f"{folder} exists and is not empty: choose another --out "
                              f"(an earlier run is never overwritten).")
    else:
        stem = Path(map_path).name.removesuffix(".fits").removesuffix("_v0")
        n = 1
        while Path(f"fit-{stem}-{n}").exists():
            n += 1
        folder = Path(f"fit-{stem}-{n}")
    try:
        folder.mkdir(parents=True, exist_ok=out is not None)
    except OSError as err:
        raise ConfigError(f"Cannot make the output folder {folder}: "
                          f"{err.strerror or err}.") from None
    return folder


def example_config() -> dict:
    """The bundled example with the tutorial's set-up (the main job's)."""
    from eddy_widgets.data.example import (
        DEFAULT_COUNTS,
        MAIN_JOB_MOVES,
        TUTORIAL_P0,
        TUTORIAL_PARAMS,
        load_example,
    )

    example = load_example()
    free = {k: TUTORIAL_P0[v] for k, v in TUTORIAL_PARAMS.items() if isinstance(v, int)}
    fixed = {k: v for k, v in TUTORIAL_PARAMS.items() if not isinstance(v, int)}
    counts = dict(zip(COUNT_ARGS, DEFAULT_COUNTS["emcee"]))
    return {"map": {"path": example.v0, "uncertainty": example.dv0, "FOV": 8.0,
                    "downsample": 4},
            "free": free, "fixed": fixed,
            "priors": {"r_taper": ["flat", 0.0, 50.0]},
            "mask": {"r_min": 2 * 0.104},  # 2 beams, as the main job
            "fit": {"mcmc": "emcee", "moves": MAIN_JOB_MOVES,
                                              "seed": 0, **counts}}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = merge(args)
        if not config["map"].get("path"):
            base = example_config()
            for section in SECTIONS:
                base[section].update(config[section])
            config = base
        check(config)
        setup = prepare(config)
        out = new_folder(args.out, config["map"]["path"])
    except ConfigError as err:
        print(f"eddy-widgets-fit: {err}", file=sys.stderr)
        return 2
    return run(setup, out, progress=not args.no_progress)


def run(config: dict | FitSetup, out: Path, progress: bool = True,
        checkpoint_interval: float | None = None, truths: dict | None = None) -> int:
    """Fit as ``config`` (a set-up, or one :func:`prepare` made) says and
    write everything into ``out``; ``checkpoint_interval`` [s] over the
    set-up's (``[fit] checkpoint_interval``, else 30)."""
    setup = config if isinstance(config, FitSetup) else prepare(config)
    if checkpoint_interval is None:
        checkpoint_interval = setup.checkpoint_interval
    cube, free = setup.cube, setup.free
    t0 = time.perf_counter()
    print(f"Fitting {Path(cube.path).name} ({cube.data.shape[0]}x{cube.data.shape[1]} "
          f"pixels) with {setup.mcmc}; free: {', '.join(free)}; writing to {out}/ "
          f"(checkpoint every {checkpoint_interval:g} s)")
    result = cube.fit_map(setup.p0, setup.params, mcmc=setup.mcmc,
                          mcmc_kwargs={**setup.mcmc_kwargs, "progress": progress},
                          returns="result",
                          plots=["walkers", "corner", "bestfit", "residual"],
                          checkpoint=out / "result.npz",
                          checkpoint_interval=checkpoint_interval, verdict=False,
                          **setup.counts)
    wall = time.perf_counter() - t0
    written = write_products(cube, result, out)
    print()
    print(result.summary_table(truths))
    print(f"\nwall time (optimise, compile, sample): {wall:.1f} s")
    print(f"wrote to {out}/: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
