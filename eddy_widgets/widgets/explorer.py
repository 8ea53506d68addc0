"""The model explorer: sliders for the model parameters, and the model v0 map,
the residual ``data - model`` and the emission surface profile that follow
them.

The widget holds no physics. The map is the package's own model,
:meth:`rotationmap.model_function` (what :meth:`rotationmap.evaluate_models`
evaluates), compiled once for the
parameters that have sliders; the profile is
:func:`eddy_widgets.model.emission_surface`, compiled once too. A slider
change evaluates the model and sends only the new arrays (the images and the
profile's ``y``) and the readout; colour scales, axes and figures are built
once. Names, units, slider ranges and descriptions come from the parameter
table (:mod:`eddy_widgets.parameters`).

The Python side of every redraw (evaluate the model + hand the arrays to the
widgets; not the browser's drawing) is timed: :attr:`ModelExplorer.redraw_ms`
and the small grey line under the maps.

The maps here show ``v0 - vlsr`` and the residual in m/s (their titles say
so), as the dashboard does; the map panel (:mod:`eddy_widgets.widgets.maps`)
shows absolute v0. Each map keeps equal arcsec per screen pixel on both axes
(:class:`~eddy_widgets.widgets.mapview.MapFigure`), and the panels wrap to a
new row rather than squeeze in a narrow notebook.

The explorer never changes a value it is given: a browser slider snaps to
``min + k * step``, so each slider's grid is laid through the starting value
(:func:`slider_range`), and its readout shows that value's digits.
"""

from __future__ import annotations

import html
import math
import time

import bqplot as bq
import ipywidgets as W
import jax
import numpy as np

from ..inference.spec import FitSpec, as_p0
from ..model import emission_surface
from ..parameters import (
    GROUPS,
    MASK_SETTINGS,
    MODEL_PARAMETERS,
    NOISE_PARAMETERS,
    NOISE_SETTINGS,
    PARAMETERS,
)
from .mapview import MapFigure

__all__ = ["ModelExplorer", "SURFACE_COLOUR", "readout_format", "slider_range"]

#: Settings of the likelihood, not of the model: the explorer draws the
#: model, so it neither shows nor passes them (the noise parameters and the
#: noise model with its clip; ``noise='correlated'``).
LIKELIHOOD_ONLY = (*NOISE_PARAMETERS, *NOISE_SETTINGS)


#: The emission surface line: a mid-tone orange that reads on the white of
#: JupyterLab's light theme and the near-black of its dark theme.
SURFACE_COLOUR = "#f28e2b"

PANELS = ("data", "model", "residual", "surface")

_surface_jit = jax.jit(emission_surface)


def _nice_step(span: float) -> float:
    """A 1-2-5 step giving about a thousand slider positions over ``span``."""
    raw = span / 1000.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if raw <= factor * power:
            return factor * power
    return 10.0 * power


def slider_range(name: str, value: float, map_radius: float) -> tuple[float, float, float]:
    """``(min, max, step)`` of the slider of parameter ``name``.

    The range is the table's default flat prior; radii in arcsec (including an
    infinite taper radius) stop at ``map_radius`` [arcsec], the largest radius
    on the map, beyond which they change nothing one can see. The range always
    holds ``value``, and its grid ``min + k * step`` runs through ``value``
    (``min = value - k * step``, just below the prior's bound; ``max``
    likewise): the browser's slider snaps to that grid, which would
    otherwise show and move to another number (46.6 for 46.7 on a grid of
    -90 + k * 0.2).
    """
    p = PARAMETERS[name]
    lo, hi = p.prior[1]
    if p.unit == "arcsec" and (not math.isfinite(hi) or hi > map_radius):
        hi = float(math.ceil(map_radius))
    lo, hi = min(lo, value), max(hi, value)
    step = _nice_step(hi - lo)
    below = math.ceil((value - lo) / step - 1e-9)
    above = math.ceil((hi - value) / step - 1e-9)
    # rounded off float noise (-90.10000000000001), far below the step
    return (round(value - below * step, 10), round(value + above * step, 10), step)


def readout_format(value: float, step: float) -> str:
    """A slider readout format that shows ``value`` and every grid point
    ``value + k * step`` with their own digits (at least 4 significant)."""
    decimals = 0
    while decimals < 10 and (abs(round(value, decimals) - value) > 1e-9 * max(1.0, abs(value))
                             or abs(round(step, decimals) - step) > 1e-12):
        decimals += 1
    return f".{decimals}f" if abs(value) >= 1e-3 or value == 0 else ".4g"


