"""The results of a :class:`~eddy_widgets.session.FitSession`'s run: the
verdict, the posterior table, corner plot and data / model / residual maps,
refreshed when the run stops or ends.

The verdict comes first, in words: converged or not (by the checks of the
sampler that made the draws, :mod:`eddy_widgets.inference.diagnostics`), then
every warning as a sentence that says what to do. The table's diagnostic
columns fit the sampler: for emcee the effective sample size and the chain
length in autocorrelation times (R-hat over walkers is not a valid
diagnostic); for NUTS bulk and tail ESS and rank-normalised R-hat.

Figures are drawn with :mod:`eddy_widgets.plots`, rendered to PNG on an
explicit Agg canvas (never the canvas pyplot's backend gave the figure: drawn
from the fit's thread it was once a bare ``FigureCanvasBase``) and placed in
``ipywidgets.Output`` widgets by setting their outputs (which works from the
fit's thread, where the refresh runs; nothing is printed). A figure that fails
is drawn again once; if it fails again, its place says so and to press
Refresh, and the verdict, the table and the other figure are shown all the
same.

Results on screen are always those of a named run: while a new run is
prepared or sampling, after a failed run, or after a start that failed (the
session then holds the earlier run again), a banner above them names the run
they belong to (:attr:`ResultsPanel.banner`).
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

from ..formatting import fixed, round_posterior
from ..inference import diagnostics as D
from ..inference.noise import noise_sentence
from ..parameters import PARAMETERS
from ..session import FitSession

__all__ = ["ResultsPanel", "posterior_table", "verdict_html", "noise_html", "COLOURS",
           "banner_html", "figure_output"]

#: Colours of the panel: good, problem (a run that did not converge), advice.
COLOURS = {"good": "#2e7d32", "bad": "#c62828", "advice": "#b26a00"}

#: What a figure is called in the panel's messages.
FIGURE_NAMES = {"corner": "the corner plot", "maps": "the residual maps"}


def banner_html(text: str, colour: str = COLOURS["advice"]) -> str:
    """A banner above results that are not the current run's (HTML ``text``):
    a coloured bar on the left, normal wrapping."""
    return (f"<div class='eddy-stale' style='border-left:4px solid {colour}; "
            f"padding:2px 8px; margin:2px 0; line-height:1.4; color:{colour}'>"
            f"{text}</div>")


def _fmt(value: float, decimals: int) -> str:
    """Fixed point with ``decimals`` places (a dash for a missing value): the
    table's one number format."""
    if value is None or not math.isfinite(value):
        return "&ndash;"
    return fixed(value, decimals)


def _flag(text: str, bad: bool) -> str:
    """``text`` in red when ``bad``."""
    return f"<span style='color:{COLOURS['bad']}'>{text}</span>" if bad else text


def verdict_html(converged: bool, notes: list[str]) -> str:
    """The verdict in words: one line (green 'Converged' or red 'Not
    converged'), then the warnings as a list (amber when the chains
    converged, so that nothing is red on a converged fit)."""
    if converged:
        head = (f"<b style='color:{COLOURS['good']}'>&#10004; Converged</b>"
                + (": the chains pass every check of their sampler, but the fit is "
                   "questionable: read the warnings below." if notes else
                   ": the chains pass every check of their sampler; no warnings."))
    else:
        head = (f"<b style='color:{COLOURS['bad']}'>&#10008; Not converged</b>: "
                "do not trust these numbers yet.")
    colour = COLOURS["advice"] if converged else COLOURS["bad"]
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    listing = (f"<ul class='eddy-warnings' style='margin:2px 0; color:{colour}'>"
               f"{items}</ul>" if notes else "")
    # Widgets' HTML lines are 28 px apart unless told (ipywidgets' inline height).
    return f"<div class='eddy-verdict' style='line-height:1.4'>{head}{listing}</div>"


def noise_html(result) -> str:
    """The noise model of a ``noise='correlated'`` fit in one sentence
    (:func:`~eddy_widgets.inference.noise.noise_sentence` of
    ``result.settings['noise']``, what ``fit_map`` prints); ``''`` for
    astro-eddy's independent pixels."""
    info = (getattr(result, "settings", None) or {}).get("noise")
    if not info:
        return ""
    try:
        text = noise_sentence(info)
    except (KeyError, TypeError, ValueError):     # a result file edited by hand
        return ""
    return f"<div class='eddy-noise' style='margin:2px 0'>{html.escape(text)}</div>"


