"""Tests of the panels on state: set widget values and check the session, run
short real fits through the session's thread and check what the views hold.

A small map (the bundled example, FOV 4 arcsec, every 8th pixel) keeps each
fit to a fraction of a second after the first compilation.
"""

from __future__ import annotations

import html
import math
import threading

import numpy as np
import pytest

from eddy_widgets.inference.backends import BACKENDS
from eddy_widgets.inference.priors import Prior
from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk, RunInfo
from eddy_widgets.parameters import PARAMETERS
from eddy_widgets.rotationmap import rotationmap
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import (
    BackendSelector,
    ChainView,
    FitDashboard,
    ParameterEditor,
    ResultsPanel,
    RunControls,
)
from eddy_widgets.widgets.results import COLOURS

import helpers

WAIT = 120  # seconds; a generous bound for one short fit with compilation


# ``example`` and ``cube`` (FOV 4 arcsec, every 8th pixel) come from conftest.py.
pytestmark = pytest.mark.usefixtures("in_tmp_path")


def quick_session(cube, example, **changes) -> FitSession:
    """Geometry fixed at the truths, PA / mstar / vlsr free, short emcee run."""
    t = example.truths
    kwargs = dict(p0=[t["PA"], 2.0, t["vlsr"]],
                  params={"PA": 0, "mstar": 1, "vlsr": 2, "inc": t["inc"],
                          "dist": t["dist"], "x0": t["x0"], "y0": t["y0"]},
                  priors={"PA": Prior("flat", 300.0, 330.0)},
                  optimize=False, nwalkers=8, nburnin=10, nsteps=20, mcmc="emcee",
                  mcmc_kwargs={"seed": 2})
    kwargs.update(changes)
    return FitSession.from_fit_kwargs(cube=cube, **kwargs)


class ChunkCounter:
    """A chunk observer that fires an event after ``n`` chunks."""

    def __init__(self, n: int):
        self.n, self.count = n, 0
        self.reached = threading.Event()

    def __call__(self, chunk, info):
        self.count += 1
        if self.count >= self.n:
            self.reached.set()


def full_chains(result):
    return np.concatenate([result.chains["warmup"], result.chains["sampling"]], axis=1)


# -- Editor ----------------------------------------------------------------------


def test_editor_rows_follow_the_table_and_edit_the_session():
    session = FitSession()
    editor = ParameterEditor(session)
    assert list(editor.rows) == list(PARAMETERS)
    row = editor.rows["inc"]
    assert "deg" in row.label.value and row.free.value is False
    row.value.value = "46.7"
    row.free.value = True
    editor.rows["mstar"].kind.value = "gaussian"
    assert (editor.rows["mstar"].prior_a.description,
            editor.rows["mstar"].prior_b.description) == ("mean", "sigma")
    editor.rows["mstar"].prior_a.value = "2"
    editor.rows["mstar"].prior_b.value = "0.3"
    editor.rows["dist"].value.value = "101"
    editor.r_min.value = "0.25"
    assert session.parameters["inc"].free and session.parameters["inc"].value == 46.7
    kwargs = session.to_fit_kwargs()
    assert kwargs["params"] == {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4,
                                "inc": 5, "dist": 101.0}
    assert kwargs["p0"][-1] == 46.7 and kwargs["r_min"] == 0.25
    assert session.priors()["mstar"] == Prior("gaussian", 2.0, 0.3)
    # And the other way: the session drives the fields.
    session.parameters["PA"].value = 312.0
    assert editor.rows["PA"].value.value == "312"
    session.parameters["r_taper"].prior_b = math.inf
    assert editor.rows["r_taper"].prior_b.value == "inf"


def test_invalid_entry_is_kept_flagged_and_blocks_run(cube):
    session = FitSession(cube=cube)
    editor, controls = ParameterEditor(session), RunControls(session)
    assert not controls.run.disabled
    row = editor.rows["mstar"]
    row.value.value = "2,5"
    row.prior_a.value = "3"
    row.prior_b.value = "1"
    assert row.value.value == "2,5"  # nothing typed is lost
    assert session.parameters["mstar"].value == "2,5"
    assert editor.invalid_rows == ["mstar"]
    assert "not a number" in row.message.value
    assert "smaller than high" in row.message.value
    assert row.message_line.layout.display is None
    assert controls.run.disabled
    assert "Run is disabled" in controls.reason.value and "mstar" in controls.reason.value
    assert "1 parameter row" in editor.summary.value
    row.value.value = "3.5"
    row.prior_b.value = "10"
    assert row.value.value == "3.5" and editor.invalid_rows == []
    assert row.message_line.layout.display == "none"
    assert not controls.run.disabled and controls.reason.value == ""


