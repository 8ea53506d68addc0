"""All panels of a fit in one notebook cell, laid out for a laptop screen.

The run's controls, its status and its progress line stay at the top: the
header is pinned (CSS ``position: sticky``), so that Run, Stop and the
progress line stay in view while a tall tab scrolls under them on a laptop's
screen; the panels sit below in tabs (set-up, chains, maps, results, export),
so that the dashboard is as tall as one panel, not as all of them. The
editor's rows flow into two columns where the notebook is wide enough
(CSS multi-column, one column on a laptop). A tab layout rather than a grid: at
1280 x 720 with JupyterLab's file browser open the notebook is ~950 px wide
and ~600 px tall, too small for the editor and the chains side by side
(they wrapped, and the chains fell ~900 px below Run). Run opens the chains
tab, and the end of a run opens the results (whose verdict comes first)
unless the person has chosen another tab meanwhile.
"""

from __future__ import annotations

import ipywidgets as W

from ..data.example import RUN_DEFAULTS
from ..session import FitSession
from ..session.runner import BUSY
from .backend import BackendSelector
from .chains import ChainView
from .controls import RunControls
from .editor import ParameterEditor
from .export import ExportPanel
from .maps import MapPanel
from .results import ResultsPanel

__all__ = ["FitDashboard", "with_run_defaults"]

#: The tabs' titles, in order.
TABS = ("Set-up", "Chains", "Maps", "Results", "Export")

#: The dashboard's style sheet (one ``<style>`` in a hidden HTML widget).
#: The header is pinned to the top of the notebook's scrolling area while
#: the dashboard is in view: ``position: sticky`` works only if no box
#: between it and that area clips overflow, so the dashboard and the output
#: area holding it let it out (ipywidgets' boxes and JupyterLab's output
#: area set ``overflow: auto``); what the browser scrolls into view in the
#: tabs (a focused field) stops below the header (``scroll-margin-top``, the
#: header's usual height). The editor (class ``eddy-editor``) flows
#: into columns at least 720 px wide: two where the notebook is ~1450 px
#: wide, one on a laptop.
STYLE = """<style>
.eddy-dashboard, .eddy-dashboard > .eddy-header,
.jp-OutputArea-output:has(> .eddy-dashboard),
.jp-OutputArea-child:has(.eddy-dashboard),
.jp-OutputArea:has(.eddy-dashboard),
.jp-Cell-outputWrapper:has(.eddy-dashboard),
.jp-Cell-outputArea:has(.eddy-dashboard) { overflow: visible !important; }
.eddy-dashboard > .eddy-header {
  position: sticky; top: 0; z-index: 20;
  background: var(--jp-layout-color1, #fff);
  border-bottom: 1px solid var(--jp-border-color2, #e0e0e0);
  padding-bottom: 2px;
}
.eddy-dashboard > :not(.eddy-header) * { scroll-margin-top: 190px; }
.eddy-dashboard .eddy-editor { display: block !important; columns: 720px 2;
  column-gap: 24px; }
.eddy-dashboard .eddy-editor > * { break-inside: avoid; }
</style>"""


