"""The cost of the correlated noise model against the independent one.

    .venv/bin/python benchmarks/bench_noise.py [--sides 80,256,512,1024]
        [--calls 20] [--json out.json]

For each map side N: the standard problem's field (8 arcsec, nine free
parameters, a flared surface) on N x N pixels with a beam of 3.5 x 2.8
pixels FWHM (the beam follows the pixels, as on a map at full resolution),
our model at the example's true parameters plus noise correlated over that
beam (nugget 0.2, width 1) of 30 m/s. Side by side, in one process, the
median of ``--calls`` warm calls of:

- the gradient of the log-posterior (NUTS, the optimiser), independent and
  correlated (``noise='correlated'``, a free noise scale), and their ratio;
- emcee's batch of 16 walkers, both ways, and the ratio;
- per-pixel costs [ns/pixel] and the correlated gradient's per-pixel cost
  over that at side 80;
- the time to build the block Vecchia factor (once per fit) and the size of
  its arrays [MB].

Prints a table; ``--json`` writes the numbers. Each line runs on the JAX
device the process finds (``JAX_PLATFORMS=cpu`` or a GPU).
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace

import numpy as np

FREE = ("x0", "y0", "PA", "mstar", "vlsr", "z0", "psi", "r_taper", "q_taper")
FIXED = {"inc": 46.7, "dist": 101.0}
FOV = 8.0
NOISE = 30.0
NBATCH = 16
BEAM_PIXELS = (3.5, 2.8, 30.0)


def mock(side: int, truths: dict, seed: int = 0):
    from eddy_widgets.inference.noise import NoiseKernel, beam_metric, correlated_noise
    from eddy_widgets.model import v0_map

    dpix = FOV / side
    axis = (np.arange(side) - (side - 1) / 2) * dpix
    xaxis, yaxis = axis[::-1].copy(), axis.copy()
    bmaj, bmin, bpa = BEAM_PIXELS[0] * dpix, BEAM_PIXELS[1] * dpix, BEAM_PIXELS[2]
    kernel = NoiseKernel(0.2, 1.0, beam_metric(bmaj, bmin, bpa, dpix))
    model = np.asarray(v0_map(xaxis, yaxis, truths))
    noise = correlated_noise((side, side), kernel, np.random.default_rng(seed))
    return SimpleNamespace(data=model + NOISE * noise, error=np.full_like(model, NOISE),
                           xaxis=xaxis, yaxis=yaxis, dpix=dpix, bmaj=bmaj, bmin=bmin,
                           bpa=bpa, path="bench.fits", snr=None, snr_path=None), kernel


def median_ms(f, *args, calls: int) -> float:
    import jax

    jax.block_until_ready(f(*args))
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def measure(side: int, calls: int) -> dict:
    import jax.numpy as jnp

    from eddy_widgets.data.example import load_example
    from eddy_widgets.inference.posterior import Posterior
    from eddy_widgets.inference.priors import default_priors
    from eddy_widgets.inference.spec import FitSpec, with_noise

    truths = dict(load_example().truths)
    data, kernel = mock(side, truths)
    params = {name: i for i, name in enumerate(FREE)}
    params.update(FIXED, r_min=2 * data.bmaj, r_max=3.5)
    p0 = np.array([truths[name] for name in FREE], dtype=float)
    priors = default_priors()
    priors["r_taper"] = priors["r_taper"].__class__("flat", 0.0, 50.0)
    row = {"side": side}
    for noise in ("independent", "correlated"):
        p, start = with_noise(params, p0, noise)
        if noise == "correlated":
            p.update(noise_nugget=kernel.nugget, noise_width=kernel.width)
        spec = FitSpec.parse(p, start)
        t0 = time.perf_counter()
        post = Posterior(data, spec, priors, start)
        build = time.perf_counter() - t0
        theta = jnp.asarray(start)
        walkers = jnp.asarray(start + 1e-4 * np.random.default_rng(1).standard_normal(
            (NBATCH, start.size)) * np.maximum(np.abs(start), 1e-2))
        row[f"grad_{noise}_ms"] = median_ms(post.value_and_grad, theta, calls=calls)
        row[f"batch_{noise}_ms"] = median_ms(post.log_prob_batch, walkers, calls=calls)
        row["npix"] = post.npix
        if noise == "correlated":
            row["factor_build_s"] = build
            row["factor_mb"] = sum(np.asarray(v).nbytes for v in
                                   post.arrays["vecchia"].values()) / 2 ** 20
    row["grad_ratio"] = row["grad_correlated_ms"] / row["grad_independent_ms"]
    row["batch_ratio"] = row["batch_correlated_ms"] / row["batch_independent_ms"]
    row["grad_correlated_ns_per_pixel"] = 1e6 * row["grad_correlated_ms"] / row["npix"]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sides", default="80,256,512,1024")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import jax

    print("device:", jax.devices()[0])
    rows = []
    head = (f"{'side':>5} {'pixels':>8} {'grad ind':>9} {'grad cor':>9} {'ratio':>6} "
            f"{'batch ind':>9} {'batch cor':>9} {'ratio':>6} {'ns/px cor':>9} "
            f"{'vs 80':>6} {'build s':>7} {'MB':>6}")
    print(head)
    for side in (int(s) for s in args.sides.split(",")):
        row = measure(side, args.calls)
        rows.append(row)
        base = rows[0]["grad_correlated_ns_per_pixel"]
        row["per_pixel_vs_first"] = row["grad_correlated_ns_per_pixel"] / base
        print(f"{side:>5} {row['npix']:>8} {row['grad_independent_ms']:>9.2f} "
              f"{row['grad_correlated_ms']:>9.2f} {row['grad_ratio']:>6.2f} "
              f"{row['batch_independent_ms']:>9.2f} {row['batch_correlated_ms']:>9.2f} "
              f"{row['batch_ratio']:>6.2f} {row['grad_correlated_ns_per_pixel']:>9.1f} "
              f"{row['per_pixel_vs_first']:>6.2f} {row['factor_build_s']:>7.2f} "
              f"{row['factor_mb']:>6.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": str(jax.devices()[0]), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
