"""The model explorer, the dashboard's maps and the live traces as JupyterLab
shows them (issue 21, items 1, 5, 6, 9 and 12), in Chromium at 1280 x 720
with the file browser open.

A notebook written here shows ``ModelExplorer(cube, truths)`` on the bundled
example (inc 46.7 deg), a ``FitDashboard`` on its Maps tab with the model at
the example's values and its rotation residual (as after a fit; no sampler
runs), and a ``ChainView`` fed with synthetic draws (a wandering warm-up, then
kept draws). Read from the page: what each slider shows (the given values,
not the slider grid's neighbours), the plot area of every map (an arcsec as
long across as up: width / height = 1), the titles (inside their figures),
the colour bars (taller than the 40 px of bqplot's ColorAxis), the panels'
widths (wrapped, not squeezed), the trace titles (not cut) and their tick
labels (none repeated). Screenshots of the explorer, the Maps tab and the
traces go to ``test-artifacts/browser/maps-*.png``.
"""

from __future__ import annotations

import json
import re
import time

import pytest

VIEWPORT = {"width": 1280, "height": 720}

CELLS = [
    '''# Issue 21: the explorer at the example's values (inc 46.7 deg).
from eddy_widgets import load_example, rotationmap
from eddy_widgets.widgets.explorer import ModelExplorer

example = load_example()
cube = rotationmap(example.v0, FOV=8.0, downsample=4)
truths = dict(example.truths)
explorer = ModelExplorer(cube, truths)
explorer''',
    '''# The dashboard's maps as after a fit: the model at the example's values
# and its rotation residual v_phi (no sampler runs).
import numpy as np

from eddy_widgets.cli import TUTORIAL_P0, TUTORIAL_PARAMS
from eddy_widgets.widgets import FitDashboard

cube.set_prior("r_taper", [0.0, 50.0], "flat")
dashboard = FitDashboard.from_fit_kwargs(cube, p0=TUTORIAL_P0, params=TUTORIAL_PARAMS,
                                         mcmc="emcee", nwalkers=32, nburnin=10,
                                         nsteps=10)
dashboard.show("Maps")
spec, _ = dashboard.maps.current_fit()
dashboard.maps.show_theta(spec, np.array([truths[n] for n in spec.free]),
                          posterior=True)
dashboard''',
    '''# Live traces (synthetic draws, no sampler): a wandering warm-up, then
# kept draws a tenth as wide.
from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk, RunInfo
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import ChainView

session = FitSession()
chains = ChainView(session, columns=3, min_interval=0.0)
names, nwalkers, n_warmup, n_kept = ("PA", "vlsr"), 16, 200, 300
result = FitResult(names, "emcee", nwalkers, {})
result.n_warmup_target, result.n_samples_target = n_warmup, n_kept
info = RunInfo("emcee", names, nwalkers, n_warmup, n_kept)
session.result, session.info = result, info
session.run_id += 1
rng = np.random.default_rng(0)
for phase, k, width in (("warmup", n_warmup, 0.5), ("sampling", n_kept, 0.05)):
    draws = np.stack([312.0 + width * rng.standard_normal((nwalkers, k)),
                      5763.0 + 0.2 * width * rng.standard_normal((nwalkers, k))],
                     axis=-1)
    chunk = Chunk(phase, 0, draws, -1e4 + rng.normal(0, 3, (nwalkers, k)),
                  {"accepted": rng.random((nwalkers, k)) < 0.3})
    if phase == "warmup":
        info.done_warmup += k
    else:
        info.done_samples += k
    result.append(chunk)
    chains._on_chunk(chunk, info)
chains.flush()
chains''',
]

