"""All panels of a fit in one notebook cell."""

from __future__ import annotations

import ipywidgets as W

from ..session import FitSession
from .backend import BackendSelector
from .chains import ChainView
from .controls import RunControls
from .editor import ParameterEditor
from .results import ResultsPanel

__all__ = ["FitDashboard"]


class FitDashboard(W.VBox):
    """Editor, sampler choice and run controls on the left, live chains on the
    right, results below; every panel observes one :class:`FitSession`.

    Args:
        cube: the ``rotationmap`` to fit.
        session: an existing session (its cube is set to ``cube`` if given).
        **fit_kwargs: a ``fit_map`` call's arguments (``p0``, ``params``, ...)
            to start from, as :meth:`from_fit_kwargs`. Without them the
            session starts from generic defaults: x0, y0, PA, mstar and vlsr
            free (vlsr starting at the map's median), everything else fixed at
            the parameter table's defaults.

    Attributes:
        session, editor, backend, controls, chains, results: the session and
        the panels.
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
        self.chains = ChainView(session)
        self.results = ResultsPanel(session)
        # The left column scrolls: its panels keep their natural height (a
        # flex item with overflow would otherwise be squeezed to fit, hiding
        # the buttons and overlapping the rows), and it is wide enough for a
        # parameter row (label, free, value, prior kind and two numbers).
        for panel in (self.controls, self.backend, self.editor):
            panel.layout.flex = "0 0 auto"
        left = W.VBox([self.controls, self.backend, self.editor],
                      layout=W.Layout(width="48%", min_width="720px",
                                      overflow="auto", max_height="900px"))
        right = W.VBox([self.chains], layout=W.Layout(flex="1 1 0%", min_width="420px"))
        top = W.HBox([left, right], layout=W.Layout(width="100%",
                                                    flex_flow="row wrap",
                                                    grid_gap="12px"))
        super().__init__([top, self.results])

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
