"""End-to-end performance benchmark: eddy_widgets vs astro-eddy 3.2.

    .venv/bin/python benchmarks/bench_fit.py [--repeats N] [--which ours,eddy]
                                             [--backends emcee,numpyro] [--cold]

The standard problem is the bundled HD 163296-like map, FOV 8 arcsec,
downsample 4, nine free parameters (x0, y0, PA, mstar, vlsr, z0, psi, r_taper
with a flat 0-50 prior, q_taper), inc and dist fixed, r_min = 2 beams, fitted
with each package's tutorial settings:

- emcee: 32 walkers, 1000 burn-in + 1000 steps, scatter 1e-3;
- numpyro NUTS: 1 chain, 500 warmup + 500 draws, max_tree_depth 6, seed 0.

Every measurement runs in a fresh Python process (this script re-invoked with
``--child``), one after the other, in this one command. So neither side
inherits the other's compiled programs, JAX's process-wide compilation cache
settings (our package turns on a persistent cache at import; astro-eddy does
not) or memory, and each side's import is paid (and reported) separately.

What is measured per side and backend:

- end to end (load the map, optimise the start, compile, warm up, sample;
  ``plots='none'``, progress off; the import is reported apart);
- the minimum over the nine parameters of the bulk ESS, computed by ONE
  function here for both sides (:func:`ess_per_param`): numpyro's
  ``effective_sample_size`` over chains for NUTS; ``nwalkers * nsteps / tau``
  with ``emcee.autocorr.integrated_time(quiet=True)`` on the post-burn-in
  chain for emcee;
- min-ESS per wall-clock second, end to end;
- the time to min-ESS >= 400: measured for ours (a second run that stops when
  the running min-ESS reaches 400), interpolated / extrapolated for every run
  from its sampling rate after the fixed costs (marked as such);
- NUTS: leapfrog steps per draw, divergences, step size;
- posterior medians and widths ((p84 - p16) / 2) and their agreement;
- microbenchmarks: one warm log-probability and one gradient (median of many
  calls, ``block_until_ready``), the batch call emcee makes (16 walkers), the
  gradient of NUTS' potential, and compile times (first call minus warm call).

With ``--cold`` our runs are made twice in a fresh, empty compilation cache
(``EDDY_WIDGETS_JAX_CACHE`` set to a new temporary folder): the first is cold,
the second (same folder, new process) warm. Without it our runs use the
default cache (``~/.cache/eddy_widgets/jax``), whatever it holds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import io
import json
import math
import os
from pathlib import Path
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: The standard problem (the tutorial's; must equal eddy_widgets.cli's).
FREE = ("x0", "y0", "PA", "mstar", "vlsr", "z0", "psi", "r_taper", "q_taper")
FIXED = {"inc": 46.7, "dist": 101.0}
P0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]
FOV, DOWNSAMPLE = 8.0, 4
R_TAPER_PRIOR = [0.0, 50.0]
#: The tutorials' counts: (nwalkers, nburnin, nsteps).
COUNTS = {"emcee": (32, 1000, 1000), "numpyro": (1, 500, 500)}
MAX_TREE_DEPTH, SEED = 6, 0
TARGET_ESS = 400
SCALE = 1.0  # --counts-scale (development only)
#: Targets of the issue (ratios are ours / astro-eddy's unless stated).
TARGETS = {
    "nuts_ess_per_s_vs_eddy_nuts": 100.0,
    "emcee_ess_per_s_vs_eddy_emcee": 3.0,
    "t400_cold_s": 30.0,
    "t400_warm_s": 15.0,
    "logp_us": 300.0,
    "grad_us": 1000.0,
    "median_sigma": 0.3,
    "width_ratio": 0.15,
}


def standard_params(bmaj: float) -> dict:
    params = {name: i for i, name in enumerate(FREE)}
    params.update(FIXED)
    params["r_min"] = 2.0 * bmaj
    return params


def example_files() -> dict:
    """Paths of the bundled example without importing eddy_widgets (which
    would configure JAX in an astro-eddy process)."""
    spec = importlib.util.find_spec("eddy_widgets")
    folder = Path(spec.origin).parent / "data" / "example"
    return {"v0": str(folder / "HD163296_like_v0.fits"),
            "dv0": str(folder / "HD163296_like_dv0.fits"),
            "truths": json.loads((folder / "truths.json").read_text())["truths"]}


# ---------------------------------------------------------------------------
# The one ESS function, used for both sides
# ---------------------------------------------------------------------------


def ess_per_param(chain: np.ndarray, backend: str, names=FREE) -> np.ndarray:
    """ESS of each parameter of a post-warmup ``chain`` shaped
    ``(nchains_or_walkers, ndraws, ndim)``, for both packages' chains, by the
    package's own diagnostics (``FitResult.diagnostics()``): NUTS bulk ESS
    from ArviZ; emcee ``nwalkers * nsteps / tau`` with emcee's integrated
    autocorrelation time. PA is unwrapped around its circular mean.
    """
    from eddy_widgets.inference.diagnostics import chain_diagnostics

    diag = chain_diagnostics(chain, names, backend)
    return np.array([diag[name]["ess"] for name in names], dtype=float)


def posterior_summary(chain: np.ndarray, backend: str) -> dict:
    flat = np.array(chain, dtype=float).reshape(-1, chain.shape[-1])
    flat[:, FREE.index("PA")] %= 360.0
    p16, p50, p84 = np.percentile(flat, [16, 50, 84], axis=0)
    ess = ess_per_param(chain, backend)
    return {"median": p50.tolist(), "sigma": (0.5 * (p84 - p16)).tolist(),
            "ess": ess.tolist(), "min_ess": float(np.nanmin(ess)),
            "min_ess_param": FREE[int(np.nanargmin(ess))],
            "n_draws": int(flat.shape[0])}


@contextlib.contextmanager
def quiet():
    """Swallow stdout (astro-eddy prints a lot) and warnings."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _median_time(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def time_call(fn, arg, n: int = 300) -> dict:
    """First call (compile + run) and median warm call, in microseconds."""
    import jax

    t = time.perf_counter()
    jax.block_until_ready(fn(arg))
    first = time.perf_counter() - t
    for _ in range(5):
        jax.block_until_ready(fn(arg))
    warm = _median_time(lambda: jax.block_until_ready(fn(arg)), n)
    return {"first_s": first, "warm_us": warm * 1e6, "compile_s": first - warm}


