"""Calibration, measured: do the 68% and 95% intervals hold the truth that often?

Mock observations (:mod:`eddy_widgets.mock`: our model -> a line cube with a
beam and beam-correlated noise -> bettermoments' quadratic v0/dv0) are fitted
at full resolution with NUTS on Dask (:func:`eddy_widgets.fit_many`), each
map three ways:

- ``correlated``: ``noise='correlated'`` (beam-shaped kernel estimated at the
  start, free noise scale, clip of low-S/N pixels by the peak map, the draws
  widened by the block sandwich when the run ends);
- ``independent``: today's default (and astro-eddy's), every pixel independent;
- ``beam``: the independent likelihood at ``downsample='beam'`` (about one
  pixel per beam, astro-eddy's remedy).

The reference of each fit is what it would find without noise: the optimum of
the same likelihood (same mask rule, weights dv0 of the noisy map, the same
noise kernel, s fixed at 1) on the noise-free cube's v0 map. The beam smears
the line centres, so that map is not our model at the truth: the bias against
the truth is its own column.

Coverage is the share of (map, parameter) pairs whose reference lies inside the
central 68% / 95% interval of the posterior, per parameter and pooled, with
bootstrap standard errors from resampling the maps.

Three noise regimes of the v0/dv0 maps (see the mock module):
- ``independent``: independent channels, bettermoments given the true rms;
- ``hanning``: Hanning-smoothed channels (ALMA's default; dv0 too large);
- ``edge``: bettermoments' own rms from the first and last 30 channels,
  which still hold line emission (dv0 ~3x too large).

    .venv/bin/pip install -e '.[mock,dask]'
    .venv/bin/python benchmarks/bench_coverage.py --maps 40 --regimes independent
    .venv/bin/python benchmarks/bench_coverage.py --maps 15 --regimes hanning,edge
    # 200+ maps (about 2 hours per 100 maps and method on 2 cores):
    .venv/bin/python benchmarks/bench_coverage.py --maps 200 --workers 8

Each run appends to ``--out`` (JSON, one record per fit) and prints the table;
``--table-from`` prints the table of a file again. Fits already in
``--work`` are reused (fit_many skips a job whose result exists).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import time

import numpy as np

#: The disk of every mock map (arcsec, deg, Msun, m/s, pc).
TRUTHS = {"x0": 0.0, "y0": 0.0, "inc": 40.0, "PA": 60.0, "mstar": 1.5,
          "vlsr": 5000.0, "dist": 100.0, "z0": 0.25, "psi": 1.25}
#: The parameters fitted (the others fixed at the truth).
FREE = ("x0", "y0", "inc", "PA", "mstar", "vlsr", "z0")
#: Mock set-up shared by every regime (3-pixel FWHM beam).
MOCK = {"npix": 120, "pixel_scale": 0.05, "beam": (0.15, 0.15, 0.0)}
REGIMES = {
    "independent": {},
    "hanning": {"hanning": True},
    # bettermoments' rms from the first and last 30 of 101 channels, which
    # still hold the inner disk's line: dv0 and dFnu ~3x too large.
    "edge": {"noise_channels": 30},
}
METHODS = {
    "correlated": {"noise": "correlated"},
    "independent": {},
    "beam": {"downsample": "beam"},
}
#: Radii fitted (arcsec, in the disk): inside the bright disk, and 4 beams
#: off the centre, where the beam smears the line centres most.
R_MIN, R_MAX = 0.6, 2.4
#: NUTS counts: 1 chain x (400 + 600) gives R-hat < 1.01 on these maps.
COUNTS = {"mcmc": "numpyro", "nwalkers": 1, "nburnin": 400, "nsteps": 600}


def params_and_p0():
    params = {k: v for k, v in TRUTHS.items() if k not in FREE}
    params.update({name: i for i, name in enumerate(FREE)})
    params.update(r_min=R_MIN, r_max=R_MAX)
    return params, [TRUTHS[name] for name in FREE]


def make_mock(regime: str, seed: int, folder: str) -> dict:
    """Write one mock map (FITS) and return its paths."""
    from eddy_widgets.mock import mock_observation

    name = f"{regime}_{seed:03d}"
    obs = mock_observation(TRUTHS, seed=seed, **MOCK, **REGIMES[regime])
    return obs.write(folder, name)


def reference(record: dict) -> dict:
    """The optimum of the fit's own likelihood on the noise-free cube's map."""
    import contextlib
    import io

    from eddy_widgets import rotationmap
    from eddy_widgets.inference.result import FitResult

    result = FitResult.load(record["result"])
    params, p0 = params_and_p0()
    method = METHODS[record["method"]]
    noise = result.settings.get("noise")
    if noise:   # the same kernel, s fixed at 1
        params.update(noise_scale=1.0, noise_nugget=noise["nugget"],
                      noise_width=noise["width"], noise="correlated")
    cube = rotationmap(record["v0_true"], uncertainty=record["dv0"],
                       peak=record["Fnu"], downsample=method.get("downsample"))
    with contextlib.redirect_stdout(io.StringIO()):
        run = cube.prepare_fit(p0, params, verbose=False, warn=False,
                               mcmc="numpyro")
    names = list(run.posterior.names)
    return {name: float(run.theta0[names.index(name)]) for name in FREE}


def summarise(records: list[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """Coverage per (regime, method), per parameter and pooled, bootstrapped
    over maps; widths relative to the ``beam`` method's on the same maps."""
    rng = np.random.default_rng(seed)
    table = {}
    keys = sorted({(r["regime"], r["method"]) for r in records if "p16" in r})
    for regime, method in keys:
        rows = [r for r in records if r["regime"] == regime and r["method"] == method
                and "p16" in r]
        inside68 = np.array([[r["p16"][p] <= r["ref"][p] <= r["p84"][p] for p in FREE]
                             for r in rows], dtype=float)
        inside95 = np.array([[r["p2.5"][p] <= r["ref"][p] <= r["p97.5"][p]
                              for p in FREE] for r in rows], dtype=float)
        boot = rng.integers(0, len(rows), size=(n_boot, len(rows)))
        widths = np.array([[(r["p84"][p] - r["p16"][p]) / 2 for p in FREE]
                           for r in rows])
        bias = np.array([[(r["median"][p] - TRUTHS[p]) / max(w, 1e-300)
                          for p, w in zip(FREE, wr)] for r, wr in zip(rows, widths)])
        scatter = np.array([[(r["median"][p] - r["ref"][p]) / max(w, 1e-300)
                             for p, w in zip(FREE, wr)] for r, wr in zip(rows, widths)])
        beam = {r["seed"]: r for r in records if r["regime"] == regime
                and r["method"] == "beam" and "p16" in r}
        ratio = [np.mean([(r["p84"][p] - r["p16"][p])
                          / (beam[r["seed"]]["p84"][p] - beam[r["seed"]]["p16"][p])
                          for p in FREE]) for r in rows if r["seed"] in beam]
        table[f"{regime}/{method}"] = {
            "maps": len(rows),
            "cover68": float(inside68.mean()),
            "cover68_se": float(inside68[boot].mean(axis=(1, 2)).std()),
            "cover95": float(inside95.mean()),
            "cover95_se": float(inside95[boot].mean(axis=(1, 2)).std()),
            "per_param68": dict(zip(FREE, inside68.mean(axis=0).round(3).tolist())),
            "per_param95": dict(zip(FREE, inside95.mean(axis=0).round(3).tolist())),
            "scatter_over_width": float(np.sqrt(np.mean(scatter ** 2))),
            "bias_vs_truth": dict(zip(FREE, np.median(bias, axis=0).round(2).tolist())),
            "width_vs_beam": float(np.median(ratio)) if ratio else None,
            # (None for fits reused from --work: their times are not kept.)
            "wall_s": float(np.median([r["wall_s"] for r in rows
                                       if r["wall_s"] is not None] or [np.nan])),
            "noise_scale": (float(np.median([r["median"]["noise_scale"] for r in rows]))
                            if "noise_scale" in rows[0]["median"] else None),
            "correlated_pixels": (float(np.median([r["correlated_pixels"] for r in rows]))
                                  if rows[0].get("correlated_pixels") else None),
            "clipped": (float(np.median([r["clipped"] for r in rows]))
                        if rows[0].get("clipped") is not None else None),
        }
    return table