def test_mask_fields_are_checked():
    session = FitSession()
    editor = ParameterEditor(session)
    editor.r_min.value = "3"
    editor.r_max.value = "1"
    assert "smaller than r_max" in editor.mask_message.value
    editor.r_max.value = ""
    assert session.r_max is None and editor.mask_message.value == ""


def test_one_click_bound_for_nuts():
    session = FitSession()
    editor, backend = ParameterEditor(session), BackendSelector(session)
    row = editor.rows["r_taper"]
    row.free.value = True
    row.value.value = "3"
    assert row.fix.layout.display == "none"  # emcee: fine
    backend.backend.value = "numpyro"
    assert session.mcmc == "numpyro"
    assert row.fix.layout.display is None
    assert row.fix.description == "set upper bound to 50"
    assert "unbounded" in row.message.value
    row.fix.click()
    assert row.prior_b.value == "50" and session.parameters["r_taper"].prior_b == 50.0
    assert session.prior_warnings == {} and row.fix.layout.display == "none"
    # Elsewhere: ten times the start value.
    row = editor.rows["vlsr"]
    row.value.value = "5764"
    row.prior_a.value = "0"
    row.prior_b.value = "inf"
    assert row.fix.description == "set upper bound to 57640"
    row.fix.click()
    assert session.priors()["vlsr"] == Prior("flat", 0.0, 57640.0)


# -- Backend selector ---------------------------------------------------------


def test_backend_toggle_relabels_and_keeps_counts_per_backend():
    session = FitSession()
    selector = BackendSelector(session)
    assert [w.description for w in selector.counts.values()] == \
        ["nwalkers", "nburnin", "nsteps"]
    selector.counts["nwalkers"].value = 48
    selector.counts["nsteps"].value = 1000
    selector.backend.value = "numpyro"
    assert [w.description for w in selector.counts.values()] == \
        ["num_chains", "num_warmup", "num_samples"]
    assert [w.value for w in selector.counts.values()] == \
        list(BACKENDS["numpyro"].count_defaults.values())
    selector.counts["nwalkers"].value = 48
    selector.counts["nsteps"].value = 2000
    assert selector.option_boxes["numpyro"].layout.display is None
    assert selector.option_boxes["emcee"].layout.display == "none"
    numpyro = selector.options["numpyro"]
    assert set(numpyro) == {"seed", "max_tree_depth", "chain_method", "dense_mass",
                            "target_accept_prob"}
    assert numpyro["max_tree_depth"].value == BACKENDS["numpyro"].options["max_tree_depth"]
    numpyro["max_tree_depth"].value = 6
    numpyro["chain_method"].value = "vectorized"
    numpyro["seed"].value = 7
    kwargs = session.to_fit_kwargs()
    assert kwargs["mcmc"] == "numpyro"
    assert (kwargs["nwalkers"], kwargs["nburnin"], kwargs["nsteps"]) == (48, 300, 2000)
    assert kwargs["mcmc_kwargs"] == {"max_tree_depth": 6, "chain_method": "vectorized",
                                     "seed": 7}
    selector.backend.value = "emcee"
    emcee_opts = selector.options["emcee"]
    assert set(emcee_opts) == {"seed", "scatter", "moves"}
    emcee_opts["moves"].value = "de+snooker"
    emcee_opts["scatter"].value = 0.01
    kwargs = session.to_fit_kwargs()
    assert kwargs["nwalkers"] == 48
    moves = kwargs["mcmc_kwargs"]["moves"]
    assert [type(m).__name__ for m, _ in moves] == ["DEMove", "DESnookerMove"]
    assert kwargs["mcmc_kwargs"]["scatter"] == 0.01
    assert "num_warmup" in selector.mapping.value and "nburnin" in selector.mapping.value


def test_count_problems_show_under_the_counts():
    session = FitSession()
    selector = BackendSelector(session)
    selector.counts["nwalkers"].value = 4
    assert "at least 2 x 5" in selector.count_message.value
    selector.backend.value = "numpyro"
    assert selector.count_message.value == ""