def time_to_target(total_s: float, sampling_s: float, min_ess: float,
                   target: float = TARGET_ESS) -> dict:
    """Linear interpolation (min-ESS >= target) or extrapolation (< target) of
    the end-to-end time to min-ESS = target from the post-warmup sampling
    rate, keeping the fixed costs (load, optimise, compile, warmup)."""
    if not (min_ess > 0 and np.isfinite(min_ess)):
        return {"t400_s": math.nan, "t400_how": "n/a"}
    fixed = total_s - sampling_s
    return {"t400_s": fixed + sampling_s * target / min_ess,
            "t400_how": "interpolated" if min_ess >= target else "extrapolated"}


# ---------------------------------------------------------------------------
# Child tasks (each in its own process)
# ---------------------------------------------------------------------------


def child_ours(task: dict) -> dict:
    t = time.perf_counter()
    # eddy_widgets before jax: it sets JAX up (devices, x64, cache).
    import eddy_widgets  # noqa: I001
    import jax
    import_s = time.perf_counter() - t
    from eddy_widgets import rotationmap
    facade = sys.modules["eddy_widgets.rotationmap"]  # the module, not the class
    from eddy_widgets.cli import TUTORIAL_P0, TUTORIAL_PARAMS
    from eddy_widgets.inference.samplers import StopRequested

    assert list(TUTORIAL_P0) == P0, "the benchmark's p0 is not the tutorial's"
    files = example_files()
    out = {"side": "ours", "import_s": import_s,
           "cache_dir": jax.config.jax_compilation_cache_dir,
           "jax": jax.__version__, "eddy_widgets": eddy_widgets.__version__}
    cache = out["cache_dir"]
    out["cache_entries_before"] = (len(os.listdir(cache))
                                   if cache and os.path.isdir(cache) else 0)

    if task["mode"] == "micro":
        return out | micro_ours(files)

    backend = task["backend"]
    nwalkers, nburnin, nsteps = COUNTS[backend]
    to_target = task["mode"] == "to400"
    if to_target:
        nsteps = 20 * nsteps  # a cap; the callback stops at min-ESS >= 400
    marks = {}
    chunks = []  # (time, phase, size, seconds-since-previous)

    class Timer:
        """Streaming callback: time stamps per chunk; in 'to400' mode it
        stops the run once the running min-ESS reaches the target."""

        def __init__(self):
            self.sampling = []

        def __call__(self, chunk, info):
            now = time.perf_counter()
            chunks.append((now, chunk.phase, chunk.size))
            if chunk.phase != "sampling":
                return
            self.sampling.append(np.asarray(chunk.draws))
            if to_target:
                draws = sum(c.shape[1] for c in self.sampling)
                if draws >= 50:
                    chain = np.concatenate(self.sampling, axis=1)
                    if np.nanmin(ess_per_param(chain, backend)) >= TARGET_ESS:
                        raise StopRequested

    find_map = facade.find_map

    def timed_find_map(*a, **k):
        t = time.perf_counter()
        try:
            return find_map(*a, **k)
        finally:
            marks["optimise_s"] = time.perf_counter() - t

    facade.find_map = timed_find_map
    timer = Timer()
    t0 = time.perf_counter()
    cube = rotationmap(files["v0"], FOV=FOV, downsample=DOWNSAMPLE)
    cube.set_prior("r_taper", R_TAPER_PRIOR, "flat")
    t_load = time.perf_counter()
    prepare_fit = cube.prepare_fit

    def timed_prepare(*a, **k):
        run = prepare_fit(*a, **k)
        marks["prepared"] = time.perf_counter()
        return run

    cube.prepare_fit = timed_prepare
    params = standard_params(cube.bmaj)
    assert params == dict(TUTORIAL_PARAMS, r_min=2.0 * cube.bmaj)
    mcmc_kwargs = {"seed": SEED, "progress": False}
    if backend == "numpyro":
        mcmc_kwargs["max_tree_depth"] = MAX_TREE_DEPTH
    with quiet():
        result = cube.fit_map(P0, params, nwalkers=nwalkers, nburnin=nburnin,
                              nsteps=nsteps, mcmc=backend, mcmc_kwargs=mcmc_kwargs,
                              plots="none", returns="result", callbacks=[timer])
    t_end = time.perf_counter()
    facade.find_map = find_map

    # Phases from the chunk time stamps.
    t_prep = marks["prepared"]
    warm_chunks = [c for c in chunks if c[1] == "warmup"]
    t_warm_end = warm_chunks[-1][0] if warm_chunks else t_prep
    first_t, _, first_k = chunks[0]
    first_s = first_t - t_prep
    # Per-draw cost of the warmup after the first chunk gives the compile
    # share of the first chunk.
    rest = [c for c in warm_chunks[1:]]
    if rest:
        per_draw = (t_warm_end - first_t) / sum(c[2] for c in rest)
    else:
        per_draw = 0.0
    times = {"load_s": t_load - t0,
             "optimise_s": marks.get("optimise_s", 0.0),
             "prepare_other_s": (t_prep - t_load) - marks.get("optimise_s", 0.0),
             "first_chunk_s": first_s,
             "compile_s": max(first_s - first_k * per_draw, 0.0),
             "warmup_s": t_warm_end - t_prep,
             "sampling_s": t_end - t_warm_end,
             "total_s": t_end - t0}
    chain = result.chains["sampling"]
    out.update(backend=backend, mode=task["mode"], counts=[nwalkers, nburnin, nsteps],
               npix=int(result_npix(cube)), times=times,
               summary=posterior_summary(chain, backend),
               sampler=result.sampler_summary(), stopped=bool(result.stopped))
    stats = result.stats["sampling"]
    if "num_steps" in stats:
        out["sampler"]["mean_steps_per_draw"] = float(stats["num_steps"].mean())
        out["sampler"]["total_leapfrog_steps"] = int(
            stats["num_steps"].sum() + result.stats["warmup"]["num_steps"].sum())
    out["cache_entries_after"] = (len(os.listdir(cache))
                                  if cache and os.path.isdir(cache) else 0)
    return out


