"""Run controls on state (no browser): counts kept per backend, the warning
about NUTS chains that run one after another, Continue tied to the run it
continues, 'stopping' at once, stop latency (a real run on the bundled
example; the chunk sizing on a timed stand-in sampler), and a failed run's
progress line."""

from __future__ import annotations

import threading
import time

import jax
import numpy as np
import pytest

from eddy_widgets.inference.backends import BACKENDS
from eddy_widgets.inference.samplers import RunInfo, drive
from eddy_widgets.rotationmap import rotationmap
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import BackendSelector, ChainView, RunControls

from helpers import P0, tutorial_params

# -- Counts per backend --------------------------------------------------------


def test_each_backend_keeps_its_own_counts_both_ways():
    session = FitSession()
    selector = BackendSelector(session)
    walkers = selector.counts["nwalkers"]
    selector.counts["nsteps"].value = 4000
    assert walkers.value == 32
    selector.backend.value = "numpyro"
    numpyro = BACKENDS["numpyro"].count_defaults
    assert session.nwalkers == numpyro["nwalkers"] == walkers.value
    assert selector.counts["nsteps"].value == numpyro["nsteps"]
    assert walkers.description == "num_chains"
    walkers.value = 4
    selector.backend.value = "emcee"
    assert (walkers.value, selector.counts["nsteps"].value) == (32, 4000)
    assert walkers.description == "nwalkers"
    selector.backend.value = "numpyro"
    assert walkers.value == 4
    assert session.counts_of("emcee")["nsteps"] == 4000
    assert session.to_fit_kwargs()["nwalkers"] == 4


def test_a_loaded_call_sets_the_counts_of_its_backend():
    session = FitSession.from_fit_kwargs([0.0], {"x0": 0}, mcmc="numpyro", nwalkers=3,
                                         nburnin=50, nsteps=60)
    assert (session.nwalkers, session.nburnin, session.nsteps) == (3, 50, 60)
    session.mcmc = "emcee"
    assert session.nwalkers == BACKENDS["emcee"].count_defaults["nwalkers"]
    session.mcmc = "numpyro"
    assert (session.nwalkers, session.nburnin, session.nsteps) == (3, 50, 60)


def test_sequential_nuts_chains_are_warned_about_in_words():
    session = FitSession()
    selector = BackendSelector(session)
    assert selector.chain_message.value == ""  # emcee
    selector.backend.value = "numpyro"
    assert selector.chain_message.value == ""  # one chain
    selector.counts["nwalkers"].value = 4
    text = selector.chain_message.value
    assert "4 NUTS chains" in text and "one after another" in text
    assert "about 4 times as long" in text
    selector.options["numpyro"]["chain_method"].value = "vectorized"
    assert selector.chain_message.value == ""
    selector.options["numpyro"]["chain_method"].value = "parallel"
    # One chain per JAX device (a CPU core here, a GPU elsewhere) runs at once.
    devices = jax.local_device_count()
    selector.counts["nwalkers"].value = devices
    assert selector.chain_message.value == ""
    selector.counts["nwalkers"].value = devices + 1
    assert f"JAX sees {devices} CPU cores" in selector.chain_message.value
    selector.counts["nwalkers"].value = 1
    assert selector.chain_message.value == ""


# -- Runs on the bundled example -------------------------------------------------


@pytest.fixture(scope="module")
def cube(example):
    """The bundled example at 40 x 40 pixels (this module's own, as tests
    here replace its prepare_fit)."""
    cube = rotationmap(example.v0, FOV=8.0, downsample=8)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    return cube


def finished_emcee_session(cube, **counts) -> FitSession:
    """A session whose short emcee run has finished."""
    counts = {"nwalkers": 18, "nburnin": 4, "nsteps": 6, **counts}
    session = FitSession.from_fit_kwargs(P0, tutorial_params(cube), cube=cube,
                                         mcmc="emcee", optimize=False,
                                         mcmc_kwargs={"seed": 3}, **counts)
    session.checkpoint = None
    session.start()
    assert session.wait(120)
    assert session.status == "done", session.error
    return session