def test_optimize_checkbox_and_loaded_custom_move():
    import emcee

    custom = emcee.moves.GaussianMove(0.1)
    session = FitSession.from_fit_kwargs([2.0], {"mstar": 0}, nwalkers=4,
                                         mcmc_kwargs={"moves": custom})
    selector = BackendSelector(session)
    assert selector.options["emcee"]["moves"].value is custom
    selector.optimize.value = False
    assert session.to_fit_kwargs()["optimize"] is False
    selector.options["emcee"]["moves"].value = "de"
    assert session.options["emcee"].moves == "de"


# -- Chain view on synthetic chunks (no sampler) ------------------------------


def feed(view, session, result, info, chunks):
    helpers.feed(view, result, info, chunks)


def synthetic_run(session, nchains=64, ndim=2, backend="emcee"):
    names = ("mstar", "PA")[:ndim]
    result = FitResult(names, backend, nchains)
    info = RunInfo(backend, names, nchains, 500, 9500)
    session.result, session.info = result, info
    session.run_id += 1
    return result, info


def random_chunks(nchains, ndim, warm, samp, size, seed=0, nuts=False):
    rng = np.random.default_rng(seed)
    chunks = []
    for phase, total in (("warmup", warm), ("sampling", samp)):
        for start in range(0, total, size):
            k = min(size, total - start)
            if nuts:
                stats = {"step_size": rng.random((nchains, k)),
                         "num_steps": rng.integers(1, 64, (nchains, k)),
                         "tree_depth": rng.integers(1, 6, (nchains, k)),
                         "diverging": rng.random((nchains, k)) < 0.01,
                         "accept_prob": rng.random((nchains, k))}
            else:
                stats = {"accepted": rng.random((nchains, k)) < 0.3}
            chunks.append(Chunk(phase, start, rng.standard_normal((nchains, k, ndim)),
                                rng.standard_normal((nchains, k)), stats))
    return chunks


def test_chain_view_thins_caps_walkers_and_throttles():
    session = FitSession()
    view = ChainView(session, max_points=1000, max_lines=32, min_interval=0.25)
    result, info = synthetic_run(session, nchains=64)
    chunks = random_chunks(64, 2, 500, 9500, 250)
    feed(view, session, result, info, chunks)
    # 40 chunks arrived within far less than 10 s: far fewer redraws.
    assert view.flushes < 10
    view.flush()
    x, y = view.trace("mstar")
    assert view.stride == 16 and x.size <= 1000
    assert y.shape == (32, x.size)
    full = full_chains(result)
    shown = view.shown_chains
    assert shown.size == 32 and shown[0] == 0 and shown[-1] == 63
    np.testing.assert_array_equal(x, np.arange(10000)[::16])
    np.testing.assert_array_equal(y, np.float32(full[shown][:, ::16, 0]))
    _, logp = view.trace("log_prob")
    lp = np.concatenate([result.log_prob["warmup"], result.log_prob["sampling"]], 1)
    np.testing.assert_array_equal(logp, np.float32(lp[shown][:, ::16]))
    assert "32 of 64 walkers" in view.title.value and "every 16th draw" in view.title.value
    # Warmup shading spans the warmup draws; acceptance is one cumulative line.
    np.testing.assert_array_equal(view.panels["mstar"].warmup.x, [0.0, 500.0])
    _, acc = view.trace("acceptance")
    accepted = np.concatenate([c.stats["accepted"] for c in chunks], axis=1)
    expected = (np.cumsum(accepted, axis=1) / np.arange(1, 10001)).mean(axis=0)[::16]
    np.testing.assert_allclose(acc[0], expected)
    assert "10000/10000" in view.progress.value


def test_chain_view_nuts_panels_and_divergences():
    session = FitSession()
    view = ChainView(session, min_interval=0.0)
    result, info = synthetic_run(session, nchains=2, backend="numpyro")
    chunks = random_chunks(2, 2, 500, 9500, 500, nuts=True)
    feed(view, session, result, info, chunks[:3])
    assert list(view.panels) == ["mstar", "PA", "log_prob", "step_size", "tree_depth"]
    x, y = view.trace("PA")
    assert view.stride == 2 and y.shape == (2, 750)  # 1500 draws, thinned
    # Only divergences after warmup (chunks[0] is warmup) are marked.
    div = np.concatenate([c.stats["diverging"] for c in chunks[1:3]], axis=1)
    scatter = view.panels["PA"].divergences
    assert scatter.x.size == div.sum()
    draws = np.concatenate([c.draws for c in chunks[1:3]], axis=1)
    rows, cols = np.nonzero(div)
    np.testing.assert_array_equal(np.sort(scatter.y), np.sort(draws[rows, cols, 1]))


