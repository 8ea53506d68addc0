"""The live traces show the mixing (issue 21, item 6): after warm-up the y
axis fits the kept draws (the warm-up still drawn, shaded), tick labels do
not repeat and stay short (an offset where the digits would not fit), and
every title is shown whole."""

from __future__ import annotations

import numpy as np
import pytest

from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk, RunInfo
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import ChainView

import helpers

NAMES = ("PA", "vlsr")
N_WARMUP, N_SAMPLES = 200, 300


def run(backend="emcee", nchains=8, warm=(312.0, 0.6), kept=(312.0, 0.05),
        vlsr=(5763.0, 0.05), samples=N_SAMPLES):
    """A view fed with a warm-up that wanders over ``warm`` (centre, half
    width) and kept draws within ``kept``; vlsr sampled likewise."""
    session = FitSession()
    view = ChainView(session, min_interval=0.0)
    result = FitResult(NAMES, backend, nchains, {})
    result.n_warmup_target, result.n_samples_target = N_WARMUP, N_SAMPLES
    info = RunInfo(backend, NAMES, nchains, N_WARMUP, N_SAMPLES)
    session.result, session.info = result, info
    session.run_id += 1
    rng = np.random.default_rng(0)

    def chunk(phase, k, centre_width):
        draws = np.stack([c + w * rng.uniform(-1, 1, (nchains, k))
                          for c, w in (centre_width, vlsr)], axis=-1)
        stats = {"accepted": rng.random((nchains, k)) < 0.3}
        return Chunk(phase, 0, draws, -1e4 + rng.normal(0, 3, (nchains, k)), stats)

    chunks = [chunk("warmup", N_WARMUP, warm)]
    if samples:
        chunks.append(chunk("sampling", samples, kept))
    helpers.feed(view, result, info, chunks, flush=True)
    return view, result


def labels(panel) -> list[str]:
    """The y tick labels as the browser writes them (d3's format is
    Python's format mini-language for these specifiers)."""
    axis = panel.y_axis
    custom = axis.tick_labels or {}
    return [custom.get(str(float(t)), format(float(t), axis.tick_format))
            for t in axis.tick_values]


def test_y_axis_fits_the_kept_draws_and_warmup_stays_shaded():
    view, result = run()
    panel = view.panels["PA"]
    kept = result.chains["sampling"][:, :, 0]
    lo, hi = panel.y_scale.min, panel.y_scale.max
    assert lo is not None and hi is not None
    assert lo <= kept.min() and hi >= kept.max()
    # the kept draws fill the axis (issue 21: 311.4-312.6 for +-0.05)
    assert hi - lo < 1.3 * (kept.max() - kept.min())
    # the warm-up is still drawn, and shaded over the whole height
    x, y = view.trace("PA")
    assert x[0] == 0 and y.shape[1] == N_WARMUP + N_SAMPLES
    np.testing.assert_array_equal(panel.warmup.x, [0.0, N_WARMUP])
    band = np.asarray(panel.warmup.y)
    assert band.min() <= lo and band.max() >= hi
    # every panel on a linear axis, the log-probability and the acceptance
    # included
    for key in ("vlsr", "log_prob", "acceptance"):
        p = view.panels[key]
        sampled = p.traces.y if key != "acceptance" else p.traces.y
        values = np.asarray(sampled, float)
        assert p.y_scale.min <= values.min() and p.y_scale.max >= values.max(), key
        assert p.y_scale.max - p.y_scale.min < 1.3 * np.ptp(values) + 1e-9, key


def test_during_warmup_the_axis_spans_the_warmup():
    view, result = run(samples=0)
    panel = view.panels["PA"]
    warm = result.chains["warmup"][:, :, 0]
    lo, hi = panel.y_scale.min, panel.y_scale.max
    assert lo <= warm.min() and hi >= warm.max()
    assert hi - lo < 1.3 * np.ptp(warm)


@pytest.mark.parametrize("key", ["PA", "vlsr", "log_prob", "acceptance"])
def test_tick_labels_do_not_repeat_and_stay_short(key):
    view, _ = run()
    panel = view.panels[key]
    shown = labels(panel)
    ticks = np.asarray(panel.y_axis.tick_values, float)
    assert 3 <= len(ticks) <= 6, shown
    assert panel.y_scale.min <= ticks.min() and ticks.max() <= panel.y_scale.max
    assert len(set(shown)) == len(shown), shown          # issue: "312, 312, 311.9"
    assert max(map(len, shown)) <= 7, shown


def test_an_offset_where_the_digits_would_not_fit():
    from eddy_widgets.widgets.trace_panel import value_ticks
    ticks, shown, offset = value_ticks(5763.01212, 5763.01288)
    assert offset is not None and offset == pytest.approx(5763.012, abs=1e-3)
    assert len(set(shown.values())) == len(shown) == len(ticks) >= 3
    assert max(map(len, shown.values())) <= 7
    for t in ticks:
        value = offset + float(shown[str(float(t))].replace("\u2212", "-"))
        assert value == pytest.approx(t, abs=1e-9)
    view, _ = run(vlsr=(5763.0125, 0.0004))
    panel = view.panels["vlsr"]
    assert max(map(len, labels(panel))) <= 7
    assert "5763.01" in panel.header.value    # the offset is said with the title
    # a short range needs none
    assert value_ticks(311.95, 312.05)[2] is None


def test_titles_are_shown_whole():
    view, _ = run()
    for key, panel in view.panels.items():
        # SVG titles do not wrap (issue: "acceptance fraction (walker mean,
        # cumula"): the title is an HTML line above the figure, which wraps
        assert panel.figure.title == "", key
        assert panel.title in panel.header.value, key
        assert panel.header in view.grid.children[list(view.panels).index(key)].children
    assert view.panels["acceptance"].title == (
        "acceptance fraction (walker mean, cumulative)")
    assert not any(p.figure.display_toolbar for p in view.panels.values())
