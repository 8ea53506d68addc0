"""JupyterLab panels of a fit, each observing one
:class:`~eddy_widgets.session.FitSession` (which lives in
:mod:`eddy_widgets.session`).

- :class:`ParameterEditor`: free / value / prior of every parameter.
- :class:`BackendSelector`: emcee or numpyro, counts and options.
- :class:`RunControls`: Run / Stop / Continue and the run's error.
- :class:`ChainView`: live traces (bqplot), sampler health, progress.
- :class:`ResultsPanel`: posterior table, corner plot, residual maps.
- :class:`FitDashboard`: all of them in one cell.
"""

from .backend import BackendSelector
from .chains import ChainView
from .controls import RunControls
from .dashboard import FitDashboard
from .editor import ParameterEditor
from .results import ResultsPanel

__all__ = ["BackendSelector", "ChainView", "FitDashboard", "ParameterEditor",
           "ResultsPanel", "RunControls"]
