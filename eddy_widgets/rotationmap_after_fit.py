"""astro-eddy's after-fit methods of ``rotationmap`` that work in the disk
frame: deprojections, residual decompositions, radial profiles and the
rotation curve. A mixin of :class:`eddy_widgets.rotationmap.rotationmap`; the
computations live in :mod:`eddy_widgets.analysis`."""

from __future__ import annotations


class AfterFitMethods:
    """Deprojections, profiles, residuals and annulus fits (astro-eddy's names)."""
