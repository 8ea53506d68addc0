"""fit_many on N small maps with 1 and 2 (or more) local Dask workers.

    .venv/bin/python benchmarks/bench_fit_many.py [--maps 8] [--workers 1,2]
        [--downsample 8] [--nwalkers 32] [--nburnin 500] [--nsteps 500]
        [--out results/bench_fit_many.json]

Each map is the bundled HD 163296-like example (FOV 8 arcsec, the given
downsample) fitted with the tutorial's nine free parameters by emcee, each
job with its own seed and result file. For each worker count a new local
cluster (one process per worker, one fit at a time each, the cores shared
out between them by ``eddy_widgets.survey.local_client``) runs all N jobs;
the table gives the cluster's start-up, fit_many's wall time, the median
wall time of one job on its worker, and the speed-up against the first
worker count.

Each worker process compiles its programs (or loads them from the
persistent cache) on its first job, and reuses them for the next jobs of
the same size: so each cluster first runs one job per worker, timed apart
("first job per worker"), then the N timed jobs. The JAX compilation cache
is a new temporary folder (the workers' XLA settings, hence the cache keys,
depend on the worker count). Prints the device the workers ran on and the
versions.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import statistics
import sys
import tempfile
import time


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--maps", type=int, default=8, help="number of jobs (maps)")
    p.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2")
    p.add_argument("--downsample", type=int, default=8)
    p.add_argument("--nwalkers", type=int, default=32)
    p.add_argument("--nburnin", type=int, default=500)
    p.add_argument("--nsteps", type=int, default=500)
    p.add_argument("--out", help="write the numbers to this JSON file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    cache = tempfile.mkdtemp(prefix="bench_fit_many_cache_")
    os.environ["EDDY_WIDGETS_JAX_CACHE"] = cache  # before eddy_widgets is imported
    import dask
    import distributed
    import jax

    import eddy_widgets
    from eddy_widgets import fit_many, load_example
    from eddy_widgets.cli import TUTORIAL_P0, TUTORIAL_PARAMS
    from eddy_widgets.survey import local_client, prepare_jobs, run_job

    example = load_example()
    common = dict(FOV=8.0, downsample=args.downsample, p0=list(TUTORIAL_P0),
                  params={**TUTORIAL_PARAMS, "r_min": 2 * 0.104},
                  priors={"r_taper": ["flat", 0.0, 50.0]}, nwalkers=args.nwalkers,
                  nburnin=args.nburnin, nsteps=args.nsteps)
    jobs = [{"path": example.v0, "uncertainty": example.dv0, "name": f"map{i:02d}",
             "mcmc_kwargs": {"seed": i}} for i in range(args.maps)]
    workers = [int(w) for w in args.workers.split(",")]
    versions = {"python": platform.python_version(), "eddy_widgets":
                eddy_widgets.__version__, "jax": jax.__version__,
                "dask": dask.__version__, "distributed": distributed.__version__}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; client device: "
          f"{jax.devices()[0]}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"{args.maps} maps of the example at downsample {args.downsample}, emcee "
          f"{args.nwalkers} walkers x ({args.nburnin} + {args.nsteps}); JAX cache "
          f"{cache} (new)")

    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for n in workers:
            t0 = time.perf_counter()
            client = local_client(n)
            client.wait_for_workers(n)
            start = time.perf_counter() - t0
            try:
                devices = sorted(set(client.run(
                    lambda: f"{jax.devices()[0].platform} x{len(jax.devices())}"
                ).values()))
                # one job per worker first: each worker process compiles its
                # programs (or loads them from the cache) once; timed apart
                t0 = time.perf_counter()
                warm = prepare_jobs([{**jobs[0], "name": "warmup"}], common)[0]
                rows = client.gather([
                    client.submit(run_job, warm, str(Path(tmp) / f"warm{n}-{i}.npz"),
                                  cache, workers=[address], pure=False)
                    for i, address in enumerate(client.scheduler_info()["workers"])])
                assert all(r["status"] == "done" for r in rows), rows
                first = time.perf_counter() - t0
                t0 = time.perf_counter()
                table = fit_many(jobs, Path(tmp) / f"w{n}", client=client,
                                 progress=False, **common)
                wall = time.perf_counter() - t0
            finally:
                client.close()
                client.cluster.close()
            failed = table[table["status"] != "done"]
            if len(failed):
                print(failed.to_string(), file=sys.stderr)
                return 1
            runs.append({"workers": n, "cluster_start_s": start,
                         "first_round_s": first, "wall_s": wall,
                         "job_median_s": statistics.median(table["wall_s"]),
                         "worker_devices": devices})
    base = runs[0]["wall_s"]
    print()
    print("| workers | cluster start [s] | first job per worker [s] | "
          "fit_many wall [s] | median job [s] | maps per minute | speed-up | "
          "worker devices |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        r["speed_up"] = base / r["wall_s"]
        print(f"| {r['workers']} | {r['cluster_start_s']:.1f} | "
              f"{r['first_round_s']:.1f} | {r['wall_s']:.1f} | "
              f"{r['job_median_s']:.1f} | {60 * args.maps / r['wall_s']:.1f} | "
              f"{r['speed_up']:.2f}x | {', '.join(r['worker_devices'])} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(
            {"args": vars(args), "versions": versions, "cores": os.cpu_count(),
             "runs": runs}, indent=2))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
