"""Ctrl-C in eddy-widgets-fit (issue 19, items 1 and 14): a real process, a
real SIGINT, sent into a window held open by a test-only pause point
(``EDDY_WIDGETS_TEST_PAUSE``, :func:`eddy_widgets.inference.interrupt.pause_point`)
instead of timed by sleeping."""

from __future__ import annotations

import os
from pathlib import Path
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from test_fit_cli import CONFIG

from eddy_widgets import FitResult, fit_cli, load_example
from eddy_widgets.inference.interrupt import PAUSE_VARIABLE

WAIT = 120.0        # seconds: far more than any step takes on a loaded machine


@pytest.fixture
def setup(tmp_path):
    """The kink example as ``disk_v0.fits`` with test_fit_cli's set-up."""
    example = load_example("kink")
    shutil.copy(example.v0, tmp_path / "disk_v0.fits")
    shutil.copy(example.dv0, tmp_path / "disk_dv0.fits")
    (tmp_path / "fit.toml").write_text(CONFIG)
    return tmp_path


class Fit:
    """``eddy-widgets-fit`` in a process of its own, paused at ``pauses``
    (``{name: flag file}``); stdout and stderr collected as they come."""

    def __init__(self, setup: Path, pauses: dict, *argv):
        self.out = setup / "run"
        env = {**os.environ, "MPLBACKEND": "Agg",
               PAUSE_VARIABLE: ";".join(f"{k}:{v}" for k, v in pauses.items())}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eddy_widgets.cli.fit", "--config",
             str(setup / "fit.toml"), "--out", str(self.out), "--no-progress", *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=setup)
        self.streams = {"stdout": bytearray(), "stderr": bytearray()}
        self.readers = [threading.Thread(target=self._read, args=(name,), daemon=True)
                        for name in self.streams]
        for reader in self.readers:
            reader.start()

    def _read(self, name):
        stream = getattr(self.proc, name)
        for block in iter(lambda: stream.read1(4096), b""):
            self.streams[name].extend(block)

    def text(self, name="stdout") -> str:
        return bytes(self.streams[name]).decode()

    def wait_for(self, what, name="stdout") -> None:
        """Until ``what`` (a path, or a text on ``name``) appears."""
        deadline = time.monotonic() + WAIT
        while not (what.exists() if isinstance(what, Path) else what in self.text(name)):
            assert self.proc.poll() is None, (f"exited {self.proc.returncode} before "
                                              f"{what}:\n{self.text('stderr')[-3000:]}")
            assert time.monotonic() < deadline, f"{what} never came"
            time.sleep(0.02)

    def ctrl_c(self) -> None:
        os.kill(self.proc.pid, signal.SIGINT)

    def finish(self) -> int:
        try:
            self.proc.wait(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for reader in self.readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        return self.proc.returncode


def _again(stderr: str) -> list[str]:
    """The command the interrupted run printed to write its products."""
    line = stderr.split("Write them with:\n", 1)[1].splitlines()[0]
    return shlex.split(line)


def test_a_second_ctrl_c_after_the_sampler_returned_keeps_every_draw(setup):
    # Item 1: the first Ctrl-C stops the sampling after the first chunk; the
    # second lands after the sampler returned, before the final save (no
    # checkpoint had been written yet: the interval is 30 s). The save goes
    # on, then the run ends without products and says how to write them.
    flags = {"chunk": setup / "chunk", "after_sampling": setup / "after"}
    fit = Fit(setup, flags, "--nsteps", "1000000", "--checkpoint-interval", "1000")
    try:
        fit.wait_for(Path(f"{flags['chunk']}.reached"))
        fit.ctrl_c()
        fit.wait_for("Stopping after the chunk in progress")
        flags["chunk"].touch()
        fit.wait_for(Path(f"{flags['after_sampling']}.reached"))
        assert not (fit.out / "result.npz").exists()
        fit.ctrl_c()
        fit.wait_for("Writing the result first")
        flags["after_sampling"].touch()
    finally:
        code = fit.finish()
    stderr = fit.text("stderr")
    assert code == -signal.SIGINT, stderr[-3000:]   # as Python's own
    result = FitResult.load(fit.out / "result.npz")
    assert result.stopped and result.sampler_state
    kept = (result.n_draws("warmup"), result.n_draws("sampling"))
    assert kept[0] >= 2                             # at least the first chunk
    assert f"({kept[0]} warmup and {kept[1]} post-warmup draws)" in stderr
    assert "Traceback" not in stderr
    assert not (fit.out / "walkers.png").exists()
    assert _again(stderr)[-3:] == ["--out", str(fit.out), "--products-only"]


def test_ctrl_c_while_writing_products_keeps_the_result_and_says_how(setup, capsys,
                                                                   monkeypatch):
    # Item 1: a Ctrl-C while the products are written leaves the saved
    # result; the command it prints writes the products from it.
    flags = {"products": setup / "products"}
    fit = Fit(setup, flags, "--nsteps", "10")
    try:
        fit.wait_for(Path(f"{flags['products']}.reached"))
        fit.ctrl_c()
        flags["products"].touch()
    finally:
        code = fit.finish()
    stderr = fit.text("stderr")
    assert code == -signal.SIGINT, stderr[-3000:]   # as Python's own
    path = fit.out / "result.npz"
    result = FitResult.load(path)
    assert not result.stopped and result.n_draws("sampling") == 10
    assert "Traceback" not in stderr and not (fit.out / "walkers.png").exists()
    saved = path.read_bytes()

    again = _again(stderr)
    assert again[0] == "eddy-widgets-fit" and again[-1] == "--products-only"
    monkeypatch.chdir(setup)     # the printed command is for the run's folder
    assert fit_cli.main(again[1:]) == 0, capsys.readouterr().err
    for name in ("walkers.png", "corner.png", "v0_model.fits", "v0_residual.fits",
                 "rotation_curve.csv"):
        assert (fit.out / name).exists(), name
    assert path.read_bytes() == saved                 # the result is left alone


def test_a_ctrl_c_that_jax_swallows_still_stops_the_run(setup):
    # Item 14: a Ctrl-C after the optimiser, where JAX's callbacks would
    # catch the KeyboardInterrupt (the pause point swallows it as they do),
    # still stops the run at its first chunk boundary, with the result saved.
    flags = {"before_sampling": setup / "before"}
    fit = Fit(setup, flags, "--nsteps", "1000000")
    try:
        fit.wait_for(Path(f"{flags['before_sampling']}.reached"))
        fit.ctrl_c()
        deadline = time.monotonic() + WAIT
        while not ("Stopping after" in fit.text()
                   or "Exception ignored" in fit.text("stderr")):
            assert time.monotonic() < deadline, "the Ctrl-C was never seen"
            time.sleep(0.02)
        flags["before_sampling"].touch()
    finally:
        code = fit.finish()
    stderr = fit.text("stderr")
    assert "Exception ignored" not in stderr       # never raised, so never lost
    assert code == 0, stderr[-3000:]
    result = FitResult.load(fit.out / "result.npz")
    assert result.stopped and result.sampler_state
    assert result.n_draws("warmup") + result.n_draws("sampling") == 0
    assert "Stopped after 0 warmup and 0 post-warmup draws" in fit.text()


def test_two_real_ctrl_c_inside_a_chunk_roll_the_sampler_back(small_cube):
    # Kept: the first Ctrl-C asks for a stop; a second inside the same chunk
    # interrupts it at once, the sampler goes back to the last kept draw and
    # continuing gives the uninterrupted chain. Python's handler is back after.
    from test_nothing_lost import _all_draws, _on_log_prob_call, _run

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    reference = _run(small_cube, mcmc_kwargs={"seed": 11}).run()
    run = _run(small_cube, mcmc_kwargs={"seed": 11})
    kept_before = []

    def two_ctrl_c():
        kept_before.append(run.result.n_draws("warmup") + run.result.n_draws("sampling"))
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    restore = _on_log_prob_call(run, 25, two_ctrl_c)
    result = run.run()
    assert result.stopped      # and the chunk in progress was dropped, not finished
    assert result.n_draws("warmup") + result.n_draws("sampling") == kept_before[0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    restore()
    np.testing.assert_array_equal(_all_draws(run.run()), _all_draws(reference))
