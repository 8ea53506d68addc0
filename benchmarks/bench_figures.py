"""The cost of ``fit_map``'s figures, warm, on the standard problem.

    .venv/bin/python benchmarks/bench_figures.py [--repeats 5]
        [--nwalkers 32 --nburnin 1500 --nsteps 1500] [--profile]
        [--eddy /tmp/eddy_venv3/bin/python] [--json out.json]

One emcee fit of the bundled example (FOV 8 arcsec, downsample 4, the
tutorial's nine free parameters; 32 walkers x (1500 burn-in + 1500 steps)
by default, ``plots='none'``), then, with matplotlib's Agg backend, the
median over ``--repeats`` warm repeats (one more before them, not counted)
of making the figures of the tutorial's ``plots=['walkers', 'corner',
'bestfit', 'residual']`` and rendering each once (``fig.canvas.draw()``, what
``savefig`` or a notebook's display does), then closing them:

- **ours**: ``cube.make_plots(run, plots)``, the four figures the command
  line and the dashboard write (walkers in one figure, corner, best fit
  beside the data, residual);
- **astro-eddy layout**: ``cube.fit_figures(run, plots)``, what ``fit_map``
  opens in a script: astro-eddy 3.2's twelve figures (a walker figure per
  free parameter, corner, model in km/s, residual in m/s);
- with ``--eddy PYTHON`` (a Python with astro-eddy 3.2 installed, e.g. a
  venv made with ``python3.11 -m venv /tmp/eddy_venv3 &&
  /tmp/eddy_venv3/bin/pip install astro-eddy==3.2.0``): astro-eddy's own
  figure code (the block at the end of its ``fit_map``) on the same chain,
  in that Python, timed the same way.

Wall time and this process's CPU time are both given: on a machine shared
with other work the wall time grows with the load, the CPU time much less.
``--profile`` prints cProfile's 25 most expensive calls (cumulative) of one
warm repeat of each layout. ``--json`` writes every time.
"""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FREE = ("x0", "y0", "PA", "mstar", "vlsr", "z0", "psi", "r_taper", "q_taper")
P0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]
PLOTS = ["walkers", "corner", "bestfit", "residual"]


def tutorial_cube():
    from eddy_widgets import rotationmap
    from eddy_widgets.data import example_paths

    paths = example_paths()
    cube = rotationmap(path=paths["v0"], uncertainty=paths["dv0"], FOV=8.0,
                       downsample=4)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    params = {name: i for i, name in enumerate(FREE)}
    params.update(inc=46.7, dist=101.0, r_min=2.0 * cube.bmaj)
    return cube, params, paths


def draw_all(make) -> tuple[float, float, int]:
    """Wall and CPU seconds to make the figures and render each once; how
    many figures are open. The garbage of the figures before is collected
    first: a script makes its figures once."""
    plt.close("all")
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    figures = make()
    for fig in figures:
        fig.canvas.draw()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    count = len(plt.get_fignums())
    plt.close("all")
    return seconds, cpu, count


def time_layout(make, repeats: int) -> dict:
    draw_all(make)                                   # warm: compiled model, fonts
    times, cpus, count = [], [], 0
    for _ in range(repeats):
        seconds, cpu, count = draw_all(make)
        times.append(seconds)
        cpus.append(cpu)
    return {"median_s": float(np.median(times)), "times_s": times,
            "median_cpu_s": float(np.median(cpus)), "cpu_s": cpus, "figures": count}


def profile(make, title: str) -> None:
    import cProfile
    import pstats

    plt.close("all")
    pr = cProfile.Profile()
    pr.enable()
    for fig in make():
        fig.canvas.draw()
    pr.disable()
    plt.close("all")
    print(f"\n-- cProfile, {title} --")
    pstats.Stats(pr).sort_stats("cumulative").print_stats(25)