def _start_values(params: dict | None, p0) -> dict:
    """Values of every model parameter (table defaults, then ``params``, with
    astro-eddy's int indices into ``p0`` replaced by ``p0``'s values, as
    :class:`~eddy_widgets.inference.spec.FitSpec` reads them). The noise
    parameters are the likelihood's, not the model's: left out."""
    values = {name: PARAMETERS[name].default for name in MODEL_PARAMETERS}
    if params is None:
        return values
    spec = FitSpec.parse(params)
    if spec.free and p0 is None:
        raise ValueError(f"params marks {', '.join(spec.free)} as free (int index into "
                         f"p0): give p0 too, or give values.")
    theta = as_p0(p0, spec.free) if spec.free else np.zeros(0)
    values.update({k: v for k, v in spec.to_params(theta).items() if k in values})
    return values


class ModelExplorer(W.VBox):
    """Sliders that redraw the model map, the residual and the surface profile.

    Args:
        cube: a :func:`~eddy_widgets.rotationmap` (its grid, data and model).
        params: starting values, as a dict of values or as ``fit_map``'s
            ``params`` with int indices into ``p0``; mask settings such as
            ``beam=True`` are kept. Missing parameters take the table's
            defaults. ``None``: the table's defaults.
        p0: the starting values of the free parameters of ``params``.
        sliders: names of the parameters with a slider (default: every
            geometry, star and surface parameter whose value is a finite
            number; a parameter that is off, such as ``z0=None``, keeps its
            value).
        panels: which of ``'data'``, ``'model'``, ``'residual'`` and
            ``'surface'`` to show, in order.
        model_limit: colour limit of the data and model maps, ``v0 - vlsr``
            [m/s] (default: the 95th percentile of ``|v0 - vlsr|`` of the
            starting model on the data's pixels, rounded up to 1000 m/s; the
            fast centre saturates).
        residual_limit: colour limit of the residual [m/s] (default: five
            times the median uncertainty, or 300 m/s).

    Attributes:
        sliders: ``{name: FloatSlider}``.
        model_map: the last model v0 map [m/s], the cube's shape.
        residual_map: ``data - model`` [m/s], NaN off the data.
        residual_rms: root-mean-square of ``residual_map`` over the data [m/s].
        surface_r, surface_z: the emission surface profile [arcsec].
        redraw_ms: Python side of the last redraw (evaluate + hand the arrays
            to the widgets, not the browser's drawing) [ms].
        readout: one line on the residual and the surface height.
        timing: the small line that shows :attr:`redraw_ms`.
    """

    def __init__(self, cube, params: dict | None = None, p0=None, *,
                 sliders=None, panels=("model", "residual", "surface"),
                 model_limit: float | None = None,
                 residual_limit: float | None = None):
        super().__init__()
        unknown = [p for p in panels if p not in PANELS]
        if unknown:
            raise ValueError(f"Unknown panel(s) {unknown}; choose from {PANELS}.")
        self.cube = cube
        self.start = _start_values(params, p0)
        mask = {k: v for k, v in (params or {}).items()
                if k in MASK_SETTINGS and k not in LIKELIHOOD_ONLY}
        xaxis, yaxis = np.asarray(cube.xaxis), np.asarray(cube.yaxis)
        map_radius = float(np.hypot(np.abs(xaxis).max(), np.abs(yaxis).max()))
        self._map_radius = map_radius
        if sliders is None:
            # Every parameter with a finite starting value; the rare ones
            # (velocity terms, self-gravity) only when given a value of
            # their own.
            sliders = [n for n in MODEL_PARAMETERS
                       if self.start[n] is not None and math.isfinite(self.start[n])
                       and (not PARAMETERS[n].rare
                            or self.start[n] != PARAMETERS[n].default)]
        bad = [n for n in sliders if n not in self.start or self.start[n] is None
               or not math.isfinite(self.start[n])]
        if bad:
            raise ValueError(f"No slider for {bad}: give each a finite starting value "
                             f"(names from eddy_widgets.parameters.MODEL_PARAMETERS; "
                             f"the noise parameters do not change the model).")
        self.names = tuple(sliders)

        # The package's model, compiled once for the parameters with sliders.
        free = {name: i for i, name in enumerate(self.names)}
        fixed = {n: (None if v is None else float(v)) for n, v in self.start.items()
                 if n not in free}
        self.spec = FitSpec.parse(fixed | free | mask)
        self._model = cube.model_function(self.spec, compiled=True)
        self.data = np.asarray(cube.data, dtype=float)
        self.inside = np.isfinite(self.data)

        self.sliders = {}
        for name in self.names:
            p = PARAMETERS[name]
            lo, hi, step = slider_range(name, float(self.start[name]), map_radius)
            value = float(self.start[name])
            self.sliders[name] = W.FloatSlider(
                value=value, min=lo, max=hi, step=step,
                description=f"{name} [{p.unit}]" if p.unit else name,
                tooltip=p.description, continuous_update=True,
                readout_format=readout_format(value, step),
                style={"description_width": "95px"}, layout=W.Layout(width="340px"))

        self.model_map = self._model(self._theta())
        vlsr = float(self.values["vlsr"])
        if model_limit is None:
            dv = np.abs(self.model_map - vlsr)[self.inside]
            model_limit = (float(1e3 * np.ceil(np.percentile(dv, 95) / 1e3))
                           if dv.size else 5000.0)
        if residual_limit is None:
            error = getattr(cube, "error", None)
            noise = np.nanmedian(error) if error is not None else np.nan
            residual_limit = float(5 * noise) if np.isfinite(noise) else 300.0
        self.model_limit, self.residual_limit = model_limit, residual_limit

        self.maps = {}
        beam = (cube.bmaj, cube.bmin, cube.bpa) if cube.bmaj else None
        scale_x = scale_y = None      # shared by the maps: linked pan and zoom
        for kind in panels:
            if kind == "surface":
                continue
            title, unit, limit = {
                "data": ("data: v0 - vlsr [m/s]", "m/s", model_limit),
                "model": ("model: v0 - vlsr [m/s]", "m/s", model_limit),
                "residual": ("residual: data - model [m/s]", "m/s", residual_limit)}[kind]
            panel = MapFigure(xaxis, yaxis, title=title, unit=unit, scheme="RdBu_r",
                              symmetric=True, beam=beam, scale_x=scale_x,
                              scale_y=scale_y)
            scale_x, scale_y = panel.scale_x, panel.scale_y
            panel.set_limits(-limit, limit)
            self.maps[kind] = panel
        if "data" in self.maps:
            self.maps["data"].set_image(np.where(self.inside, self.data - vlsr, np.nan))

        self.surface_r = np.linspace(0.0, float(np.ceil(map_radius)), 300)
        r_scale = bq.LinearScale(min=0.0, max=float(self.surface_r[-1]))
        self._z_scale = bq.LinearScale(min=0.0)
        self.surface_line = bq.Lines(x=self.surface_r, y=np.zeros_like(self.surface_r),
                                     scales={"x": r_scale, "y": self._z_scale},
                                     colors=[SURFACE_COLOUR], stroke_width=2.5)
        self.surface_figure = bq.Figure(
            marks=[self.surface_line], title="emission surface z(r)",
            axes=[bq.Axis(scale=r_scale, label="r [arcsec]", tick_format=".3~g"),
                  bq.Axis(scale=self._z_scale, orientation="vertical",
                          label="z [arcsec]", tick_format=".3~g")],
            animation_duration=0, display_toolbar=False,
            title_style={"font-size": "13px"},
            fig_margin={"top": 40, "bottom": 45, "left": 55, "right": 15},
            layout=W.Layout(width="auto", height="300px", min_width="300px",
                            max_width="480px", flex="1 1 300px"))

        self.readout = W.HTML()
        self.timing = W.HTML()
        self.redraw_ms = float("nan")
        self.reset_button = W.Button(description="reset", icon="undo",
                                     tooltip="back to the starting values")
        self.reset_button.on_click(lambda _: self.reset())

        tabs = []
        for group, title in GROUPS.items():
            if group == "noise":    # the likelihood's: they do not move the model
                continue
            names = [n for n in self.names if PARAMETERS[n].group == group]
            if names:
                tabs.append((title, W.VBox([self.sliders[n] for n in names])))
        if len(tabs) == 1:
            controls = tabs[0][1]
        else:
            controls = W.Tab(children=[box for _, box in tabs])
            for i, (title, _) in enumerate(tabs):
                controls.set_title(i, title)
        figures = [self.surface_figure if kind == "surface" else self.maps[kind]
                   for kind in panels]
        self.children = [W.HBox([controls, self.reset_button]),
                         # each panel keeps its width (min 300 px): a
                         # narrow notebook wraps them to a second row
                         W.HBox(figures, layout=W.Layout(flex_flow="row wrap",
                                                         width="100%")),
                         self.readout, self.timing]
        for slider in self.sliders.values():
            slider.observe(self._on_slider, names="value")
        self.redraw()
        self.redraw()   # the first one compiled the surface profile: time a real one

    # -- State -----------------------------------------------------------------

    def _theta(self) -> np.ndarray:
        return np.array([self.sliders[n].value for n in self.names], dtype=float)

    @property
    def values(self) -> dict:
        """Every model parameter's current value (sliders and fixed ones)."""
        return self.spec.model_params(self._theta())

    @property
    def params(self) -> dict:
        """The current values as a ``params`` dict for
        ``cube.evaluate_models(params=...)`` (mask settings included)."""
        return self.spec.to_params(self._theta())

    def set(self, **values: float) -> None:
        """Move sliders from code, e.g. ``explorer.set(inc=40, mstar=1.5)``: one
        redraw for all of them."""
        unknown = [n for n in values if n not in self.sliders]
        if unknown:
            raise KeyError(f"No slider for {unknown}; sliders: {list(self.names)}.")
        self._hold = True
        try:
            for name, value in values.items():
                self._place(name, float(value))
        finally:
            self._hold = False
        self.redraw()

    def _place(self, name: str, value: float) -> None:
        """Set slider ``name`` to ``value`` exactly, its grid laid through it
        (the browser would snap an off-grid value to its neighbour)."""
        slider = self.sliders[name]
        lo, hi, step = slider_range(name, value, self._map_radius)
        with slider.hold_sync():
            # widen first: the slider clamps its value into [min, max]
            slider.min, slider.max = min(lo, slider.min), max(hi, slider.max)
            slider.value = value
            slider.min, slider.max, slider.step = lo, hi, step
            slider.readout_format = readout_format(value, step)

    def reset(self) -> None:
        """Back to the starting values."""
        self.set(**{n: float(self.start[n]) for n in self.names})

    # -- View ------------------------------------------------------------------

    _hold = False

    def _on_slider(self, change) -> None:
        if not self._hold:
            self.redraw()

    def redraw(self) -> float:
        """Evaluate the model at the sliders' values and send the new arrays;
        returns (and stores in :attr:`redraw_ms`) the time the Python side
        took [ms] (not the browser's drawing)."""
        t0 = time.perf_counter()
        values = self.values
        model = self._model(self._theta())
        residual = np.where(self.inside, self.data - model, np.nan)
        z0 = values["z0"]
        z = np.asarray(_surface_jit(self.surface_r, 0.0 if z0 is None else z0,
                                    values["psi"], values["r_cavity"],
                                    values["r_taper"], values["q_taper"]))
        self.model_map, self.residual_map, self.surface_z = model, residual, z
        if "model" in self.maps:
            self.maps["model"].set_image(model - float(values["vlsr"]))
        if "residual" in self.maps:
            self.maps["residual"].set_image(residual)
        self._z_scale.max = max(1.0, float(np.ceil(2 * z.max()) / 2))
        self.surface_line.y = z
        self.readout.value = self.summary()
        self.redraw_ms = 1e3 * (time.perf_counter() - t0)
        self.timing.value = (f"<span style='color:gray;font-size:smaller'>redraw "
                             f"{self.redraw_ms:.1f} ms (Python side: model + handing "
                             f"the maps to the widgets)"
                             f"</span>")
        return self.redraw_ms

    @property
    def residual_rms(self) -> float:
        """Root-mean-square of ``data - model`` over the data's pixels [m/s]."""
        resid = self.residual_map[self.inside]
        return float(np.sqrt(np.mean(resid ** 2))) if resid.size else float("nan")

    def summary(self) -> str:
        """One line: the rms of the residual over the data and the highest
        point of the surface."""
        z = self.surface_z
        return html.escape(
            f"rms of data - model {self.residual_rms:.0f} m/s; surface at most {z.max():.2f} arcsec "
            f"high, at r = {self.surface_r[z.argmax()]:.1f} arcsec")
