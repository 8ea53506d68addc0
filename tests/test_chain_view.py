"""The live chain view for NUTS and emcee, on synthetic chunks (no sampler):
warmup drawn faint and without divergence markers, step size on a log axis,
tree depth with its max_tree_depth line, integer draw axes spanning the
planned run, every panel in step. Tests set the session's state and read the
bqplot marks and scales."""

from __future__ import annotations

import bqplot as bq
import numpy as np

from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk, RunInfo
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import ChainView

import helpers

NAMES = ("mstar", "PA")
N_WARMUP, N_SAMPLES = 300, 700


def start_run(session, backend="numpyro", nchains=2, max_tree_depth=None):
    settings = {} if max_tree_depth is None else {
        "options": {"max_tree_depth": max_tree_depth}}
    result = FitResult(NAMES, backend, nchains, settings)
    result.n_warmup_target, result.n_samples_target = N_WARMUP, N_SAMPLES
    info = RunInfo(backend, NAMES, nchains, N_WARMUP, N_SAMPLES)
    session.result, session.info = result, info
    session.run_id += 1
    return result, info


def chunk(phase, start, k, nchains=2, nuts=True, diverging=0.0, seed=0):
    rng = np.random.default_rng(seed + start + (0 if phase == "warmup" else 10_000))
    if nuts:
        stats = {"step_size": 10.0 ** rng.uniform(-3, 0, (nchains, k)),
                 "num_steps": rng.integers(1, 64, (nchains, k)),
                 "tree_depth": rng.integers(1, 6, (nchains, k)),
                 "diverging": rng.random((nchains, k)) < diverging,
                 "accept_prob": rng.random((nchains, k))}
    else:
        stats = {"accepted": rng.random((nchains, k)) < 0.3}
    return Chunk(phase, start, rng.standard_normal((nchains, k, len(NAMES))),
                 rng.standard_normal((nchains, k)), stats)


def feed(view, result, info, chunks):
    helpers.feed(view, result, info, chunks, flush=True)


def test_warmup_divergences_are_not_marked_and_warmup_is_faint():
    session = FitSession()
    view = ChainView(session, min_interval=0.0)
    result, info = start_run(session)
    # Warmup diverges often (as NUTS does while it adapts), sampling rarely.
    warm = [chunk("warmup", s, 100, diverging=0.5) for s in range(0, N_WARMUP, 100)]
    samp = [chunk("sampling", s, 100, diverging=0.02) for s in range(0, 400, 100)]
    feed(view, result, info, warm)
    for key in ("mstar", "PA", "log_prob"):
        assert view.panels[key].divergences.x.size == 0, key
    feed(view, result, info, samp)
    div = np.concatenate([c.stats["diverging"] for c in samp], axis=1)
    assert div.sum() > 0
    rows, cols = np.nonzero(div)
    scatter = view.panels["PA"].divergences
    assert scatter.x.size == div.sum()
    assert np.all(np.asarray(scatter.x) >= N_WARMUP)
    np.testing.assert_array_equal(np.sort(scatter.x), np.sort(N_WARMUP + cols))
    draws = np.concatenate([c.draws for c in samp], axis=1)
    np.testing.assert_array_equal(np.sort(scatter.y), np.sort(draws[rows, cols, 1]))
    assert list(scatter.colors) == ["#d62728"]
    # Warmup in its own, fainter mark; the full-strength mark starts after it.
    panel = view.panels["mstar"]
    wx = np.asarray(panel.warmup_traces.x)
    sx = np.asarray(panel.traces.x)
    assert wx[0] == 0 and wx[-2] < N_WARMUP <= wx[-1]
    assert sx[0] == N_WARMUP and sx[-1] == N_WARMUP + 399
    assert max(panel.warmup_traces.opacities) < min(panel.traces.opacities)
    assert list(panel.warmup_traces.colors) == list(panel.traces.colors)
    # Together the two marks hold every draw once.
    x, y = view.trace("mstar")
    np.testing.assert_array_equal(x, np.arange(N_WARMUP + 400))
    full = np.concatenate([c.draws for c in warm + samp], axis=1)
    np.testing.assert_array_equal(y, np.float32(full[:, :, 0]))
    assert "divergent draws after warmup" in view.title.value


def test_loaded_result_marks_only_divergences_after_warmup():
    session = FitSession()
    result, info = start_run(session)
    warm = [chunk("warmup", 0, N_WARMUP, diverging=0.5)]
    samp = [chunk("sampling", 0, N_SAMPLES, diverging=0.02)]
    for c in warm + samp:
        result.append(c)
    session.info = None
    view = ChainView(session, min_interval=0.0)  # opened after the run
    div = samp[0].stats["diverging"]
    assert view.panels["log_prob"].divergences.x.size == div.sum()
    assert np.all(np.asarray(view.panels["log_prob"].divergences.x) >= N_WARMUP)


