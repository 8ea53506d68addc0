"""All panels of a fit in one notebook cell, laid out for a laptop screen.

The run's controls, its status and its progress line stay at the top; the
panels sit below in tabs (set-up, chains, maps, results, export), so that the dashboard is
as tall as one panel, not as all of them. A tab layout rather than a grid: at
1280 x 720 with JupyterLab's file browser open the notebook is ~950 px wide
and ~600 px tall, too small for the editor and the chains side by side
(they wrapped, and the chains fell ~900 px below Run). Run opens the chains
tab, and the end of a run opens the results (whose verdict comes first)
unless the person has chosen another tab meanwhile.
"""

from __future__ import annotations

import ipywidgets as W

from ..session import FitSession
from ..session.runner import BUSY
from .backend import BackendSelector
from .chains import ChainView
from .controls import RunControls
from .editor import ParameterEditor
from .export import ExportPanel
from .maps import MapPanel
from .results import ResultsPanel

__all__ = ["FitDashboard"]

#: The tabs' titles, in order.
TABS = ("Set-up", "Chains", "Maps", "Results", "Export")


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
            else:
                session = FitSession(cube=cube)
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
        header = W.VBox([self.controls, self.chains.progress],
                        layout=W.Layout(flex="0 0 auto"))
        setup = W.VBox([self.backend, self.editor])
        self.tabs = W.Tab([setup, self.chains, self.maps, self.results, self.export],
                          titles=list(TABS))
        self._tab_at_run: int | None = None
        super().__init__([header, self.tabs], layout=W.Layout(width="100%"))
        self.add_class("eddy-dashboard")
        session.observe(self._on_status, names=["status"])

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
        return cls(cube, session=session)