def test_chain_view_joining_late_reads_the_result():
    session = FitSession()
    result, info = synthetic_run(session, nchains=4)
    chunks = random_chunks(4, 2, 500, 200, 100)
    for chunk in chunks[:4]:
        result.append(chunk)
        info.done_warmup += chunk.size
    view = ChainView(session, min_interval=0.0)  # created mid-run
    feed(view, session, result, info, chunks[4:6])
    x, y = view.trace("mstar")
    np.testing.assert_array_equal(y, np.float32(full_chains(result)[:, :, 0]))


# -- Real runs through the session's thread -----------------------------------


def test_run_fills_chain_view_and_results(cube, example):
    session = quick_session(cube, example)
    controls = RunControls(session)
    chains = ChainView(session)
    results = ResultsPanel(session)
    assert controls.resume.disabled and controls.stop.disabled
    controls.run.click()
    assert session.status in ("optimising", "running", "done")
    assert session.wait(WAIT)
    assert session.status == "done", session.error
    assert controls.error.value == ""
    assert not controls.run.disabled and not controls.resume.disabled
    result = session.result
    assert result.n_draws("warmup") == 10 and result.n_draws("sampling") == 20
    for i, name in enumerate(result.names):
        x, y = chains.trace(name)
        assert y.shape == (8, 30)
        np.testing.assert_array_equal(x, np.arange(30))
        # sent to the browser as float32
        np.testing.assert_array_equal(y, full_chains(result)[:, :, i].astype(np.float32))
    assert "30/30" in chains.progress.value
    # The results table lists every free parameter; figures are drawn.
    for name in ("PA", "mstar", "vlsr"):
        assert f"<b>{name}</b>" in results.table.value
    # emcee: ESS and chain length in tau; R-hat over walkers is not shown.
    assert "ESS" in results.table.value and "n/&tau;" in results.table.value
    assert "R-hat" not in results.table.value
    assert results.corner_output.outputs[0]["data"]["image/png"]
    # Sky maps, then the residual on the disk's (r, phi) plane.
    assert len(results.maps_output.outputs) == 2
    assert all(o["data"]["image/png"] for o in results.maps_output.outputs)
    # Continue on a finished run adds extend_steps draws.
    controls.extend_steps.value = 15
    controls.resume.click()
    assert session.wait(WAIT) and session.status == "done"
    assert result.n_draws("sampling") == 35 and session.result is result
    assert chains.trace("mstar")[1].shape == (8, 45)
    assert results.refreshes == 2


def test_stop_keeps_draws_and_continue_resumes(cube, example):
    session = quick_session(cube, example, nburnin=5, nsteps=100_000)
    controls = RunControls(session)
    chains = ChainView(session)
    counter = ChunkCounter(3)
    session.observe_chunks(counter)
    session.start()
    assert counter.reached.wait(WAIT)
    assert not controls.stop.disabled and controls.run.disabled
    controls.stop.click()
    assert session.wait(WAIT)
    assert session.status == "stopped"
    result = session.result
    drawn = result.n_draws("warmup") + result.n_draws("sampling")
    assert 0 < result.n_draws("sampling") < 100_000 and result.stopped
    # Every draw is kept: in the result and in the checkpoint, whose place the
    # status says.
    assert "every draw is kept" in controls.status.value
    assert session.checkpoint_file in controls.status.value
    assert FitResult.load(session.checkpoint_file) == result
    x, y = chains.trace("vlsr")
    assert y.shape == (8, x.size) and x[-1] <= drawn - 1
    np.testing.assert_array_equal(y, np.float32(full_chains(result)[:, ::chains.stride, 2]))
    assert not controls.resume.disabled
    # Continue resumes the same run (no new draws planned), then stop again.
    counter.count = 0
    counter.reached.clear()
    controls.resume.click()
    assert counter.reached.wait(WAIT)
    session.stop()
    assert session.wait(WAIT) and session.status == "stopped"
    assert session.result is result and session.result.n_samples_target == 100_000
    assert result.n_draws("sampling") > drawn - 5
    x, y = chains.trace("vlsr")
    np.testing.assert_array_equal(y, np.float32(full_chains(result)[:, ::chains.stride, 2]))