def test_step_size_on_a_log_axis():
    session = FitSession()
    view = ChainView(session, min_interval=0.0)
    result, info = start_run(session)
    feed(view, result, info, [chunk("warmup", 0, 100)])
    panel = view.panels["step_size"]
    assert isinstance(panel.y_scale, bq.LogScale)
    assert panel.figure.axes[1].scale is panel.y_scale
    # The warmup band stays on the positive axis.
    assert np.all(np.asarray(panel.warmup.y) > 0)
    assert not isinstance(view.panels["mstar"].y_scale, bq.LogScale)
    # Ticks at powers of ten within the values (not an even split of the
    # range, which on a log axis gives unreadable numbers).
    ticks = np.asarray(panel.figure.axes[1].tick_values)
    _, step = view.trace("step_size")
    assert ticks.size >= 2
    assert ticks.min() >= step.min() and ticks.max() <= step.max()
    np.testing.assert_allclose(np.log10(ticks), np.round(np.log10(ticks)))


def test_tree_depth_with_the_runs_max_tree_depth_line():
    session = FitSession()
    view = ChainView(session, min_interval=0.0)
    result, info = start_run(session, max_tree_depth=6)
    feed(view, result, info, [chunk("warmup", 0, 100)])
    assert "tree_depth" in view.panels and "num_steps" not in view.panels
    panel = view.panels["tree_depth"]
    _, depth = view.trace("tree_depth")
    np.testing.assert_array_equal(depth, result.stats["warmup"]["tree_depth"])
    np.testing.assert_array_equal(panel.limit.y, [6.0, 6.0])
    np.testing.assert_array_equal(panel.limit.x, [0.0, N_WARMUP + N_SAMPLES])
    assert panel.limit.line_style == "dashed"
    # The line is inside the y range, with integer ticks.
    assert panel.y_scale.min == 0 and panel.y_scale.max > 6
    assert panel.figure.axes[1].tick_format == "d"
    np.testing.assert_array_equal(panel.figure.axes[1].tick_values, [0, 2, 4, 6])
    # Before the result stores its options, the session's numpyro options.
    session2 = FitSession()
    session2.options["numpyro"].max_tree_depth = 5
    view2 = ChainView(session2, min_interval=0.0)
    result2, info2 = start_run(session2)
    feed(view2, result2, info2, [chunk("warmup", 0, 100)])
    np.testing.assert_array_equal(view2.panels["tree_depth"].limit.y, [5.0, 5.0])


def test_draw_axes_are_integer_span_the_planned_run_and_are_in_step():
    for backend in ("numpyro", "emcee"):
        session = FitSession()
        view = ChainView(session, min_interval=0.0)
        nchains = 2 if backend == "numpyro" else 8
        result, info = start_run(session, backend, nchains=nchains)
        # Before any draw, and after the first chunk, the axis shows the
        # whole planned run (warmup + samples), not the draws so far.
        panels = list(view.panels.values())
        assert len(panels) == (5 if backend == "numpyro" else 4)
        for panel in panels:
            assert (panel.x_scale.min, panel.x_scale.max) == (0.0, N_WARMUP + N_SAMPLES)
        feed(view, result, info, [chunk("warmup", 0, 50, nchains, backend == "numpyro")])
        scales = {id(p.x_scale) for p in view.panels.values()}
        assert len(scales) == 1, backend  # one shared scale: panels in step
        for key, panel in view.panels.items():
            assert panel.x_scale.min == 0.0 and panel.x_scale.max == N_WARMUP + N_SAMPLES
            x_axis = panel.figure.axes[0]
            assert x_axis.scale is panel.x_scale and x_axis.tick_format == "d", key
            # Round integer ticks (bqplot's num_ticks would split 0-1000
            # evenly into 333.3, 666.7).
            np.testing.assert_array_equal(x_axis.tick_values,
                                          [0, 250, 500, 750, 1000])
            for mark in panel.figure.marks:
                assert mark.scales["x"] is view.x_scale, key
        x, _ = view.trace("log_prob")
        np.testing.assert_array_equal(x, np.arange(50))


def test_draw_axis_grows_when_the_draws_pass_the_plan():
    session = FitSession()
    view = ChainView(session, min_interval=0.0)
    result, info = start_run(session, "emcee", nchains=4)
    info.n_warmup, info.n_samples = 100, 0  # a plan behind the draws
    feed(view, result, info, [chunk("warmup", 0, N_WARMUP, 4, nuts=False)])
    assert (view.x_scale.min, view.x_scale.max) == (0.0, N_WARMUP)


def test_integer_and_log_ticks():
    from eddy_widgets.widgets.trace_panel import integer_ticks, log_ticks
    np.testing.assert_array_equal(integer_ticks(0, 20500),
                                  [0, 5000, 10000, 15000, 20000])
    np.testing.assert_array_equal(integer_ticks(0, 3), [0, 1, 2, 3])
    np.testing.assert_array_equal(integer_ticks(0, 9), [0, 2, 4, 6, 8])
    np.testing.assert_allclose(log_ticks(1e-3, 0.9), [1e-3, 1e-2, 1e-1])
    np.testing.assert_allclose(log_ticks(0.05, 0.3), [0.05, 0.1, 0.2])
