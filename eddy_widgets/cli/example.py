"""The main job: fit the bundled example map headless.

    python -m eddy_widgets.cli [--mcmc numpyro] [--nwalkers N] [--nburnin N]
                               [--nsteps N] [--out DIR]

Prints the posterior medians with 16/84 percentiles beside the true values
and the verdict, and writes to the output folder the result file (also the
run's checkpoint), the walkers, corner, best-fit and residual figures, the
model and residual FITS, the residual in (r, phi) and the rotation curve
(see :func:`eddy_widgets.products.write_products`). To fit your own map:
``eddy-widgets-fit``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

from eddy_widgets.data.example import (
    DEFAULT_COUNTS,
    EMCEE_MOVES,
    MAIN_JOB_MOVES,
    TUTORIAL_P0,
    TUTORIAL_PARAMS,
)
from eddy_widgets.inference.backends import BACKENDS, COUNT_ARGS

__all__ = ["DEFAULT_COUNTS", "EMCEE_MOVES", "TUTORIAL_P0", "TUTORIAL_PARAMS",
           "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eddy-widgets-example",
        description="Fit the bundled HD 163296-like rotation map and compare the "
                    "posterior with the true values.")
    p.add_argument("--mcmc", choices=sorted(BACKENDS), default="emcee",
                   help="sampler backend (default: emcee)")
    for arg in COUNT_ARGS:
        names = "/".join(dict.fromkeys(b.counts[arg] for b in BACKENDS.values()))
        p.add_argument(f"--{arg}", type=int, default=None,
                       help=f"{names} (default: emcee {DEFAULT_COUNTS['emcee']}, "
                            f"numpyro {DEFAULT_COUNTS['numpyro']} for "
                            f"{', '.join(COUNT_ARGS)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tree-depth", type=int, default=6,
                   help="NUTS tree depth cap (the tutorial's 6)")
    p.add_argument("--chain-method", default="sequential",
                   choices=["sequential", "parallel", "vectorized"])
    p.add_argument("--fov", type=float, default=8.0, help="field of view [arcsec]")
    p.add_argument("--downsample", default="4", help="integer or 'beam'")
    p.add_argument("--moves", choices=["de", "stretch"], default="de",
                   help="emcee moves: differential evolution (default) or emcee's "
                        "stretch move (astro-eddy's)")
    p.add_argument("--out", default="output", help="output folder (default: output)")
    p.add_argument("--checkpoint-interval", type=float, default=30.0,
                   help="seconds between checkpoints of OUT/result.npz while the "
                        "run goes on (default 30; 0 turns checkpoints off)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    from eddy_widgets.data import load_example
    from eddy_widgets.facade.rotationmap import rotationmap
    from eddy_widgets.products import write_products

    example = load_example()
    downsample = args.downsample if args.downsample == "beam" else int(args.downsample)
    t0 = time.perf_counter()
    cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=args.fov,
                       downsample=downsample)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    params = dict(TUTORIAL_PARAMS, r_min=2.0 * cube.bmaj)
    backend = BACKENDS[args.mcmc]
    defaults = DEFAULT_COUNTS[args.mcmc]
    counts = {a: (d if getattr(args, a) is None else getattr(args, a))
              for a, d in zip(COUNT_ARGS, defaults)}
    mcmc_kwargs = {"seed": args.seed, "progress": not args.no_progress}
    # The command line's options of the backend that takes them.
    if "max_tree_depth" in backend.options:
        mcmc_kwargs["max_tree_depth"] = args.max_tree_depth
    if "chain_method" in backend.options:
        mcmc_kwargs["chain_method"] = args.chain_method
    if "moves" in backend.options and args.moves == "de":
        mcmc_kwargs["moves"] = MAIN_JOB_MOVES
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "result.npz" if args.checkpoint_interval > 0 else None
    print(f"Fitting {Path(example.v0).name} ({cube.data.shape[0]}x{cube.data.shape[1]} "
          f"pixels) with {args.mcmc}: " + ", ".join(
              f"{backend.counts[a]}={counts[a]}" for a in COUNT_ARGS))
    result = cube.fit_map(p0=TUTORIAL_P0, params=params, optimize=True, mcmc=args.mcmc,
                          mcmc_kwargs=mcmc_kwargs, plots="none", returns="result", checkpoint=checkpoint, verdict=False,
                          checkpoint_interval=args.checkpoint_interval, **counts)
    wall = time.perf_counter() - t0
    # The truths are known for the bundled example: draw them.
    cube.figures = cube.make_plots(cube.last_run, ["walkers", "corner", "bestfit",
                                                   "residual"], truths=example.truths)
    # The main job's folder is reused from run to run: it replaces its files.
    written = write_products(cube, result, out, overwrite=True)
    print()
    print(result.summary_table(example.truths))
    summary = result.sampler_summary()
    print()
    print("sampler: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in summary.items()))
    print(f"wall time (load, optimise, compile, sample): {wall:.1f} s")
    print(f"wrote to {out}/: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
