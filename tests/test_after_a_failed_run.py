"""After a run fails, nothing on screen passes the previous run off as the
last one: the results say whose they are, Export refuses with the reason, and
an export after the editor changed writes the script of the run, not of the
editor."""

from __future__ import annotations

import pytest

from eddy_widgets.data import load_example
from eddy_widgets.inference.priors import Prior
from eddy_widgets.rotationmap import rotationmap
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import ExportPanel, ResultsPanel

WAIT = 120


@pytest.fixture(scope="module")
def example():
    return load_example()


@pytest.fixture(scope="module")
def cube(example):
    return rotationmap(example.v0, FOV=4.0, downsample=8)


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def finished_session(cube, example) -> FitSession:
    t = example.truths
    session = FitSession.from_fit_kwargs(
        cube=cube, p0=[t["PA"], 2.0, t["vlsr"]],
        params={"PA": 0, "mstar": 1, "vlsr": 2, "inc": t["inc"], "dist": t["dist"],
                "x0": t["x0"], "y0": t["y0"]},
        priors={"PA": Prior("flat", 300.0, 330.0)}, optimize=False, nwalkers=8,
        nburnin=10, nsteps=20, mcmc="emcee", mcmc_kwargs={"seed": 2})
    session.start()
    assert session.wait(WAIT) and session.status == "done", session.error
    return session


def fail_next_run(session, monkeypatch):
    """Start a run whose work raises at once (as a vanished map file would)."""
    def broken(*args, **kwargs):
        raise RuntimeError("the map went away")

    monkeypatch.setattr(type(session), "_work_new", broken)
    session.start()
    assert session.wait(WAIT) and session.status == "error"


def test_results_and_export_say_the_last_run_failed(cube, example, monkeypatch):
    session = finished_session(cube, example)
    results, export = ResultsPanel(session, corner=False, maps=False), ExportPanel(session)
    assert "PA" in results.table.value and not export.export.disabled
    fail_next_run(session, monkeypatch)
    assert "The last run failed" in results.verdict.value
    assert results.verdict.value.index("The last run failed") < \
        results.verdict.value.index("onverged")
    assert export.export.disabled
    assert "the last run failed" in export.reason.value
    assert "checkpoint" in export.reason.value


def test_export_writes_the_script_of_the_run_not_of_the_editor(cube, example, tmp_path):
    session = finished_session(cube, example)
    session.mcmc = "numpyro"          # the editor moves on after the run
    session.nwalkers = 2
    paths = ExportPanel(session).write()
    script = next(p for p in paths if p.endswith("fit_script.py"))
    text = open(script).read()
    assert "mcmc='emcee'" in text and "numpyro" not in text
    assert "nwalkers=8" in text
    assert "FOV=4.0, downsample=8" in text       # the map as the cube read it
