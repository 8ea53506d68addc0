"""Colour limits of a map: one rule for the dashboard's map panel and the
after-fit methods.

Limits come from percentiles of the map's finite pixels, so that a few wild
pixels do not set the scale: a preset names the share of pixels inside the
limits (:data:`PRESETS`; ``'99.5%'``, ``'98%'``, ``'95%'`` or ``'min/max'``),
as in glue, jdaviz and ds9. A map with ``symmetric`` limits (a residual) gets
``+/-`` that percentile of ``|value - centre|``; otherwise the central share
(``'95%'``: the 2.5th to the 97.5th percentile).

The rotation residual ``v_phi = (data - model) / (cos(phi) sin(i))`` blows up
near the disk's minor axis, where ``cos(phi)`` vanishes: there a 100 m/s
residual reads as thousands of m/s, and those few pixels set automatic limits
of +-4,000 m/s beside a +-240 m/s residual, so the map looked empty.
:func:`mask_minor_axis` blanks the pixels with ``|cos(phi)|`` below
:data:`MIN_ABS_COS_PHI` (within ~11.5 deg of the minor axis, where noise is
amplified more than ``1 / (0.2 sin(i))`` times), and :func:`colour_limits`
with ``phi`` leaves them out.

Pure numpy: no widget and no fit state.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_PRESET", "MIN_ABS_COS_PHI", "PRESETS", "colour_limits",
           "mask_minor_axis", "minor_axis_note"]

#: Share of the map's finite pixels inside the limits [%], by preset name.
PRESETS = {"99.5%": 99.5, "98%": 98.0, "95%": 95.0, "min/max": 100.0}

#: The preset used unless another is chosen (the 1st to the 99th percentile).
DEFAULT_PRESET = "98%"

#: Pixels of a v_phi residual with ``|cos(phi)|`` below this are masked:
#: within ``degrees(arccos(0.2))``, 78.5 deg from the major axis, i.e.
#: 11.5 deg of the minor axis.
MIN_ABS_COS_PHI = 0.2


def _percent(preset) -> float:
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"Unknown colour-limit preset {preset!r}; choose from "
                             f"{', '.join(PRESETS)} or give a percentage (0-100].")
        return PRESETS[preset]
    percent = float(preset)
    if not 0.0 < percent <= 100.0:
        raise ValueError(f"A colour-limit percentage is in (0, 100], not {percent}.")
    return percent


def mask_minor_axis(values, phi, min_abs_cos: float = MIN_ABS_COS_PHI) -> np.ndarray:
    """``values`` (a map, e.g. the v_phi residual) with NaN where
    ``|cos(phi)| < min_abs_cos`` (``phi``: the disk-frame azimuth of each
    pixel [rad], 0 on the red-shifted major axis)."""
    values = np.asarray(values, dtype=float)
    near = np.abs(np.cos(np.asarray(phi, dtype=float))) < float(min_abs_cos)
    return np.where(near, np.nan, values)


def colour_limits(values, preset=DEFAULT_PRESET, *, symmetric: bool = False,
                  centre: float = 0.0, phi=None,
                  min_abs_cos: float = MIN_ABS_COS_PHI) -> tuple[float, float]:
    """``(vmin, vmax)`` for showing ``values`` (unit of ``values``).

    Args:
        values: the map (NaN pixels are left out).
        preset: a name from :data:`PRESETS` or a percentage: the share of the
            finite pixels inside the limits.
        symmetric: ``centre +/-`` the percentile of ``|values - centre|``
            (residuals); else the central share of the values.
        phi: the pixels' disk-frame azimuth [rad]: those with
            ``|cos(phi)| < min_abs_cos`` are left out (a v_phi residual, see
            :func:`mask_minor_axis`).

    Returns:
        Finite limits with ``vmin < vmax`` (``(-1, 1)`` for a map without a
        finite pixel; a constant map is widened by 1 or 1% of its value).
    """
    percent = _percent(preset)
    values = np.asarray(values, dtype=float)
    if phi is not None:
        values = mask_minor_axis(values, phi, min_abs_cos)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return -1.0, 1.0
    if symmetric:
        half = float(np.percentile(np.abs(finite - centre), percent))
        lo, hi = centre - half, centre + half
    else:
        tail = 0.5 * (100.0 - percent)
        lo, hi = (float(v) for v in np.percentile(finite, [tail, 100.0 - tail]))
    if not hi > lo:
        pad = max(abs(hi), abs(lo)) * 0.01 or 1.0
        lo, hi = lo - pad, hi + pad
    return float(lo), float(hi)


def minor_axis_note(min_abs_cos: float = MIN_ABS_COS_PHI) -> str:
    """One line saying which pixels :func:`mask_minor_axis` blanks."""
    degrees = 90.0 - math.degrees(math.acos(min_abs_cos))
    return (f"blank where |cos \u03c6| < {min_abs_cos:g}: within "
            f"{degrees:.1f}\u00b0 of the minor axis, where v_\u03c6 = "
            f"(data \u2212 model) / (cos \u03c6 sin i) blows up")
