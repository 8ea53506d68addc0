"""No silent NaN or frozen chains, and nothing lost: Ctrl-C, an exception in a
chunk, a full disk, a corrupt file, a killed process."""

from __future__ import annotations

import errno
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from eddy_widgets import FitResult
from eddy_widgets.inference.result import ResultFileError
from eddy_widgets.inference.run import SetupMismatchError
from eddy_widgets.inference.samplers import NonFiniteDrawError
from eddy_widgets.rotationmap import rotationmap

from helpers import P0, tutorial_params

KW = dict(nwalkers=20, nburnin=10, nsteps=30, verbose=False)


def _run(cube, **kwargs):
    return cube.prepare_fit(P0, tutorial_params(cube), **{**KW, **kwargs})


def _all_draws(result):
    return np.concatenate([result.chains["warmup"], result.chains["sampling"]], axis=1)


@pytest.fixture(scope="module")
def reference(small_cube):
    """The uninterrupted emcee run every interrupted one must equal."""
    return _run(small_cube, mcmc_kwargs={"seed": 11}).run()


# -- No silent NaN -----------------------------------------------------------------


def test_nuts_start_on_the_edge_of_a_flat_prior_gives_finite_draws(small_cube):
    # r_cavity = 0 lies on the edge of its default prior [0, 1000]: NUTS'
    # transformed start was -inf and every draw NaN.
    params = dict(tutorial_params(small_cube), r_cavity=9)
    run = small_cube.prepare_fit([*P0, 0.0], params, optimize=False, nwalkers=1,
                                 nburnin=20, nsteps=20, mcmc="numpyro", verbose=False,
                                 mcmc_kwargs={"seed": 0, "max_tree_depth": 4})
    assert any("edge of the prior for r_cavity" in m for m in run.messages)
    result = run.run()
    assert np.all(np.isfinite(_all_draws(result)))
    assert result.samples[:, -1].min() > 0.0


class _PoisonedSampler:
    """A real sampler whose third chunk holds a NaN value of one parameter."""

    def __init__(self, sampler, column):
        self.sampler, self.column, self.calls = sampler, column, 0

    def __getattr__(self, name):
        return getattr(self.sampler, name)

    def advance(self, k):
        self.calls += 1
        draws, logp, stats = self.sampler.advance(k)
        if self.calls == 3:
            draws = draws.copy()
            draws[0, -1, self.column] = np.nan
        return draws, logp, stats


def test_a_non_finite_draw_stops_the_run_naming_the_parameter(small_cube):
    run = _run(small_cube, mcmc_kwargs={"seed": 1})
    run.sampler = _PoisonedSampler(run.sampler, column=3)
    with pytest.raises(NonFiniteDrawError, match="non-finite value of mstar"):
        run.run()
    kept = _all_draws(run.result)
    assert kept.shape[1] > 0 and np.all(np.isfinite(kept))
    assert run.result.stopped


# -- Continuing must be on the same map and set-up ------------------------------------


def test_continuing_on_another_map_or_set_up_names_the_difference(small_cube, example,
                                                                  tmp_path):
    run = _run(small_cube, mcmc_kwargs={"seed": 2})
    run.run()
    path = run.result.save(tmp_path / "fit")
    other = rotationmap(example.v0, FOV=8.0, downsample=4)
    other.set_prior("r_taper", [0.0, 50.0], "flat")
    with pytest.raises(SetupMismatchError, match=r"downsample: 8 in the result, 4 now"):
        other.continue_fit(result=FitResult.load(path), progress=False)

    same_grid = rotationmap(example.v0, FOV=8.0, downsample=8)
    with pytest.raises(SetupMismatchError, match=r"prior of r_taper: flat \[0, 50\]"):
        same_grid.continue_fit(result=FitResult.load(path), progress=False)

    same_grid.set_prior("r_taper", [0.0, 50.0], "flat")
    same_grid.map.data[20, 20] += 100.0           # another map on the same grid
    with pytest.raises(SetupMismatchError, match="map values"):
        same_grid.continue_fit(result=FitResult.load(path), progress=False)


# -- Ctrl-C ------------------------------------------------------------------------------


def _on_log_prob_call(run, n, action):
    """Call ``action`` inside emcee's ``n``-th log-probability call (part way
    through a chunk); returns a function that takes the hook away."""
    wrapper = run.sampler.sampler.log_prob_fn
    log_prob, calls = wrapper.f, []

    def hooked(thetas):
        calls.append(1)
        if len(calls) == n:
            action()
        return log_prob(thetas)

    wrapper.f = hooked
    return lambda: setattr(wrapper, "f", log_prob)


def test_ctrl_c_finishes_the_chunk_keeps_every_draw_and_continues_exactly(
        small_cube, reference):
    # A real SIGINT while a chunk is being made: the chunk is finished and
    # kept, the run stops, and continuing gives the uninterrupted chain.
    run = _run(small_cube, mcmc_kwargs={"seed": 11})
    restore = _on_log_prob_call(run, 30, lambda: signal.raise_signal(signal.SIGINT))
    result = run.run()
    assert result.stopped and 0 < result.n_draws("warmup") + result.n_draws("sampling")
    restore()
    resumed = run.run()
    assert not resumed.stopped
    np.testing.assert_array_equal(_all_draws(resumed), _all_draws(reference))