def _legend(result, truths: bool) -> list[str]:
    """One line per column of :func:`posterior_table`."""
    lines = ["parameter, unit: the free parameter and its unit.",
             "median: the 50th percentile of the post-warmup draws (PA on the "
             "circle, in [0, 360)), rounded with its errors so that the smaller "
             "error has two significant figures.",
             "&minus; / +: the median minus the 16th percentile / the 84th "
             "percentile minus the median (a 68% interval; about 1 sigma)."]
    if result.backend_spec.ensemble:
        want = D.threshold("emcee_min_chain_taus")
        lines += ["ESS: effective sample size, nwalkers &times; nsteps / &tau;, where "
                  "&tau; is emcee's integrated autocorrelation time in steps.",
                  f"n/&tau;: the chain length in autocorrelation times; want &ge; "
                  f"{want} (red below)."]
    else:
        per_chain = D.threshold("nuts_min_ess_per_chain")
        lines += [f"ESS bulk: effective sample size of the posterior's centre "
                  f"(ArviZ); want &ge; {per_chain} per chain, "
                  f"{per_chain * result.nchains} here (red below).",
                  f"ESS tail: effective sample size of its 5% and 95% quantiles "
                  f"(ArviZ); want &ge; {per_chain} per chain (red below).",
                  f"R-hat: rank-normalised split R-hat (ArviZ), how far the chains "
                  f"(or their halves) disagree; want &le; {D.threshold('nuts_max_rhat')} "
                  f"(red above)."]
    if truths:
        lines += ["truth: the value the map was made with.",
                  "(median - truth)/sd: how many posterior widths (sd, half the "
                  "16th-84th percentile range) the median lies above the truth."]
    return lines


def posterior_table(result, truths: dict | None = None) -> str:
    """HTML table of a result: parameter, unit, median, -/+ (16th/84th
    percentiles) and the diagnostics that fit the sampler (emcee: ESS and
    n/tau; NUTS: ESS bulk, ESS tail and R-hat), with ``truths`` the true
    value and the pull; a legend line per column and one line of sampler
    statistics."""
    p16, p50, p84 = result.percentiles()
    diag = result.diagnostics()
    emcee = result.backend_spec.ensemble
    cell = "style='padding:1px 8px; text-align:right'"
    heads = ["parameter", "unit", "median", "&minus;", "+"]
    heads += ["ESS", "n/&tau;"] if emcee else ["ESS bulk", "ESS tail", "R-hat"]
    if truths:
        heads += ["truth", "(median - truth)/sd"]
    head = "".join(f"<th {cell}>{h}</th>" for h in heads)
    min_taus = D.threshold("emcee_min_chain_taus")
    max_rhat = D.threshold("nuts_max_rhat")
    min_ess = D.threshold("nuts_min_ess_per_chain") * result.nchains
    rows = []
    for i, name in enumerate(result.names):
        unit = PARAMETERS[name].unit if name in PARAMETERS else ""
        d = diag[name]
        median, down, up = round_posterior(p16[i], p50[i], p84[i])
        cells = [f"<b>{html.escape(name)}</b>", html.escape(unit), median, down, up]
        if emcee:
            n_tau = d["n_tau"]
            cells += [_fmt(d["ess"], 0),
                      _flag(_fmt(n_tau, 0), math.isfinite(n_tau) and n_tau < min_taus)]
        else:
            for key in ("ess_bulk", "ess_tail"):
                cells.append(_flag(_fmt(d[key], 0),
                                   math.isfinite(d[key]) and d[key] < min_ess))
            rhat = d["r_hat"]
            cells.append(_flag(_fmt(rhat, 3), math.isfinite(rhat) and rhat > max_rhat))
        if truths:
            truth = truths.get(name)
            if truth is None:
                cells += ["", ""]
            else:
                sd = 0.5 * (p84[i] - p16[i])
                diff = p50[i] - truth
                if name in D.CIRCULAR:
                    diff = (diff + 180.0) % 360.0 - 180.0
                decimals = len(median.partition(".")[2])
                cells += [_fmt(truth, max(decimals, 0)),
                          _fmt(diff / sd if sd > 0 else math.nan, 1)]
        rows.append("<tr>" + "".join(f"<td {cell}>{c}</td>" for c in cells) + "</tr>")
    legend = "".join(f"<div>{line}</div>" for line in _legend(result, bool(truths)))
    return (f"<table class='eddy-posterior'><tr>{head}</tr>{''.join(rows)}</table>"
            f"<div class='eddy-legend' style='font-size:85%; color:#757575; line-height:1.35'>"
            f"{legend}</div>"
            f"<div style='font-size:90%'>{html.escape('; '.join(_facts(result)))}</div>")


