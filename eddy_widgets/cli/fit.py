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

    [fixed]
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

Without a map it fits the bundled example with the tutorial's set-up. Every
run writes into a new folder (``fit-<map>-<n>`` unless ``--out`` names one;
an existing, non-empty ``--out`` is an error, never overwritten): the result
(also the run's checkpoint), the figures, the model and residual as FITS, the
residual deprojected onto (r, phi), and the rotation curve in annuli.
Needs no JupyterLab (the widgets are an extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

from eddy_widgets.inference.backends import BACKENDS, COUNT_ARGS
from eddy_widgets.parameters import MASK_SETTINGS, PARAMETERS
from eddy_widgets.products import PRODUCTS, save_figure, write_products  # noqa: F401  (public here too)

SECTIONS = ("map", "free", "fixed", "priors", "mask", "fit")


class ConfigError(ValueError):
    """A fit set-up (TOML file or options) that cannot be used."""


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
                   help="a fixed parameter (repeat)")
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
    p.add_argument("--checkpoint-interval", type=float, default=30.0)
    p.add_argument("--no-progress", action="store_true")
    return p


def _pairs(items, what: str) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--{what} {item!r}: write NAME=VALUE, e.g. "
                              f"--{what} mstar=2.0.")
        out[name.strip()] = value.strip()
    return out


def _number(name: str, value, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} = {value!r} is not a number.") from None


def read_config(path) -> dict:
    """The set-up in a TOML file, with paths made relative to the file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"No config file {path}.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err}).") from None
    unknown = set(config) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; the "
                          f"sections are {', '.join(SECTIONS)}.")
    for key in ("path", "uncertainty"):
        value = config.get("map", {}).get(key)
        if value and not Path(value).is_absolute():
            config["map"][key] = str(path.parent / value)
    return config


def merge(args: argparse.Namespace) -> dict:
    """The TOML file's set-up with the command line's options on top."""
    config = read_config(args.config) if args.config else {}
    config = {s: dict(config.get(s, {})) for s in SECTIONS}
    m, fit = config["map"], config["fit"]
    for key, value in (("path", args.map), ("uncertainty", args.uncertainty),
                       ("FOV", args.fov), ("downsample", args.downsample)):
        if value is not None:
            m[key] = value
    for name, value in _pairs(args.free, "free").items():
        config["free"][name] = _number(name, value, "--free")
        config["fixed"].pop(name, None)
    for name, value in _pairs(args.fixed, "fixed").items():
        config["fixed"][name] = _number(name, value, "--fixed")
        config["free"].pop(name, None)
    for name, value in _pairs(args.prior, "prior").items():
        kind, *numbers = value.split(":")
        if len(numbers) != 2:
            raise ConfigError(f"--prior {name}={value}: write flat:LOW:HIGH or "
                              f"gaussian:MEAN:SIGMA.")
        config["priors"][name] = [kind, *(_number(name, v, "--prior") for v in numbers)]
    if args.r_min is not None:
        config["mask"]["r_min"] = args.r_min
    if args.r_max is not None:
        config["mask"]["r_max"] = args.r_max
    if args.noise is not None:
        config["mask"]["noise"] = args.noise
    for key in ("mcmc", *COUNT_ARGS, "seed"):
        if getattr(args, key) is not None:
            fit[key] = getattr(args, key)
    return config


def check(config: dict) -> None:
    """Raise :class:`ConfigError` naming what is wrong, before any work."""
    names = set(PARAMETERS)
    for section in ("free", "fixed", "priors"):
        bad = sorted(set(config[section]) - names)
        if bad:
            raise ConfigError(f"[{section}] has unknown parameter(s) {bad}; known: "
                              f"{', '.join(PARAMETERS)}.")
    bad = sorted(set(config["mask"]) - set(MASK_SETTINGS))
    if bad:
        raise ConfigError(f"[mask] has unknown setting(s) {bad}; known: "
                          f"{', '.join(MASK_SETTINGS)}.")
    bad = sorted(set(config["fit"]) - {"mcmc", *COUNT_ARGS, "seed", "moves",
                                       "max_tree_depth", "target_accept_prob",
                                       "chain_method", "checkpoint_interval"})
    if bad:
        raise ConfigError(f"[fit] has unknown setting(s) {bad}.")
    if config["map"].get("path") and not config["free"]:
        raise ConfigError("No free parameter: give start values with --free NAME=START "
                          "or in the [free] section.")
    for name, prior in config["priors"].items():
        if not (isinstance(prior, (list, tuple)) and len(prior) == 3):
            raise ConfigError(f"[priors] {name} = {prior!r}: write "
                              f"[\"flat\", low, high] or [\"gaussian\", mean, sigma].")


def new_folder(out, map_path) -> Path:
    """A folder that holds no earlier run: ``out`` if it is new or empty,
    else (without ``out``) ``fit-<map>-<n>`` with the first free n."""
    if out is not None:
        out = Path(out)
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"{out} exists and is not empty: choose another --out "
                              f"(an earlier run is never overwritten).")
        out.mkdir(parents=True, exist_ok=True)
        return out
    stem = Path(map_path).name.removesuffix(".fits").removesuffix("_v0")
    n = 1
    while Path(f"fit-{stem}-{n}").exists():
        n += 1
    folder = Path(f"fit-{stem}-{n}")
    folder.mkdir(parents=True)
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
        out = new_folder(args.out, config["map"]["path"])
    except ConfigError as err:
        print(f"eddy-widgets-fit: {err}", file=sys.stderr)
        return 2
    return run(config, out, progress=not args.no_progress,
               checkpoint_interval=args.checkpoint_interval)


def run(config: dict, out: Path, progress: bool = True,
        checkpoint_interval: float = 30.0, truths: dict | None = None) -> int:
    """Fit as ``config`` says and write everything into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from eddy_widgets.facade.rotationmap import rotationmap

    m, fit = config["map"], dict(config["fit"])
    downsample = m.get("downsample")
    if isinstance(downsample, str) and downsample != "beam":
        downsample = int(downsample)
    t0 = time.perf_counter()
    cube = rotationmap(m["path"], FOV=m.get("FOV"), uncertainty=m.get("uncertainty"),
                       downsample=downsample)
    for name, (kind, a, b) in config["priors"].items():
        cube.set_prior(name, [a, b], kind)
    free = list(config["free"])
    params = {name: i for i, name in enumerate(free)}
    params.update({k: float(v) for k, v in config["fixed"].items()})
    params.update(config["mask"])
    p0 = [float(config["free"][name]) for name in free]
    mcmc = fit.pop("mcmc", "emcee")
    counts = {a: fit.pop(a, None) for a in COUNT_ARGS}
    fit.pop("checkpoint_interval", None)
    fit["progress"] = progress
    print(f"Fitting {Path(m['path']).name} ({cube.data.shape[0]}x{cube.data.shape[1]} "
          f"pixels) with {mcmc}; free: {', '.join(free)}; writing to {out}/")
    result = cube.fit_map(p0, params, mcmc=mcmc, mcmc_kwargs=fit, returns="result",
                          plots=["walkers", "corner", "bestfit", "residual"],
                          checkpoint=out / "result.npz",
                          checkpoint_interval=checkpoint_interval, verdict=False,
                          **counts)
    wall = time.perf_counter() - t0
    written = write_products(cube, result, out)
    print()
    print(result.summary_table(truths))
    print(f"\nwall time (load, optimise, compile, sample): {wall:.1f} s")
    print(f"wrote to {out}/: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
