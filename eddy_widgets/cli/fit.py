"""Fit your own rotation map from the command line.

    eddy-widgets-fit MAP_v0.fits [--uncertainty MAP_dv0.fits] [--fov 8]
        [--downsample 4] [--free x0=0 --free PA=312 ...] [--fixed inc=46.7 ...]
        [--prior r_taper=flat:0:50 ...] [--r-min 0.2] [--r-max 4]
        [--mcmc emcee|numpyro] [--nwalkers N] [--nburnin N] [--nsteps N]
        [--noise independent|correlated]
        [--config fit.toml] [--out DIR] [--products-only]

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

Counts not given: for NUTS (``--mcmc numpyro``) those of the one table of
run defaults, ``eddy_widgets.data.example.RUN_DEFAULTS`` (the dashboard's;
they converge on the bundled example), for emcee ``fit_map``'s.

Without a map it fits the bundled example with the tutorial's set-up. Every
run writes into a new folder (``fit-<map>-<n>`` unless ``--out`` names one;
an existing, non-empty ``--out`` is an error, never overwritten): the result
(also the run's checkpoint), the figures, the model and residual as FITS, the
residual deprojected onto (r, phi), and the rotation curve in annuli.
Needs no JupyterLab (the widgets are an extra).

Ctrl-C (:mod:`eddy_widgets.inference.interrupt`): the first, from the
optimiser on, stops the sampling after the chunk in progress; the result is
saved and the products written. A second interrupts at once: a chunk is
rolled back to the last kept draw (the products are then written); while the
result is being saved it waits until the result is on disk, and then ends the
run without products. A Ctrl-C while the products are written stops them,
leaving the saved result. Either way the command prints how to write the
products again: the same command with ``--out DIR --products-only``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import math
from pathlib import Path
import re
import shlex
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
from eddy_widgets.inference.interrupt import deferred_interrupt, pause_point
from eddy_widgets.parameters import PARAMETERS
from eddy_widgets.products import PRODUCTS, save_figure, write_products  # noqa: F401  (public here too)

if TYPE_CHECKING:
    from eddy_widgets.facade.rotationmap import rotationmap

#: The figures every run writes.
FIGURES = ("walkers", "corner", "bestfit", "residual")

#: What :func:`run` returns for a run ended by Ctrl-C (128 + SIGINT, a
#: shell's number for it); the command itself ends killed by SIGINT.
INTERRUPTED = 130

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
    p.add_argument("--products-only", action="store_true",
                   help="fit nothing: write the products of the run in --out again "
                        "from its result.npz (after a run interrupted while writing "
                        "them); the same set-up as the run")
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
    from eddy_widgets.data.example import RUN_DEFAULTS
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
    # Counts not given: the one table of run defaults (the dashboard's) for
    # the backends it holds (NUTS), else fit_map's own.
    for arg, value in RUN_DEFAULTS.get(mcmc, {}).items():
        if counts[arg] is None:
            counts[arg] = value
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


def example_config(mcmc: str = "emcee") -> dict:
    """The bundled example with the tutorial's set-up (the main job's):
    emcee with its moves and counts; NUTS (``mcmc='numpyro'``) with the
    counts of the one table of run defaults
    (:data:`~eddy_widgets.data.example.RUN_DEFAULTS`, the dashboard's)."""
    from eddy_widgets.data.example import (
        DEFAULT_COUNTS,
        MAIN_JOB_MOVES,
        RUN_DEFAULTS,
        TUTORIAL_P0,
        TUTORIAL_PARAMS,
        load_example,
    )

    example = load_example()
    free = {k: TUTORIAL_P0[v] for k, v in TUTORIAL_PARAMS.items() if isinstance(v, int)}
    fixed = {k: v for k, v in TUTORIAL_PARAMS.items() if not isinstance(v, int)}
    if mcmc in RUN_DEFAULTS:
        fit = {"mcmc": mcmc, "seed": 0, **RUN_DEFAULTS[mcmc]}
    else:
        fit = {"mcmc": "emcee", "moves": MAIN_JOB_MOVES, "seed": 0,
               **dict(zip(COUNT_ARGS, DEFAULT_COUNTS["emcee"]))}
    return {"map": {"path": example.v0, "uncertainty": example.dv0, "FOV": 8.0,
                    "downsample": 4},
            "free": free, "fixed": fixed,
            "priors": {"r_taper": ["flat", 0.0, 50.0]},
            "mask": {"r_min": 2 * 0.104},  # 2 beams, as the main job
            "fit": fit}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = merge(args)
        if not config["map"].get("path"):
            base = example_config(config["fit"].get("mcmc", "emcee"))
            for section in SECTIONS:
                base[section].update(config[section])
            config = base
        check(config)
        if args.products_only and not args.out:
            raise ConfigError("--products-only needs --out: the folder of the run "
                              "whose products to write.")
        setup = prepare(config)
        if args.products_only:
            return products_only(setup, Path(args.out))
        out = new_folder(args.out, config["map"]["path"])
    except ConfigError as err:
        print(f"eddy-widgets-fit: {err}", file=sys.stderr)
        return 2
    code = run(setup, out, progress=not args.no_progress,
               again=products_command(sys.argv[1:] if argv is None else argv, out))
    if code == INTERRUPTED and argv is None:
        _end_by_sigint()
    return code


def _end_by_sigint() -> None:
    """End the process as Ctrl-C ends a program (killed by SIGINT, as Python
    does for an uncaught ``KeyboardInterrupt``), so that a calling shell
    script stops too; the command line only (``main()`` without ``argv``)."""
    import os
    import signal

    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def products_command(argv, out: Path) -> str:
    """The command that writes the products of the run ``argv`` made in
    ``out`` again (``--out out --products-only``)."""
    kept, args = [], iter(argv)
    for arg in args:
        if arg == "--out":
            next(args, None)              # and its value
        elif arg != "--products-only" and not arg.startswith("--out="):
            kept.append(arg)
    return shlex.join(["eddy-widgets-fit", *kept, "--out", str(out), "--products-only"])


def products_only(setup: FitSetup, out: Path) -> int:
    """Write the products of the run in ``out`` from its ``result.npz``
    (the figures, model and residual FITS, the disk-frame products), on the
    map and set-up of ``setup``, which must be the run's."""
    from eddy_widgets.inference.result import FitResult

    cube = setup.cube
    try:
        result = FitResult.load(out / "result.npz")
        run = cube.resume(result)
    except (OSError, ValueError) as err:
        print(f"eddy-widgets-fit: {err}", file=sys.stderr)
        return 2
    cube.last_run = run
    written = _write_products(cube, result, out, overwrite=True,
                              parts=tuple(p for p in PRODUCTS if p != "result"))
    print(f"wrote to {out}/: {', '.join(written)}")
    return 0


def _write_products(cube, result, out: Path, overwrite: bool = False,
                    parts=PRODUCTS) -> list[str]:
    """The run's figures and products (:func:`write_products`); only the
    result when the run was stopped before its first draw."""
    if not result.n_draws("warmup") + result.n_draws("sampling"):
        return write_products(cube, result, out,
                              parts=[p for p in parts if p == "result"])
    cube.figures = cube.make_plots(cube.last_run, FIGURES)
    return write_products(cube, result, out, overwrite=overwrite, parts=parts)


def _interrupted(cube, out: Path, again: str | None) -> int:
    """Say what a Ctrl-C that ended the run left, and how to go on."""
    run = cube.last_run
    path = out / "result.npz"
    if run is None or not run.saved:
        drawn = run is not None and (run.result.n_draws("warmup")
                                     + run.result.n_draws("sampling")) > 0
        print("\neddy-widgets-fit: interrupted; " + (
            f"the result could not be written to {path} (see the warning above)."
            if drawn else "nothing was sampled."), file=sys.stderr)
        return INTERRUPTED
    result = run.result
    again = again or (f"eddy-widgets-fit <the same set-up> --out {shlex.quote(str(out))} "
                      f"--products-only")
    print(f"\neddy-widgets-fit: interrupted. The result is saved in {path} "
          f"({result.n_draws('warmup')} warmup and {result.n_draws('sampling')} "
          f"post-warmup draws); the products (figures, FITS, rotation curve) "
          f"were not written, or not all. Write them with:\n    {again}",
          file=sys.stderr)
    return INTERRUPTED


def run(config: dict | FitSetup, out: Path, progress: bool = True,
        checkpoint_interval: float | None = None, truths: dict | None = None,
        again: str | None = None) -> int:
    """Fit as ``config`` (a set-up, or one :func:`prepare` made) says and
    write everything into ``out``; ``checkpoint_interval`` [s] over the
    set-up's (``[fit] checkpoint_interval``, else 30). Ended by Ctrl-C (see
    the module's help), it returns :data:`INTERRUPTED` after saying what was
    kept and how to write the products (``again``: the command that does)."""
    setup = config if isinstance(config, FitSetup) else prepare(config)
    if checkpoint_interval is None:
        checkpoint_interval = setup.checkpoint_interval
    cube, free = setup.cube, setup.free
    t0 = time.perf_counter()
    print(f"Fitting {Path(cube.path).name} ({cube.data.shape[0]}x{cube.data.shape[1]} "
          f"pixels) with {setup.mcmc}; free: {', '.join(free)}; writing to {out}/ "
          f"(checkpoint every {checkpoint_interval:g} s)")
    # From the optimiser until the result is on disk, the first Ctrl-C is a
    # stop request that the run honours at its next chunk boundary, even if
    # JAX swallows the KeyboardInterrupt.
    try:
        with deferred_interrupt():
            result = cube.fit_map(setup.p0, setup.params, mcmc=setup.mcmc,
                                  mcmc_kwargs={**setup.mcmc_kwargs,
                                               "progress": progress},
                                  returns="result", plots="none",
                                  checkpoint=out / "result.npz",
                                  checkpoint_interval=checkpoint_interval,
                                  verdict=False, **setup.counts)
        wall = time.perf_counter() - t0
        pause_point("products")                   # test-only
        written = _write_products(cube, result, out)
    except KeyboardInterrupt:
        return _interrupted(cube, out, again)
    print()
    if result.n_draws("sampling"):
        print(result.summary_table(truths))
    else:
        # Stopped (Ctrl-C) before the first post-warmup draw: nothing to sum up.
        print(f"No post-warmup draw yet: the result and the sampler's state are in "
              f"{out / 'result.npz'}; continue it with cube.continue_fit(result="
              f"FitResult.load(...)).")
    print(f"\nwall time (optimise, compile, sample): {wall:.1f} s")
    print(f"wrote to {out}/: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
