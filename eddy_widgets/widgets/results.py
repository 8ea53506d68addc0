"""The results of a :class:`~eddy_widgets.session.FitSession`'s run: posterior
table, corner plot and data / model / residual maps, refreshed when the run
stops or ends.

Figures are drawn with :mod:`eddy_widgets.plots`, rendered to PNG and placed
in ``ipywidgets.Output`` widgets by setting their outputs (which works from the
fit's thread, where the refresh runs; nothing is printed).
"""

from __future__ import annotations

import base64
from contextlib import contextmanager
import html
import io
import logging
import math
import threading
import warnings

import ipywidgets as W
import numpy as np

from ..parameters import PARAMETERS
from ..session import FitSession

__all__ = ["ResultsPanel", "posterior_table"]


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "&ndash;"
    return f"{value:.{digits}g}"


def posterior_table(result) -> str:
    """HTML table of a result: parameter, unit, median, -/+ (16th/84th
    percentiles), ESS and R-hat, and one line of sampler statistics."""
    p16, p50, p84 = result.percentiles()
    diag = result.diagnostics()
    cell = "style='padding:1px 8px; text-align:right'"
    head = "".join(f"<th {cell}>{h}</th>" for h in
                   ("parameter", "unit", "median", "&minus;", "+", "ESS", "R-hat"))
    rows = []
    for i, name in enumerate(result.names):
        unit = PARAMETERS[name].unit if name in PARAMETERS else ""
        rhat = diag[name]["r_hat"]
        warn = " style='color:#c62828'" if math.isfinite(rhat) and rhat > 1.05 else ""
        rows.append(
            f"<tr><td {cell}><b>{html.escape(name)}</b></td><td {cell}>"
            f"{html.escape(unit)}</td><td {cell}>{_fmt(p50[i], 6)}</td>"
            f"<td {cell}>{_fmt(p50[i] - p16[i], 3)}</td>"
            f"<td {cell}>{_fmt(p84[i] - p50[i], 3)}</td>"
            f"<td {cell}>{_fmt(diag[name]['ess'], 3)}</td>"
            f"<td {cell}><span{warn}>{_fmt(rhat, 4)}</span></td></tr>")
    summary = result.sampler_summary()
    facts = [f"{summary['backend']}, {summary['nchains']} "
             f"{'walkers' if result.backend == 'emcee' else 'chains'}, "
             f"{summary['warmup']} warmup + {summary['samples']} draws"]
    if "acceptance_fraction" in summary:
        facts.append(f"acceptance fraction {summary['acceptance_fraction']:.2f}")
    if "step_size" in summary:
        facts.append(f"step size {summary['step_size']:.3g}, median "
                     f"{summary['median_steps_per_draw']:.0f} steps per draw")
    if "divergences" in summary:
        facts.append(f"{summary['divergences']} divergent draws")
    if result.stopped:
        facts.append("stopped early")
    return (f"<table class='eddy-posterior'><tr>{head}</tr>{''.join(rows)}</table>"
            f"<div style='font-size:90%'>{html.escape('; '.join(facts))}</div>")


def figure_output(fig) -> dict:
    """A matplotlib figure as an Output widget's display_data (PNG); closes it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    finally:
        plt.close(fig)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"output_type": "display_data",
            "data": {"image/png": png, "text/plain": "<Figure>"}, "metadata": {}}


@contextmanager
def quiet():
    """Keep numpy, warnings and corner's log messages out of the notebook while
    results are drawn in the fit's thread (they would be printed to whichever
    cell runs, and not at all under ipykernel 7.0). The warnings filter is
    process-wide, so this is kept to the few seconds of a refresh."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


class ResultsPanel(W.VBox):
    """Posterior table, corner plot and data / model / residual maps.

    Args:
        session: the session whose results to show.
        corner, maps: draw the corner plot / the maps (they take a second or
            two; the table is always made).

    Attributes:
        table: HTML posterior table.
        corner_output, maps_output: ``ipywidgets.Output`` with the figures.
        refreshes: how many times it was refreshed.
    """

    def __init__(self, session: FitSession, corner: bool = True, maps: bool = True,
                 **kwargs):
        self.session = session
        self.show_corner = corner
        self.show_maps = maps
        self.note = W.HTML("<i>Results appear when a run stops or ends.</i>")
        self.table = W.HTML()
        # A corner plot of many parameters needs room: at 700 px its labels
        # were a few pixels high.
        self.corner_output = W.Output(layout=W.Layout(max_width="1100px"))
        self.maps_output = W.Output()
        self.refresh_button = W.Button(description="Refresh", icon="refresh",
                                       tooltip="redraw from the draws made so far "
                                               "(only while no fit is running)")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.refreshes = 0
        self._lock = threading.Lock()
        tabs = W.Tab([self.corner_output, self.maps_output],
                     titles=["corner", "residual maps"])
        super().__init__([W.HTML("<h4 style='margin:4px 0'>Results</h4>"),
                          W.HBox([self.note, self.refresh_button]), self.table, tabs],
                         **kwargs)
        session.observe(self._on_status, names=["status"])
        if session.status in ("stopped", "done"):
            self.refresh()

    def _on_status(self, change) -> None:
        self.refresh_button.disabled = self.session.busy
        if change.new in ("stopped", "done"):
            self.refresh()

    def refresh(self) -> None:
        """Redraw from the session's result (not while it is growing)."""
        s = self.session
        result, run = s.result, s.fit_run
        if s.busy:
            self.note.value = "<i>The fit is running; results appear when it stops.</i>"
            return
        with self._lock:
            self.refreshes += 1
            if result is None or result.n_draws("sampling") == 0:
                self.note.value = "<i>No post-warmup draws yet.</i>"
                self.table.value = ""
                self.corner_output.outputs = ()
                self.maps_output.outputs = ()
                return
            try:
                with quiet():
                    self._draw(result, run)
            except Exception as exc:  # noqa: BLE001 - shown, never printed
                self.note.value = (f"<span style='color:#c62828'>Could not draw the "
                                   f"results: {html.escape(type(exc).__name__)}: "
                                   f"{html.escape(str(exc))}</span>")

    def _draw(self, result, run) -> None:
        self.table.value = posterior_table(result)
        self.note.value = ""
        if self.show_corner:
            self._draw_corner(result)
        if self.show_maps and run is not None:
            self._draw_maps(result, run)

    def _draw_corner(self, result) -> None:
        from .. import plots

        if result.samples.shape[0] < 2:
            self.corner_output.outputs = ()
            return
        import matplotlib

        # corner draws about 2 inches per parameter, and the PNG is shown at
        # most 1100 px wide: larger type keeps the labels readable.
        with matplotlib.rc_context({"font.size": 14}):
            fig = plots.plot_corner(result)
        self.corner_output.outputs = (figure_output(fig),)

    def _draw_maps(self, result, run) -> None:
        from .. import plots

        theta = np.median(result.samples, axis=0)
        model = run.posterior.model_map(theta)
        fig = plots.plot_maps(run.posterior.data, model, run.posterior.mask,
                              title="model at the posterior median")
        self.maps_output.outputs = (figure_output(fig),)
