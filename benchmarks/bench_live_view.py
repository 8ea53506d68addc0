"""What the live chain view costs: the same fit headless and with a ChainView
attached, in a real Jupyter kernel (so every redraw is serialised and sent as
comm messages, as in JupyterLab).

    .venv/bin/python benchmarks/bench_live_view.py [--mcmc emcee|numpyro] [--repeats 3]

Prints the median sampling time of each and the overhead of the view. Both
runs use the same compiled programs (a warm-up fit runs first), the standard
problem (bundled example, FOV 8, downsample 4, the tutorial's 9 parameters)
and the tutorial's counts.
"""

from __future__ import annotations

import argparse
import json

from nbclient import NotebookClient
import nbformat

CODE = r'''
import json, time
import numpy as np
from eddy_widgets import rotationmap, load_example
from eddy_widgets.cli import TUTORIAL_P0, TUTORIAL_PARAMS, DEFAULT_COUNTS
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import ChainView

MCMC, REPEATS = {mcmc!r}, {repeats}
cube = rotationmap(load_example().v0, FOV=8.0, downsample=4)
cube.set_prior("r_taper", [0.0, 50.0], "flat")
params = dict(TUTORIAL_PARAMS, r_min=2.0 * cube.bmaj)
nwalkers, nburnin, nsteps = DEFAULT_COUNTS[MCMC]
kwargs = dict(p0=TUTORIAL_P0, params=params, mcmc=MCMC, nwalkers=nwalkers,
              nburnin=nburnin, nsteps=nsteps, mcmc_kwargs={{"seed": 0}})

def headless():
    run = cube.prepare_fit(**kwargs, verbose=False, warn=False)
    t0 = time.perf_counter(); run.run(); return time.perf_counter() - t0

def with_view():
    session = FitSession.from_fit_kwargs(cube=cube, **kwargs)
    view = ChainView(session)
    display(view)
    session.start(); session.wait()
    assert session.status == "done", session.error
    run = session.fit_run
    return run.info.elapsed, view.flushes

headless()  # compile everything once
times = {{"headless": [], "view": [], "flushes": []}}
for _ in range(REPEATS):
    times["headless"].append(headless())
    seconds, flushes = with_view()
    times["view"].append(seconds); times["flushes"].append(flushes)
print("RESULT " + json.dumps(times))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mcmc", default="numpyro", choices=["emcee", "numpyro"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CODE.format(mcmc=args.mcmc,
                                                      repeats=args.repeats))]
    NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs
                   if o.get("output_type") == "stream")
    line = next(l for l in text.splitlines() if l.startswith("RESULT "))
    times = json.loads(line[len("RESULT "):])
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"{args.mcmc}, sampling time (warm), median of {args.repeats}:")
    print(f"  headless          {med['headless']:.2f} s   {times['headless']}")
    print(f"  live chain view   {med['view']:.2f} s   {times['view']} "
          f"({med['flushes']} redraws)")
    print(f"  overhead          {100 * (med['view'] / med['headless'] - 1):+.1f} %")


if __name__ == "__main__":
    main()