def print_table(table: dict) -> None:
    print("| regime / method | maps | 68% cover (+-se) | 95% cover (+-se) | "
          "rms (median-ref)/width | width / beam fit | s | median wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for key, t in table.items():
        s = "-" if t["noise_scale"] is None else f"{t['noise_scale']:.2f}"
        ratio = "-" if t["width_vs_beam"] is None else f"{t['width_vs_beam']:.2f}"
        print(f"| {key} | {t['maps']} | {t['cover68']:.3f} +- {t['cover68_se']:.3f} | "
              f"{t['cover95']:.3f} +- {t['cover95_se']:.3f} | "
              f"{t['scatter_over_width']:.2f} | {ratio} | {s} | {t['wall_s']:.1f} |")
    print()
    print("| regime / method | " + " | ".join(FREE) + " |")
    print("|---|" + "---|" * len(FREE))
    for key, t in table.items():
        cells = [f"{t['per_param68'][p]:.2f} / {t['per_param95'][p]:.2f}" for p in FREE]
        print(f"| {key} (68 / 95) | " + " | ".join(cells) + " |")
    for key, t in table.items():
        cells = [f"{t['bias_vs_truth'][p]:+.2f}" for p in FREE]
        print(f"| {key} (median - truth) / width | " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maps", type=int, default=40, help="maps per regime")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--regimes", default="independent")
    parser.add_argument("--methods", default="correlated,independent,beam")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", default="/tmp/eddy_widgets_coverage")
    parser.add_argument("--out", default="benchmarks/results/coverage.json")
    parser.add_argument("--table-from", default=None)
    args = parser.parse_args(argv)
    if args.table_from:
        print_table(summarise(json.loads(Path(args.table_from).read_text())))
        return 0

    from eddy_widgets.survey import fit_many, local_client

    regimes = args.regimes.split(",")
    methods = args.methods.split(",")
    work = Path(args.work)
    seeds = range(args.first_seed, args.first_seed + args.maps)
    params, p0 = params_and_p0()
    client = local_client(args.workers)
    try:
        t0 = time.perf_counter()
        futures = {(g, s): client.submit(make_mock, g, s, str(work / "maps"), pure=False)
                   for g in regimes for s in seeds}
        paths = {key: f.result() for key, f in futures.items()}
        print(f"{len(paths)} mock maps in {time.perf_counter() - t0:.0f} s", flush=True)
        jobs, meta = [], {}
        for (regime, seed), p in paths.items():
            for method in methods:
                name = f"{regime}_{seed:03d}_{method}"
                jobs.append({"path": p["v0"], "uncertainty": p["dv0"], "name": name,
                             **METHODS[method]})
                meta[name] = {"regime": regime, "seed": seed, "method": method,
                              "v0_true": p["v0_true"], "dv0": p["dv0"],
                              "Fnu": p["Fnu"]}
        rows = fit_many(jobs, work / "fits", client, params=params, p0=p0, **COUNTS)
        records = []
        for row in rows.to_dict("records") if hasattr(rows, "to_dict") else rows:
            record = {**meta[row["name"]], "name": row["name"], "status": row["status"],
                      "error": row["error"], "result": row["result"],
                      "wall_s": row["wall_s"], "converged": row["converged"]}
            records.append(record)
        done = [r for r in records if r["result"] and not r["error"]]
        refs = client.map(reference, done, pure=False)
        for record, ref in zip(done, client.gather(refs)):
            record["ref"] = ref
    finally:
        client.close()
        client.cluster.close()

    from eddy_widgets.inference.result import FitResult

    for record in done:
        result = FitResult.load(record["result"])
        samples = result.samples
        names = list(result.names)
        q = np.percentile(samples, [2.5, 16, 50, 84, 97.5], axis=0)
        for i, key in enumerate(("p2.5", "p16", "median", "p84", "p97.5")):
            record[key] = {n: float(q[i, names.index(n)]) for n in names}
        noise = result.settings.get("noise") or {}
        record["correlated_pixels"] = noise.get("correlated_pixels")
        record["clipped"] = noise.get("clipped")
        record["wall_s"] = record["wall_s"] or result.settings.get("wall_s")
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.exists() else []
    names = {r["name"] for r in records}
    merged = [r for r in old if r["name"] not in names] + records
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=1))
    failed = [r for r in records if r["error"]]
    for r in failed:
        print(f"FAILED {r['name']}: {r['error']}")
    print_table(summarise(merged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
