"""How the cost grows with the map: eddy_widgets vs astro-eddy 3.2.

    .venv/bin/python benchmarks/bench_scale.py [--sides 80,256,512,1024,2048]
        [--beam both|on|off] [--which ours,eddy] [--eddy-max-side 1024]
        [--eddy-python /tmp/ae/bin/python] [--calls 30] [--stat median|min]
        [--no-batch] [--json out.json]

For each map side N the script writes a synthetic rotation map of N x N
pixels over the standard problem's 8 arcsec field (our model at the example's
true parameters plus 30 m/s noise, the example's beam, a uniform 30 m/s
uncertainty) and fits its set-up: nine free parameters, inc and dist fixed,
r_min = 2 beams. With and without beam convolution, each side and package in
a fresh process, it measures:

- fitted pixels and the map's size [MB] (v0 as float64);
- compile time of the log-probability and of its gradient (first call minus
  a warm call), with an empty persistent cache of its own, and the size of
  that cache folder afterwards [MB] (every program written: minimum compile
  time 0);
- warm log-probability, gradient and the emcee batch (16 walkers, half of the
  tutorial's 32) [ms, median of ``--calls`` calls];
- per-pixel costs [ns/pixel] and the gradient's per-pixel cost over that of
  the standard problem (side 80, same beam setting);
- peak memory of the process (``ru_maxrss``) and its growth over the process
  after the map is read, in multiples of the map's size; also the peak
  before the emcee batch (map, posterior, log-probability and gradient).

astro-eddy runs in its own virtualenv (``--eddy-python``; made with
``python3 -m venv /tmp/ae && /tmp/ae/bin/pip install astro-eddy==3.2.0``) on
the same FITS files, up to ``--eddy-max-side``; its log-probability and
gradient are built as its optimiser builds them, its batch is the vmapped
call its emcee uses. Each process prints the JAX devices it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

FREE = ("x0", "y0", "PA", "mstar", "vlsr", "z0", "psi", "r_taper", "q_taper")
FIXED = {"inc": 46.7, "dist": 101.0}
FOV_ARCSEC = 8.0
NOISE = 30.0  # m/s
NBATCH = 16


def rss_mb() -> float:
    """Peak resident memory of this process so far [MB] (Linux: kB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_ms(fn, n: int, stat: str = "median", warmups: int = 2) -> float:
    """Warm time of ``fn`` [ms]: the median (or with ``stat='min'`` the
    fastest, which other work on a shared machine disturbs least) of ``n``
    calls after ``warmups`` calls."""
    import jax

    for _ in range(warmups):
        jax.block_until_ready(fn())
    times = []
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.min(times) if stat == "min" else np.median(times))


def first_s(fn) -> float:
    import jax

    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def folder_mb(folder) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20


def device_line() -> str:
    import jax

    return f"{jax.default_backend()}: {', '.join(str(d) for d in jax.devices())}"


# ---------------------------------------------------------------------------
# Synthetic maps
# ---------------------------------------------------------------------------


def make_map(side: int, folder: Path) -> dict:
    """Write the v0 and dv0 FITS files of a ``side`` x ``side`` map."""
    from astropy.io import fits

    import eddy_widgets
    from eddy_widgets.model import v0_map

    paths = eddy_widgets.example_paths()
    example = Path(paths["v0"]).parent
    truths = json.loads((example / "truths.json").read_text())["truths"]
    header = fits.getheader(paths["v0"])
    dpix = FOV_ARCSEC / side
    header["NAXIS1"] = header["NAXIS2"] = side
    header["CDELT1"], header["CDELT2"] = -dpix / 3600.0, dpix / 3600.0
    header["CRPIX1"] = header["CRPIX2"] = (side + 1) / 2.0
    axis = (np.arange(side) - (side - 1) / 2.0) * dpix
    params = {**{k: truths[k] for k in FREE}, **FIXED}
    v0 = np.asarray(v0_map(-axis, axis, params))
    v0 = v0 + NOISE * np.random.default_rng(side).standard_normal(v0.shape)
    out = {"v0": str(folder / f"scale{side}_v0.fits"),
           "dv0": str(folder / f"scale{side}_dv0.fits"),
           "truths": [truths[k] for k in FREE]}
    fits.writeto(out["v0"], v0.astype(np.float32), header, overwrite=True)
    fits.writeto(out["dv0"], np.full(v0.shape, NOISE, np.float32), header,
                 overwrite=True)
    return out


