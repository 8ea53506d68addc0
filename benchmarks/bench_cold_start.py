"""Cold against warm start of the main job, whole process, end to end.

    .venv/bin/python benchmarks/bench_cold_start.py [--backends numpyro,emcee]
        [--repeats 3] [--prefilled] [--json out.json] [-- CLI ARGS...]

Each repeat, for each backend, runs the main job
(``python -m eddy_widgets.cli --mcmc BACKEND --no-progress``, plus any
arguments after ``--``, e.g. ``-- --nburnin 50 --nsteps 50`` for a quick
check) in fresh processes:

- **cold**: with an empty compilation cache folder of its own
  (``EDDY_WIDGETS_JAX_CACHE``), as a Binder reader or a student on a class
  hub starts;
- **warm**: again, with the folder the cold run filled;
- **prefilled** (``--prefilled``): with a copy of a folder filled by what
  Binder's image build runs (``python -m eddy_widgets.warm_cache``, once), as
  a Binder session starts.

It reports the wall time of the whole process (import included), medians
over the repeats with the spread, warm over cold, the number of compiled
programs and the seconds spent compiling or loading them (from JAX's
``jax_log_compiles`` messages), and the cache folder's entries and size after
the cold run. The JAX device is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
COMPILED = re.compile(r"Finished XLA compilation of (.*?) in ([\d.]+) ?(ms|sec|s)\b")


def device() -> str:
    code = ("import eddy_widgets, jax, os; d = jax.devices()[0]; "
            "print(f'{d.platform} {d.device_kind} x{jax.device_count()}, '"
            "f'jax {jax.__version__}, {os.cpu_count()} CPU cores')")
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": "off"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True).stdout.strip()


def run_once(backend: str, cache: Path, out: Path, cli_args: list[str]) -> dict:
    """One whole process of the main job; wall time and what it compiled."""
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": str(cache), "JAX_LOG_COMPILES": "1"}
    args = [sys.executable, "-m", "eddy_widgets.cli", "--mcmc", backend,
            "--no-progress", "--out", str(out), *cli_args]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    seconds = [float(t) * (1e-3 if unit == "ms" else 1.0)
               for _, t, unit in COMPILED.findall(proc.stderr)]
    return {"wall": wall, "programs": len(seconds), "compile": sum(seconds)}


def cache_stats(folder: Path) -> dict:
    entries = [p for p in folder.iterdir() if p.name.endswith("-cache")] \
        if folder.is_dir() else []
    return {"entries": len(entries),
            "MB": sum(p.stat().st_size for p in entries) / 1024 ** 2}


def fill_like_binder(cache: Path) -> float:
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": str(cache)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "eddy_widgets.warm_cache"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def summary(values) -> str:
    return (f"{statistics.median(values):6.1f} s ({min(values):.1f}-{max(values):.1f})"
            if len(values) > 1 else f"{values[0]:6.1f} s")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cli_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="numpyro,emcee")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prefilled", action="store_true",
                   help="also start from a cache filled as Binder's image build does")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    print(f"device: {device()}")
    print(f"main job: python -m eddy_widgets.cli --mcmc BACKEND --no-progress "
          f"{' '.join(cli_args)}".rstrip())
    modes = ["cold", "warm"] + (["prefilled"] if args.prefilled else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for backend in args.backends.split(","):
            rows = results[backend] = {m: [] for m in modes}
            rows["cache"] = []
            for r in range(args.repeats):
                cache = tmp / f"{backend}-{r}"
                rows["cold"].append(run_once(backend, cache, tmp / "out", cli_args))
                rows["cache"].append(cache_stats(cache))
                rows["warm"].append(run_once(backend, cache, tmp / "out", cli_args))
                if args.prefilled:
                    # Filled once, copied afresh for each repeat (the folder
                    # can move: entries do not depend on its path).
                    binder = tmp / "binder"
                    if not binder.is_dir():
                        results["fill_seconds"] = fill_like_binder(binder)
                    filled = tmp / f"{backend}-{r}-binder"
                    shutil.copytree(binder, filled)
                    rows["prefilled"].append(run_once(backend, filled, tmp / "out",
                                                      cli_args))
                print(f"  {backend} repeat {r + 1}: " + ", ".join(
                    f"{m} {rows[m][-1]['wall']:.1f} s" for m in modes), flush=True)
    print()
    print(f"{'backend':8} {'mode':10} {'wall (median, range)':>24} {'x warm':>7} "
          f"{'programs':>9} {'compile+load':>13}")
    for backend, rows in results.items():
        if backend == "fill_seconds":
            print(f"filling the cache as Binder's image build does: {rows:.0f} s")
            continue
        warm = statistics.median(x["wall"] for x in rows["warm"])
        for m in modes:
            walls = [x["wall"] for x in rows[m]]
            print(f"{backend:8} {m:10} {summary(walls):>24} "
                  f"{statistics.median(walls) / warm:7.2f} "
                  f"{statistics.median(x['programs'] for x in rows[m]):9.0f} "
                  f"{statistics.median(x['compile'] for x in rows[m]):11.1f} s")
        cache = rows["cache"][-1]
        print(f"{backend:8} cache after the cold run: {cache['entries']} entries, "
              f"{cache['MB']:.1f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