def test_stop_while_preparing_keeps_an_empty_run(cube, example):
    session = quick_session(cube, example, nsteps=5)
    session.start()
    session.stop()
    assert session.wait(WAIT)
    assert session.status in ("stopped", "done")
    if session.status == "stopped":
        session.resume()
        assert session.wait(WAIT) and session.status == "done"
    assert session.result.n_draws("sampling") == 5


def test_error_in_the_run_shows_in_the_controls(cube, example, monkeypatch):
    session = quick_session(cube, example)
    controls = RunControls(session)
    prepare = cube.prepare_fit

    def with_bad_prior(**kwargs):
        # A prior past the editor's checks, on its way to the fit (the
        # session's priors go to prepare_fit; the map's are not used).
        kwargs["priors"] = {**kwargs["priors"], "mstar": Prior("flat", 5.0, 10.0)}
        return prepare(**kwargs)

    monkeypatch.setattr(cube, "prepare_fit", with_bad_prior)
    controls.run.click()
    assert session.wait(WAIT)
    assert session.status == "error"
    assert "outside its prior" in session.error and "mstar" in session.error
    assert "outside its prior" in controls.error.value
    assert controls.resume.disabled and not controls.run.disabled


def test_map_errors_show_in_the_controls(cube, example):
    session = quick_session(cube, example, r_min=50.0)
    controls = RunControls(session)
    controls.run.click()
    assert session.wait(WAIT) and session.status == "error"
    assert "No pixel is left to fit" in controls.error.value


def test_nuts_run_shows_sampler_panels(cube, example):
    t = example.truths
    session = FitSession.from_fit_kwargs(
        cube=cube, p0=[2.0, t["vlsr"]],
        params={"mstar": 0, "vlsr": 1, "inc": t["inc"], "PA": t["PA"],
                "dist": t["dist"], "x0": t["x0"], "y0": t["y0"]},
        optimize=False, nwalkers=2, nburnin=15, nsteps=10, mcmc="numpyro",
        mcmc_kwargs={"seed": 1, "max_tree_depth": 4})
    chains = ChainView(session)
    results = ResultsPanel(session, corner=False, maps=False)
    session.start()
    assert session.wait(WAIT) and session.status == "done", session.error
    assert list(chains.panels) == ["mstar", "vlsr", "log_prob", "step_size",
                                   "tree_depth"]
    result = session.result
    x, y = chains.trace("mstar")
    assert y.shape == (2, 25)
    np.testing.assert_array_equal(y, np.float32(full_chains(result)[:, :, 0]))
    _, step = chains.trace("step_size")
    np.testing.assert_array_equal(
        step, np.float32(np.concatenate([result.stats["warmup"]["step_size"],
                                         result.stats["sampling"]["step_size"]], axis=1)))
    assert "<b>mstar</b>" in results.table.value and "<b>vlsr</b>" in results.table.value
    for column in ("ESS bulk", "ESS tail", "R-hat"):
        assert f">{column}</th>" in results.table.value
    assert "n/&tau;" not in results.table.value
    assert results.converged is result.converged
    assert "chains" in chains.title.value


# -- The verdict and the table ----------------------------------------------------


def test_converged_emcee_result_shows_verdict_without_r_hat_or_red(example):
    # Geometry at the truths, three free parameters, the uncertainty map:
    # differential-evolution moves converge in 1000 steps.
    t = example.truths
    cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=4.0, downsample=8)
    fixed = {k: t[k] for k in ("inc", "dist", "x0", "y0", "z0", "psi", "r_cavity",
                               "r_taper", "q_taper")}
    session = quick_session(cube, example, params={"PA": 0, "mstar": 1, "vlsr": 2,
                                                   **fixed},
                            nburnin=250, nsteps=1000,
                            mcmc_kwargs={"seed": 2, "moves": "de"})
    results = ResultsPanel(session, corner=False, maps=False)
    session.start()
    assert session.wait(WAIT) and session.status == "done", session.error
    result = session.result
    assert result.converged and result.warnings == []
    assert results.converged is True and results.warnings == []
    # The verdict comes first, in words and green.
    assert results.children.index(results.verdict) == 1
    assert "Converged" in results.verdict.value and "no warnings" in results.verdict.value
    assert COLOURS["good"] in results.verdict.value
    shown = results.verdict.value + results.table.value
    assert COLOURS["bad"] not in shown and COLOURS["advice"] not in shown
    assert "R-hat" not in shown and "r_hat" not in shown
    heads = [">ESS</th>", ">n/&tau;</th>"]
    assert all(h in results.table.value for h in heads)
    # A legend line for every column.
    legend = results.table.value.split("eddy-legend")[1]
    for column in ("parameter, unit", "median", "&minus; / +", "ESS", "n/&tau;"):
        assert f"<div>{column}" in legend