def params_of(bmaj: float, beam: bool) -> dict:
    params = {name: i for i, name in enumerate(FREE)}
    params.update(FIXED, r_min=2.0 * bmaj, beam=beam)
    return params


# ---------------------------------------------------------------------------
# One measurement per process
# ---------------------------------------------------------------------------


def child_ours(task: dict) -> dict:
    import jax
    import jax.numpy as jnp

    import eddy_widgets
    from eddy_widgets.inference.posterior import Posterior
    from eddy_widgets.inference.spec import FitSpec

    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    cube = eddy_widgets.rotationmap(task["v0"], uncertainty=task["dv0"])
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    theta = np.asarray(task["truths"], dtype=float)
    rss_map = rss_mb()
    t = time.perf_counter()
    post = Posterior(cube.map, FitSpec.parse(params_of(cube.bmaj, task["beam"]),
                                             theta), cube.priors, theta)
    setup_s = time.perf_counter() - t
    th = jnp.asarray(theta)
    batch = jnp.asarray(theta * (1 + 1e-4 * np.random.default_rng(0).standard_normal(
        (NBATCH, theta.size))))
    calls = {"logp": lambda: post.log_prob_jit(th),
             "grad": lambda: post.value_and_grad(th),
             "batch": lambda: post.log_prob_batch(batch)}
    if task.get("no_batch"):
        del calls["batch"]
    return measure(calls, post.npix, cube.map.data.nbytes, rss_map,
                   {"setup_s": setup_s, "device": device_line()}, task)


def child_eddy(task: dict) -> dict:
    import contextlib
    import io
    import warnings

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import eddy

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = eddy.rotationmap(task["v0"], uncertainty=task["dv0"])
        cube.set_prior("r_taper", [0.0, 50.0], "flat")
        params = cube.verify_params_dictionary(params_of(cube.bmaj, task["beam"]))
        theta = np.asarray(task["truths"], dtype=float)
        cube.ivar = cube._calc_ivar(cube._populate_dictionary(theta, params))
    rss_map = rss_mb()
    th = jnp.asarray(theta)
    logp = jax.jit(lambda t: cube._neg_ln_prob_jax(t, params))
    grad = jax.jit(jax.value_and_grad(lambda t: cube._neg_ln_prob_jax(t, params)))
    lnp_batch = cube._build_vectorized_ln_probability(params)
    batch = theta * (1 + 1e-4 * np.random.default_rng(0).standard_normal(
        (NBATCH, theta.size)))
    calls = {"logp": lambda: logp(th), "grad": lambda: grad(th),
             "batch": lambda: lnp_batch(batch, params, np.nan)}
    if task.get("no_batch"):
        del calls["batch"]
    npix = int((np.asarray(cube.ivar) > 0).sum())
    return measure(calls, npix, np.asarray(cube.data).astype(float).nbytes, rss_map,
                   {"device": device_line()}, task)