#: Every bqplot figure of the page: its box, its plot area's box, its title
#: (text and box) and the output cell it is in.
FIGURES_JS = """() => [...document.querySelectorAll('.bqplot.figure')].map(f => {
  const box = e => { if (!e) return null; const r = e.getBoundingClientRect();
                     return {x: r.x, y: r.y, w: r.width, h: r.height}; };
  const cells = [...document.querySelectorAll('.jp-CodeCell')];
  const title = f.querySelector('.mainheading');
  const cell = cells.findIndex(c => c.contains(f));
  const text = title ? title.textContent : '';
  return {cell, figure: box(f),
          // a sky map: the explorer's (not its surface profile) or the Maps tab's
          map: (cell === 0 && !text.startsWith('emission')) || !!f.closest('.eddy-maps'),
          plot: box(f.querySelector('.plotarea_background')),
          title: text, titleBox: box(title),
          panel: box(f.closest('.widget-vbox')),
          // the value axis's labels: left of the plot area
          yticks: [...f.querySelectorAll('.axis .tick text')].filter(t =>
              t.getBoundingClientRect().right <=
              f.querySelector('.plotarea_background').getBoundingClientRect().left + 2)
            .map(t => t.textContent)};
})"""

#: The explorer's slider readouts: {description: shown value}.
SLIDERS_JS = """() => Object.fromEntries([...document.querySelectorAll(
    '.jp-CodeCell:first-of-type .widget-hslider, .widget-hslider')].map(s => [
  s.querySelector('.widget-label').textContent.trim(),
  s.querySelector('.widget-readout').textContent.trim()]))"""

#: Heights of the colour bars' colour strips, and the trace panels' titles:
#: text, and whether it fits its box (no overflow).
BARS_JS = """() => [
  ...[...document.querySelectorAll('.eddy-colourbar')].map(b =>
    Math.max(...[...b.querySelectorAll('div')].filter(d =>
        d.style.background.includes('gradient')).map(d =>
        d.getBoundingClientRect().height))),
  // bqplot's own ColorAxis, where a map still has one
  ...[...document.querySelectorAll('.bqplot .ColorBar .g-rect rect')].map(r =>
    r.getBoundingClientRect().height)]"""
TRACE_TITLES_JS = """() => [...document.querySelectorAll('.eddy-chains .widget-html')]
  .filter(h => h.nextElementSibling && h.nextElementSibling.classList.contains('bqplot'))
  .map(h => { const c = h.querySelector('.widget-html-content');
              return {text: c.textContent, fits: c.scrollWidth <= c.clientWidth + 1,
                      width: c.clientWidth}; })"""

