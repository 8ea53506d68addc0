"""The live chain view: traces of every free parameter and the log-probability
as the fit runs, plus the sampler's health (NUTS step size and tree depth,
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
import threading
import time

import bqplot as bq
import ipywidgets as W
import numpy as np

from ..inference.backends import BACKENDS
from ..inference.samplers import Chunk
from ..parameters import PARAMETERS
from ..session import FitSession
from .trace_panel import TracePanel, duration, integer_ticks, ordinal

__all__ = ["ChainView", "TracePanel"]


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
        show_progress: show the progress line above the traces (a host that
            shows :attr:`progress` elsewhere, like the dashboard's header,
            passes ``False``).

    Attributes:
        panels: ``{name: TracePanel}`` for the free parameters, ``'log_prob'``,
            and the sampler panels (``'step_size'`` on a log axis and
            ``'tree_depth'`` with its ``max_tree_depth`` line for NUTS,
            ``'acceptance'`` for emcee).
        x_scale: the draw axis shared by every panel.
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
                 min_interval: float = 0.25, columns: int = 2,
                 show_progress: bool = True, **kwargs):
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
        #: The draw axis of every panel: one scale, so the panels stay in
        #: step; it spans the planned draws (warmup + samples) from the start.
        self.x_scale = bq.LinearScale(allow_padding=False, min=0.0, max=1.0)
        self._reset_buffers(None)
        shown = [self.title, self.progress, self.grid]
        if not show_progress:
            shown.remove(self.progress)
        super().__init__(shown, **kwargs)
        self.add_class("eddy-chains")
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
        for key, stat in self._chain_stats().items():
            source = stats.get(stat.source or key)
            if source is None:
                continue
            values = np.asarray(source, dtype=float)
            if stat.running_mean:
                # The walkers' mean of each walker's running mean.
                cum = self._acc_sum[:, None] + np.cumsum(values, axis=1)
                self._acc_sum = cum[:, -1].copy()
                new[key] = (cum[:, take] / (g[take] + 1.0)).mean(axis=0)[None, :]
            else:
                new[key] = values[shown][:, take]
        # Divergences while NUTS adapts its step size are expected and
        # harmless: only those after warmup are marked.
        if "diverging" in stats and chunk.phase != "warmup":
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

    def _chain_stats(self) -> dict:
        """The run's backend's statistics panels (none before a run)."""
        spec = BACKENDS.get(self._backend)
        return spec.chain_stats if spec is not None else {}

    def _panel_keys(self) -> list[str]:
        return list(self._names) + ["log_prob"] + list(self._chain_stats())

    def _make_panel(self, key: str) -> TracePanel:
        x = self.x_scale
        if key in PARAMETERS:
            p = PARAMETERS[key]
            unit = f" [{p.unit}]" if p.unit else ""
            return TracePanel(f"{key}{unit}", divergences=True, x_scale=x)
        if key == "log_prob":
            return TracePanel("log-probability (ln p)", divergences=True, x_scale=x)
        stat = self._chain_stats()[key]
        return TracePanel(stat.title, log=stat.log, integer=stat.integer,
                          limit=stat.limit, x_scale=x)

    def _ensure_panels(self) -> None:
        """Show the panels of the current run, building those not built yet."""
        keys = self._panel_keys() if self._names else []
        nlines = len(self.shown_chains)
        opacity = float(np.clip(4.0 / max(nlines, 1), 0.25, 0.9))
        panels = {}
        stats = self._chain_stats()
        for key in keys:
            panel = self._all_panels.get(key)
            if panel is None:
                panel = self._all_panels[key] = self._make_panel(key)
            one = key in stats and stats[key].running_mean   # one line: the mean
            panel.set_lines(1 if one else nlines, 1.0 if one else opacity)
            panels[key] = panel
        if list(panels) != list(self.panels):
            self.panels = panels
            self.grid.children = [p.widget for p in panels.values()]
        self._set_title()

    def _set_title(self) -> None:
        if not self._names:
            self.title.value = "<b>Chains</b>: no run yet"
            return
        spec = BACKENDS.get(self._backend)
        word = f"{spec.unit}s" if spec is not None else "chains"
        nshown = len(self.shown_chains)
        shown = (f"all {self._nchains} {word}" if nshown == self._nchains
                 else f"{nshown} of {self._nchains} {word} (evenly spaced)")
        thin = ("every draw" if self.stride == 1
                else f"every {ordinal(self.stride)} draw")
        self.title.value = (f"<b>Chains</b> ({html.escape(str(self._backend))}): "
                            f"showing {shown}, {thin}; shaded and faint: warmup / "
                            f"burn-in" + ("; red: divergent draws after warmup"
                                          if spec is not None and spec.divergences
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
            x_max = float(max(self._planned_total(), self._n_seen, 1))
            if (self.x_scale.min, self.x_scale.max) != (0.0, x_max):
                with self.x_scale.hold_sync():
                    self.x_scale.min, self.x_scale.max = 0.0, x_max
            ticks = integer_ticks(0.0, x_max)
            for panel in self.panels.values():
                if not np.array_equal(panel.x_axis.tick_values, ticks):
                    panel.x_axis.tick_values = ticks
            stats = self._chain_stats()
            for key, stat in stats.items():
                if stat.limit and key in self.panels:
                    self.panels[key].set_limit(self._max_tree_depth(), x_max)
            div_x = self._div_x.astype(float)
            for i, name in enumerate(self._names):
                self.panels[name].update(x, self._theta[:, :, i], n_warmup, div_x,
                                         self._div_theta[:, i])
            self.panels["log_prob"].update(x, self._logp, n_warmup, div_x,
                                           self._div_logp)
            for key in stats:
                if key in self.panels:
                    y = self._stats.get(key)
                    if y is None:
                        y = np.zeros((1, 0))
                    self.panels[key].update(x[:y.shape[1]], y, n_warmup)
            sent = (self._theta.size + self._logp.size
                    + sum(v.size for v in self._stats.values()))
            self._interval = self.min_interval * max(1.0, sent / self.redraw_budget)

    def _planned_total(self) -> int:
        """Draws per chain the run plans (warmup + samples), 0 if unknown."""
        if self._info is not None:
            return int(self._info.total)
        result = self.session.result
        if result is not None and self._names:
            planned = sum(int(getattr(result, f"n_{phase}_target", 0) or 0)
                          for phase in ("warmup", "samples"))
            return max(planned, sum(result.chains[p].shape[1]
                                    for p in ("warmup", "sampling")))
        return 0

    def _max_tree_depth(self) -> int | None:
        """The run's ``max_tree_depth``: from its result's stored options, or
        (before the result has them) the session's options of the run's
        backend."""
        result = self.session.result
        if result is not None:
            depth = (result.settings.get("options") or {}).get("max_tree_depth")
            if depth is not None:
                return int(depth)
        options = getattr(self.session, "options", {}).get(self._backend)
        depth = getattr(options, "max_tree_depth", None)
        return None if depth is None else int(depth)

    def _warmup_drawn(self) -> int:
        info = self._info
        if info is None:
            return 0
        return int(min(info.done_warmup, self._n_seen))

    def _show_progress(self) -> None:
        status = self.session.status
        info = self._info if self._info is not None else self.session.info
        if status == "error" and (self.session.fit_run is None
                                  or getattr(self.session, "start_failed", False)):
            # Failed before its first draw: the line of the run before it
            # would mislead.
            error = self.session.error.splitlines()[0] if self.session.error else ""
            earlier = ("; Continue and Export use the earlier run"
                       if self.session.fit_run is not None else "")
            self.progress.value = ("<span style='color:#c62828'><b>failed</b> before "
                                   f"the first draw: {html.escape(error[:300])}"
                                   f"{earlier}</span>")
            return
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
                parts.append(f"about {duration(info.remaining_seconds)} left")
            else:
                parts.append("compiling&hellip;")
        else:
            parts.append(html.escape(status))
        self.progress.value = " &middot; ".join(parts)

    # -- Access for tests and notebooks ---------------------------------------

    def trace(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` as held by the marks of panel ``name`` (a free
        parameter, ``'log_prob'`` or a sampler panel), warmup and after:
        draw indices and ``(nlines, n)`` values."""
        return self.panels[name].data()

    def close(self) -> None:
        self.session.unobserve_chunks(self._on_chunk)
        self.session.unobserve(self._on_run, names=["run_id"])
        self.session.unobserve(self._on_status, names=["status"])
        for panel in self._all_panels.values():
            panel.figure.close()
        super().close()
