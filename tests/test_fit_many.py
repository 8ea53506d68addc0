"""fit_many on a real local Dask cluster (2 worker processes) with small maps:
the bundled example at FOV 8 arcsec, downsample 8 (40 x 40 pixels), three free
parameters and short emcee runs."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time

# dask[distributed] is in the test extra: the test command installs it, and a
# missing install must fail here, not skip.
import distributed  # noqa: F401
import numpy as np
import pytest

from eddy_widgets import FitResult, fit_many
from eddy_widgets.survey import (
    INSTALL_HINT,
    JobError,
    local_client,
    worker_env,
    worker_threads,
)

FIXED = ("x0", "y0", "inc", "dist", "z0", "psi", "r_taper", "q_taper")
COMMON = dict(FOV=8.0, downsample=8, p0=[311.0, 1.95, 5740.0], nwalkers=8,
              nburnin=150, nsteps=150, optimize=False)


def params(truths):
    return {"PA": 0, "mstar": 1, "vlsr": 2, **{k: truths[k] for k in FIXED}}


def jobs_for(example):
    good = {"path": example.v0, "uncertainty": example.dv0}
    return [{**good, "name": "disk_a", "mcmc_kwargs": {"seed": 1}},
            {"path": "/no/such/map_v0.fits", "name": "missing"},
            {**good, "name": "disk_b", "mcmc_kwargs": {"seed": 2}},
            {**good, "name": "bad_prior", "priors": {"mstar": ["flat", 3.0, 1.0]}}]


def run(jobs, out, client, **kw):
    """fit_many's table, what it printed, and its wall time."""
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        table = fit_many(jobs, out, client=client, **kw)
    return table, buf.getvalue(), time.perf_counter() - t0


@pytest.fixture(scope="module")
def client():
    client = local_client(2)
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def survey(client, example, tmp_path_factory):
    out = tmp_path_factory.mktemp("survey")
    table, printed, _ = run(jobs_for(example), out, client,
                            params=params(example.truths), **COMMON)
    return out, table, printed


