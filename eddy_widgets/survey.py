"""Fit many maps in parallel on Dask: a survey of disks and lines.

    from eddy_widgets import fit_many

    jobs = [{"path": "HD163296_CO_v0.fits", "name": "HD163296_CO"},
            {"path": "MWC480_CO_v0.fits", "FOV": 6.0, "p0": [...]}]
    table = fit_many(jobs, "results/", p0=p0, params=params, mcmc="numpyro",
                     nwalkers=2, nburnin=500, nsteps=500)

Each job is a dict: the map (``path``; optionally ``uncertainty``, ``FOV``,
``downsample``, ``fill``, ``force_center``, ``peak`` as for :class:`rotationmap`),
``priors`` (``{name: ["flat", low, high] | ["gaussian", mean, sigma]}``, as
the CLI's ``[priors]`` section), ``name`` (default: the map's file name
without ``_v0.fits``) and any keyword of ``fit_map`` (``p0``, ``params``,
``mcmc``, ``nwalkers``, ``nburnin``, ``nsteps``, ``mcmc_kwargs``, ...). The
keywords given to :func:`fit_many` itself apply to every job; a job's own
keys win.

Each fit runs as one Dask task, on a local cluster by default or on any
``dask.distributed`` client you pass (dask-jobqueue on Slurm, ...); its
result is written by the worker, as soon as it ends, to ``out_dir/<name>.npz``
(:meth:`FitResult.save`, atomic), so ``out_dir`` must be a folder the workers
see (a shared file system on a cluster); it is checked to be writable before
anything runs. A failed job is reported in its row; the others go on. A rerun
skips every job whose result file exists.

While it runs, each job writes a checkpoint next to its result,
``out_dir/<name>.checkpoint.npz``, every ``checkpoint_interval`` seconds
(default 30; a job or fit_many's keywords may set it) and when its fit ends;
the checkpoint is removed once the result is written. A fit cut short (Ctrl-C
of the caller, a worker or cluster gone) loses at most one interval: a rerun
that finds a job's checkpoint but no result continues that run to the job's
counts (``nsteps`` may have grown) instead of starting over. The job must be
the one the checkpoint was made with (map, fitted pixels, parameters, priors,
noise model, backend, walkers and warmup); otherwise the job fails naming the
difference, and deleting the checkpoint starts it over. ``checkpoint`` itself
is fit_many's to set: giving it is an error. (Jobs with ``niter`` > 1 write no
checkpoint and start over.)

Dask is the ``dask`` extra: ``pip install "eddy_widgets[dask]"``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
from pathlib import Path
import re
import sys
import time

INSTALL_HINT = 'pip install "eddy_widgets[dask]"'

#: Keys of a job that say which map to load and how (rotationmap's arguments).
MAP_KEYS = ("path", "uncertainty", "FOV", "downsample", "fill", "force_center",
            "peak")
#: fit_map keywords fit_many sets itself (a worker has no screen to plot on and
#: returns only a row).
MANAGED = ("plots", "returns", "pool", "callbacks", "verdict")
#: Columns of the returned table.
COLUMNS = ("name", "status", "error", "result", "wall_s", "converged", "verdict",
           "resumed")
#: Seconds between the checkpoint writes of a job (its ``checkpoint_interval``).
CHECKPOINT_INTERVAL = 30.0
#: A job's checkpoint is ``out_dir/<name><CHECKPOINT_SUFFIX>``.
CHECKPOINT_SUFFIX = ".checkpoint.npz"


class JobError(ValueError):
    """A job that cannot be run as written (raised before anything runs)."""


class OutDirError(JobError, PermissionError):
    """``out_dir`` cannot be written (raised before anything runs); a
    :class:`JobError` and a ``PermissionError``."""


def checkpoint_path(out_path) -> Path:
    """The checkpoint of the job whose result is ``out_path``
    (``<name>.npz`` -> ``<name>.checkpoint.npz``)."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name.removesuffix(".npz") + CHECKPOINT_SUFFIX)


_CHECKPOINT_IS_OURS = (
    "'checkpoint' in {where}: fit_many gives each job its own checkpoint "
    "automatically, out_dir/<name>" + CHECKPOINT_SUFFIX + ", written every "
    "checkpoint_interval seconds (default " + f"{CHECKPOINT_INTERVAL:g}" + ") and "
    "continued by a rerun; one file given for all jobs would be overwritten by "
    "each. Leave 'checkpoint' out (set checkpoint_interval if you like).")