def test_short_run_shows_not_converged_and_the_warnings_at_the_top(cube, example):
    session = quick_session(cube, example)          # 10 + 20 steps
    results = ResultsPanel(session, corner=False, maps=False)
    session.start()
    assert session.wait(WAIT) and session.status == "done", session.error
    result = session.result
    assert not result.converged and result.warnings
    assert results.converged is False and results.warnings == result.warnings
    assert results.children.index(results.verdict) == 1
    verdict = results.verdict.value
    assert "Not converged" in verdict and COLOURS["bad"] in verdict
    assert verdict.index("Not converged") < verdict.index("<li>")
    for sentence in result.warnings:
        assert f"<li>{html.escape(sentence)}</li>" in verdict
    assert any("run longer" in w for w in results.warnings)
    # A new run empties the verdict until it has draws.
    session.nsteps = 0
    session.start()
    assert session.wait(WAIT)
    assert results.verdict.value == "" and results.converged is None


# -- Dashboard -----------------------------------------------------------------


def test_dashboard_defaults_on_the_bundled_example(cube):
    dash = FitDashboard(cube)
    session = dash.session
    assert session.cube is cube
    assert session.free_order == ["x0", "y0", "PA", "mstar", "vlsr"]
    assert abs(session.parameters["vlsr"].value - cube.vlsr) < 0.1
    assert session.valid and not dash.controls.run.disabled
    for panel in (dash.editor, dash.backend, dash.controls, dash.chains, dash.results):
        assert panel.session is session


def test_dashboard_from_the_tutorial_set_up(cube):
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    try:
        params = {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4, "z0": 5, "psi": 6,
                  "r_taper": 7, "q_taper": 8, "inc": 46.7, "dist": 101.0,
                  "r_min": 2.0 * cube.bmaj}
        p0 = [0.0, 0.0, 312., 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]
        kwargs = dict(p0=p0, params=params, r_min=None, r_max=None, optimize=True,
                      nwalkers=1, nburnin=500, nsteps=500, mcmc="numpyro",
                      mcmc_kwargs={"seed": 0, "progress": True, "max_tree_depth": 6})
        dash = FitDashboard.from_fit_kwargs(cube, **kwargs)
        assert dash.session.to_fit_kwargs() == kwargs
        assert dash.editor.rows["r_taper"].prior_b.value == "50"
        assert dash.backend.backend.value == "numpyro"
        assert dash.backend.counts["nwalkers"].description == "num_chains"
        assert dash.session.prior_warnings == {}
        same = FitDashboard(cube, **kwargs)
        assert same.session.to_fit_kwargs() == kwargs
    finally:
        cube.priors["r_taper"] = Prior.default("r_taper")


def test_unbounded_prior_advice_reaches_the_session_not_stderr(cube, example, capsys):
    # Under NUTS an unbounded flat prior is advice shown by the session (and
    # the editor), not a warning printed from the fit's thread.
    t = example.truths
    session = quick_session(
        cube, example, p0=[t["PA"], 2.0, t["vlsr"], 3.0],
        params={"PA": 0, "mstar": 1, "vlsr": 2, "r_taper": 3, "inc": t["inc"],
                "dist": t["dist"], "x0": t["x0"], "y0": t["y0"], "z0": t["z0"],
                "psi": t["psi"], "q_taper": t["q_taper"]},
        priors={"PA": Prior("flat", 300.0, 330.0), "r_taper": Prior("flat", 0.0, np.inf)},
        mcmc="numpyro", nwalkers=1, nburnin=5, nsteps=5, mcmc_kwargs={"seed": 0})
    session.start()
    assert session.wait(WAIT)
    assert session.status == "done", session.error
    assert any("unbounded flat prior on r_taper" in m for m in session.messages)
    assert "unbounded" not in capsys.readouterr().err