def result_npix(cube) -> int:
    return cube.last_run.posterior.npix


def micro_ours(files) -> dict:
    import jax
    import jax.numpy as jnp

    from eddy_widgets import rotationmap

    cube = rotationmap(files["v0"], FOV=FOV, downsample=DOWNSAMPLE)
    cube.set_prior("r_taper", R_TAPER_PRIOR, "flat")
    theta = np.array([files["truths"][n] for n in FREE])
    post = cube.posterior(standard_params(cube.bmaj), theta)
    th = jnp.asarray(theta)
    out = {"npix": post.npix}
    out["logp"] = time_call(post.log_prob_jit, th)
    out["grad"] = time_call(post.value_and_grad, th)
    rng = np.random.default_rng(0)
    batch = jnp.asarray(theta * (1 + 1e-4 * rng.standard_normal((16, theta.size))))
    out["batch16"] = time_call(post.log_prob_batch, batch)
    _ = post.bijections
    pot = jax.jit(jax.value_and_grad(post.potential))
    u = jnp.asarray(post.to_unconstrained(theta))
    out["nuts_potential_grad"] = time_call(pot, u)
    out["logp_value"] = float(post.log_prob_jit(th))
    return out


def child_eddy(task: dict) -> dict:
    t = time.perf_counter()
    with quiet():
        import eddy
        import jax
    import_s = time.perf_counter() - t
    files = example_files()
    out = {"side": "eddy", "import_s": import_s, "astro_eddy": eddy.__version__,
           "jax": jax.__version__,
           "cache_dir": jax.config.jax_compilation_cache_dir}
    if task["mode"] == "micro":
        return out | micro_eddy(files)

    import numpyro.infer

    backend = task["backend"]
    nwalkers, nburnin, nsteps = COUNTS[backend]
    marks = {}
    recorded = {}

    # Instrumentation only: keep a handle on numpyro's MCMC object so that the
    # steps per draw and divergences can be read (astro-eddy drops it).
    original_mcmc = numpyro.infer.MCMC

    class RecordingMCMC(original_mcmc):
        def run(self, *a, extra_fields=(), **k):
            recorded["mcmc"] = self
            extra = tuple(dict.fromkeys((*extra_fields, "num_steps", "diverging",
                                         "adapt_state.step_size")))
            return super().run(*a, extra_fields=extra, **k)

    numpyro.infer.MCMC = RecordingMCMC
    np.random.seed(SEED)  # astro-eddy's random_p0 uses numpy's global state
    t0 = time.perf_counter()
    with quiet():
        cube = eddy.rotationmap(files["v0"], FOV=FOV, downsample=DOWNSAMPLE)
        cube.set_prior("r_taper", R_TAPER_PRIOR, "flat")
    t_load = time.perf_counter()
    optimise, run_mcmc = cube._optimize_p0, cube._run_mcmc

    def timed_optimise(*a, **k):
        t = time.perf_counter()
        try:
            return optimise(*a, **k)
        finally:
            marks["optimise_s"] = time.perf_counter() - t

    def timed_run_mcmc(*a, **k):
        t = time.perf_counter()
        try:
            return run_mcmc(*a, **k)
        finally:
            marks["mcmc_s"] = time.perf_counter() - t

    cube._optimize_p0, cube._run_mcmc = timed_optimise, timed_run_mcmc
    params = standard_params(cube.bmaj)
    mcmc_kwargs = {"progress": False}
    if backend == "numpyro":
        mcmc_kwargs.update(seed=SEED, max_tree_depth=MAX_TREE_DEPTH)
    with quiet():
        samples, sampler = cube.fit_map(
            list(P0), dict(params), nwalkers=nwalkers, nburnin=nburnin,
            nsteps=nsteps, mcmc=backend, mcmc_kwargs=mcmc_kwargs, plots="none",
            returns=["samples", "sampler"])
    t_end = time.perf_counter()
    numpyro.infer.MCMC = original_mcmc

    if backend == "emcee":
        chain = np.swapaxes(sampler.get_chain(discard=nburnin), 0, 1)
    else:
        chain = np.asarray(sampler.get_chain(discard=nburnin))
    mcmc_s = marks["mcmc_s"]
    # astro-eddy's sampler phase cannot be split; the post-warmup share is
    # taken as nsteps / (nburnin + nsteps) of it (exact for emcee; for NUTS,
    # whose warmup trees differ, an estimate).
    sampling_s = mcmc_s * nsteps / (nburnin + nsteps)
    times = {"load_s": t_load - t0, "optimise_s": marks["optimise_s"],
             "mcmc_s": mcmc_s, "sampling_s_est": sampling_s,
             "total_s": t_end - t0}
    out.update(backend=backend, mode=task["mode"], counts=[nwalkers, nburnin, nsteps],
               npix=int((np.asarray(cube.ivar) > 0).sum()), times=times,
               summary=posterior_summary(chain, backend))
    sampler_stats = {}
    if backend == "numpyro" and "mcmc" in recorded:
        extra = recorded["mcmc"].get_extra_fields(group_by_chain=True)
        steps = np.asarray(extra["num_steps"])
        sampler_stats = {"median_steps_per_draw": float(np.median(steps)),
                         "mean_steps_per_draw": float(steps.mean()),
                         "divergences": int(np.asarray(extra["diverging"]).sum()),
                         "step_size": float(np.asarray(
                             extra["adapt_state.step_size"])[:, -1].mean())}
    elif backend == "emcee":
        sampler_stats = {"acceptance_fraction":
                         float(np.mean(sampler.acceptance_fraction))}
    out["sampler"] = sampler_stats
    return out


