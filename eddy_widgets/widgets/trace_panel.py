"""One panel of the live chain view: a bqplot Figure with the traces of the
shown walkers or chains (warmup faint), the warmup band, the divergent draws
and a limit line, with integer ticks on the draw axis and log ticks where the
quantity spans decades (:class:`TracePanel`).

Once there are draws after warmup, the value axis spans those (the kept
draws), so that their mixing fills the panel; the warmup stays drawn, faint
and shaded, and runs off the axis where it wandered further. Its ticks are
round numbers with as many digits as tell them apart (:func:`value_ticks`),
relative to an offset named beside the title where they would need more
than seven characters. The title is an HTML line above the figure, which
wraps in a narrow panel (bqplot's SVG title is cut).
"""

from __future__ import annotations

import html
import math

import bqplot as bq
import ipywidgets as W
import numpy as np

__all__ = ["TracePanel", "integer_ticks", "log_ticks", "nice_ticks", "tick_format",
           "value_ticks", "duration", "ordinal"]

TRACE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf", "#d62728"]
WARMUP_COLOUR = "#bdbdbd"
DIVERGENCE_COLOUR = "#d62728"
LIMIT_COLOUR = "#616161"


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def ordinal(n: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    if 10 <= n % 100 <= 20:
        suffix = "th"
    return f"{n}{suffix}"


def integer_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """At most ``n`` round integer ticks in ``[lo, hi]`` (steps 1, 2, 5
    times a power of ten): bqplot's own ``num_ticks`` divides the range
    evenly (5125, 10250, ...) and d3's ticks can fall between integers."""
    lo, hi = math.ceil(lo), math.floor(hi)
    if hi <= lo:
        return np.array([float(lo)])
    power = 10 ** max(math.floor(math.log10((hi - lo) / max(n - 1, 1))), 0)
    step = next(int(m * power) for m in (1, 2, 2.5, 5, 10, 20)
                if m * power == int(m * power) and (hi - lo) // int(m * power) < n)
    first = math.ceil(lo / step) * step
    return np.arange(first, hi + 1, step, dtype=float)


def log_ticks(lo: float, hi: float) -> np.ndarray:
    """Ticks of a log axis over ``[lo, hi]`` (> 0): the powers of ten inside,
    or 1, 2, 5 times them when fewer than two powers fall inside."""
    if not (lo > 0 and hi >= lo and math.isfinite(hi)):
        return np.zeros(0)
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = [10.0 ** k for k in range(a, b + 1) if lo <= 10.0 ** k <= hi]
    if len(ticks) < 2:
        ticks = [m * 10.0 ** k for k in range(a, b + 1) for m in (1, 2, 5)
                 if lo <= m * 10.0 ** k <= hi]
    if len(ticks) < 2:
        ticks = [lo, hi]
    if len(ticks) > 6:
        ticks = ticks[::math.ceil(len(ticks) / 6)]
    return np.array(ticks)


def nice_ticks(lo: float, hi: float, n: int = 5, least: int = 3,
               target: int = 4) -> np.ndarray:
    """Round ticks (multiples of 1, 2, 2.5 or 5 times a power of ten) inside
    ``[lo, hi]``: between ``least`` and ``n`` of them, as near ``target`` as
    the steps allow (on a tie: steps of 1, 2 or 5 before 2.5, then the
    larger step)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return np.zeros(0)
    if hi <= lo:
        return np.array([float(lo)])
    base = 10.0 ** math.floor(math.log10(hi - lo))
    best, fallback = None, None
    for power in (base / 100, base / 10, base, base * 10):
        for m in (1.0, 2.0, 2.5, 5.0):
            step = m * power
            first = math.ceil(lo / step - 1e-9)
            last = math.floor(hi / step + 1e-9)
            count = last - first + 1
            if least <= count <= n:
                key = (abs(count - target), m == 2.5, -step)
                if best is None or key < best[0]:
                    best = (key, step, first, last)
            elif 1 <= count <= n and (fallback is None or count > fallback[0]):
                fallback = (count, step, first, last)
    if best is None and fallback is None:
        return np.array([float(lo), float(hi)])
    step, first, last = best[1:] if best is not None else fallback[1:]
    return np.arange(first, last + 1) * step


def tick_format(ticks) -> str:
    """A d3 (and Python) format with the fewest decimals that writes every
    tick differently and to within a thousandth of their spacing."""
    ticks = np.asarray(ticks, dtype=float)
    if ticks.size == 0:
        return ".4~g"
    spacing = float(np.min(np.diff(ticks))) if ticks.size > 1 else (
        abs(float(ticks[0])) or 1.0)
    for decimals in range(13):
        labels = [f"{t:.{decimals}f}" for t in ticks]
        if (len(set(labels)) == len(labels)
                and all(abs(float(text) - t) <= 1e-3 * spacing
                        for text, t in zip(labels, ticks))):
            return f".{decimals}f"
    return ".6g"


def value_ticks(lo: float, hi: float, n: int = 5,
                max_chars: int = 7) -> tuple[np.ndarray, dict, float | None]:
    """Ticks of a value axis over ``[lo, hi]``: ``(ticks, labels, offset)``.

    ``labels`` maps ``str(tick)`` (as bqplot's ``tick_labels`` keys them) to
    its text: the value with as many decimals as tell the ticks apart or,
    where that takes more than ``max_chars`` characters (5763.025), the
    difference from a round ``offset`` (``+0.025`` for 5763), which the
    panel names; ``offset`` is None when not needed."""
    ticks = nice_ticks(lo, hi, n)
    fmt = tick_format(ticks)
    labels = [format(t, fmt) for t in ticks]
    offset = None
    if ticks.size and max(map(len, labels)) > max_chars:
        step = float(ticks[1] - ticks[0]) if ticks.size > 1 else abs(hi - lo) or 1.0
        unit = 10.0 ** math.ceil(math.log10(float(ticks[-1] - ticks[0]) + step))
        offset = math.floor(float(ticks[0]) / unit) * unit
        relative = ticks - offset
        fmt = tick_format(relative)
        labels = ["+" + format(r, fmt) if r > 0 else format(abs(r), fmt)
                  for r in relative]
    return ticks, {str(float(t)): text for t, text in zip(ticks, labels)}, offset


class TracePanel:
    """One bqplot Figure: the shown chains as two Lines marks, warmup (faint,
    :attr:`warmup_traces`) and after it (:attr:`traces`), a shaded warmup band,
    (optionally) a red Scatter of the divergent draws after warmup and
    (optionally) a dashed horizontal line at a limit (NUTS's
    ``max_tree_depth``). The title names the quantity (the y axis has no
    label: in a small panel it would overlap the tick labels); it is the HTML
    line :attr:`header` above the figure, and :attr:`widget` holds both.

    Args:
        title: the figure's title.
        divergences: with a Scatter of divergent draws.
        log: the y axis on a log scale (bqplot ``LogScale``).
        integer: integer ticks on the y axis.
        x_scale: the draw axis's scale, shared by every panel of a view so
            that they stay in step.
        limit: with a dashed horizontal line (set by :meth:`set_limit`).
    """

    #: Opacity of the warmup traces relative to the traces after warmup.
    warmup_fade = 0.3

    def __init__(self, title: str, divergences: bool = False, height: str = "170px",
                 log: bool = False, integer: bool = False,
                 x_scale: bq.LinearScale | None = None, limit: bool = False):
        # No padding for the scatter's marker size: draws start at 0.
        self.x_scale = (x_scale if x_scale is not None
                        else bq.LinearScale(allow_padding=False, min=0.0))
        self.y_scale = bq.LogScale() if log else bq.LinearScale()
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.warmup = bq.Lines(x=np.zeros(0), y=np.zeros((2, 0)), scales=scales,
                               fill="between", fill_colors=[WARMUP_COLOUR],
                               fill_opacities=[0.25], colors=[WARMUP_COLOUR],
                               opacities=[0.0, 0.0], stroke_width=0)
        self.warmup_traces = bq.Lines(x=np.zeros(0), y=np.zeros((1, 0)), scales=scales,
                                      stroke_width=1, colors=TRACE_COLOURS)
        self.traces = bq.Lines(x=np.zeros(0), y=np.zeros((1, 0)), scales=scales,
                               stroke_width=1, colors=TRACE_COLOURS)
        marks = [self.warmup, self.warmup_traces, self.traces]
        self.limit = None
        if limit:
            self.limit = bq.Lines(x=np.zeros(0), y=np.zeros(0), scales=scales,
                                  colors=[LIMIT_COLOUR], line_style="dashed",
                                  stroke_width=1.5)
            marks.append(self.limit)
        self.divergences = None
        if divergences:
            self.divergences = bq.Scatter(x=np.zeros(0), y=np.zeros(0), scales=scales,
                                          colors=[DIVERGENCE_COLOUR], default_size=12,
                                          stroke=DIVERGENCE_COLOUR)
            marks.append(self.divergences)
        self.x_axis = bq.Axis(scale=self.x_scale, side="bottom", label="draw",
                              tick_format="d")
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", num_ticks=None,
                              tick_format="d" if integer else ".4~g" if not log
                              else ".2~g")
        self.log, self.integer = log, integer
        self.title = title
        self.offset: float | None = None
        self.header = W.HTML(layout=W.Layout(width="100%"))
        self._set_header()
        # Shorter than ``height`` by the header's line.
        figure_height = f"{max(int(str(height).rstrip('px')) - 16, 80)}px"
        self.figure = bq.Figure(marks=marks, axes=[self.x_axis, self.y_axis],
                                title="", animation_duration=0,
                                fig_margin={"top": 8, "bottom": 35, "left": 60,
                                            "right": 20},
                                # no hover toolbar over the traces' top
                                display_toolbar=False,
                                layout=W.Layout(height=figure_height, width="100%"))
        self.widget = W.VBox([self.header, self.figure],
                             layout=W.Layout(min_width="0"))

    def _set_header(self) -> None:
        offset = ("" if self.offset is None else
                  f" <span style='color:gray'>(ticks: value &minus; "
                  f"{self.offset:.12g})</span>")
        self.header.value = (f"<div style='text-align:center;font-size:12px;"
                             f"line-height:1.25'>{html.escape(self.title)}{offset}"
                             f"</div>")

    def set_lines(self, nlines: int, opacity: float) -> None:
        colors = [TRACE_COLOURS[i % len(TRACE_COLOURS)] for i in range(max(nlines, 1))]
        with self.traces.hold_sync():
            self.traces.colors = colors
            self.traces.opacities = [opacity] * max(nlines, 1)
        with self.warmup_traces.hold_sync():
            self.warmup_traces.colors = colors
            self.warmup_traces.opacities = [opacity * self.warmup_fade] * max(nlines, 1)

    def set_limit(self, value: float | None, x_max: float) -> None:
        """Draw the dashed line at ``value`` over draws ``[0, x_max]`` (none
        if ``value`` is None) and keep it inside the y range."""
        if self.limit is None:
            return
        with self.limit.hold_sync():
            if value is None:
                self.limit.x, self.limit.y = np.zeros(0), np.zeros(0)
            else:
                self.limit.x = np.array([0.0, float(x_max)])
                self.limit.y = np.array([float(value), float(value)])
        if value is None:       # the range follows the draws (update)
            return
        if (self.y_scale.min, self.y_scale.max) != (0.0, float(value) + 1.0):
            with self.y_scale.hold_sync():
                self.y_scale.min, self.y_scale.max = 0.0, float(value) + 1.0
        ticks = integer_ticks(0, value + 1, 5)
        if not np.array_equal(self.y_axis.tick_values, ticks):
            self.y_axis.tick_values = ticks

    def update(self, x, y, n_warmup: int, div_x=None, div_y=None) -> None:
        """Show lines ``y`` (nlines, n) at draws ``x``: faint below
        ``n_warmup`` (shaded), full after; mark divergences."""
        after = x >= n_warmup
        first = int(np.argmax(after)) if after.any() else x.size
        # The warmup line runs on to the first draw after warmup: no gap.
        stop = min(first + 1, x.size)
        # Sent as float32: half the bytes to the browser (and in a notebook's
        # stored widget state), and 7 significant figures are more than a
        # trace a few hundred pixels tall can show.
        x32, y32 = np.asarray(x, np.float32), np.asarray(y, np.float32)
        with self.warmup_traces.hold_sync():
            self.warmup_traces.x = x32[:stop]
            self.warmup_traces.y = y32[:, :stop]
        with self.traces.hold_sync():
            self.traces.x = x32[first:]
            self.traces.y = y32[:, first:]
        y = np.asarray(y, dtype=float)
        # The axis spans the kept draws once there are any (the warmup's
        # range would flatten them), else the warmup so far.
        shown = y[:, after] if after.any() else y
        finite = shown[np.isfinite(shown)] if shown.size else shown.ravel()
        if self.log:
            finite = finite[finite > 0]
        span = self._fit_axis(finite) if finite.size else None
        if n_warmup > 0 and span is not None:
            lo, hi = span
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

    def _fit_axis(self, values: np.ndarray) -> tuple[float, float]:
        """Set the value axis to ``values``' range with a little room, and
        its ticks; returns the range shown. A panel with a limit line keeps
        the range :meth:`set_limit` gave it."""
        if self.limit is not None and self.limit.y.size:
            return float(self.y_scale.min), float(self.y_scale.max)
        lo, hi = float(values.min()), float(values.max())
        labels, offset = {}, None
        if self.log:
            lo, hi = lo / 1.15, hi * 1.15
            ticks = log_ticks(float(values.min()), float(values.max()))
        elif self.integer:
            lo, hi = math.floor(lo) - 0.5, math.ceil(hi) + 0.5
            ticks = integer_ticks(lo, hi, 5)
        else:
            pad = 0.05 * (hi - lo) if hi > lo else (abs(hi) * 1e-3 or 1e-3)
            lo, hi = lo - pad, hi + pad
            ticks, labels, offset = value_ticks(lo, hi)
        if (self.y_scale.min, self.y_scale.max) != (lo, hi):
            with self.y_scale.hold_sync():
                self.y_scale.min, self.y_scale.max = lo, hi
        with self.y_axis.hold_sync():
            if not np.array_equal(self.y_axis.tick_values, ticks):
                self.y_axis.tick_values = ticks
            if not (self.log or self.integer):
                fmt = tick_format(ticks)
                if self.y_axis.tick_format != fmt:
                    self.y_axis.tick_format = fmt
                if (self.y_axis.tick_labels or {}) != (labels if offset is not None
                                                        else {}):
                    self.y_axis.tick_labels = labels if offset is not None else {}
        if offset != self.offset:
            self.offset = offset
            self._set_header()
        return lo, hi

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of every draw shown, warmup and after, as held by the
        two marks: draw indices and ``(nlines, n)`` values."""
        # bqplot squeezes a single line to 1-D.
        wx = np.asarray(self.warmup_traces.x)
        wy = np.atleast_2d(np.asarray(self.warmup_traces.y))
        sx = np.asarray(self.traces.x)
        sy = np.atleast_2d(np.asarray(self.traces.y))
        if sx.size and wx.size and wx[-1] == sx[0]:
            wx, wy = wx[:-1], wy[:, :-1]
        if not wx.size:
            return sx, sy
        if not sx.size:
            return wx, wy
        return np.concatenate([wx, sx]), np.concatenate([wy, sy], axis=1)