def measure(calls: dict, npix: int, map_bytes: int, rss_map: float, out: dict,
            task: dict) -> dict:
    out.update(npix=npix, map_mb=map_bytes / 2**20)
    for name, fn in calls.items():
        first = first_s(fn)
        warm = median_ms(fn, task["calls"] if name != "batch" else
                         max(3, task["calls"] // 4), task.get("stat", "median"))
        out[f"{name}_ms"] = warm
        out[f"{name}_compile_s"] = max(first - warm / 1e3, 0.0)
        out[f"{name}_ns_per_pixel"] = 1e6 * warm / npix
        # Peak so far: after "grad" it covers reading the map, the posterior,
        # the log-probability and the gradient, but not the emcee batch.
        out[f"rss_after_{name}_mb"] = rss_mb()
    out["rss_peak_mb"] = rss_mb()
    out["rss_growth_x_map"] = (out["rss_peak_mb"] - rss_map) / out["map_mb"]
    cache = os.environ.get("EDDY_WIDGETS_JAX_CACHE")
    if task["side_name"] == "ours" and cache and os.path.isdir(cache):
        out["cache_mb"] = folder_mb(cache)
    return out


def spawn(task: dict, python: str) -> dict:
    with tempfile.TemporaryDirectory() as cache, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as result:
        env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": cache}
        proc = subprocess.run([python, __file__, "--child", json.dumps(task),
                               "--child-out", result.name], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
        return json.loads(Path(result.name).read_text() or "{}")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

COLUMNS = [("npix", "fitted px", "{:.0f}"),
           ("logp_compile_s", "compile logp s", "{:.2f}"),
           ("grad_compile_s", "compile grad s", "{:.2f}"),
           ("cache_mb", "cache MB", "{:.2f}"),
           ("logp_ms", "logp ms", "{:.3g}"), ("grad_ms", "grad ms", "{:.3g}"),
           ("batch_ms", "batch16 ms", "{:.3g}"),
           ("logp_ns_per_pixel", "logp ns/px", "{:.3g}"),
           ("grad_ns_per_pixel", "grad ns/px", "{:.3g}"),
           ("grad_vs_standard", "grad/px vs side 80", "{:.2f}"),
           ("rss_after_grad_mb", "peak to grad MB", "{:.0f}"),
           ("rss_peak_mb", "peak MB", "{:.0f}"),
           ("rss_growth_x_map", "growth x map", "{:.1f}")]


def table(rows: list[dict]) -> str:
    head = ["side", "beam", "package"] + [c[1] for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row["side"]), "on" if row["beam"] else "off", row["package"]]
        for key, _, spec in COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else spec.format(value))
        if "error" in row:
            cells.append(f"error: {row['error']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="80,256,512,1024,2048")
    parser.add_argument("--beam", default="both", choices=("both", "on", "off"))
    parser.add_argument("--which", default="ours,eddy")
    parser.add_argument("--eddy-max-side", type=int, default=1024)
    parser.add_argument("--eddy-python", default="/tmp/ae/bin/python")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--stat", default="median", choices=("median", "min"),
                        help="warm time: median or fastest of the calls")
    parser.add_argument("--no-batch", action="store_true",
                        help="leave out the emcee batch (the slowest call)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task = json.loads(args.child)
        out = (child_ours if task["side_name"] == "ours" else child_eddy)(task)
        Path(args.child_out).write_text(json.dumps(out))
        return 0

    import eddy_widgets  # noqa: F401 - configures JAX as a user's process does

    print(f"parent process ran on {device_line()}", flush=True)
    sides = [int(s) for s in args.sides.split(",")]
    beams = {"both": (False, True), "on": (True,), "off": (False,)}[args.beam]
    which = args.which.split(",")
    if "eddy" in which and not Path(args.eddy_python).exists():
        print(f"{args.eddy_python} not found: astro-eddy left out (make it with "
              f"python3 -m venv /tmp/ae && /tmp/ae/bin/pip install astro-eddy==3.2.0)")
        which = [w for w in which if w != "eddy"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for side in sides:
            files = make_map(side, Path(folder))
            for beam in beams:
                for package in which:
                    if package == "eddy" and side > args.eddy_max_side:
                        continue
                    python = sys.executable if package == "ours" else args.eddy_python
                    task = {**files, "beam": beam, "side_name": package,
                            "calls": args.calls, "stat": args.stat,
                            "no_batch": args.no_batch}
                    res = spawn(task, python)
                    row = {"side": side, "beam": beam,
                           "package": "eddy_widgets" if package == "ours"
                           else "astro-eddy 3.2", **res}
                    rows.append(row)
                    print(f"side {side} beam {'on' if beam else 'off'} "
                          f"{row['package']}: {res.get('device', '')} "
                          + json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                        for k, v in res.items() if k != "device"}),
                          flush=True)
    for row in rows:
        base = next((r for r in rows if r["side"] == 80 and r["beam"] == row["beam"]
                     and r["package"] == row["package"] and "grad_ns_per_pixel" in r),
                    None)
        if base and "grad_ns_per_pixel" in row:
            row["grad_vs_standard"] = (row["grad_ns_per_pixel"]
                                       / base["grad_ns_per_pixel"])
    print()
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