def micro_eddy(files) -> dict:
    import eddy
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import initialize_model

    with quiet():
        cube = eddy.rotationmap(files["v0"], FOV=FOV, downsample=DOWNSAMPLE)
        cube.set_prior("r_taper", R_TAPER_PRIOR, "flat")
        params = cube.verify_params_dictionary(standard_params(cube.bmaj))
        theta = np.array([files["truths"][n] for n in FREE])
        cube.ivar = cube._calc_ivar(cube._populate_dictionary(theta, params))
    th = jnp.asarray(theta)
    out = {"npix": int((np.asarray(cube.ivar) > 0).sum())}
    # Built as _optimize_p0 builds its gradient: jax.jit(jax.grad(...)).
    logp = jax.jit(lambda t: cube._neg_ln_prob_jax(t, params))
    grad = jax.jit(jax.grad(lambda t: cube._neg_ln_prob_jax(t, params)))
    out["logp"] = time_call(logp, th)
    out["grad"] = time_call(grad, th)
    # _optimize_p0 evaluates the objective itself un-jitted, op by op.
    out["logp_eager"] = time_call(lambda t: cube._neg_ln_prob_jax(t, params), th,
                                  n=20)
    # What emcee calls: the vmapped, jitted batch (half the 32 walkers).
    lnp_batch = cube._build_vectorized_ln_probability(params)
    rng = np.random.default_rng(0)
    batch = theta * (1 + 1e-4 * rng.standard_normal((16, theta.size)))
    out["batch16"] = time_call(lambda b: lnp_batch(b, params, np.nan), batch)
    # What NUTS evaluates per leapfrog step: the model's potential + gradient.
    with quiet():
        info = initialize_model(jax.random.PRNGKey(0), cube._numpyro_model_fitmap,
                                model_kwargs={"params": params})
    pot = jax.jit(jax.value_and_grad(info.potential_fn))
    out["nuts_potential_grad"] = time_call(pot, info.param_info.z)
    out["logp_value"] = -float(logp(th))
    return out


def child_main(task: dict, out_path: str) -> None:
    scale = float(task.get("scale", 1.0))
    if scale != 1.0:  # development only (--counts-scale)
        for k, (w, b, n) in list(COUNTS.items()):
            COUNTS[k] = (w, max(int(b * scale), 10), max(int(n * scale), 10))
    fn = child_ours if task["side"] == "ours" else child_eddy
    load_before = os.getloadavg()[0]
    result = fn(task)
    result["loadavg_1min"] = [load_before, os.getloadavg()[0]]
    Path(out_path).write_text(json.dumps(result, default=_json_default))


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v))