def _fit_keys() -> tuple[str, ...]:
    from .facade.rotationmap import rotationmap

    names = list(inspect.signature(rotationmap.fit_map).parameters)[1:]
    return tuple(n for n in names if n not in MANAGED)


def job_name(job: dict) -> str:
    """The job's ``name``, or its map's file name without ``.fits``/``_v0``."""
    if job.get("name") is not None:
        return str(job["name"])
    return Path(str(job["path"])).name.removesuffix(".fits").removesuffix("_v0")


def prepare_jobs(jobs, common: dict | None = None) -> list[dict]:
    """Each job merged with ``common`` and checked, before anything runs.

    Raises :class:`JobError` naming the job (by name, or by its position when
    it has none yet) for: a job that is not a dict, no ``path``, an unknown
    key, no ``p0``/``params``, a malformed ``priors`` entry, or two jobs with
    the same name (their results would share a file)."""
    common = dict(common or {})
    fit_keys = _fit_keys()
    known = set(MAP_KEYS) | {"priors", "name"} | set(fit_keys)
    for key in ("path", "name"):
        if key in common:
            raise JobError(f"'{key}' is per job: put it in each job's dict, not in "
                           f"fit_many's keywords.")
    if "checkpoint" in common:
        raise JobError(_CHECKPOINT_IS_OURS.format(where="fit_many's keywords"))
    bad = sorted(set(common) - known)
    if bad:
        raise JobError(f"fit_many got unknown keyword(s) {bad}; a job knows "
                       f"{', '.join(sorted(known))}.")
    out, seen = [], {}
    for i, job in enumerate(jobs):
        where = f"job {i}"
        if not isinstance(job, dict):
            raise JobError(f"{where} is a {type(job).__name__}; each job is a dict "
                           f"with at least 'path'.")
        if job.get("name") is not None:
            where = f"job {i} ('{job['name']}')"
        if not job.get("path"):
            raise JobError(f"{where} has no 'path' (the *_v0.fits map to fit).")
        merged = {**common, **job}
        name = job_name(merged)
        where = f"job {i} ('{name}')"
        bad = sorted(set(job) - known)
        if bad:
            raise JobError(f"{where} has unknown key(s) {bad}; a job knows "
                           f"{', '.join(sorted(known))}.")
        if "checkpoint" in job:
            raise JobError(_CHECKPOINT_IS_OURS.format(where=where))
        for key in ("p0", "params"):
            if merged.get(key) is None:
                raise JobError(f"{where} has no '{key}' (give it in the job or as a "
                               f"keyword of fit_many for every job).")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
            raise JobError(f"{where}: the name {name!r} is not usable as a file name "
                           f"(letters, digits, '_', '-', '.', '+'); give the job a "
                           f"'name'.")
        if name.endswith(CHECKPOINT_SUFFIX.removesuffix(".npz")):
            raise JobError(f"{where}: the name {name!r} ends like a checkpoint's "
                           f"(<name>{CHECKPOINT_SUFFIX}); give the job another "
                           f"'name'.")
        if name in seen:
            raise JobError(f"{where} and job {seen[name]} have the same name '{name}' "
                           f"(their results would share a file); give them "
                           f"different 'name's.")
        seen[name] = i
        for param, prior in (merged.get("priors") or {}).items():
            if not (isinstance(prior, (list, tuple)) and len(prior) == 3
                    and prior[0] in ("flat", "gaussian")):
                raise JobError(f"{where}: priors['{param}'] = {prior!r}: write "
                               f"['flat', low, high] or ['gaussian', mean, sigma].")
        merged["name"] = name
        out.append(merged)
    return out