class FitDashboard(W.VBox):
    """Run controls, status and progress on top; set-up (sampler and
    parameters), live chains, maps, results and export in tabs; every panel
    observes one :class:`FitSession`.

    Args:
        cube: the ``rotationmap`` to fit.
        session: an existing session (its cube is set to ``cube`` if given).
        **fit_kwargs: a ``fit_map`` call's arguments (``p0``, ``params``, ...)
            to start from, as :meth:`from_fit_kwargs`. Without them the
            session starts from generic defaults: x0, y0, PA, mstar and vlsr
            free (vlsr starting at the map's median), everything else fixed at
            the parameter table's defaults.

    Attributes:
        session, editor, backend, controls, chains, maps, results, export:
        the session and the panels.
        tabs: the ``ipywidgets.Tab`` holding the panels (titles :data:`TABS`).
    """

    def __init__(self, cube=None, session: FitSession | None = None, **fit_kwargs):
        if session is None:
            if fit_kwargs:
                fit_kwargs.setdefault("priors", getattr(cube, "priors", None))
                session = FitSession.from_fit_kwargs(cube=cube, **fit_kwargs)
                with_run_defaults(session, loaded=fit_kwargs.get("mcmc", "emcee"))
            else:
                session = with_run_defaults(FitSession(cube=cube))
        elif fit_kwargs:
            raise TypeError("Give either a session or fit_map arguments, not both.")
        if cube is not None:
            session.cube = cube
        self.session = session
        self.editor = ParameterEditor(session)
        self.backend = BackendSelector(session)
        self.controls = RunControls(session)
        # Three columns of traces: at ~900 px two rows of them and the
        # header fit in a laptop's notebook area; a panel is ~300 px wide, so
        # 400 points per line show every pixel's worth. The progress line
        # belongs with the status, above the tabs, so that it shows whichever
        # tab is open.
        self.chains = ChainView(session, columns=3, max_points=400,
                                show_progress=False)
        self.maps = MapPanel(session)
        self.results = ResultsPanel(session)
        self.export = ExportPanel(session)
        self.chains.progress.add_class("eddy-progress")
        self.stylesheet = W.HTML(STYLE, layout=W.Layout(display="none"))
        self.header = W.VBox([self.controls, self.chains.progress, self.stylesheet],
                             layout=W.Layout(flex="0 0 auto"))
        self.header.add_class("eddy-header")
        header = self.header
        setup = W.VBox([self.backend, self.editor])
        self.tabs = W.Tab([setup, self.chains, self.maps, self.results, self.export],
                          titles=list(TABS))
        self._tab_at_run: int | None = None
        super().__init__([header, self.tabs], layout=W.Layout(width="100%"))
        self.add_class("eddy-dashboard")
        session.observe(self._on_status, names=["status"])

    def __repr__(self) -> str:
        # What a notebook shows where the widget cannot be drawn (before the
        # cell runs, without the widget front-end): a sentence, not the
        # trait dump of every child.
        return ("FitDashboard: run this cell in JupyterLab (with ipywidgets) to see "
                "the dashboard")

    def show(self, title: str) -> None:
        """Open the tab called ``title`` (one of :data:`TABS`)."""
        self.tabs.selected_index = list(self.tabs.titles).index(title)

    def _on_status(self, change) -> None:
        if change.new in BUSY and change.old not in BUSY:
            self.show("Chains")
            self._tab_at_run = self.tabs.selected_index
        elif change.new in ("stopped", "done"):
            # Only if the person is still watching the chains.
            if self.tabs.selected_index == self._tab_at_run:
                self.show("Results")
            self._tab_at_run = None

    @classmethod
    def from_fit_kwargs(cls, cube, p0, params, priors=None, **kwargs) -> "FitDashboard":
        """A dashboard holding a ``fit_map`` call's set-up, e.g. a tutorial's::

            cube.set_prior('r_taper', [0.0, 50.0], 'flat')
            FitDashboard.from_fit_kwargs(cube, p0=p0, params=params,
                                         mcmc='numpyro', nwalkers=1, ...)

        ``priors`` defaults to ``cube.priors`` (what ``set_prior`` set).
        """
        if priors is None:
            priors = getattr(cube, "priors", None)
        session = FitSession.from_fit_kwargs(p0, params, priors=priors, cube=cube,
                                             **kwargs)
        with_run_defaults(session, loaded=kwargs.get("mcmc", "emcee"))
        return cls(cube, session=session)


def with_run_defaults(session: FitSession, loaded: str | None = None) -> FitSession:
    """``session`` with the dashboard's counts for the backends its set-up
    gave none for: the one table of run defaults,
    :data:`~eddy_widgets.data.example.RUN_DEFAULTS` (NUTS: counts that
    converge on the bundled example; the command line takes them too). The
    backend of a loaded ``fit_map`` call (``loaded``) keeps that call's
    counts, as ``fit_map`` would run them."""
    session.use_count_defaults(RUN_DEFAULTS, keep=(loaded,) if loaded else ())
    return session
