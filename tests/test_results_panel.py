"""The results panel's table and figures, without a sampler: what a person
reads in the posterior table (one number format, medians rounded to their
widths, a legend line per column, red only past the verdict's thresholds) and
figures that read on a light and on a dark JupyterLab theme."""

from __future__ import annotations

import html
import io
import re

import numpy as np
from PIL import Image

from eddy_widgets.inference import diagnostics as D
from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk
from eddy_widgets.plots import SCREEN_GREY
from eddy_widgets.session import FitSession
from eddy_widgets.widgets.results import COLOURS, ResultsPanel, posterior_table


def _nuts_result(nchains=2, n=100):
    rng = np.random.default_rng(0)
    result = FitResult(("mstar", "vlsr"), "numpyro", nchains)
    result.append(Chunk("sampling", 0, rng.standard_normal((nchains, n, 2)),
                        np.zeros((nchains, n))))
    return result


def _with_diagnostics(result, **values):
    """``result`` whose diagnostics() gives ``values`` for every parameter."""
    diag = {name: {"tau": 1.0, "n_tau": 100.0, "ess": values["ess_bulk"], **values}
            for name in result.names}
    result.diagnostics = lambda: diag
    return result


def test_nuts_table_colours_only_past_the_verdicts_thresholds(monkeypatch):
    red = f"color:{COLOURS['bad']}"
    max_rhat = D.threshold("nuts_max_rhat")
    want = D.threshold("nuts_min_ess_per_chain") * 2     # two chains
    good = _with_diagnostics(_nuts_result(), r_hat=max_rhat, ess_bulk=want,
                             ess_tail=want)
    table = posterior_table(good)
    assert red not in table
    for column in ("ESS bulk", "ESS tail", "R-hat"):
        assert f"<div>{column}" in table.split("eddy-legend")[1]
    bad = _with_diagnostics(_nuts_result(), r_hat=max_rhat + 0.002,
                            ess_bulk=want - 1, ess_tail=want - 1)
    assert posterior_table(bad).count(red) == 3 * 2       # 3 columns x 2 rows
    # The thresholds are the verdict's, not copies.
    monkeypatch.setitem(D.THRESHOLDS, "nuts_max_rhat", (1.1, "test"))
    monkeypatch.setitem(D.THRESHOLDS, "nuts_min_ess_per_chain", (1, "test"))
    assert red not in posterior_table(bad)


def test_pull_column_is_median_minus_truth_over_sd():
    result = _nuts_result(n=2000)
    table = posterior_table(result, truths={"mstar": 0.0})
    assert ">(median - truth)/sd</th>" in table and ">truth</th>" in table
    p16, p50, p84 = result.percentiles()
    pull = (p50[0] - 0.0) / (0.5 * (p84[0] - p16[0]))
    assert f">{pull:.1f}</td>" in table
    assert "(median - truth)/sd: how many posterior widths" in table


def _cells(table: str, row: str) -> list[str]:
    """The texts of the cells of the table row whose first cell is ``row``."""
    line = next(r for r in table.split("<tr>") if f"<b>{row}</b>" in r)
    return [re.sub("<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", line)]


def test_medians_are_rounded_to_their_widths_in_one_number_format():
    rng = np.random.default_rng(1)
    result = FitResult(("PA", "vlsr"), "emcee", 32)
    draws = np.stack([312.06 + 0.0223 * rng.standard_normal((32, 400)),
                      5763.4 + 12.3 * rng.standard_normal((32, 400))], axis=-1)
    result.append(Chunk("sampling", 0, draws, np.zeros((32, 400))))
    table = posterior_table(result)
    pa = _cells(table, "PA")
    # Median and errors share the decimals that give the smaller error two
    # significant figures; no float noise, no exponent anywhere.
    assert re.fullmatch(r"312\.0\d\d", pa[2]), pa
    assert re.fullmatch(r"0\.0\d\d", pa[3]) and re.fullmatch(r"0\.0\d\d", pa[4]), pa
    vlsr = _cells(table, "vlsr")
    assert re.fullmatch(r"576\d", vlsr[2]) and re.fullmatch(r"1\d", vlsr[3]), vlsr
    # ESS and n/tau are whole numbers, however large.
    for cells in (pa, vlsr):
        assert re.fullmatch(r"\d+", cells[5]) and re.fullmatch(r"\d+|&ndash;", cells[6])
    assert "e+" not in table and "e-0" not in table
    assert "rounded with its errors" in table


def _png(output: dict) -> Image.Image:
    import base64

    return Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))


def test_figures_have_no_white_slab_and_grey_text_for_dark_themes():
    """On JupyterLab Dark a white PNG was a slab: the panel's figures are
    transparent, and their text and corner's histograms are a mid grey that
    reads on both themes."""
    panel = ResultsPanel(FitSession(), maps=False)
    panel._draw_corner(_nuts_result(n=400))
    image = np.asarray(_png(panel.corner_output.outputs[0]).convert("RGBA"))
    assert image[0, 0, 3] == 0 and image[-1, -1, 3] == 0          # background
    opaque = image[image[..., 3] == 255][:, :3]
    assert len(opaque) > 1000                                       # something drawn
    grey = np.array([int(SCREEN_GREY[i:i + 2], 16) for i in (1, 3, 5)])
    assert np.any(np.all(np.abs(opaque.astype(int) - grey) <= 2, axis=1))
    # nothing black: black text or lines vanish on a dark page
    assert not np.any(np.all(opaque < 40, axis=1))
    # ... and small: a palette of 256 colours (a notebook stores the PNG with
    # its widget state).
    png = _png(panel.corner_output.outputs[0])
    assert png.mode == "P" and len(png.getpalette()) <= 3 * 256