def _facts(result) -> list[str]:
    """The run in a few words: sampler, counts, acceptance or tree sizes,
    divergences, reduced chi2."""
    summary = result.sampler_summary()
    n = summary["nchains"]
    facts = [f"{summary['backend']}, {n} "
             f"{result.backend_spec.unit}{'s' if n != 1 else ''}, "
             f"{summary['warmup']} warmup + {summary['samples']} draws"]
    if "acceptance_fraction" in summary:
        facts.append(f"acceptance fraction {summary['acceptance_fraction']:.2f}")
    if "step_size" in summary:
        facts.append(f"step size {summary['step_size']:.3g}, median "
                     f"{summary['median_steps_per_draw']:.0f} steps per draw")
    if "divergences" in summary:
        facts.append(f"{summary['divergences']} divergent draws")
    if "max_tree_depth_hits" in summary:
        facts.append(f"{summary['max_tree_depth_hits']} draws at max_tree_depth")
    if "reduced_chi2" in summary:
        # Under correlated noise the fitted noise_scale takes up dv0's level:
        # chi2 against dv0 is no check there (the verdict says nothing of it).
        want = ("against dv0; noise_scale takes up its level"
                if result.settings.get("noise") else "want near 1")
        facts.append(f"reduced chi2 {summary['reduced_chi2']:.3g} ({want})")
    if result.stopped:
        facts.append("stopped early")
    return facts