def test_continue_names_its_run_and_keeps_its_backend_after_a_switch(cube):
    session = finished_emcee_session(cube, nwalkers=20)
    controls = RunControls(session)
    selector = BackendSelector(session)
    assert controls.resume.description == "Continue emcee run (20 walkers, 10 draws per walker so far)"
    assert "adds" in controls.resume.tooltip
    assert controls.note.value == ""
    selector.backend.value = "numpyro"
    assert controls.resume.description == "Continue emcee run (20 walkers, 10 draws per walker so far)"
    assert "Continue goes on with the last emcee run" in controls.note.value
    assert "Run starts a new numpyro run" in controls.note.value
    assert controls.run.tooltip == "start a new numpyro fit with this set-up"
    session.extend_steps = 3
    controls.resume.click()
    assert session.wait(120)
    assert session.status == "done", session.error
    assert session.result.backend == "emcee" and session.result.nchains == 20
    assert controls.resume.description == "Continue emcee run (20 walkers, 13 draws per walker so far)"
    assert session.nwalkers == BACKENDS["numpyro"].count_defaults["nwalkers"]


def test_status_says_stopping_at_once_while_a_chunk_is_made(cube):
    session = FitSession.from_fit_kwargs(P0, tutorial_params(cube), cube=cube,
                                         mcmc="emcee", optimize=False, nwalkers=18,
                                         nburnin=50, nsteps=50, mcmc_kwargs={"seed": 3})
    session.checkpoint = None
    controls = RunControls(session)
    inside, release = threading.Event(), threading.Event()

    def slow_view(chunk, info):  # holds the fit's thread inside its chunk
        inside.set()
        release.wait(30)

    session.observe_chunks(slow_view)
    session.start()
    assert inside.wait(120), session.error
    session.stop()
    assert session.status == "stopping"
    assert "stopping" in controls.status.value
    assert controls.stop.disabled and controls.run.disabled
    release.set()
    assert session.wait(60)
    assert session.status == "stopped"
    assert "stopped" in controls.status.value


@pytest.mark.parametrize("backend", ["emcee", "numpyro"])
def test_stop_takes_at_most_a_chunk(cube, backend):
    """Stop pressed as soon as the run says 'running' (NUTS compiles its chunk
    while still preparing, so no compilation is left to wait for)."""
    counts = ({"nwalkers": 18, "nburnin": 3000, "nsteps": 3000} if backend == "emcee"
              else {"nwalkers": 1, "nburnin": 1000, "nsteps": 1000})
    session = FitSession.from_fit_kwargs(P0, tutorial_params(cube), cube=cube,
                                         mcmc=backend, optimize=False,
                                         mcmc_kwargs={"seed": 0}, **counts)
    session.checkpoint = None
    running, stopped_at = threading.Event(), []

    def on_status(change):
        if change.new == "running":
            running.set()
        elif change.new in ("stopped", "done", "error"):
            stopped_at.append((change.new, time.perf_counter()))

    session.observe(on_status, names=["status"])
    session.start()
    assert running.wait(300), session.error
    pressed = time.perf_counter()
    session.stop()
    assert session.wait(120)
    (status, when), = stopped_at
    assert status == "stopped", session.error
    assert when - pressed < 5.0


def test_a_failed_run_clears_the_last_runs_progress_line(cube, monkeypatch):
    session = finished_emcee_session(cube)
    view = ChainView(session)
    assert "10/10" in view.progress.value
    monkeypatch.setattr(cube, "prepare_fit", _fails)
    session.start()
    assert session.wait(60)
    assert session.status == "error"
    assert "10/10" not in view.progress.value
    assert "failed" in view.progress.value and "no pixel left" in view.progress.value


def _fails(*args, **kwargs):
    raise ValueError("no pixel left to fit")


class _TimedSampler:
    """A sampler whose draws take ``seconds_per_draw`` each (no model)."""

    def __init__(self, seconds_per_draw: float):
        self.seconds_per_draw = seconds_per_draw
        self.sizes: list[int] = []

    def advance(self, k):
        time.sleep(k * self.seconds_per_draw)
        self.sizes.append(k)
        return np.zeros((1, k, 1)), np.zeros((1, k)), {}

    def snapshot(self):
        return None

    def restore(self, snapshot):
        pass


def test_chunks_are_sized_to_a_fraction_of_a_second():
    """The run's chunks take about target_seconds however fast a draw is, so
    a stop waits at most about that long."""
    for per_draw in (0.0005, 0.01):
        sampler = _TimedSampler(per_draw)
        info = RunInfo("emcee", ("x0",), 1, 0, int(2.0 / per_draw))
        started = time.perf_counter()
        assert drive(sampler, info, target_seconds=0.2)
        seconds = [k * per_draw for k in sampler.sizes]
        assert max(seconds) < 0.5  # never far above the target
        assert sum(1 for s in seconds if s >= 0.1) >= len(seconds) // 2  # not tiny
        assert time.perf_counter() - started < 4.0