#: astro-eddy's figure code, as at the end of its ``fit_map`` (3.2), on a
#: chain written by this script; prints its times as JSON.
EDDY_SCRIPT = r"""
import gc, json, sys, time
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from eddy import rotationmap
from eddy.helper_functions import plot_walkers, plot_corner

d = np.load(sys.argv[1], allow_pickle=True)
repeats = int(sys.argv[2])
cube = rotationmap(path=str(d["v0"]), uncertainty=str(d["dv0"]), FOV=8.0,
                   downsample=4)
params = d["params"].item()
params_tmp = cube.verify_params_dictionary(params.copy())
chain, nburnin, samples = d["chain"], int(d["nburnin"]), d["samples"]
median = rotationmap._populate_dictionary(np.median(samples, axis=0), params_tmp)
cube.ivar = cube._calc_ivar(cube.verify_params_dictionary(median))
labels = rotationmap._get_labels(params_tmp)

def make():
    plot_walkers(np.transpose(chain, (2, 0, 1)), nburnin, labels)
    plot_corner(samples, labels)
    cube.plot_model(samples=samples, params=params, mask=cube.ivar, draws=10)
    cube.plot_model_residual(samples=samples, params=params, mask=cube.ivar,
                             draws=10)

def once():
    plt.close("all")
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    make()
    for n in plt.get_fignums():
        plt.figure(n).canvas.draw()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    count = len(plt.get_fignums())
    plt.close("all")
    return seconds, cpu, count

once()
runs = [once() for _ in range(repeats)]
times, cpus = [r[0] for r in runs], [r[1] for r in runs]
print(json.dumps({"median_s": float(np.median(times)), "times_s": times,
                  "median_cpu_s": float(np.median(cpus)), "cpu_s": cpus,
                  "figures": runs[-1][2]}))
"""


def astro_eddy(python: str, run, params: dict, paths: dict, repeats: int) -> dict:
    """astro-eddy's figure code on ``run``'s chain, in ``python``."""
    result = run.result
    chain = np.concatenate([result.chains["warmup"], result.chains["sampling"]],
                           axis=1).transpose(1, 0, 2)          # (steps, walkers, ndim)
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "chain.npz"
        np.savez(npz, chain=chain, nburnin=result.n_draws("warmup"),
                 samples=np.asarray(result.samples), params=np.array(params, dtype=object),
                 v0=str(paths["v0"]), dv0=str(paths["dv0"]))
        script = Path(tmp) / "eddy_figures.py"
        script.write_text(EDDY_SCRIPT)
        proc = subprocess.run([python, str(script), str(npz), str(repeats)],
                              capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"astro-eddy's figures failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nwalkers", type=int, default=32)
    parser.add_argument("--nburnin", type=int, default=1500)
    parser.add_argument("--nsteps", type=int, default=1500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--eddy", metavar="PYTHON",
                        help="a Python with astro-eddy 3.2: time its figures too")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    cube, params, paths = tutorial_cube()
    t0 = time.perf_counter()
    cube.fit_map(P0, params, nwalkers=args.nwalkers, nburnin=args.nburnin,
                 nsteps=args.nsteps, plots="none", returns="none", verdict=False,
                 mcmc_kwargs={"seed": 0, "progress": False})
    fit_s = time.perf_counter() - t0
    run = cube.last_run
    print(f"fit (emcee {args.nwalkers} x ({args.nburnin} + {args.nsteps}), cold): "
          f"{fit_s:.1f} s; {run.result.samples.shape[0]} post-burn-in draws")

    layouts = {"ours": lambda: list(cube.make_plots(run, PLOTS).values())}
    if hasattr(cube, "fit_figures"):
        layouts["astro-eddy layout"] = lambda: list(cube.fit_figures(run, PLOTS).values())
    else:
        print("(this version has no fit_figures: the astro-eddy layout is skipped)")
    out = {"fit_s": fit_s, "counts": [args.nwalkers, args.nburnin, args.nsteps],
           "repeats": args.repeats}
    for name, make in layouts.items():
        out[name] = time_layout(make, args.repeats)
    if args.eddy:
        out["astro-eddy 3.2"] = astro_eddy(args.eddy, run, params, paths, args.repeats)

    print(f"\nwarm, median of {args.repeats} (make + one Agg render each):")
    print("| layout | figures | wall, median [s] | CPU, median [s] | wall, every repeat [s] |")
    print("|---|---|---|---|---|")
    for name in ("ours", "astro-eddy layout", "astro-eddy 3.2"):
        if name in out:
            r = out[name]
            print(f"| {name} | {r['figures']} | {r['median_s']:.2f} | "
                  f"{r['median_cpu_s']:.2f} | "
                  + ", ".join(f"{t:.2f}" for t in r["times_s"]) + " |")
    if args.profile:
        for name, make in layouts.items():
            profile(make, name)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