def figure_output(fig) -> dict:
    """A matplotlib figure as an Output widget's display_data (PNG); closes it.

    The PNG has a palette of 256 colours (with transparency): a corner plot
    of nine parameters is ~0.3 MB instead of ~1.4 MB, which the browser
    receives and a notebook stores with its widget state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    import matplotlib.pyplot as plt
    from PIL import Image

    buffer = io.BytesIO()
    try:
        # An explicit Agg canvas: whatever canvas the figure was made with
        # (pyplot's backend, or a bare FigureCanvasBase), this one can render
        # and has get_renderer, from any thread.
        FigureCanvasAgg(fig).print_figure(buffer, format="png", dpi=80,
                                          bbox_inches="tight")
    finally:
        plt.close(fig)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGBA")
    image = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    # The quantiser buckets opacity too (opaque text came out at 241/255):
    # entries nearly opaque are made opaque again.
    palette = image.getpalette(rawmode="RGBA")
    palette[3::4] = [255 if a >= 224 else a for a in palette[3::4]]
    image.putpalette(palette, rawmode="RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
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
    """The verdict, posterior table, corner plot and data / model / residual
    maps.

    Args:
        session: the session whose results to show.
        corner, maps: draw the corner plot / the maps (they take a second or
            two; the verdict and the table are always made).
        truths: ``{name: value}`` of known true values (e.g. a synthetic
            map's): the table gets a truth and a (median - truth)/sd column.

    Attributes:
        verdict: HTML at the top: converged or not in words, then the
            warnings (``result.converged`` and ``result.warnings``); above
            them, when the results shown are not the current run's, a banner
            (class ``eddy-stale``, :meth:`banner_text`) naming the run they
            belong to (its number, backend, counts and start time,
            :meth:`FitSession.run_label`) and why (a new run is being
            prepared or sampling, Continue is sampling, the last run failed,
            or a start failed and the session holds the earlier run again).
        stale: whether that banner shows.
        shown_run: the ``run_id`` of the results shown (``None`` before any).
        shown_label: that run in words, as it was when drawn.
        noise: under ``noise='correlated'`` the noise model in one sentence
            (:func:`noise_html`); empty and hidden for independent pixels.
        converged: the last drawn result's verdict (``None`` before any).
        warnings: its warning sentences.
        table: HTML posterior table.
        corner_output, maps_output: ``ipywidgets.Output`` with the figures.
        figure_errors: ``{'corner' | 'maps': message}`` of figures that
            could not be drawn (twice) at the last refresh.
        refreshes: how many times it was refreshed.
    """

    def __init__(self, session: FitSession, corner: bool = True, maps: bool = True,
                 truths: dict | None = None, **kwargs):
        self.session = session
        self.show_corner = corner
        self.show_maps = maps
        self.truths = dict(truths) if truths else None
        self.converged: bool | None = None
        self.warnings: list[str] = []
        self.shown_run: int | None = None
        self.shown_label = ""
        self._shown_fit = None
        self._shown_draws = 0
        self._shown_unit = "chain"
        self.figure_errors: dict[str, str] = {}
        self._banner = ""
        self._verdict = ""
        self.verdict = W.HTML()
        self.noise = W.HTML(layout=W.Layout(display="none"))
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
        super().__init__([W.HTML("<h4 style='margin:4px 0'>Results</h4>"), self.verdict,
                          self.noise,
                          W.HBox([self.note, self.refresh_button]),
                          self.table, tabs],
                         **kwargs)
        self.add_class("eddy-results")
        session.observe(self._on_status, names=["status"])
        if session.status in ("stopped", "done"):
            self.refresh()

    def _on_status(self, change) -> None:
        self.refresh_button.disabled = self.session.busy
        if change.new in ("stopped", "done"):
            self.refresh()
        self._show_banner()

    # -- whose results these are -------------------------------------------------

    @property
    def stale(self) -> bool:
        """Whether results are shown that are not the session's current
        run as it stands (the banner says whose they are)."""
        return bool(self._banner)

    def banner_text(self) -> str:
        """The banner's HTML for the session as it is now (``''``: the results
        shown are the current run's, or none are shown)."""
        s = self.session
        if self.shown_run is None or not self.table.value:
            return ""
        label = html.escape(self.shown_label or f"run {self.shown_run}")
        same = s.fit_run is not None and s.fit_run is self._shown_fit
        unit = self._shown_unit
        if s.busy:
            doing = ("is being prepared" if s.status == "optimising" else
                     "is stopping" if s.status == "stopping" else "is still sampling")
            if same:
                return banner_html(
                    f"<b>Results so far</b>: these are {label} at "
                    f"{self._shown_draws} draws per {html.escape(unit)}, before "
                    f"Continue; the run {doing}: they are redrawn when it stops or "
                    f"ends.")
            return banner_html(
                f"<b>Previous run</b>: these are the results of {label}. This is "
                f"the previous run; the current run {doing}: its results replace "
                f"these when it stops or ends.")
        if s.status == "error":
            if same and s.start_failed:
                return banner_html(
                    f"<b>The last run failed</b> before it started (its error is at "
                    f"the top), so the session holds the earlier run again: these "
                    f"are its results, {label}. Continue goes on with it.",
                    COLOURS["bad"])
            if same:
                return banner_html(
                    f"<b>The last run failed</b> while continuing (its error is at "
                    f"the top): these are its results before Continue, {label} at "
                    f"{self._shown_draws} draws per {html.escape(unit)}.",
                    COLOURS["bad"])
            return banner_html(
                f"<b>The last run failed</b> (its error is at the top): these are "
                f"the results of the run before it, {label}.", COLOURS["bad"])
        if not same:
            # e.g. a session whose run was replaced from code: never unnamed.
            return banner_html(f"<b>Another run</b>: these are the results of "
                               f"{label}, not of the session's current run.")
        return ""

    def _show_banner(self) -> None:
        """The verdict with the banner (if any) above it."""
        self._banner = self.banner_text()
        value = self._banner + self._verdict
        if self.verdict.value != value:
            self.verdict.value = value

    # -- drawing -------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw from the session's result (not while it is growing)."""
        s = self.session
        result, run = s.result, s.fit_run
        if s.busy:
            self.note.value = "<i>The fit is running; results appear when it stops.</i>"
            self._show_banner()
            return
        with self._lock:
            self.refreshes += 1
            if result is None or result.n_draws("sampling") == 0:
                self.note.value = "<i>No post-warmup draws yet.</i>"
                self._clear_verdict()
                self.table.value = ""
                self.corner_output.outputs = ()
                self.maps_output.outputs = ()
                self.shown_run, self.shown_label, self._shown_fit = None, "", None
                self._show_banner()
                return
            self.shown_run, self.shown_label = s.run_id, s.run_label()
            self._shown_fit = run
            self._shown_draws = result.n_draws("sampling") + result.n_draws("warmup")
            self._shown_unit = getattr(result.backend_spec, "unit", "chain")
            try:
                with quiet():
                    self._draw(result, run)
            except Exception as exc:  # noqa: BLE001 - shown, never printed
                self.note.value = (f"<span style='color:{COLOURS['bad']}'>Could not draw the "
                                   f"results: {html.escape(type(exc).__name__)}: "
                                   f"{html.escape(str(exc))}. Press Refresh to try "
                                   f"again.</span>")
            self._show_banner()

    def _clear_verdict(self) -> None:
        self.converged, self.warnings = None, []
        self._verdict = ""
        self._banner = ""
        self.verdict.value = ""
        self._show_noise(None)

    def _show_noise(self, result) -> None:
        self.noise.value = noise_html(result) if result is not None else ""
        self.noise.layout.display = None if self.noise.value else "none"

    def _draw(self, result, run) -> None:
        self._clear_verdict()
        converged, notes = result.converged, result.warnings
        self.converged, self.warnings = converged, list(notes)
        self._verdict = verdict_html(converged, notes)
        self.verdict.value = self._verdict
        self._show_noise(result)
        self.table.value = posterior_table(result, self.truths)
        self.note.value = ""
        self.figure_errors = {}
        if self.show_corner:
            self._figure("corner", lambda: self._draw_corner(result))
        if self.show_maps and run is not None:
            self._figure("maps", lambda: self._draw_maps(result, run))
        if self.figure_errors:
            self.note.value = "".join(
                f"<div style='color:{COLOURS['bad']}'>{html.escape(m)}</div>"
                for m in self.figure_errors.values())

    def _figure(self, key: str, draw) -> None:
        """Draw one figure; again once if it fails (a figure made in the
        fit's thread once came with a canvas that cannot render); if it
        fails again, its output says so and what to press."""
        import matplotlib.pyplot as plt

        for _attempt in (1, 2):
            before = set(plt.get_fignums())
            try:
                draw()
                return
            except Exception as exc:  # noqa: BLE001 - shown, never printed
                for num in set(plt.get_fignums()) - before:
                    plt.close(num)
                error = f"{type(exc).__name__}: {exc}"
        what = FIGURE_NAMES[key]
        message = (f"Could not draw {what} ({error}). Press Refresh (above the "
                   f"table) to draw it again; the verdict and the table are "
                   f"complete.")
        self.figure_errors[key] = message
        output = self.corner_output if key == "corner" else self.maps_output
        output.outputs = ({"output_type": "display_data", "metadata": {},
                           "data": {"text/plain": message,
                                    "text/html": f"<div style='color:{COLOURS['bad']}'>"
                                                 f"{html.escape(message)}</div>"}},)

    def _draw_corner(self, result) -> None:
        from .. import plots

        if result.samples.shape[0] < 2:
            self.corner_output.outputs = ()
            return
        import matplotlib

        # corner draws about 2 inches per parameter, and the PNG is shown at
        # most 1100 px wide: larger type keeps the labels readable.
        with matplotlib.rc_context({**plots.SCREEN_STYLE, "font.size": 14}):
            fig = plots.plot_corner(result)
        self.corner_output.outputs = (figure_output(fig),)

    def _draw_maps(self, result, run) -> None:
        import matplotlib

        from .. import plots

        # The posterior median as everywhere (PA on the circle).
        theta = D.sample_medians(result.samples, result.names)
        model = run.posterior.model_map(theta)
        with matplotlib.rc_context(plots.SCREEN_STYLE):
            figures = [plots.plot_maps(run.posterior.data, model, run.posterior.mask,
                                       title="model at the posterior median")]
            cube = self.session.cube
            if cube is not None and hasattr(cube, "polar_residual"):
                # The residual in the disk frame: a ring the model misses is a
                # vertical band, a local perturbation a spot.
                median = run.posterior.spec.to_params(theta)
                figures.append(plots.plot_polar_residual(*cube.polar_residual(None,
                                                                             median)))
        self.maps_output.outputs = tuple(figure_output(fig) for fig in figures)