def test_each_result_is_written_and_loads_with_the_right_medians(survey, example):
    out, table, printed = survey
    assert list(table["name"]) == ["disk_a", "missing", "disk_b", "bad_prior"]
    done = table[table["status"] == "done"]
    assert list(done["name"]) == ["disk_a", "disk_b"]
    for row in done.itertuples():
        assert row.result == str(out / f"{row.name}.npz")
        result = FitResult.load(row.result)
        assert result.n_draws("sampling") == 150
        med = result.medians()
        assert med["mstar"] == pytest.approx(example.truths["mstar"], abs=0.05)
        assert med["vlsr"] == pytest.approx(example.truths["vlsr"], abs=20.0)
        assert med["PA"] == pytest.approx(example.truths["PA"], abs=1.0)
        assert row.wall_s > 0 and row.verdict.startswith("Verdict:")
        assert row.converged in (True, False)
    # one progress line per job as it ends, with a count, name, status, time
    lines = printed.strip().splitlines()
    assert len(lines) == 4
    assert {line.split("] ")[0] for line in lines} == {"[1/4", "[2/4", "[3/4", "[4/4"}
    assert any(line.startswith("[") and "disk_a: done in " in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["disk_a.npz", "disk_b.npz"]


def test_a_failed_job_is_reported_in_its_row_and_the_others_finish(survey):
    out, table, printed = survey
    rows = table.set_index("name")
    assert rows.loc["missing", "status"] == "failed"
    assert rows.loc["missing", "error"].startswith("FileNotFoundError:")
    assert "/no/such/map_v0.fits" in rows.loc["missing", "error"]
    assert rows.loc["bad_prior", "status"] == "failed"
    assert rows.loc["bad_prior", "error"].startswith("PriorError:")
    assert "low (3) must be below high (1)" in rows.loc["bad_prior", "error"]
    assert rows.loc["missing", "result"] == ""
    assert "missing: failed" in printed and "FileNotFoundError" in printed
    assert (rows.loc[["disk_a", "disk_b"], "status"] == "done").all()


def test_a_rerun_skips_finished_jobs_without_refitting(survey, client, example):
    out, first, _ = survey
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    good = [j for j in jobs_for(example) if j["name"].startswith("disk")]
    table, printed, wall = run(good, out, None, params=params(example.truths),
                               **COMMON)
    # nothing to fit: no cluster is even started, so it takes far less than a fit
    assert wall < 0.5 * first["wall_s"].max() + 1.0
    assert list(table["status"]) == ["skipped (exists)"] * 2
    assert (table["wall_s"] == 0).all()
    assert list(table["converged"]) == list(first.set_index("name").loc[
        ["disk_a", "disk_b"], "converged"])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    assert "disk_a: skipped (exists)" in printed
    # with the failed jobs: only those run again (and fail again)
    table, _, _ = run(jobs_for(example), out, client, params=params(example.truths),
                      **COMMON)
    assert list(table["status"]) == ["skipped (exists)", "failed",
                                     "skipped (exists)", "failed"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


def test_workers_share_the_cores_and_get_the_jax_cache(client):
    import jax

    def setup():
        import jax

        return os.environ["XLA_FLAGS"], jax.config.jax_compilation_cache_dir

    per_worker = client.run(setup)
    assert len(per_worker) == 2
    threads = worker_threads(2)
    for flags, cache in per_worker.values():
        assert f"--xla_force_host_platform_device_count={threads}" in flags
        assert f"intra_op_parallelism_threads={threads}" in flags
        assert cache == jax.config.jax_compilation_cache_dir
    assert client.nthreads() and set(client.nthreads().values()) == {1}
    assert worker_threads(2, cores=2) == 1
    assert worker_threads(3, cores=8) == 2
    assert worker_threads(16, cores=4) == 1
    assert worker_env(1)["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("job, words", [
    ({"FOV": 8.0}, ["job 1", "no 'path'"]),
    ({"path": "x_v0.fits", "nwalker": 8}, ["job 1 ('x')", "unknown key", "nwalker"]),
    ({"path": "a_v0.fits"}, ["job 1 ('a')", "job 0", "same name 'a'"]),
    ({"path": "y_v0.fits", "priors": {"mstar": [0, 5]}}, ["job 1 ('y')",
                                                            "priors['mstar']"]),
    # its result would be job a's checkpoint, a.checkpoint.npz
    ({"path": "z_v0.fits", "name": "a.checkpoint"}, ["job 1 ('a.checkpoint')",
                                                     "ends like a checkpoint"]),
])
def test_jobs_are_checked_before_anything_runs(tmp_path, job, words):
    jobs = [{"path": "a_v0.fits"}, job]
    with pytest.raises(JobError) as err:
        fit_many(jobs, tmp_path / "out", p0=[1.0], params={"mstar": 0})
    for word in words:
        assert word in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_job_without_p0_is_named(tmp_path):
    with pytest.raises(JobError, match=r"job 0 \('a'\) has no 'p0'"):
        fit_many([{"path": "a_v0.fits"}], tmp_path, params={"mstar": 0})


def test_without_dask_the_error_says_what_to_install(tmp_path, example, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(ImportError) as err:
        fit_many([{"path": example.v0}], tmp_path, p0=[2.0], params={"mstar": 0})
    assert 'pip install "eddy_widgets[dask]"' in str(err.value)
    assert INSTALL_HINT in str(err.value)


def test_importing_the_package_does_not_import_dask():
    code = ("import sys, eddy_widgets; eddy_widgets.fit_many; "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": "off"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_medians_differ_between_seeds(survey):
    """Two jobs on the same map are separate fits (their own seeds, files)."""
    out, _, _ = survey
    a = FitResult.load(out / "disk_a.npz").samples
    b = FitResult.load(out / "disk_b.npz").samples
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_a_survey_fits_with_correlated_noise(client, example, tmp_path):
    table, _, _ = run([{"path": example.v0, "name": "corr"}], tmp_path / "out", client,
                      params=params(example.truths), noise="correlated", **COMMON)
    assert list(table["status"]) == ["done"], table["error"].tolist()
    result = FitResult.load(table["result"][0])
    assert result.names[-1] == "noise_scale"
    assert result.settings["noise"]["model"] == "correlated"


# -- Nothing lost (issue 19, item 4) -----------------------------------------------


def _writable(folder) -> bool:
    """Whether a file can be made in ``folder`` (tried, then removed)."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.remove(probe)
    return True


@contextlib.contextmanager
def read_only_folder(folder):
    """A real folder no file can be made in: mode 0o555; as root, whom the mode
    does not stop, the immutable attribute (``chattr +i``, which stops root
    too) instead. Skips where neither stops a write (checked by a write)."""
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if _writable(folder):  # root
        folder.chmod(0o755)
        try:
            immutable = subprocess.run(["chattr", "+i", str(folder)],
                                       capture_output=True).returncode == 0
        except FileNotFoundError:
            pass
        if not immutable or _writable(folder):
            if immutable:
                subprocess.run(["chattr", "-i", str(folder)], check=True)
            pytest.skip("cannot make a read-only folder here (root, and no "
                        "chattr +i)")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_an_unwritable_out_dir_is_refused_before_anything_runs(example, tmp_path):
    out = tmp_path / "read_only"
    job = {"path": example.v0, "uncertainty": example.dv0, "name": "disk"}
    with read_only_folder(out):
        t0 = time.perf_counter()
        with pytest.raises(JobError) as err:
            fit_many([job], out, params=params(example.truths), **COMMON)
        # found before a cluster starts or a fit runs
        assert time.perf_counter() - t0 < 5.0
        assert isinstance(err.value, PermissionError)
        assert f"out_dir '{out}' is not writable" in str(err.value)
        assert "Nothing was run" in str(err.value)
        assert os.listdir(out) == []


def test_an_out_dir_that_is_a_file_is_refused(example, tmp_path):
    out = tmp_path / "results"
    out.write_text("not a folder")
    with pytest.raises(JobError) as err:
        fit_many([{"path": example.v0}], out, params=params(example.truths), **COMMON)
    assert isinstance(err.value, PermissionError)
    assert f"out_dir '{out}' cannot be made as a folder" in str(err.value)
    assert out.read_text() == "not a folder"


@pytest.mark.parametrize("where", ["fit_many's keywords", "job 1 ('b')"])
def test_a_checkpoint_for_every_job_is_refused(tmp_path, where):
    jobs = [{"path": "a_v0.fits"}, {"path": "b_v0.fits"}]
    common = dict(p0=[1.0], params={"mstar": 0})
    if where.startswith("job"):
        jobs[1]["checkpoint"] = str(tmp_path / "mine.npz")
    else:
        common["checkpoint"] = str(tmp_path / "mine.npz")
    with pytest.raises(JobError) as err:
        fit_many(jobs, tmp_path / "out", **common)
    message = str(err.value)
    assert message.startswith(f"'checkpoint' in {where}: fit_many gives each job "
                              f"its own checkpoint automatically")
    assert "out_dir/<name>.checkpoint.npz" in message
    assert not (tmp_path / "out").exists()


def test_a_rerun_continues_an_interrupted_fit_from_its_checkpoint(client, example,
                                                                   tmp_path):
    from eddy_widgets.inference.samplers import StopRequested
    from eddy_widgets.rotationmap import rotationmap
    from eddy_widgets.survey import prepare_jobs, run_job

    out = tmp_path / "out"
    out.mkdir()
    job = {"path": example.v0, "uncertainty": example.dv0, "name": "disk_c",
           "mcmc_kwargs": {"seed": 3}}
    setup = dict(FOV=8.0, downsample=8, p0=COMMON["p0"], nwalkers=8, nburnin=40,
                 nsteps=60, optimize=False, params=params(example.truths))
    checkpoint = out / "disk_c.checkpoint.npz"

    # The job's fit, writing the checkpoint fit_many gives it, cut short after
    # some post-warmup draws: the checkpoint a killed worker leaves.
    def cut_short(chunk, info):
        if info.done_samples >= 10:
            raise StopRequested

    cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=8.0, downsample=8)
    fit = {k: v for k, v in setup.items() if k not in ("FOV", "downsample")}
    with contextlib.redirect_stdout(io.StringIO()):
        cube.fit_map(**fit, mcmc_kwargs={"seed": 3, "progress": False},
                     plots="none", returns="result", verdict=False,
                     checkpoint=checkpoint, checkpoint_interval=30.0,
                     callbacks=[cut_short])
    saved = FitResult.load(checkpoint)
    k = saved.n_draws("sampling")
    assert saved.stopped and saved.n_draws("warmup") == 40 and 10 <= k < 60
    assert not (out / "disk_c.npz").exists()

    # A job changed since (another fixed inc) is not continued: it fails,
    # naming the difference, and the checkpoint is kept.
    changed = prepare_jobs([{**job, **setup,
                             "params": {**setup["params"], "inc": 40.0}}])[0]
    row = run_job(changed, str(out / "disk_c.npz"))
    assert row["status"] == "failed"
    assert "inc: 46.7 in the checkpoint, 40.0 now" in row["error"]
    assert f"delete {checkpoint} to fit this job from the start" in row["error"]
    assert FitResult.load(checkpoint) == saved

    # The rerun of the job continues the checkpoint to the job's counts.
    table, printed, _ = run([job], out, client, **setup)
    row = table.iloc[0]
    assert row.status == "done", row.error
    assert row.resumed == 40 + k
    assert "disk_c: done in " in printed
    assert f"(continued from its checkpoint's {40 + k} draws per chain)" in printed
    result = FitResult.load(out / "disk_c.npz")
    assert not result.stopped
    assert (result.n_draws("warmup"), result.n_draws("sampling")) == (40, 60)
    # the checkpoint's draws, warmup not made again, then the rest
    np.testing.assert_array_equal(result.chains["warmup"], saved.chains["warmup"])
    np.testing.assert_array_equal(result.chains["sampling"][:, :k],
                                  saved.chains["sampling"])
    # the checkpoint is removed once the result is written
    assert sorted(p.name for p in out.iterdir()) == ["disk_c.npz"]
