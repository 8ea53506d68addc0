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

The plot area keeps the map's shape: bqplot's auto layout with
``min_aspect_ratio = max_aspect_ratio`` = the ratio of the spans in arcsec,
so an arcsec is as long across the screen as up it, whatever the panel's
width (a round disk stays round, an inclined one shows its true axis ratio).
The colour bar is an HTML strip beside the figure (:class:`ColourBar`), as
tall as the map: bqplot's own ``ColorAxis`` is 200 px shorter than the plot
area, ~40 px on a map of this size, too short for its labels. Automatic
colour limits follow one rule with presets,
:func:`eddy_widgets.analysis.colour_limits.colour_limits`.
"""

from __future__ import annotations

import html

import bqplot as bq
from bqplot_image_gl import ImageGL
import ipywidgets as W
from matplotlib import colormaps
from matplotlib.colors import to_hex
import numpy as np
import traitlets

from ..analysis.colour_limits import DEFAULT_PRESET, PRESETS, colour_limits
from .trace_panel import nice_ticks, tick_format

__all__ = ["ColourBar", "MapFigure", "STRETCHES", "beam_outline", "mask_outline",
           "stretched_colours"]

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


#: Height of a map figure [px] and its margins around the plot area, besides
#: the axes' own room (bqplot's auto layout adds the tick labels' and axis
#: labels' sizes): the title above, nothing on the right (the colour bar is
#: beside the figure).
FIGURE_HEIGHT = 300
FIG_MARGIN = {"top": 30, "bottom": 4, "left": 4, "right": 8}
#: Length of the colour bar [px]: about the plot area's height.
COLOURBAR_LENGTH = 210


class ColourBar(W.HTML):
    """A vertical colour bar in HTML beside a map: the colours of ``scale``
    (a bqplot ``ColorScale``) bottom to top over ``length`` px, four to
    seven round ticks between its ``min`` and ``max`` with as many digits as
    tell them apart, and ``label`` (the unit) on top. It redraws itself when the
    scale's limits or colours change (a stretch, new limits).

    Attributes:
        ticks: the tick values; labels: their texts.
    """

    label = traitlets.Unicode("")

    def __init__(self, scale: bq.ColorScale, label: str = "",
                 length: int = COLOURBAR_LENGTH):
        super().__init__(layout=W.Layout(flex="0 0 auto", width="64px",
                                         margin="0 0 0 2px"))
        self.scale = scale
        self.length = int(length)
        self.ticks: list[float] = []
        self.labels: list[str] = []
        self.add_class("eddy-colourbar")
        self.observe(self._draw, "label")
        scale.observe(self._draw, ["min", "max", "colors"])
        self.label = label
        self._draw()

    def _draw(self, change=None) -> None:
        lo, hi = self.scale.min, self.scale.max
        colours = list(self.scale.colors or [])
        if lo is None or hi is None or not hi > lo:
            self.ticks, self.labels = [], []
        else:
            ticks = nice_ticks(float(lo), float(hi), 7, least=4, target=5)
            fmt = tick_format(ticks)
            self.ticks = [float(t) for t in ticks]
            self.labels = [format(t, fmt) for t in self.ticks]
        gradient = ", ".join(colours) if len(colours) > 1 else "#ccc, #ccc"
        marks = []
        for t, text in zip(self.ticks, self.labels):
            pct = 100.0 * (t - lo) / (hi - lo)
            marks.append(
                f"<div style='position:absolute;left:13px;bottom:{pct:.2f}%;width:4px;"
                f"border-top:1px solid currentColor'></div>"
                f"<span style='position:absolute;left:19px;bottom:{pct:.2f}%;"
                f"transform:translateY(50%);white-space:nowrap'>{html.escape(text)}"
                f"</span>")
        self.value = (
            "<div style='font-size:11px;line-height:1.1;padding-top:26px'>"
            f"<div style='height:16px;white-space:nowrap'>{html.escape(self.label)}</div>"
            f"<div style='position:relative;height:{self.length}px;width:60px'>"
            "<div style='position:absolute;left:0;top:0;bottom:0;width:12px;"
            f"box-sizing:border-box;border:1px solid #888;"
            f"background:linear-gradient(to top, {gradient})'></div>"
            + "".join(marks) + "</div></div>")


class MapFigure(W.VBox):
    """One sky map: ImageGL on Delta RA / Delta Dec axes in arcsec (east to
    the left, as astronomers draw it) with equal arcsec per screen pixel on
    both axes, a colour bar with its unit beside it (:class:`ColourBar`), the
    beam ellipse in a corner, colour limits (min/max, or automatic from a
    percentile preset) and stretch (linear / sqrt / asinh) controls, an
    optional note and a readout line under the figure.

    ``x_arcsec``, ``y_arcsec``: pixel centres [arcsec] of the image's columns
    and rows (as ``cube.xaxis`` and ``cube.yaxis``; a decreasing ``x_arcsec``
    is flipped). ``scheme``: a matplotlib colour map name. ``symmetric``:
    automatic limits are symmetric about zero (residuals).
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
        # Round ticks (bqplot's num_ticks splits the span evenly: 4.02, 2.01,
        # -0.0125), renewed when a pan or zoom moves the scales; an explicit
        # format (bqplot's guess fails, "invalid format: .undefinedg", while
        # the auto layout measures the axes).
        self.axis_x = axis_x = bq.Axis(scale=self.scale_x, label="Delta RA [arcsec]",
                                       tick_format=".3~g")
        self.axis_y = axis_y = bq.Axis(scale=self.scale_y, side="left",
                                       label="Delta Dec [arcsec]", tick_format=".3~g")
        for scale in (self.scale_x, self.scale_y):
            scale.observe(self._axis_ticks, ["min", "max"])
        self._axis_ticks()
        # Equal arcsec per pixel: the plot area's width / height is fixed to
        # the ratio of the spans (bqplot's auto layout applies the ratio to
        # the plot area, without it to the whole element).
        aspect = (x_edges[1] - x_edges[0]) / (y_edges[1] - y_edges[0])
        self.figure = bq.Figure(
            title=title, marks=[self.image, self.beam_mark],
            axes=[axis_x, axis_y], auto_layout=True,
            min_aspect_ratio=aspect, max_aspect_ratio=aspect,
            fig_margin=dict(FIG_MARGIN), padding_x=0.0, padding_y=0.0,
            # no hover toolbar: it covered the title (pan and zoom are the
            # mouse's, see MapPanel)
            display_toolbar=False,
            title_style={"font-size": "13px"},
            layout=W.Layout(width="auto", height=f"{FIGURE_HEIGHT}px",
                            min_width="220px", flex="1 1 auto"))
        self.colorbar = ColourBar(self.colour_scale, unit)
        self.preset = W.Dropdown(options=list(PRESETS), value=DEFAULT_PRESET,
                                 description="auto",
                                 tooltip="automatic limits: the share of the map's "
                                         "pixels inside them",
                                 layout=W.Layout(width="132px"),
                                 style={"description_width": "32px"})
        self.auto_limits = W.Checkbox(value=True, description="auto limits",
                                      indent=False, layout=W.Layout(width="auto"))
        self.vmin = W.FloatText(description="min", layout=W.Layout(width="124px"),
                                style={"description_width": "34px"})
        self.vmax = W.FloatText(description="max", layout=W.Layout(width="124px"),
                                style={"description_width": "34px"})
        self.stretch = W.Dropdown(options=list(STRETCHES), value="linear",
                                  description="stretch", layout=W.Layout(width="140px"),
                                  style={"description_width": "48px"})
        self.note = W.HTML(layout=W.Layout(display="none"))
        self.readout = W.HTML(value="&nbsp;", layout=W.Layout(min_height="1.4em"))
        self._syncing = False
        self.vmin.observe(self._limits_typed, "value")
        self.vmax.observe(self._limits_typed, "value")
        self.auto_limits.observe(self._auto_changed, "value")
        self.preset.observe(self._preset_changed, "value")
        self.stretch.observe(self._stretch_changed, "value")
        controls = W.HBox([self.vmin, self.vmax, self.preset, self.auto_limits,
                           self.stretch],
                          layout=W.Layout(flex_flow="row wrap", align_items="center"))
        body = W.HBox([self.figure, self.colorbar],
                      layout=W.Layout(align_items="flex-start", width="100%"))
        # The readout under the image: above it, its two to four lines (the
        # panels are ~400 px wide on a laptop) pushed the map itself below a
        # 720 px screen (the browser test's layout check).
        super().__init__([body, self.readout, controls, self.note],
                         layout=W.Layout(min_width="300px", flex="1 1 300px"))
        self.add_class("eddy-map")
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
        """Limits from the image by the package's one rule
        (:func:`~eddy_widgets.analysis.colour_limits.colour_limits`) with the
        chosen preset: the central share of the finite values, or for a
        symmetric map +/- that percentile of |values|."""
        if self.data is None:
            return -1.0, 1.0
        return colour_limits(self.data, self.preset.value, symmetric=self.symmetric)

    def set_note(self, html_text: str) -> None:
        """A small grey line under the controls (hidden when empty)."""
        self.note.value = (f"<div style='font-size:smaller;color:gray;"
                           f"line-height:1.3'>{html_text}</div>" if html_text else "")
        self.note.layout.display = None if html_text else "none"

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

    def _axis_ticks(self, change=None) -> None:
        for axis, scale in ((self.axis_x, self.scale_x), (self.axis_y, self.scale_y)):
            if scale.min is None or scale.max is None:
                continue
            lo, hi = sorted((float(scale.min), float(scale.max)))
            # not at the very edges (bqplot drops those labels, and they
            # would crowd the corner)
            inset = 0.03 * (hi - lo)
            ticks = nice_ticks(lo + inset, hi - inset, 6, least=3, target=5)
            if not np.array_equal(axis.tick_values, ticks):
                axis.tick_values = ticks

    def _preset_changed(self, change) -> None:
        if self.auto_limits.value:
            self._apply_limits(*self.automatic_limits())
        else:
            self.auto_limits.value = True       # a preset is a choice of auto

    def _stretch_changed(self, change) -> None:
        self.colour_scale.colors = stretched_colours(self.scheme, change["new"],
                                                     self.symmetric)