def test_an_interrupt_inside_a_chunk_rolls_the_sampler_back(small_cube, reference):
    # KeyboardInterrupt raised part way through a chunk (a second Ctrl-C):
    # the chunk's draws are lost, so the sampler goes back to the last kept
    # draw and the continued chain has no gap.
    run = _run(small_cube, mcmc_kwargs={"seed": 11})

    def interrupt():
        raise KeyboardInterrupt

    restore = _on_log_prob_call(run, 25, interrupt)
    result = run.run()
    assert result.stopped
    restore()
    resumed = run.run()
    np.testing.assert_array_equal(_all_draws(resumed), _all_draws(reference))


def test_nuts_interrupt_inside_a_chunk_rolls_back(small_cube):
    kwargs = dict(nwalkers=1, mcmc="numpyro", mcmc_kwargs={"seed": 3,
                                                          "max_tree_depth": 5})
    full = _run(small_cube, **kwargs).run()
    run = _run(small_cube, **kwargs)
    advance, calls = run.sampler.advance, []

    def interrupted(k):
        calls.append(k)
        out = advance(k)               # the state has moved on ...
        if len(calls) == 3:
            raise KeyboardInterrupt    # ... but the draws never reach the result
        return out

    run.sampler.advance = interrupted
    assert run.run().stopped
    run.sampler.advance = advance
    np.testing.assert_allclose(_all_draws(run.run()), _all_draws(full), rtol=1e-12)


# -- Files --------------------------------------------------------------------------------


def test_save_and_load_agree_on_the_name(small_cube, tmp_path, reference):
    written = reference.save(tmp_path / "fit")
    assert written == tmp_path / "fit.npz" and written.exists()
    assert FitResult.load(tmp_path / "fit") == reference
    assert FitResult.load(tmp_path / "fit.npz") == reference


def test_a_failed_save_leaves_the_old_file_whole(tmp_path, reference, monkeypatch):
    path = reference.save(tmp_path / "fit.npz")
    before = path.read_bytes()

    def full_disk(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(OSError, match="No space left"):
        reference.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["fit.npz"]          # no temporary file left
    monkeypatch.undo()
    assert FitResult.load(path) == reference


def test_corrupt_truncated_or_inconsistent_files_name_the_problem(tmp_path, reference):
    good = reference.save(tmp_path / "good.npz").read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ResultFileError, match="truncated.npz: the file is corrupt"):
        FitResult.load(truncated)
    text = tmp_path / "notes.npz"
    text.write_text("not a result")
    with pytest.raises(ResultFileError, match="notes.npz"):
        FitResult.load(text)
    with pytest.raises(FileNotFoundError, match="missing"):
        FitResult.load(tmp_path / "missing")

    # Columns that do not line up: log-probabilities of another length.
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(tmp_path / "good.npz") as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.namelist():
            if item != "logp_sampling.npy":
                dst.writestr(item, src.read(item))
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.zeros((20, 7)))
        dst.writestr("logp_sampling.npy", buffer.getvalue())
    with pytest.raises(ResultFileError, match=r"bad.npz: inconsistent result file: "
                                              r"sampling log-probabilities"):
        FitResult.load(bad)


# -- Checkpoints ------------------------------------------------------------------------


def test_a_checkpoint_that_cannot_be_written_does_not_stop_the_run(small_cube, tmp_path,
                                                                  monkeypatch):
    def full_disk(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FitResult, "save", full_disk)
    run = _run(small_cube, mcmc_kwargs={"seed": 4}, checkpoint=tmp_path / "ck.npz",
               checkpoint_interval=0.0)
    with pytest.warns(RuntimeWarning, match="Could not write the checkpoint"):
        result = run.run()
    assert not result.stopped and result.n_draws("sampling") == 30
    assert sum("Could not write the checkpoint" in m for m in run.messages) == 1


SCRIPT = """
import sys
from eddy_widgets.data import load_example
from eddy_widgets.rotationmap import rotationmap
sys.path.insert(0, {tests!r})
from helpers import P0, tutorial_params
example = load_example()
cube = rotationmap(example.v0, FOV=8.0, downsample=8)
cube.set_prior("r_taper", [0.0, 50.0], "flat")
run = cube.prepare_fit(P0, tutorial_params(cube), nwalkers=20, nburnin=10,
                       nsteps=100000, verbose=False, mcmc_kwargs={{"seed": 5}},
                       checkpoint={path!r}, checkpoint_interval=0.5)
print("running", flush=True)
run.run(target_seconds=0.05)
"""


def test_kill_9_loses_at_most_one_checkpoint_interval(small_cube, tmp_path):
    # A fit killed with SIGKILL: its checkpoint loads, and continuing it
    # gives exactly the draws of an uninterrupted run with the same seed.
    path = tmp_path / "checkpoint.npz"
    script = SCRIPT.format(tests=str(Path(__file__).parent), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and FitResult.load(path).n_draws("sampling") >= 40:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint with draws was written")
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert killed_at - path.stat().st_mtime < 0.5 + 1.0     # one interval (+ a chunk)
    saved = FitResult.load(path)
    assert saved.stopped and saved.n_draws("warmup") == 10
    n = saved.n_draws("sampling")

    run = small_cube.resume(saved)
    run.info.n_samples = n + 20
    continued = run.run()
    reference = small_cube.prepare_fit(P0, tutorial_params(small_cube), nwalkers=20,
                                       nburnin=10, nsteps=n + 20, verbose=False,
                                       mcmc_kwargs={"seed": 5}).run()
    np.testing.assert_array_equal(_all_draws(continued), _all_draws(reference))