CELL_PROMPTS_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
  .map(p => p.textContent)"""


def write_notebook(path) -> None:
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell{i}",
              "metadata": {}, "outputs": [], "source": source}
             for i, source in enumerate(CELLS)]
    path.write_text(json.dumps({
        "cells": cells, "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)",
                                    "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}}}, indent=1))


def open_and_run(page, lab, name: str) -> None:
    """Open the notebook with the file browser open, run all cells, wait
    until every prompt shows ``[n]`` and the widgets have drawn."""
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count():
            dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        elif re.search(r"\(ipykernel\) \| Idle", page.evaluate(
                "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
                ".map(e => e.textContent).join(' ')")):
            break
        page.wait_for_timeout(250)
    if not page.locator("#filebrowser").is_visible():
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']"
                     ).click()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
    page.wait_for_function(
        f"() => ({CELL_PROMPTS_JS})().every(t => /\\[\\d+\\]/.test(t))",
        timeout=240_000, polling=500)
    page.wait_for_function(
        "() => document.querySelectorAll('.eddy-maps .bqplot.figure').length >= 4"
        " && document.querySelectorAll('.eddy-chains .bqplot.figure').length >= 4",
        timeout=60_000, polling=250)
    page.wait_for_timeout(2500)    # bqplot lays its figures out after a debounce


def shot(page, name: str):
    path = page.eddy_artifacts / f"maps-{name}.png"
    page.screenshot(path=str(path))
    return path


def scroll(page, selector: str, index: int = 0, block: str = "start") -> None:
    page.locator(selector).nth(index).evaluate(
        f"e => e.scrollIntoView({{block: '{block}'}})")
    page.wait_for_timeout(600)


@pytest.fixture(scope="module")
def page_with_maps(lab_factory, browser, tmp_path_factory):
    from pathlib import Path
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("maps-*.png"):
        old.unlink()
    lab = lab_factory("lab-maps")
    write_notebook(lab.root / "maps.ipynb")
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.eddy_artifacts = artifacts
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        open_and_run(page, lab, "maps.ipynb")
        yield page, errors
    finally:
        context.close()


def test_explorer_shows_the_values_it_was_given(page_with_maps):
    page, errors = page_with_maps
    shown = page.evaluate(SLIDERS_JS)
    # The explorer's sliders (inc 46.7 showed as 46.6 on a grid of -90 + k 0.2)
    assert shown["inc [deg]"] == "46.7", shown
    from eddy_widgets import load_example
    truths = load_example().truths
    for label, text in shown.items():
        name = label.split(" [")[0]
        if name in truths:
            assert float(text.replace("\u2212", "-")) == pytest.approx(
                truths[name], abs=1e-9), (label, text)
    assert not errors, errors


def test_maps_keep_the_disks_shape_titles_and_colour_bars(page_with_maps):
    page, errors = page_with_maps
    figures = page.evaluate(FIGURES_JS)
    maps = [f for f in figures if f["map"]]
    assert len(maps) == 6, maps      # 2 in the explorer, 4 on the Maps tab
    for f in maps:
        plot, fig, title = f["plot"], f["figure"], f["titleBox"]
        # an arcsec as long across the screen as up it (-4..4 both ways);
        # issue 21: ~130 x 240 px
        assert plot["w"] / plot["h"] == pytest.approx(1.0, abs=0.02), f
        assert plot["w"] >= 180, f
        # the title whole, inside its figure (issue: "esidual: data - ...")
        assert title["x"] >= fig["x"] - 1 and title["x"] + title["w"] <= (
            fig["x"] + fig["w"] + 1), f
        assert f["panel"]["w"] >= 300, f        # wrapped, not squeezed
    titles = [f["title"] for f in maps]
    assert "residual: data - model [m/s]" in titles
    assert "rotation residual: v_phi [m/s]" in titles
    assert all("km/s" not in t for t in titles)
    # The explorer's third panel wrapped below the maps rather than squeeze.
    explorer = [f for f in figures if f["cell"] == 0]
    assert len(explorer) == 3
    assert explorer[2]["figure"]["y"] >= explorer[0]["figure"]["y"] + (
        explorer[0]["figure"]["h"]) or explorer[2]["figure"]["w"] >= 300
    # Colour bars as tall as the map (bqplot's ColorAxis was ~40 px).
    bars = page.evaluate(BARS_JS)
    assert len(bars) == 6 and min(bars) >= 180, bars
    scroll(page, ".jp-CodeCell .jp-OutputArea", 0)
    shot(page, "explorer")
    scroll(page, ".eddy-dashboard")
    shot(page, "dashboard-maps-tab")
    scroll(page, ".eddy-maps .eddy-map", 2, block="center")
    shot(page, "residual-and-rotation")
    assert not errors, errors


def test_traces_fit_their_titles_and_ticks(page_with_maps):
    page, errors = page_with_maps
    titles = page.evaluate(TRACE_TITLES_JS)
    texts = [t["text"] for t in titles]
    assert "acceptance fraction (walker mean, cumulative)" in texts, texts
    assert all(t["fits"] for t in titles), titles
    figures = [f for f in page.evaluate(FIGURES_JS) if f["cell"] == 2]
    assert len(figures) == 4
    for f in figures:
        ticks = [t for t in f["yticks"] if t]
        # issue 21: "312, 312, 311.9, 311.9"
        assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
        assert max(map(len, ticks)) <= 7, ticks
    scroll(page, ".eddy-chains", page.locator(".eddy-chains").count() - 1)
    shot(page, "traces")
    assert not errors, errors
