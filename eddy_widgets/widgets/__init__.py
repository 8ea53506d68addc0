"""JupyterLab panels of a fit, each observing one
:class:`~eddy_widgets.session.FitSession` (which lives in
:mod:`eddy_widgets.session`).

- :class:`ParameterEditor`: free / value / prior of every parameter.
- :class:`BackendSelector`: emcee or numpyro, counts and options.
- :class:`RunControls`: Run / Stop / Continue and the run's error.
- :class:`ChainView`: live traces (bqplot), sampler health, progress.
- :class:`MapPanel`: data, model and residual maps to pan, zoom and read
  under the cursor, with the fit mask (:class:`MapFigure` is one such map).
- :class:`ResultsPanel`: verdict, posterior table, corner plot, residual maps.
- :class:`ExportPanel`: figures, FITS, result file and script into a folder.
- :class:`FitDashboard`: all of them in one cell.
- :class:`ModelExplorer`: sliders -> model map, no fit (notebook 02).
"""

from .backend import BackendSelector
from .chains import ChainView
from .controls import RunControls
from .dashboard import FitDashboard
from .editor import ParameterEditor
from .explorer import ModelExplorer
from .export import ExportPanel
from .maps import MapPanel
from .mapview import MapFigure
from .results import ResultsPanel

__all__ = ["BackendSelector", "ChainView", "ExportPanel", "FitDashboard", "MapFigure",
           "MapPanel", "ModelExplorer", "ParameterEditor", "ResultsPanel", "RunControls"]
