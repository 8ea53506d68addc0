"""One interactive sky map: :class:`MapFigure`.

The image is a ``bqplot_image_gl.ImageGL`` mark, not bqplot's own ``Image``
mark. bqplot's ``Image`` takes an already coloured PNG (or maps values through
the colour scale into an SVG ``<image>`` per redraw), so changing the colour
limits or the stretch means colouring and sending the whole image again from
Python. ``ImageGL`` sends the values once as a float texture and colours them
on the GPU through the bqplot ``ColorScale``: moving the limits or switching
the stretch only sends the scale's few numbers and colours, NaN pixels are
drawn transparent, and it comes with ``MouseInteraction`` (mouse position and
drags in data coordinates, for the readout and the mask editing) and
``Contour`` (outlines). It is what glue-jupyter's image viewer and jdaviz's
Imviz use for astronomical images. With bqplot 0.13 its front end needs
the ``bqplot-gl`` package (the WebGL figure), installed with it in the
``widgets`` extra.

Axes are offsets from the image centre in arcsec, east to the left (the x
scale is reversed) and north up. The stretch is applied to the colour list of
the scale (the colour map sampled through astropy's stretch), so a stretch
change recolours in the browser without re-sending the image.
"""

from __future__ import annotations

import html

import bqplot as bq
from bqplot_image_gl import ImageGL
import ipywidgets as W
from matplotlib import colormaps
from matplotlib.colors import to_hex
import numpy as np

__all__ = ["MapFigure", "STRETCHES", "beam_outline", "mask_outline", "stretched_colours"]

#: Stretches offered for the colour scale (astropy.visualization's names).
STRETCHES = ("linear", "sqrt", "asinh")

#: Number of colours sampled from the colour map into the colour scale.
N_COLOURS = 64


def _stretch(name: str):
    from astropy.visualization import AsinhStretch, LinearStretch, SqrtStretch
    return {"linear": LinearStretch(), "sqrt": SqrtStretch(),
            "asinh": AsinhStretch(a=0.1)}[name]


def stretched_colours(scheme: str, stretch: str = "linear", symmetric: bool = False,
                      n: int = N_COLOURS) -> list[str]:
    """``n`` hex colours of the matplotlib colour map ``scheme`` sampled at
    evenly spaced values through ``stretch`` (for a symmetric scale the
    stretch acts on the distance from the middle, on both sides)."""
    t = np.linspace(0.0, 1.0, n)
    f = _stretch(stretch)
    if symmetric:
        u = 2.0 * t - 1.0
        s = 0.5 + 0.5 * np.sign(u) * f(np.abs(u), clip=True)
    else:
        s = f(t, clip=True)
    cmap = colormaps[scheme]
    return [to_hex(cmap(float(v))) for v in s]


