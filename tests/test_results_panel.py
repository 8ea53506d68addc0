"""The results panel's table and figures, without a sampler: what a person
reads in the posterior table (one number format, medians rounded to their
widths, a legend line per column, red only past the verdict's thresholds) and
figures that read on a light and on a dark JupyterLab theme."""

from __future__ import annotations

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