def worker_threads(n_workers: int, cores: int | None = None) -> int:
    """CPU threads each worker's JAX may use so that ``n_workers`` workers
    share ``cores`` (default: all of this machine's) without oversubscribing."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, n_workers))


def worker_env(threads: int) -> dict:
    """Environment for a worker process whose fits may use ``threads`` CPU
    threads: XLA's thread pool and host devices limited to them, BLAS/OpenMP to
    one, and this process's JAX compilation cache. Pass it to your own cluster
    (e.g. dask-jobqueue's ``job_script_prologue`` as ``export`` lines)."""
    import jax

    flags = [f"--xla_force_host_platform_device_count={threads}",
             f"intra_op_parallelism_threads={threads}"]
    if threads == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
    env = {"XLA_FLAGS": " ".join(flags), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cache = jax.config.jax_compilation_cache_dir
    env["EDDY_WIDGETS_JAX_CACHE"] = str(cache) if cache else "off"
    return env


def local_client(n_workers: int | None = None):
    """A ``dask.distributed`` Client on a new local cluster of ``n_workers``
    processes (default: one per core), each running one fit at a time with
    the cores shared out between them (:func:`worker_env`). Close it (and its
    cluster) with ``client.close(); client.cluster.close()``."""
    Client, LocalCluster = _distributed()
    n_workers = n_workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None,
                           env=worker_env(worker_threads(n_workers)))
    return Client(cluster)


def _distributed():
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(f"fit_many runs the fits on Dask, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return Client, LocalCluster


def _row(name: str, **values) -> dict:
    """A table row with every column (defaults: nothing known yet)."""
    row = {"name": name, "status": "failed", "error": "", "result": "",
           "wall_s": None, "converged": None, "verdict": "", "resumed": 0}
    row.update(values)
    return row


def run_job(job: dict, out_path: str, cache: str | None = None) -> dict:
    """Fit one job and write its result to ``out_path`` (runs on a worker).

    The fit writes its checkpoint (:func:`checkpoint_path`) every
    ``checkpoint_interval`` seconds; a checkpoint found at the start is
    continued to the job's counts (the row's ``resumed``: its draws per
    chain); it is removed once the result is written.
    Never raises: a failure is the row's ``status`` and ``error``."""
    t0 = time.perf_counter()
    row = _row(job["name"])
    try:
        import jax

        if cache and jax.config.jax_compilation_cache_dir != cache:
            jax.config.update("jax_compilation_cache_dir", cache)
        import matplotlib

        matplotlib.use("Agg")
        from .facade.rotationmap import rotationmap
        from .inference import diagnostics as D

        cube = rotationmap(**{k: job[k] for k in MAP_KEYS if k in job})
        for param, (kind, a, b) in (job.get("priors") or {}).items():
            cube.set_prior(param, [a, b], kind)
        fit = {k: v for k, v in job.items()
               if k not in (*MAP_KEYS, "priors", "name")}
        fit["mcmc_kwargs"] = {"progress": False, **(fit.get("mcmc_kwargs") or {})}
        interval = fit.pop("checkpoint_interval", None)
        interval = CHECKPOINT_INTERVAL if interval is None else float(interval)
        checkpoint = checkpoint_path(out_path)
        if int(fit.get("niter") or 1) != 1:
            checkpoint = None  # each of its runs would overwrite the last's
        with contextlib.redirect_stdout(io.StringIO()):  # the client prints rows
            if checkpoint is not None and checkpoint.exists():
                result, row["resumed"] = _continue(cube, fit, checkpoint, interval)
            else:
                result = cube.fit_map(**fit, plots="none", returns="result",
                                      verdict=False, checkpoint=checkpoint,
                                      checkpoint_interval=interval)
        result.save(out_path)
        if checkpoint is not None:
            with contextlib.suppress(FileNotFoundError):
                checkpoint.unlink()
        converged, notes = result._verdict()
        row.update(status="done", result=out_path, converged=bool(converged),
                   verdict=D.headline(converged, notes))
    except Exception as err:  # reported in the row; the other jobs go on
        row["error"] = f"{type(err).__name__}: {err}"
    row["wall_s"] = time.perf_counter() - t0
    return row


def _continue(cube, fit: dict, checkpoint: Path, interval: float):
    """The run saved in ``checkpoint`` continued to the job's counts, and the
    draws per chain it had. Raises ``ValueError`` naming every way in which
    the job differs from the run the checkpoint was made with."""
    from .facade.returns import with_fit_map_defaults
    from .facade.rotationmap import rotationmap
    from .inference.backends import get_backend
    from .inference.result import FitResult
    from .inference.run import SetupMismatchError
    from .inference.spec import with_noise

    delete = f"delete {checkpoint} to fit this job from the start"
    try:
        saved = FitResult.load(checkpoint)
    except Exception as err:
        raise ValueError(f"the job's checkpoint {checkpoint} cannot be read "
                         f"({type(err).__name__}: {err}); {delete}.") from None
    defaults = {name: p.default for name, p in
                inspect.signature(rotationmap.fit_map).parameters.items()}
    want = {k: fit.get(k, defaults[k]) for k in
            ("mcmc", "nwalkers", "nburnin", "nsteps", "params", "p0", "r_min",
             "r_max", "noise")}
    backend = get_backend(want["mcmc"])
    counts = {}
    for key in ("nwalkers", "nburnin", "nsteps"):
        value = want[key]
        if isinstance(value, (list, tuple)):
            value = value[0]
        counts[key] = backend.count_defaults[key] if value is None else int(value)
    diffs = []
    if saved.backend != backend.name:
        diffs.append(f"mcmc: {saved.backend!r} in the checkpoint, {backend.name!r} "
                     f"now")
    if want["nwalkers"] is not None and counts["nwalkers"] != saved.nchains:
        diffs.append(f"nwalkers: {saved.nchains} in the checkpoint, "
                     f"{counts['nwalkers']} now")
    if counts["nburnin"] != saved.n_warmup_target:
        diffs.append(f"nburnin: {saved.n_warmup_target} in the checkpoint, "
                     f"{counts['nburnin']} now")
    if counts["nsteps"] < saved.n_samples_target:
        diffs.append(f"nsteps: {saved.n_samples_target} in the checkpoint, "
                     f"{counts['nsteps']} now (it can only grow)")
    params, p0 = with_noise(want["params"], want["p0"], want["noise"])
    # The job runs through fit_map, with astro-eddy's mask defaults.
    params = with_fit_map_defaults(params, want["r_max"])
    spec = rotationmap._spec(params, p0, want["r_min"], want["r_max"]).to_json()
    diffs += _spec_differences(spec, saved.settings.get("params") or {})
    if diffs:
        raise ValueError(f"the job's checkpoint {checkpoint} was made with another "
                         f"set-up ({'; '.join(diffs)}); {delete}, or give the job "
                         f"its earlier settings.")
    try:
        run = cube.resume(saved, checkpoint=checkpoint, checkpoint_interval=interval)
    except SetupMismatchError as err:
        raise SetupMismatchError(f"the job's checkpoint {checkpoint} cannot be "
                                 f"continued: {err} ({delete}.)") from None
    resumed = saved.n_draws("warmup") + saved.n_draws("sampling")
    extra = max(0, counts["nsteps"] - saved.n_samples_target)
    return run.extend(extra), resumed


def _spec_differences(now: dict, saved: dict) -> list[str]:
    """How the job's parsed set-up (``FitSpec.to_json``) differs from the one
    a checkpoint was made with (fixed values estimated by the run, given as
    ``None`` by the job, are not differences)."""
    import json

    import numpy as np

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        return str(value)

    def same(a, b) -> bool:
        return json.dumps(a, sort_keys=True, default=plain) == json.dumps(
            b, sort_keys=True, default=plain)

    diffs = []
    if list(now.get("free", [])) != list(saved.get("free", [])):
        diffs.append(f"free parameters: {list(saved.get('free', []))} in the "
                     f"checkpoint, {list(now.get('free', []))} now")
    for part in ("fixed", "mask"):
        mine, theirs = now.get(part) or {}, saved.get(part) or {}
        for key in sorted(set(mine) | set(theirs)):
            if key in mine and mine[key] is None and part == "fixed":
                continue
            if not same(mine.get(key), theirs.get(key)):
                diffs.append(f"{key}: {theirs.get(key)!r} in the checkpoint, "
                             f"{mine.get(key)!r} now")
    if now.get("z_func") != saved.get("z_func"):
        diffs.append(f"z_func: {saved.get('z_func')!r} in the checkpoint, "
                     f"{now.get('z_func')!r} now")
    return diffs


def _existing_row(job: dict, path: Path) -> dict:
    from .inference import diagnostics as D
    from .inference.result import FitResult

    row = _row(job["name"], status="skipped (exists)", result=str(path), wall_s=0.0)
    try:
        converged, notes = FitResult.load(path)._verdict()
        row.update(converged=bool(converged), verdict=D.headline(converged, notes))
    except Exception as err:
        row["error"] = (f"{type(err).__name__}: {err} (delete the file to fit this "
                        f"job again)")
    return row


def check_writable(out_dir) -> None:
    """Raise :class:`OutDirError` naming ``out_dir`` unless a file can be
    made in it (a probe file, created and removed at once)."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".fit_many-probe-", dir=out_dir)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise OutDirError(f"out_dir {str(out_dir)!r} is not writable "
                          f"({type(err).__name__}: {err}): fit_many writes each "
                          f"job's result and checkpoint there. Nothing was run; "
                          f"give a folder you can write to (on a cluster, one the "
                          f"workers see).") from None


def _line(k: int, n: int, row: dict) -> str:
    line = f"[{k}/{n}] {row['name']}: {row['status']}"
    if row["wall_s"]:
        line += f" in {row['wall_s']:.1f} s"
    if row.get("resumed"):
        line += f" (continued from its checkpoint's {row['resumed']} draws per chain)"
    if row["verdict"]:
        line += f" - {row['verdict'].removeprefix('Verdict: ')}"
    if row["error"]:
        line += f" - {row['error']}"
    return line


def fit_many(jobs, out_dir, client=None, *, n_workers: int | None = None,
             progress: bool = True, **common):
    """Fit every job in parallel on Dask; write each result as it ends.

    Args:
        jobs: dicts, one per fit (see the module's docstring): ``path`` and
            optionally ``uncertainty``, ``FOV``, ``downsample``, ``fill``,
            ``force_center``, ``priors``, ``name``, plus ``fit_map``'s keywords.
        out_dir: folder for the results, ``<name>.npz`` each, and the
            checkpoints of the fits in progress, ``<name>.checkpoint.npz``
            (made if needed; must be writable, which is checked before
            anything runs, and visible to the workers).
        client: a ``dask.distributed.Client``; default: a local cluster of
            ``n_workers`` processes (default: one per core, at most one per
            job), closed at the end.
        progress: print one line per job as it ends (and one per skipped job).
        **common: ``fit_map`` keywords (and map keys but ``path``/``name``)
            for every job; a job's own keys win. Not ``checkpoint``: each
            job gets its own (see the module's docstring);
            ``checkpoint_interval`` (default 30 s) may be given.

    Returns:
        A ``pandas.DataFrame``, one row per job in the order given: ``name``,
        ``status`` (``'done'``, ``'failed'`` or ``'skipped (exists)'``),
        ``error`` (type and message), ``result`` (the file), ``wall_s`` (the
        fit's wall time on its worker), ``converged``, ``verdict`` (the
        verdict's headline) and ``resumed`` (draws per chain continued from
        the job's checkpoint; 0 for a fit from the start).

    Raises:
        JobError: before anything runs, for a job that cannot be run as
            written (named in the message).
        OutDirError: (a ``JobError`` and a ``PermissionError``) before
            anything runs, for an ``out_dir`` that cannot be made or written.
        KeyboardInterrupt: on Ctrl-C, after saying which fits were in
            progress: their checkpoints are kept, and a rerun continues them.
        ImportError: without Dask, saying what to install.
    """
    import pandas as pd  # a dependency of ArviZ, hence always present

    jobs = prepare_jobs(jobs, common)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutDirError(f"out_dir {str(out_dir)!r} cannot be made as a folder "
                          f"({type(err).__name__}: {err}); fit_many writes each "
                          f"job's result there. Give a folder you can write to."
                          ) from None
    n = len(jobs)
    rows: dict[str, dict] = {}
    todo = []
    for job in jobs:
        path = out_dir / f"{job['name']}.npz"
        if path.exists():
            rows[job["name"]] = _existing_row(job, path)
            if progress:
                print(_line(len(rows), n, rows[job["name"]]), flush=True)
        else:
            todo.append((job, path))
    if todo:
        check_writable(out_dir)
        _distributed()  # the error that says what to install
        from distributed import as_completed
        import jax

        own = client is None
        if own:
            client = local_client(min(n_workers or os.cpu_count() or 1, len(todo)))
        cache = jax.config.jax_compilation_cache_dir
        cache = str(cache) if cache else None
        try:
            futures = {client.submit(run_job, job, str(path), cache, pure=False,
                                     key=f"fit_many-{job['name']}-{time.time_ns()}"):
                       job for job, path in todo}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    row = future.result()
                except Exception as err:  # the worker died, or the task was lost
                    row = _row(job["name"], error=f"{type(err).__name__}: {err}")
                rows[job["name"]] = row
                if progress:
                    print(_line(len(rows), n, row), flush=True)
            del futures, future
        except KeyboardInterrupt:
            left = [job["name"] for job, _ in todo if job["name"] not in rows]
            if left:
                print(f"fit_many interrupted: {len(left)} fit(s) not finished "
                      f"({', '.join(left)}). Those that had started keep their "
                      f"checkpoints in {out_dir} (<name>{CHECKPOINT_SUFFIX}); run "
                      f"fit_many again to continue them.", file=sys.stderr,
                      flush=True)
            raise
        finally:
            if own:
                cluster = client.cluster
                client.close()
                cluster.close()
    return pd.DataFrame([rows[job["name"]] for job in jobs], columns=list(COLUMNS))