def beam_outline(bmaj: float, bmin: float, bpa: float, centre=(0.0, 0.0),
                 n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Outline of the beam (FWHM ``bmaj`` x ``bmin`` arcsec, major axis at
    ``bpa`` degrees east of north) as (Delta RA, Delta Dec) arrays [arcsec]."""
    t = np.linspace(0.0, 2.0 * np.pi, n)
    major, minor = 0.5 * bmaj * np.cos(t), 0.5 * bmin * np.sin(t)
    pa = np.radians(bpa)
    x = major * np.sin(pa) + minor * np.cos(pa)
    y = major * np.cos(pa) - minor * np.sin(pa)
    return x + centre[0], y + centre[1]


def mask_outline(mask, xaxis, yaxis) -> list[np.ndarray]:
    """Outline of a boolean pixel mask as (n, 2) arrays of (Delta RA, Delta
    Dec) [arcsec] (the 0.5 level of the mask, via contourpy)."""
    import contourpy
    z = np.asarray(mask, dtype=float)
    # pad so that regions touching the edge are closed
    dx = xaxis[1] - xaxis[0] if len(xaxis) > 1 else 1.0
    dy = yaxis[1] - yaxis[0] if len(yaxis) > 1 else 1.0
    x = np.concatenate([[xaxis[0] - dx], xaxis, [xaxis[-1] + dx]])
    y = np.concatenate([[yaxis[0] - dy], yaxis, [yaxis[-1] + dy]])
    z = np.pad(z, 1)
    return [np.asarray(line, dtype=float)
            for line in contourpy.contour_generator(x, y, z).lines(0.5)]


def _edges(axis: np.ndarray) -> tuple[float, float]:
    """(low, high) pixel edges of evenly spaced pixel centres."""
    axis = np.asarray(axis, dtype=float)
    step = abs(axis[1] - axis[0]) if axis.size > 1 else 1.0
    return float(axis.min() - 0.5 * step), float(axis.max() + 0.5 * step)


def _number(value: float) -> str:
    return f"{value:.4g}"


class MapFigure(W.VBox):
    """One sky map: ImageGL on Delta RA / Delta Dec axes in arcsec (east to
    the left, as astronomers draw it), a colour bar with its unit, the beam
    ellipse in a corner, colour limits (min/max) and stretch (linear / sqrt /
    asinh) controls, and a readout line under the figure.

    ``x_arcsec``, ``y_arcsec``: pixel centres [arcsec] of the image's columns
    and rows (as ``cube.xaxis`` and ``cube.yaxis``; a decreasing ``x_arcsec``
    is flipped). ``scheme``: a matplotlib colour map name. ``symmetric``:
    automatic limits are +/- the largest absolute value (residuals).
    ``beam``: (bmaj, bmin, bpa) in arcsec, arcsec, degrees, or None.
    ``scale_x``/``scale_y``: bqplot LinearScales shared with other maps for
    linked pan and zoom (new ones if None).
    """

    def __init__(self, x_arcsec, y_arcsec, *, title: str, unit: str,
                 scheme: str = "RdBu_r", symmetric: bool = False, beam=None,
                 scale_x=None, scale_y=None):
        self.unit = unit
        self.scheme = scheme
        self.symmetric = symmetric
        self.beam = beam
        self._x = np.asarray(x_arcsec, dtype=float)
        self._y = np.asarray(y_arcsec, dtype=float)
        self._flip_x = self._x.size > 1 and self._x[0] > self._x[-1]
        x_edges, y_edges = _edges(self._x), _edges(self._y)
        self.scale_x = scale_x if scale_x is not None else bq.LinearScale(
            min=x_edges[0], max=x_edges[1], reverse=True)
        self.scale_y = scale_y if scale_y is not None else bq.LinearScale(
            min=y_edges[0], max=y_edges[1])
        self.colour_scale = bq.ColorScale(
            min=-1.0, max=1.0, colors=stretched_colours(scheme, "linear", symmetric))
        self.image = ImageGL(
            image=np.full((max(self._y.size, 1), max(self._x.size, 1)), np.nan,
                          dtype=np.float32),
            x=x_edges, y=y_edges,
            scales={"x": self.scale_x, "y": self.scale_y, "image": self.colour_scale})
        self.beam_mark = bq.Lines(x=[0.0], y=[0.0], scales={"x": self.scale_x,
                                                             "y": self.scale_y},
                                  colors=["black"], fill="inside",
                                  fill_colors=["#bdbdbd"], fill_opacities=[0.8],
                                  visible=beam is not None)
        if beam is not None:
            self.set_beam(*beam)
        axis_x = bq.Axis(scale=self.scale_x, label="Delta RA [arcsec]",
                         num_ticks=5)
        axis_y = bq.Axis(scale=self.scale_y, side="left",
                         label="Delta Dec [arcsec]", num_ticks=5)
        self.colorbar = bq.ColorAxis(scale=self.colour_scale, side="right", label=unit, num_ticks=5,
                                     tick_format=".4~g")
        self.figure = bq.Figure(
            title=title, marks=[self.image, self.beam_mark],
            axes=[axis_x, axis_y, self.colorbar],
            fig_margin={"top": 36, "bottom": 44, "left": 56, "right": 96},
            padding_x=0.0, padding_y=0.0,
            layout=W.Layout(width="100%", height="320px", min_width="240px"))
        self.auto_limits = W.Checkbox(value=True, description="auto limits",
                                      indent=False, layout=W.Layout(width="auto"))
        self.vmin = W.FloatText(description="min", layout=W.Layout(width="130px"),
                                style={"description_width": "28px"})
        self.vmax = W.FloatText(description="max", layout=W.Layout(width="130px"),
                                style={"description_width": "28px"})
        self.stretch = W.Dropdown(options=list(STRETCHES), value="linear",
                                  description="stretch", layout=W.Layout(width="150px"),
                                  style={"description_width": "48px"})
        self.readout = W.HTML(value="&nbsp;", layout=W.Layout(min_height="1.4em"))
        self._syncing = False
        self.vmin.observe(self._limits_typed, "value")
        self.vmax.observe(self._limits_typed, "value")
        self.auto_limits.observe(self._auto_changed, "value")
        self.stretch.observe(self._stretch_changed, "value")
        controls = W.HBox([self.vmin, self.vmax, self.auto_limits, self.stretch],
                          layout=W.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([self.figure, controls, self.readout],
                         layout=W.Layout(min_width="240px", flex="1 1 0"))
        self.data = None

    # -- public -----------------------------------------------------------

    def set_image(self, data2d) -> None:
        """Show ``data2d`` (rows along ``y_arcsec``, columns along
        ``x_arcsec``; NaN is transparent). Keeps the colour limits the user
        set unless they are on auto."""
        data = np.asarray(data2d, dtype=np.float32)
        self.data = data
        shown = data[:, ::-1] if self._flip_x else data
        with self.image.hold_sync():
            self.image.image = np.ascontiguousarray(shown)
        if self.auto_limits.value:
            self._apply_limits(*self.automatic_limits())

    def set_readout(self, html_text: str) -> None:
        """Put ``html_text`` in the line under the figure."""
        self.readout.value = html_text or "&nbsp;"

    def set_limits(self, vmin: float, vmax: float) -> None:
        """Fix the colour limits (turns auto limits off)."""
        self._apply_limits(vmin, vmax)
        self._syncing = True
        try:
            self.auto_limits.value = False
        finally:
            self._syncing = False

    @property
    def limits(self) -> tuple[float, float]:
        """The colour limits in use (unit of the colour bar)."""
        return float(self.colour_scale.min), float(self.colour_scale.max)

    def automatic_limits(self) -> tuple[float, float]:
        """Limits from the image: the 1st-99th percentile of finite values
        (+/- the 99th percentile of |values| for a symmetric map)."""
        values = self.data[np.isfinite(self.data)] if self.data is not None else []
        if len(values) == 0:
            return -1.0, 1.0
        if self.symmetric:
            top = float(np.percentile(np.abs(values), 99.0)) or 1.0
            return -top, top
        lo, hi = (float(v) for v in np.percentile(values, [1.0, 99.0]))
        if hi <= lo:
            lo, hi = lo - 1.0, hi + 1.0
        return lo, hi

    def set_beam(self, bmaj: float, bmin: float, bpa: float) -> None:
        """Draw the beam in the lower left corner of the image (east side)."""
        self.beam = (bmaj, bmin, bpa)
        x_edges, y_edges = _edges(self._x), _edges(self._y)
        margin = 0.75 * max(bmaj, bmin)
        centre = (x_edges[1] - margin, y_edges[0] + margin)
        x, y = beam_outline(bmaj, bmin, bpa, centre)
        with self.beam_mark.hold_sync():
            self.beam_mark.x, self.beam_mark.y = x, y
            self.beam_mark.visible = True

    def set_unit(self, unit: str) -> None:
        """Label the colour bar with ``unit``."""
        self.unit = unit
        self.colorbar.label = unit

    # -- handlers ---------------------------------------------------------

    def _apply_limits(self, vmin: float, vmax: float) -> None:
        if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmax <= vmin:
            return
        self._syncing = True
        try:
            with self.colour_scale.hold_sync():
                self.colour_scale.min, self.colour_scale.max = float(vmin), float(vmax)
            self.vmin.value, self.vmax.value = float(_number(vmin)), float(_number(vmax))
        finally:
            self._syncing = False

    def _limits_typed(self, change) -> None:
        if self._syncing:
            return
        if self.vmax.value <= self.vmin.value:
            self.set_readout(f"<span style='color:#b00020'>min must be below max "
                             f"({html.escape(_number(self.vmin.value))} &ge; "
                             f"{html.escape(_number(self.vmax.value))})</span>")
            return
        self.set_limits(self.vmin.value, self.vmax.value)

    def _auto_changed(self, change) -> None:
        if self._syncing:
            return
        if change["new"]:
            self._apply_limits(*self.automatic_limits())

    def _stretch_changed(self, change) -> None:
        self.colour_scale.colors = stretched_colours(self.scheme, change["new"],
                                                     self.symmetric)