# ---------------------------------------------------------------------------
# Parent: orchestrate, tabulate
# ---------------------------------------------------------------------------


def spawn(task: dict, env_extra: dict | None = None, log=None) -> dict:
    if SCALE != 1.0:
        task = dict(task, scale=SCALE)
    env = dict(os.environ)
    env.update(env_extra or {})
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out_path = f.name
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(task),
           "--child-out", out_path]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        msg = (f"child {task} failed ({proc.returncode}):\n"
               f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        print(msg, flush=True)
        if log:
            log.write(msg + "\n")
        return {"task": task, "error": proc.stderr[-2000:]}
    result = json.loads(Path(out_path).read_text())
    os.unlink(out_path)
    result["task"] = task
    result["process_s"] = wall
    return result


def describe(res: dict) -> str:
    if "error" in res:
        return f"{res['task']}: FAILED"
    task = res["task"]
    label = f"{task['side']:<4} {task.get('backend', ''):<7} {task['mode']:<8} " \
            f"{task.get('cache', ''):<5}"
    if task["mode"] == "micro":
        return (f"{label} logp {res['logp']['warm_us']:.0f} us, grad "
                f"{res['grad']['warm_us']:.0f} us, batch16 "
                f"{res['batch16']['warm_us']:.0f} us, potential+grad "
                f"{res['nuts_potential_grad']['warm_us']:.0f} us")
    s = res["summary"]
    return (f"{label} total {res['times']['total_s']:.1f} s, min ESS "
            f"{s['min_ess']:.0f} ({s['min_ess_param']}), "
            f"{s['min_ess'] / res['times']['total_s']:.2f} ESS/s, "
            f"draws {s['n_draws']}")


def run_all(args) -> dict:
    which = [w.strip() for w in args.which.split(",") if w.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    eddy_ok = importlib.util.find_spec("eddy") is not None
    if "eddy" in which and not eddy_ok:
        print("astro-eddy is not installed (pip install -e '.[bench]'): "
              "benchmarking ours only.", flush=True)
        which = [w for w in which if w != "eddy"]
    runs = []
    log = open(args.log, "a") if args.log else None

    def record(res):
        runs.append(res)
        line = describe(res)
        print(line, flush=True)
        if log:
            log.write(line + "\n")
            log.flush()

    tmp_root = Path(tempfile.mkdtemp(prefix="eddy_bench_cache_"))
    try:
        if "ours" in which:
            modes = ["micro"] + [(b, m) for b in backends for m in ("tutorial", "to400")]
            for item in modes:
                task = ({"side": "ours", "mode": "micro"} if item == "micro" else
                        {"side": "ours", "backend": item[0], "mode": item[1]})
                for rep in range(args.repeats):
                    if args.cold:
                        cache = tmp_root / f"{task['mode']}_{task.get('backend', '')}_{rep}"
                        env = {"EDDY_WIDGETS_JAX_CACHE": str(cache)}
                        record(spawn(dict(task, cache="cold", rep=rep), env, log))
                        record(spawn(dict(task, cache="warm", rep=rep), env, log))
                        shutil.rmtree(cache, ignore_errors=True)
                    else:
                        record(spawn(dict(task, cache="dflt", rep=rep), None, log))
        if "eddy" in which:
            for task in [{"side": "eddy", "mode": "micro"}] + [
                    {"side": "eddy", "backend": b, "mode": "tutorial"} for b in backends]:
                for rep in range(args.repeats):
                    record(spawn(dict(task, cache="", rep=rep), None, log))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
        if log:
            log.close()
    return {"date": _dt.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(), "command": " ".join(["benchmarks/bench_fit.py",
                                                      *sys.argv[1:]]),
            "args": vars(args), "runs": runs}


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


# -- Tables --------------------------------------------------------------------


def _pick(runs, **kw):
    """Runs matching ``kw`` without errors; median over repeats is taken by
    the callers."""
    return [r for r in runs if "error" not in r
            and all(r["task"].get(k) == v for k, v in kw.items())]


def _med(values):
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(values)) if values else math.nan


def fit_row(runs, side, backend, cache=None) -> dict | None:
    kw = {"side": side, "backend": backend, "mode": "tutorial"}
    if cache:
        kw["cache"] = cache
    rs = _pick(runs, **kw)
    if not rs:
        return None
    r0 = rs[0]
    total = _med([r["times"]["total_s"] for r in rs])
    sampling = _med([r["times"].get("sampling_s", r["times"].get("sampling_s_est"))
                     for r in rs])
    min_ess = r0["summary"]["min_ess"]
    row = {"total_s": total, "min_ess": min_ess, "ess_per_s": min_ess / total,
           "min_ess_param": r0["summary"]["min_ess_param"], "npix": r0["npix"],
           "import_s": _med([r["import_s"] for r in rs]),
           "load_s": _med([r["times"]["load_s"] for r in rs]),
           "optimise_s": _med([r["times"]["optimise_s"] for r in rs]),
           "sampler": r0.get("sampler", {}), "summary": r0["summary"],
           "n": len(rs), "totals": [r["times"]["total_s"] for r in rs],
           "totals_txt": ", ".join(f"{r['times']['total_s']:.1f}" for r in rs)}
    row.update(time_to_target(total, sampling, min_ess))
    if side == "ours":
        for key in ("prepare_other_s", "compile_s", "warmup_s", "sampling_s"):
            row[key] = _med([r["times"][key] for r in rs])
        kw["mode"] = "to400"
        measured = _pick(runs, **kw)
        if measured:
            row["t400_measured_ess"] = measured[0]["summary"]["min_ess"]
            row["t400_measured_draws"] = measured[0]["summary"]["n_draws"]
            # Only a run that got there measures the time to get there.
            if row["t400_measured_ess"] >= TARGET_ESS:
                row["t400_measured_s"] = _med([r["times"]["total_s"]
                                               for r in measured])
    else:
        row["mcmc_s"] = _med([r["times"]["mcmc_s"] for r in rs])
    return row


def micro_row(runs, side, cache=None) -> dict | None:
    kw = {"side": side, "mode": "micro"}
    if cache:
        kw["cache"] = cache
    rs = _pick(runs, **kw)
    if not rs:
        return None
    keys = ["logp", "grad", "batch16", "nuts_potential_grad"]
    row = {"npix": rs[0]["npix"], "import_s": _med([r["import_s"] for r in rs])}
    if "logp_eager" in rs[0]:
        keys = keys + ["logp_eager"]
    for k in keys:
        row[k + "_us"] = _med([r[k]["warm_us"] for r in rs])
        row[k + "_compile_s"] = _med([r[k]["compile_s"] for r in rs])
    return row


def fmt(v, spec=".3g"):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return format(v, spec)


def ratio(a, b):
    if a is None or b is None or not b or not np.isfinite(a) or not np.isfinite(b):
        return math.nan
    return a / b


def tables(report: dict) -> str:
    runs = report["runs"]
    cold = report["args"].get("cold")
    ours_cache = ("warm", "cold") if cold else ("dflt",)
    lines = []
    w = lines.append
    w(f"# bench_fit: {report['date']}, {report['machine'].get('cpu', '?')}, "
      f"{report['machine']['cores']} cores, python {report['machine']['python']}")
    w(f"# command: {report['command']}")
    w("")
    # -- Micro --
    w("## One evaluation (warm, median; compile = first call - warm call; "
      "the ratio of compile times is against our cold run)")
    w("")
    mo = {c: micro_row(runs, "ours", c) for c in ours_cache}
    me = micro_row(runs, "eddy")
    hdr = ["quantity"] + [f"ours ({c})" for c in ours_cache] + ["astro-eddy",
                                                                 "eddy / ours"]
    w("| " + " | ".join(hdr) + " |")
    w("|" + "---|" * len(hdr))
    items = [("fitted pixels", "npix", "d"),
             ("log-prob [us]", "logp_us", ".0f"),
             ("log-prob un-jitted, as astro-eddy's optimiser calls it [us]",
              "logp_eager_us", ".0f"),
             ("gradient [us]", "grad_us", ".0f"),
             ("emcee batch of 16 [us]", "batch16_us", ".0f"),
             ("NUTS potential + grad [us]", "nuts_potential_grad_us", ".0f"),
             ("compile log-prob [s]", "logp_compile_s", ".2f"),
             ("compile gradient [s]", "grad_compile_s", ".2f"),
             ("compile batch16 [s]", "batch16_compile_s", ".2f"),
             ("compile potential+grad [s]", "nuts_potential_grad_compile_s", ".2f"),
             ("import [s]", "import_s", ".2f")]
    ref = ours_cache[0]
    for label, key, spec in items:
        cells = [fmt(mo[c].get(key) if mo[c] else None, spec) for c in ours_cache]
        e = me.get(key) if me else None
        # Compile times compare with our cold run (astro-eddy keeps no cache).
        src = mo[ours_cache[-1]] if key.endswith("compile_s") else mo[ref]
        o = src.get(key if key != "logp_eager_us" else "logp_us") if src else None
        r = ratio(e, o) if key != "npix" else math.nan
        w(f"| {label} | " + " | ".join(cells) + f" | {fmt(e, spec)} | "
          f"{fmt(r, '.1f')} |")
    w("")
    # -- End to end --
    for backend in ("numpyro", "emcee"):
        cols = [(f"ours ({c})", fit_row(runs, "ours", backend, c)) for c in ours_cache]
        cols.append(("astro-eddy", fit_row(runs, "eddy", backend)))
        if all(c[1] is None for c in cols):
            continue
        n = COUNTS[backend]
        w(f"## {backend}: {n[0]} {'chain' if backend == 'numpyro' else 'walkers'}"
          f" x ({n[1]} + {n[2]})" + (f", max_tree_depth {MAX_TREE_DEPTH}"
                                     if backend == "numpyro" else ""))
        w("")
        hdr = ["quantity"] + [c[0] for c in cols] + ["ours / eddy"]
        w("| " + " | ".join(hdr) + " |")
        w("|" + "---|" * len(hdr))
        rows = [("end to end [s]", "total_s", ".1f"),
                ("  all repeats [s]", "totals_txt", "s"),
                ("  load [s]", "load_s", ".2f"),
                ("  optimise [s]", "optimise_s", ".2f"),
                ("  set-up after optimise [s]", "prepare_other_s", ".2f"),
                ("  sampler compile (est.) [s]", "compile_s", ".2f"),
                ("  warmup incl. compile [s]", "warmup_s", ".2f"),
                ("  sampling [s]", "sampling_s", ".2f"),
                ("  sampler, all (eddy) [s]", "mcmc_s", ".1f"),
                ("min ESS", "min_ess", ".0f"),
                ("min-ESS param", "min_ess_param", "s"),
                ("min ESS / s", "ess_per_s", ".3g"),
                ("t(min-ESS 400) [s]", "t400_s", ".1f"),
                ("  how", "t400_how", "s"),
                ("t(min-ESS 400) measured [s]", "t400_measured_s", ".1f"),
                ("  its min ESS / draws", None, None),
                ("fitted pixels", "npix", "d")]
        if backend == "numpyro":
            rows += [("steps per draw (median)", "s:median_steps_per_draw", ".0f"),
                     ("steps per draw (mean)", "s:mean_steps_per_draw", ".1f"),
                     ("divergences", "s:divergences", "d"),
                     ("step size", "s:step_size", ".3g")]
        else:
            rows += [("acceptance", "s:acceptance_fraction", ".2f")]
        for label, key, spec in rows:
            cells = []
            vals = []
            for _, row in cols:
                if row is None:
                    v = None
                elif key is None:
                    v = (f"{row['t400_measured_ess']:.0f} / {row['t400_measured_draws']}"
                         if "t400_measured_ess" in row else None)
                elif key.startswith("s:"):
                    v = row["sampler"].get(key[2:])
                else:
                    v = row.get(key)
                vals.append(v)
                cells.append(fmt(v, spec or "s") if v is not None else "-")
            o, e = vals[0], vals[-1]
            r = (ratio(o, e) if key in ("ess_per_s", "min_ess") else
                 ratio(e, o) if key in ("total_s", "t400_s") else math.nan)
            rtxt = fmt(r, ".1f") + ("x" if np.isfinite(r) else "")
            if key in ("total_s", "t400_s") and np.isfinite(r):
                rtxt += " faster"
            w(f"| {label} | " + " | ".join(cells) + f" | {rtxt if np.isfinite(r) else ''} |")
        w("")
    # -- Agreement --
    w("## Posterior agreement (|median difference| / sigma_ref, width / width_ref)")
    w("")
    pairs = [("ours emcee", "ours", "emcee", "eddy emcee", "eddy", "emcee"),
             ("ours NUTS", "ours", "numpyro", "eddy emcee", "eddy", "emcee"),
             ("ours NUTS", "ours", "numpyro", "eddy NUTS", "eddy", "numpyro"),
             ("ours NUTS", "ours", "numpyro", "ours emcee", "ours", "emcee")]
    any_pair = False
    for la, sa, ba, lb, sb, bb in pairs:
        ra = fit_row(runs, sa, ba, ours_cache[0] if sa == "ours" else None)
        rb = fit_row(runs, sb, bb, ours_cache[0] if sb == "ours" else None)
        if ra is None or rb is None:
            continue
        any_pair = True
        ma, sa_ = np.array(ra["summary"]["median"]), np.array(ra["summary"]["sigma"])
        mb, sb_ = np.array(rb["summary"]["median"]), np.array(rb["summary"]["sigma"])
        dz = np.abs(ma - mb) / sb_
        wr = sa_ / sb_
        w(f"{la} vs {lb} (reference): max |dmedian|/sigma {dz.max():.2f} "
          f"({FREE[int(dz.argmax())]}), width ratio {wr.min():.2f}-{wr.max():.2f}")
        w("")
        w("| param | " + " | ".join(FREE) + " |")
        w("|" + "---|" * (len(FREE) + 1))
        w("| median " + la + " | " + " | ".join(f"{v:.5g}" for v in ma) + " |")
        w("| median " + lb + " | " + " | ".join(f"{v:.5g}" for v in mb) + " |")
        w("| sigma " + la + " | " + " | ".join(f"{v:.3g}" for v in sa_) + " |")
        w("| sigma " + lb + " | " + " | ".join(f"{v:.3g}" for v in sb_) + " |")
        w("| \\|dmed\\|/sigma | " + " | ".join(f"{v:.2f}" for v in dz) + " |")
        w("| width ratio | " + " | ".join(f"{v:.2f}" for v in wr) + " |")
        w("| ESS " + la + " | " + " | ".join(f"{v:.0f}" for v in ra["summary"]["ess"])
          + " |")
        w("| ESS " + lb + " | " + " | ".join(f"{v:.0f}" for v in rb["summary"]["ess"])
          + " |")
        w("")
    if not any_pair:
        w("(needs both sides)")
        w("")
    loads = [x for r in runs if "loadavg_1min" in r for x in r["loadavg_1min"]]
    if loads:
        w(f"1-min load average during the runs: {min(loads):.1f}-{max(loads):.1f} "
          f"on {report['machine']['cores']} cores.")
        w("")
    w("Notes: emcee's 'measured' time to 400 stops as soon as the running "
      "estimate reaches 400; emcee's integrated-time estimate on a chain much "
      "shorter than 50 tau is biased low (ESS high), so prefer the "
      "interpolated value for emcee. astro-eddy's post-warmup share is taken "
      "as nsteps / (nburnin + nsteps) of its sampler time.")
    w("")
    w(targets_text(runs, ours_cache))
    return "\n".join(lines)


def targets_text(runs, ours_cache) -> str:
    warm = ours_cache[0]
    lines = ["## Targets", ""]

    def line(name, value, target, ok):
        state = "-" if ok is None else ("MET" if ok else "NOT MET")
        lines.append(f"- {name}: {value} (target {target}) -> {state}")

    on = fit_row(runs, "ours", "numpyro", warm)
    en = fit_row(runs, "eddy", "numpyro")
    oe = fit_row(runs, "ours", "emcee", warm)
    ee = fit_row(runs, "eddy", "emcee")
    if on and en:
        r = on["ess_per_s"] / en["ess_per_s"]
        line("our NUTS min-ESS/s vs astro-eddy NUTS", f"{r:.0f}x", ">= 100x", r >= 100)
    if on and oe:
        line("our NUTS min-ESS/s vs our emcee",
             f"{on['ess_per_s']:.1f} vs {oe['ess_per_s']:.1f} ESS/s", "faster",
             on["ess_per_s"] > oe["ess_per_s"])
    if oe and ee:
        r = oe["ess_per_s"] / ee["ess_per_s"]
        line("our emcee min-ESS/s vs astro-eddy emcee", f"{r:.1f}x", ">= 3x", r >= 3)
    for cache, target in (("cold", TARGETS["t400_cold_s"]),
                          ("warm", TARGETS["t400_warm_s"]),
                          ("dflt", TARGETS["t400_warm_s"])):
        row = fit_row(runs, "ours", "numpyro", cache)
        if row and "t400_measured_ess" in row:
            if "t400_measured_s" in row:
                t = row["t400_measured_s"]
                line(f"our NUTS to min-ESS >= 400, measured, {cache} cache",
                     f"{t:.1f} s", f"< {target:.0f} s", t < target)
            else:
                line(f"our NUTS to min-ESS >= 400, measured, {cache} cache",
                     "not reached", f"< {target:.0f} s", False)
    mo = micro_row(runs, "ours", warm)
    me = micro_row(runs, "eddy")
    if mo:
        line("warm log-prob", f"{mo['logp_us']:.0f} us", "<= 300 us",
             mo["logp_us"] <= TARGETS["logp_us"])
        line("warm gradient", f"{mo['grad_us']:.0f} us", "<= 1000 us",
             mo["grad_us"] <= TARGETS["grad_us"])
    if mo and me:
        for key, what in (("logp_us", "log-prob"), ("grad_us", "gradient")):
            r = me[key] / mo[key]
            line(f"warm {what}, astro-eddy / ours side by side", f"{r:.1f}x",
                 ">= 10x", r >= 10)
    for la, ra, lb, rb in (("our emcee", oe, "astro-eddy emcee", ee),
                           ("our NUTS", on, "astro-eddy emcee", ee),
                           ("our NUTS", on, "astro-eddy NUTS", en)):
        if ra and rb:
            ma, sa = np.array(ra["summary"]["median"]), np.array(ra["summary"]["sigma"])
            mb, sb = np.array(rb["summary"]["median"]), np.array(rb["summary"]["sigma"])
            dz = float(np.max(np.abs(ma - mb) / sb))
            wr = sa / sb
            dw = float(np.max(np.abs(wr - 1)))
            line(f"{la} vs {lb}: medians", f"max {dz:.2f} sigma", "<= 0.3 sigma",
                 dz <= 0.3)
            line(f"{la} vs {lb}: widths", f"max {100 * dw:.0f}% off", "within 15%",
                 dw <= 0.15)
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=1,
                   help="end-to-end runs per configuration (median reported)")
    p.add_argument("--which", default="ours,eddy",
                   help="sides to run: ours, eddy (astro-eddy, if installed)")
    p.add_argument("--backends", default="emcee,numpyro")
    p.add_argument("--cold", action="store_true",
                   help="run ours in a fresh, empty compilation cache (cold), then "
                        "again with it filled (warm)")
    p.add_argument("--out", default=None,
                   help="JSON file for every number (default: "
                        "benchmarks/results/bench_fit_<date>.json)")
    p.add_argument("--log", default=None, help="append one line per run here")
    p.add_argument("--counts-scale", type=float, default=1.0,
                   help="scale the tutorial counts (development only; the "
                        "numbers are then not the benchmark's)")
    p.add_argument("--tables-from", default=None,
                   help="print the tables of an earlier JSON report and exit")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child), args.child_out)
        return 0
    if args.tables_from:
        print(tables(json.loads(Path(args.tables_from).read_text())))
        return 0
    global SCALE
    SCALE = args.counts_scale
    report = run_all(args)
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / (
        f"bench_fit_{report['date'][:10]}.json")
    out.write_text(json.dumps(report, indent=1, default=_json_default))
    text = tables(report)
    print()
    print(text)
    out.with_suffix(".md").write_text(text + "\n")
    print(f"\nwrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
