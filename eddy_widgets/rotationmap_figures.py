"""astro-eddy's figure and export methods of ``rotationmap``: maps of the
data, model and residual, the emission surface, disk axes, the beam, and the
model / residual written to FITS. A mixin of
:class:`eddy_widgets.rotationmap.rotationmap`; the drawing lives in
:mod:`eddy_widgets.plots`, the FITS writing in :mod:`eddy_widgets.analysis`."""

from __future__ import annotations


class FigureMethods:
    """Figures and FITS export (astro-eddy's names)."""
