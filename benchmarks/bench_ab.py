"""A/B timing of two checkouts of the package, interleaved: does a change
(a refactor) slow the fits down?

    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/bench_ab.py --a /tmp/base --b . --repeats 3

Each measurement is a fresh process that imports ``eddy_widgets`` from the
given folder (``PYTHONPATH``), with the compilation cache off, and times on
the standard problem (the bundled example, FOV 8, downsample 4, the
tutorial's nine free parameters, see README.md):

- ``emcee``: ``fit_map`` with 32 walkers x (300 + 1000) steps, the
  differential-evolution moves, seed 0, optimised start;
- ``numpyro``: ``fit_map`` with 1 chain x (300 + 500) draws,
  ``max_tree_depth=6``, seed 0;

each twice in the process (the first call compiles; the second, warm, is the
number), plus the warm ``log_prob`` batch of 16 walkers and the gradient.
A and B alternate (A B A B ...), so that a drift of the machine falls on
both. The table gives the median of each and B / A.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys

CHILD = r'''
import json, sys, time
import numpy as np
import eddy_widgets
from eddy_widgets import load_example, rotationmap
from eddy_widgets.cli import TUTORIAL_P0, TUTORIAL_PARAMS   # both sides have it
assert eddy_widgets.__file__.startswith(sys.argv[1]), eddy_widgets.__file__
ex = load_example()
cube = rotationmap(ex.v0, uncertainty=ex.dv0, FOV=8.0, downsample=4)
cube.set_prior("r_taper", [0.0, 50.0], "flat")
params = dict(TUTORIAL_PARAMS, r_min=2.0 * cube.bmaj)
out = {}
runs = {"emcee": dict(nwalkers=32, nburnin=300, nsteps=1000, mcmc="emcee",
                      mcmc_kwargs={"seed": 0, "progress": False,
                                   "moves": [("DEMove", 0.8), ("DESnookerMove", 0.2)]}),
        "numpyro": dict(nwalkers=1, nburnin=300, nsteps=500, mcmc="numpyro",
                        mcmc_kwargs={"seed": 0, "progress": False,
                                     "max_tree_depth": 6})}
import contextlib, io
for name, kw in runs.items():
    for attempt in ("cold", "warm"):
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            cube.fit_map(TUTORIAL_P0, params, plots="none", returns="result",
                         verdict=False, **kw)
        out[f"{name}_{attempt}_s"] = time.perf_counter() - t
post = cube.last_run.posterior
theta = np.tile(np.asarray(TUTORIAL_P0, float), (16, 1))
post.log_prob_numpy(theta)
t = time.perf_counter()
for _ in range(200):
    post.log_prob_numpy(theta)
out["batch16_ms"] = (time.perf_counter() - t) / 200 * 1e3
print(json.dumps(out))
'''


def measure(folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(folder), "EDDY_WIDGETS_JAX_CACHE": "off"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env,
                          cwd=folder, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the measurement of {folder} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", type=Path, required=True, help="checkout A (before)")
    p.add_argument("--b", type=Path, required=True, help="checkout B (after)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, help="JSON of every number")
    args = p.parse_args(argv)
    folders = {"A": args.a.resolve(), "B": args.b.resolve()}
    runs = {"A": [], "B": []}
    for i in range(args.repeats):
        for label in ("A", "B"):
            runs[label].append(measure(folders[label]))
            print(f"repeat {i + 1} {label}: {runs[label][-1]}", flush=True)
    keys = list(runs["A"][0])
    print(f"\n{'':<18}{'A median':>10}{'B median':>10}{'B / A':>8}")
    for key in keys:
        a = statistics.median(r[key] for r in runs["A"])
        b = statistics.median(r[key] for r in runs["B"])
        print(f"{key:<18}{a:>10.3f}{b:>10.3f}{b / a:>8.3f}")
    if args.out:
        args.out.write_text(json.dumps({"folders": {k: str(v) for k, v in
                                                    folders.items()},
                                        "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
