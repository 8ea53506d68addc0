"""After the fit: pure functions on maps and the fitted geometry.

Deprojection onto (r, phi) and face-on grids, radial profiles, residual
decompositions, annulus fits (the rotation curve) and FITS export. No widget
and no fit state lives here: ``rotationmap``'s after-fit methods call these.
"""
