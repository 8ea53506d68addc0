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
see (a shared file system on a cluster). A failed job is reported in its row;
the others go on. A rerun skips every job whose result file exists.

Dask is the ``dask`` extra: ``pip install "eddy_widgets[dask]"``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
from pathlib import Path
import re
import time

INSTALL_HINT = 'pip install "eddy_widgets[dask]"'

#: Keys of a job that say which map to load and how (rotationmap's arguments).
MAP_KEYS = ("path", "uncertainty", "FOV", "downsample", "fill", "force_center",
            "peak")
#: fit_map keywords fit_many sets itself (a worker has no screen to plot on and
#: returns only a row).
MANAGED = ("plots", "returns", "pool", "callbacks", "verdict")
#: Columns of the returned table.
COLUMNS = ("name", "status", "error", "result", "wall_s", "converged", "verdict")


class JobError(ValueError):
    """A job that cannot be run as written (raised before anything runs)."""


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
        for key in ("p0", "params"):
            if merged.get(key) is None:
                raise JobError(f"{where} has no '{key}' (give it in the job or as a "
                               f"keyword of fit_many for every job).")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
            raise JobError(f"{where}: the name {name!r} is not usable as a file name "
                           f"(letters, digits, '_', '-', '.', '+'); give the job a "
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


def run_job(job: dict, out_path: str, cache: str | None = None) -> dict:
    """Fit one job and write its result to ``out_path`` (runs on a worker).
    Never raises: a failure is the row's ``status`` and ``error``."""
    t0 = time.perf_counter()
    row = {"name": job["name"], "status": "failed", "error": "", "result": "",
           "wall_s": None, "converged": None, "verdict": ""}
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
        with contextlib.redirect_stdout(io.StringIO()):  # the client prints rows
            result = cube.fit_map(**fit, plots="none", returns="result",
                                  verdict=False)
        result.save(out_path)
        converged, notes = result._verdict()
        row.update(status="done", result=out_path, converged=bool(converged),
                   verdict=D.headline(converged, notes))
    except Exception as err:  # reported in the row; the other jobs go on
        row["error"] = f"{type(err).__name__}: {err}"
    row["wall_s"] = time.perf_counter() - t0
    return row


def _existing_row(job: dict, path: Path) -> dict:
    from .inference import diagnostics as D
    from .inference.result import FitResult

    row = {"name": job["name"], "status": "skipped (exists)", "error": "",
           "result": str(path), "wall_s": 0.0, "converged": None, "verdict": ""}
    try:
        converged, notes = FitResult.load(path)._verdict()
        row.update(converged=bool(converged), verdict=D.headline(converged, notes))
    except Exception as err:
        row["error"] = (f"{type(err).__name__}: {err} (delete the file to fit this "
                        f"job again)")
    return row


def _line(k: int, n: int, row: dict) -> str:
    line = f"[{k}/{n}] {row['name']}: {row['status']}"
    if row["wall_s"]:
        line += f" in {row['wall_s']:.1f} s"
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
        out_dir: folder for the results, ``<name>.npz`` each (made if needed;
            must be visible to the workers).
        client: a ``dask.distributed.Client``; default: a local cluster of
            ``n_workers`` processes (default: one per core, at most one per
            job), closed at the end.
        progress: print one line per job as it ends (and one per skipped job).
        **common: ``fit_map`` keywords (and map keys but ``path``/``name``)
            for every job; a job's own keys win.

    Returns:
        A ``pandas.DataFrame``, one row per job in the order given: ``name``,
        ``status`` (``'done'``, ``'failed'`` or ``'skipped (exists)'``),
        ``error`` (type and message), ``result`` (the file), ``wall_s`` (the
        fit's wall time on its worker), ``converged`` and ``verdict`` (the
        verdict's headline).

    Raises:
        JobError: before anything runs, for a job that cannot be run as
            written (named in the message).
        ImportError: without Dask, saying what to install.
    """
    import pandas as pd  # a dependency of ArviZ, hence always present

    jobs = prepare_jobs(jobs, common)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
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
                    row = {"name": job["name"], "status": "failed",
                           "error": f"{type(err).__name__}: {err}",
                           "result": "",
                           "wall_s": None, "converged": None, "verdict": ""}
                rows[job["name"]] = row
                if progress:
                    print(_line(len(rows), n, row), flush=True)
            del futures, future
        finally:
            if own:
                cluster = client.cluster
                client.close()
                cluster.close()
    return pd.DataFrame([rows[job["name"]] for job in jobs], columns=list(COLUMNS))
