"""The live chain view: traces of every free parameter and the log-probability
as the fit runs, plus the sampler's health (NUTS step size and steps per draw,
emcee acceptance fraction) and a progress line.

bqplot Figures and Marks are built once per set of free parameters and updated
in place (``x``/``y`` inside ``hold_sync``). Chunks arrive in the fit's thread;
they are stored thinned and the marks are redrawn at most every
``min_interval`` seconds (longer for heavy redraws, see
:attr:`ChainView.redraw_budget`), plus once when the run stops or ends.

Thinning keeps at most ``max_points`` points per line: the view holds draws
``0, k, 2k, ...`` and doubles ``k`` (dropping every other point) whenever that
would be exceeded, so a trace never costs more than ``max_points`` values per
line however long the run. At most ``max_lines`` walkers/chains are drawn
(evenly spaced; the title says how many of how many).
"""

from __future__ import annotations

import html
import math
import threading
import time

import bqplot as bq
import ipywidgets as W
import numpy as np

from ..inference.samplers import Chunk
from ..parameters import PARAMETERS
from ..session import FitSession

__all__ = ["ChainView", "TracePanel"]

TRACE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf", "#d62728"]
WARMUP_COLOUR = "#bdbdbd"
DIVERGENCE_COLOUR = "#d62728"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def _ordinal(n: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    if 10 <= n % 100 <= 20:
        suffix = "th"
    return f"{n}{suffix}"


class TracePanel:
    """One bqplot Figure: a Lines mark with every shown chain, a shaded
    warmup band and (optionally) a red Scatter of divergent draws. The title
    names the quantity (the y axis has no label: in a small panel it would
    overlap the tick labels)."""

    def __init__(self, title: str, divergences: bool = False, height: str = "170px"):
        # No padding for the scatter's marker size: draws start at 0.
        self.x_scale = bq.LinearScale(allow_padding=False)
        self.y_scale = bq.LinearScale()
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.warmup = bq.Lines(x=np.zeros(0), y=np.zeros((2, 0)), scales=scales,
                               fill="between", fill_colors=[WARMUP_COLOUR],
                               fill_opacities=[0.35], colors=[WARMUP_COLOUR],
                               opacities=[0.0, 0.0], stroke_width=0)
        self.traces = bq.Lines(x=np.zeros(0), y=np.zeros((1, 0)), scales=scales,
                               stroke_width=1, colors=TRACE_COLOURS)
        marks = [self.warmup, self.traces]
        self.divergences = None
        if divergences:
            self.divergences = bq.Scatter(x=np.zeros(0), y=np.zeros(0), scales=scales,
                                          colors=[DIVERGENCE_COLOUR], default_size=16,
                                          stroke=DIVERGENCE_COLOUR)
            marks.append(self.divergences)
        axes = [bq.Axis(scale=self.x_scale, side="bottom", label="draw", num_ticks=5),
                bq.Axis(scale=self.y_scale, side="left", tick_format=".4~g",
                        num_ticks=4)]
        self.figure = bq.Figure(marks=marks, axes=axes, title=title,
                                animation_duration=0,
                                fig_margin={"top": 30, "bottom": 35, "left": 60,
                                            "right": 20},
                                layout=W.Layout(height=height, width="100%"),
                                title_style={"font-size": "12px"})

    def set_lines(self, nlines: int, opacity: float) -> None:
        with self.traces.hold_sync():
            self.traces.colors = [TRACE_COLOURS[i % len(TRACE_COLOURS)]
                                  for i in range(max(nlines, 1))]
            self.traces.opacities = [opacity] * max(nlines, 1)

    def update(self, x, y, n_warmup: int, div_x=None, div_y=None) -> None:
        """Show lines ``y`` (nlines, n) at draws ``x``; shade draws below
        ``n_warmup``; mark divergences."""
        with self.traces.hold_sync():
            self.traces.x = x
            self.traces.y = y
        finite = y[np.isfinite(y)] if y.size else y
        if n_warmup > 0 and finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            with self.warmup.hold_sync():
                self.warmup.x = np.array([0.0, float(n_warmup)])
                self.warmup.y = np.array([[lo, lo], [hi, hi]])
        elif self.warmup.x.size:
            with self.warmup.hold_sync():
                self.warmup.x = np.zeros(0)
                self.warmup.y = np.zeros((2, 0))
        if self.divergences is not None and div_x is not None:
            with self.divergences.hold_sync():
                self.divergences.x = div_x
                self.divergences.y = div_y


class ChainView(W.VBox):
    """Live traces of a :class:`FitSession`'s run.

    Args:
        session: the session to watch.
        max_points: most points per line before thinning doubles.
        max_lines: most walkers/chains drawn.
        min_interval: least time between two redraws [s] (about 4 per second);
            a redraw of more than :attr:`redraw_budget` values waits
            proportionally longer.
        columns: most figures per row (fewer where a figure would be
            narrower than 260 px).

    Attributes:
        panels: ``{name: TracePanel}`` for the free parameters, ``'log_prob'``,
            and the sampler panels (``'step_size'``, ``'num_steps'`` for NUTS,
            ``'acceptance'`` for emcee).
        progress: HTML line: draws done / total, draws per second, time left.
        stride: the current thinning (every ``stride``-th draw is shown).
        shown_chains: indices of the chains drawn.
        flushes: number of redraws so far (for tests and benchmarks).
    """

    max_divergences = 5000

    #: Plotted values (points of all lines of all panels) that one redraw may
    #: send per ``min_interval``; a heavier redraw delays the next one in
    #: proportion. bqplot rebuilds (and d3 interpolates) every SVG path of a
    #: mark on each update, so the browser's work grows with the points sent:
    #: 11 panels of 32 walkers x 1000 points every 0.25 s left the page 10 to
    #: 30 s behind the fit, Stop included (headless Chromium, 2 cores shared
    #: with the kernel); with 16 lines and this budget it keeps up.
    redraw_budget = 20_000

    def __init__(self, session: FitSession, max_points: int = 1000, max_lines: int = 16,
                 min_interval: float = 0.25, columns: int = 2, **kwargs):
        self.session = session
        self.max_points = int(max_points)
        self.max_lines = int(max_lines)
        self.min_interval = float(min_interval)
        self.columns = int(columns)
        self._lock = threading.RLock()
        self._all_panels: dict[str, TracePanel] = {}
        self.panels: dict[str, TracePanel] = {}
        self.title = W.HTML()
        self.progress = W.HTML()
        self.grid = W.GridBox(layout=W.Layout(
            grid_template_columns=(f"repeat(auto-fill, minmax(max(260px, "
                                   f"calc(100% / {self.columns} - 8px)), 1fr))"),
            grid_gap="2px 8px"))
        self.flushes = 0
        self._last_flush = 0.0
        self._interval = self.min_interval
        self._info = None
        self._reset_buffers(None)
        super().__init__([self.title, self.progress, self.grid], **kwargs)
        session.observe(self._on_run, names=["run_id"])
        session.observe(self._on_status, names=["status"])
        session.observe_chunks(self._on_chunk)
        if session.result is not None and not session.busy:
            self._rebuild_from_result(session.result, session.info)
            self.flush()
        else:
            self._set_title()
            self._show_progress()

    # -- Buffers ---------------------------------------------------------------

    def _reset_buffers(self, result) -> None:
        """Empty thinned buffers for ``result``'s shape."""
        self.stride = 1
        self._n_seen = 0
        if result is None:
            self._names, self._backend, self._nchains = (), None, 0
            self.shown_chains = np.zeros(0, dtype=int)
        else:
            self._names, self._backend = tuple(result.names), result.backend
            self._nchains = int(result.nchains)
            n = min(self._nchains, self.max_lines)
            self.shown_chains = np.unique(
                np.round(np.linspace(0, self._nchains - 1, n)).astype(int))
        nshown, ndim = len(self.shown_chains), len(self._names)
        self._x = np.zeros(0, dtype=np.int64)
        self._theta = np.zeros((nshown, 0, ndim))
        self._logp = np.zeros((nshown, 0))
        self._stats: dict[str, np.ndarray] = {}
        self._acc_sum = np.zeros(self._nchains)
        self._div_x = np.zeros(0, dtype=np.int64)
        self._div_theta = np.zeros((0, ndim))
        self._div_logp = np.zeros(0)

    def _ingest(self, chunk: Chunk, offset: int) -> None:
        """Add a chunk whose first draw has global index ``offset``."""
        k = chunk.size
        g = offset + np.arange(k)
        shown = self.shown_chains
        take = g % self.stride == 0
        self._x = np.concatenate([self._x, g[take]])
        self._theta = np.concatenate([self._theta, chunk.draws[shown][:, take]], axis=1)
        self._logp = np.concatenate([self._logp, chunk.log_prob[shown][:, take]], axis=1)
        stats = chunk.stats
        new = {}
        if "accepted" in stats:
            acc = np.asarray(stats["accepted"], dtype=float)
            cum = self._acc_sum[:, None] + np.cumsum(acc, axis=1)
            self._acc_sum = cum[:, -1].copy()
            new["acceptance"] = (cum[:, take] / (g[take] + 1.0)).mean(axis=0)[None, :]
        if "step_size" in stats:
            new["step_size"] = np.asarray(stats["step_size"], dtype=float)[shown][:, take]
        if "num_steps" in stats:
            new["num_steps"] = np.asarray(stats["num_steps"], dtype=float)[shown][:, take]
        if "diverging" in stats:
            div = np.asarray(stats["diverging"], dtype=bool)[shown]
            rows, cols = np.nonzero(div)
            room = self.max_divergences - self._div_x.size
            if rows.size and room > 0:
                rows, cols = rows[:room], cols[:room]
                self._div_x = np.concatenate([self._div_x, g[cols]])
                self._div_theta = np.concatenate(
                    [self._div_theta, chunk.draws[shown][rows, cols]])
                self._div_logp = np.concatenate(
                    [self._div_logp, chunk.log_prob[shown][rows, cols]])
        for key, value in new.items():
            old = self._stats.get(key)
            self._stats[key] = value if old is None else np.concatenate([old, value],
                                                                         axis=1)
        self._n_seen = offset + k
        while self._x.size > self.max_points:
            self.stride *= 2
            keep = self._x % self.stride == 0
            self._x = self._x[keep]
            self._theta = self._theta[:, keep]
            self._logp = self._logp[:, keep]
            self._stats = {key: v[:, keep] for key, v in self._stats.items()}

    def _rebuild_from_result(self, result, info=None) -> None:
        """Start afresh from everything in ``result`` (not while it grows in
        another thread)."""
        self._reset_buffers(result)
        self._info = info
        self._ensure_panels()
        offset = 0
        for phase in ("warmup", "sampling"):
            draws = result.chains[phase]
            if draws.shape[1]:
                self._ingest(Chunk(phase, 0, draws, result.log_prob[phase],
                                   result.stats[phase]), offset)
            offset += draws.shape[1]

    def _offset(self, chunk: Chunk, info) -> int:
        return chunk.start if chunk.phase == "warmup" else info.n_warmup + chunk.start

    # -- Session events (in the fit's thread) ----------------------------------

    def _on_run(self, change=None) -> None:
        with self._lock:
            self._reset_buffers(self.session.result)
            self._info = self.session.info
            self._ensure_panels()
            self.flush()

    def _on_chunk(self, chunk: Chunk, info) -> None:
        with self._lock:
            self._info = info
            if tuple(info.names) != self._names:
                self._rebuild_from_result(self.session.result, info)
            else:
                offset = self._offset(chunk, info)
                if offset != self._n_seen:
                    # Joined mid-run or missed a chunk: the result (which
                    # already holds this chunk) is the truth.
                    self._rebuild_from_result(self.session.result, info)
                else:
                    self._ingest(chunk, offset)
            if time.monotonic() - self._last_flush >= self._interval:
                self.flush()

    def _on_status(self, change) -> None:
        if change.new in ("stopped", "done", "error"):
            self.flush()
        else:
            self._show_progress()

    # -- Drawing ---------------------------------------------------------------

    def _panel_keys(self) -> list[str]:
        keys = list(self._names) + ["log_prob"]
        if self._backend == "numpyro":
            keys += ["step_size", "num_steps"]
        elif self._backend == "emcee":
            keys += ["acceptance"]
        return keys

    def _make_panel(self, key: str) -> TracePanel:
        if key in PARAMETERS:
            p = PARAMETERS[key]
            unit = f" [{p.unit}]" if p.unit else ""
            return TracePanel(f"{key}{unit}", divergences=True)
        if key == "log_prob":
            return TracePanel("log-probability (ln p)", divergences=True)
        if key == "step_size":
            return TracePanel("NUTS step size")
        if key == "num_steps":
            return TracePanel("NUTS leapfrog steps per draw")
        return TracePanel("acceptance fraction (walker mean, cumulative)")

    def _ensure_panels(self) -> None:
        """Show the panels of the current run, building those not built yet."""
        keys = self._panel_keys() if self._names else []
        nlines = len(self.shown_chains)
        opacity = float(np.clip(4.0 / max(nlines, 1), 0.25, 0.9))
        panels = {}
        for key in keys:
            panel = self._all_panels.get(key)
            if panel is None:
                panel = self._all_panels[key] = self._make_panel(key)
            panel.set_lines(1 if key == "acceptance" else nlines,
                            1.0 if key == "acceptance" else opacity)
            panels[key] = panel
        if list(panels) != list(self.panels):
            self.panels = panels
            self.grid.children = [p.figure for p in panels.values()]
        self._set_title()

    def _set_title(self) -> None:
        if not self._names:
            self.title.value = "<b>Chains</b>: no run yet"
            return
        word = "walkers" if self._backend == "emcee" else "chains"
        nshown = len(self.shown_chains)
        shown = (f"all {self._nchains} {word}" if nshown == self._nchains
                 else f"{nshown} of {self._nchains} {word} (evenly spaced)")
        thin = ("every draw" if self.stride == 1
                else f"every {_ordinal(self.stride)} draw")
        self.title.value = (f"<b>Chains</b> ({html.escape(str(self._backend))}): "
                            f"showing {shown}, {thin}; shaded: warmup / burn-in"
                            + ("; red: divergent draws" if self._backend == "numpyro"
                               else ""))

    def flush(self) -> None:
        """Redraw every panel from the buffers (one message per mark)."""
        with self._lock:
            self._last_flush = time.monotonic()
            self.flushes += 1
            self._set_title()
            self._show_progress()
            if not self.panels:
                return
            x = self._x.astype(float)
            n_warmup = self._warmup_drawn()
            div_x = self._div_x.astype(float)
            for i, name in enumerate(self._names):
                self.panels[name].update(x, self._theta[:, :, i], n_warmup, div_x,
                                         self._div_theta[:, i])
            self.panels["log_prob"].update(x, self._logp, n_warmup, div_x,
                                           self._div_logp)
            for key in ("step_size", "num_steps", "acceptance"):
                if key in self.panels:
                    y = self._stats.get(key)
                    if y is None:
                        y = np.zeros((1, 0))
                    self.panels[key].update(x[:y.shape[1]], y, n_warmup)
            sent = (self._theta.size + self._logp.size
                    + sum(v.size for v in self._stats.values()))
            self._interval = self.min_interval * max(1.0, sent / self.redraw_budget)

    def _warmup_drawn(self) -> int:
        info = self._info
        if info is None:
            return 0
        return int(min(info.done_warmup, self._n_seen))

    def _show_progress(self) -> None:
        status = self.session.status
        info = self._info if self._info is not None else self.session.info
        if status == "optimising":
            self.progress.value = ("<i>preparing the fit: masking the map, optimising "
                                   "the start, compiling&hellip;</i>")
            return
        if info is None:
            self.progress.value = ""
            return
        parts = [f"<b>{info.done}/{info.total}</b> draws per chain "
                 f"(warmup {info.done_warmup}/{info.n_warmup}, "
                 f"sampling {info.done_samples}/{info.n_samples})"]
        if status == "running":
            if info.draws_this_call:
                parts.append(f"{info.rate:.1f} draws/s")
                parts.append(f"about {_duration(info.remaining_seconds)} left")
            else:
                parts.append("compiling&hellip;")
        else:
            parts.append(html.escape(status))
        self.progress.value = " &middot; ".join(parts)

    # -- Access for tests and notebooks ---------------------------------------

    def trace(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` as held by the marks of ``name`` (a free parameter or
        ``'log_prob'``): draw indices and ``(nlines, n)`` values."""
        mark = self.panels[name].traces
        # bqplot squeezes a single line to 1-D.
        return np.asarray(mark.x), np.atleast_2d(np.asarray(mark.y))

    def close(self) -> None:
        self.session.unobserve_chunks(self._on_chunk)
        self.session.unobserve(self._on_run, names=["run_id"])
        self.session.unobserve(self._on_status, names=["status"])
        for panel in self._all_panels.values():
            panel.figure.close()
        super().close()