# -- Whose results (issue 21: 2), figures that fail (4), "1 chain" (7) ---------

def _quick_session(cube, example):
    from eddy_widgets.inference.priors import Prior

    t = example.truths
    return FitSession.from_fit_kwargs(
        cube=cube, p0=[t["PA"], 2.0, t["vlsr"]],
        params={"PA": 0, "mstar": 1, "vlsr": 2, "inc": t["inc"], "dist": t["dist"],
                "x0": t["x0"], "y0": t["y0"]},
        priors={"PA": Prior("flat", 300.0, 330.0)}, optimize=False, nwalkers=8,
        nburnin=10, nsteps=20, mcmc="emcee", mcmc_kwargs={"seed": 2})


def _held_start(session, monkeypatch):
    """Start a run whose work waits (status 'optimising') until the returned
    event is set, and then fails before it has a run of its own."""
    import threading

    go = threading.Event()

    def held(*args, **kwargs):
        go.wait(30)
        raise RuntimeError("the map went away")

    monkeypatch.setattr(type(session), "_work_new", held)
    session.start()
    return go


def test_a_new_run_shows_the_last_runs_results_under_a_banner(cube, example,
                                                              monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    session = _quick_session(cube, example)
    panel = ResultsPanel(session, corner=False, maps=False)
    session.start()
    assert session.wait(120) and session.status == "done", session.error
    assert "PA" in panel.table.value and "eddy-stale" not in panel.verdict.value
    # A new run is prepared: the results are still on screen, named.
    go = _held_start(session, monkeypatch)
    try:
        assert session.status == "optimising"
        banner = panel.verdict.value.split("</div>")[0]
        assert "eddy-stale" in banner and "previous run" in banner and panel.stale
        first = html.unescape(banner).split("these are the results of ")[1].split(". ")[0]
        assert first.startswith("run 1 (emcee, 8 walkers, 10 warm-up + 20 draws per "
                                "walker, started ")
        assert "the current run is being prepared" in banner
        session.status = "running"            # as the run's thread would
        assert "the current run is still sampling" in panel.verdict.value
        assert panel.verdict.value.index("eddy-stale") < \
            panel.verdict.value.index("onverged")
    finally:
        session.status = "optimising"
        go.set()
    # It fails before it has a run: the session holds the earlier run again,
    # and the banner says so.
    assert session.wait(30) and session.status == "error" and session.start_failed
    text = html.unescape(panel.verdict.value)
    assert "The last run failed</b> before it started" in text
    assert "holds the earlier run again" in text and first in text
    assert "PA" in panel.table.value


def test_continue_marks_the_results_so_far_until_it_ends(cube, example, monkeypatch,
                                                          tmp_path):
    monkeypatch.chdir(tmp_path)
    session = _quick_session(cube, example)
    panel = ResultsPanel(session, corner=False, maps=False)
    session.start()
    assert session.wait(120) and session.status == "done", session.error
    session.extend_steps = 10
    session.resume()
    assert panel.stale and "before Continue" in panel.verdict.value
    assert "at 30 draws per walker" in panel.verdict.value
    assert session.wait(120) and session.status == "done", session.error
    assert not panel.stale and "eddy-stale" not in panel.verdict.value


def test_a_figure_that_fails_is_drawn_again_or_says_what_to_press(monkeypatch):
    from eddy_widgets import plots

    real = plots.plot_corner
    calls = []

    def once_broken(result, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise AttributeError("'FigureCanvasBase' object has no attribute "
                                 "'get_renderer'")
        return real(result, *args, **kwargs)

    session = FitSession()
    session.result = _nuts_result(n=200)
    monkeypatch.setattr(plots, "plot_corner", once_broken)
    panel = ResultsPanel(session, maps=False)
    panel.refresh()
    assert len(calls) == 2 and panel.figure_errors == {}
    assert "image/png" in panel.corner_output.outputs[0]["data"]
    assert panel.note.value == "" and "Could not" not in panel.note.value

    def broken(result, *args, **kwargs):
        raise AttributeError("'FigureCanvasBase' object has no attribute 'get_renderer'")

    monkeypatch.setattr(plots, "plot_corner", broken)
    panel.refresh()
    message = panel.figure_errors["corner"]
    assert "Press Refresh" in message and "get_renderer" in message
    assert "Press Refresh" in panel.note.value
    shown = panel.corner_output.outputs[0]["data"]
    assert "Press Refresh" in shown["text/plain"] and "image/png" not in shown
    # The verdict and the table are complete all the same.
    assert "onverged" in panel.verdict.value and "<b>mstar</b>" in panel.table.value


def test_a_figure_is_rendered_on_an_explicit_agg_canvas():
    """A figure whose canvas cannot render (a bare FigureCanvasBase, as a
    figure made from the fit's thread once had) still becomes a PNG."""
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.figure import Figure

    from eddy_widgets.widgets.results import figure_output

    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    assert type(fig.canvas) is FigureCanvasBase
    png = _png(figure_output(fig))
    assert png.size[0] > 100


def test_one_chain_is_worded_one_chain():
    table = posterior_table(_nuts_result(nchains=1))
    assert "numpyro, 1 chain, " in table and "1 chains" not in table
    assert "numpyro, 2 chains, " in posterior_table(_nuts_result(nchains=2))
