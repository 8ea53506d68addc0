"""The map panel: data, model, residual and the rotation residual of a
:class:`~eddy_widgets.session.FitSession` as maps you can explore.

Four :class:`~eddy_widgets.widgets.mapview.MapFigure` share their x and y
scales (pan or zoom one, all follow), each with a colour bar in m/s and the
beam. Under the cursor the readout gives Delta RA, Delta Dec, the disk-frame
r, phi, z of the current parameter values and the data, model and residual
there, each with its unit (v0 here is absolute, in m/s; the model explorer
shows v0 - vlsr in km/s). The fit mask (``r_min``, ``r_max``, the phi wedges, as the fit will
use them, with the geometry of the session's current values) is outlined on
every map; in "edit mask" mode a drag that starts near the r_min ring moves
r_min and one near the r_max ring moves r_max, to the radius under the cursor
in the outline's geometry, which sets ``session.r_min`` / ``session.r_max``
(the editor shows them). A drag that starts near a wedge edge, the ray at
``phi_min`` or ``phi_max`` (arc distance r |dphi| within the rings'
tolerance, between the rings), moves that edge to the disk-frame azimuth
under the cursor (0.1 deg), set in ``session.extra_params``; the rings win
when both are near. The outline follows any change of the session.

While a fit runs the model and residual follow the walkers' current median
(at most ``max_redraws_per_second``, through
:class:`~eddy_widgets.session.maps.FitFollower`); when it stops or ends they
show the posterior median model and the rotation residual, which stays empty
(its title says "after a fit") until then. After a failed run they show the
current set-up's model and the status line says so. Every number comes from
the package: the medians from ``cube.posterior_median`` (circular in PA), the
model from the fit's posterior (``posterior.model_map``) or
``cube.evaluate_models``,
the coordinates from ``cube.evaluate_models(coords_only=True)``, the mask
from ``cube.fit_mask`` and the rotation residual from
``analysis.profiles.deproject_residual``, blank near the minor axis where
dividing by cos(phi) blows up, with its colour limits by the package's one
rule (``analysis.colour_limits``; a note under the map states the cut). Each
map keeps equal arcsec per screen pixel; the grid has as many columns of at
least 300 px as the notebook's width allows.
"""

from __future__ import annotations

import html

import bqplot as bq
from bqplot_image_gl import Contour
from bqplot_image_gl.interacts import MouseInteraction
import ipywidgets as W
import numpy as np

from ..analysis.colour_limits import mask_minor_axis, minor_axis_note
from ..analysis.profiles import deproject_residual
from ..inference.spec import FitSpec
from ..model import FLARED_NITER
from ..model.pixels import pixel_coords
from ..parameters import MASK_SETTINGS
from ..session.maps import FitFollower
from .mapview import MapFigure, mask_outline

__all__ = ["MapPanel", "readout_text", "mask_outline"]

UNIT = "m/s"
MASK_COLOUR = "#2ca02c"
VIEWS = ("data", "model", "residual", "rotation")
TITLES = {"data": "data: v0 [m/s]", "model": "model: v0 [m/s]",
          "residual": "residual: data - model [m/s]",
          "rotation": "rotation residual: v_phi [m/s]"}
AFTER_FIT = " (after a fit)"
STATUS_SETUP = "model of the current set-up"
STATUS_FAILED = "last run failed; maps show the current set-up's model"
STATUS_POSTERIOR = "posterior median model"
STATUS_FOLLOWING = "following the fit's current median"
#: The wedge edges a drag can move (azimuths [deg] in session.extra_params).
PHI_EDGES = ("phi_min", "phi_max")


def _number(value) -> float | None:
    """``value`` as a finite float, else None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def readout_text(x: float, y: float, r: float, phi_deg: float, z: float,
                 data: float, model: float | None = None, unit: str = UNIT) -> str:
    """The cursor readout as one HTML line, every number with its unit: sky
    offsets, disk-frame r and z [arcsec], phi [deg], and the data's v0, the
    model's and the residual data - model [unit]."""
    unit = html.escape(unit)
    def v(value):
        return "&ndash;" if value is None or not np.isfinite(value) else f"{value:.1f} {unit}"
    residual = None if model is None else data - model
    parts = [f"&Delta;RA {x:+.3f} arcsec", f"&Delta;Dec {y:+.3f} arcsec",
             f"<b>r</b> {r:.3f} arcsec", f"<b>&phi;</b> {phi_deg:+.1f}&deg;",
             f"z {z:.3f} arcsec", f"v0 {v(data)}", f"model {v(model)}",
             f"residual {v(residual)}"]
    # Each quantity in one piece (a narrow panel wraps between them, never
    # between a number and its unit).
    return "<span style='font-family:monospace'>" + " &nbsp; ".join(
        f"<span style='white-space:nowrap'>{part}</span>" for part in parts) + "</span>"


class MapPanel(W.VBox):
    """Data, model, residual and rotation residual maps over ``session``
    (see the module docstring). ``session.cube`` may be None or change."""

    max_redraws_per_second = 3.0

    def __init__(self, session):
        self.session = session
        self.figures: dict[str, MapFigure] = {}
        self.model = None
        self.theta = None
        self._coords = None         # (r [arcsec], phi [rad], z [arcsec]) maps
        self._coords_params = None  # the parameters they belong to (lazy)
        self.mask_radius = None     # r [arcsec] of the outline's geometry
        self.mask_geometry = None   # model parameters of the outline's geometry
        self._spec = None
        self._drag = None
        self.follower = FitFollower(self._show_current, self.max_redraws_per_second)
        self.mode = W.ToggleButtons(options=["pan/zoom", "edit mask"],
                                    value="pan/zoom", style={"button_width": "90px"},
                                    tooltips=["drag to pan, wheel to zoom",
                                              "drag from near the r_min or r_max "
                                              "ring, or a phi_min / phi_max edge, "
                                              "to move it"])
        self.status = W.HTML()
        self.grid = W.GridBox(layout=W.Layout(
            grid_template_columns="repeat(auto-fill, minmax(300px, 1fr))",
            grid_gap="4px", width="100%"))
        self.mode.observe(self._mode_changed, "value")
        super().__init__([W.HBox([self.mode, self.status]), self.grid])
        self.add_class("eddy-maps")
        session.observe(self._cube_changed, "cube")
        session.observe(self._mask_changed, ["r_min", "r_max", "extra_params"])
        session.observe(self._status_changed, "status")
        for row in session.parameters.values():
            row.observe(self._values_changed, ["value", "free"])
        session.observe_chunks(self._chunk)
        self._build()

    # -- building ------------------------------------------------------------

    def _build(self) -> None:
        cube = self.session.cube
        self.figures = {}
        self._coords = self._coords_params = None
        if cube is None:
            self.grid.children = ()
            self.status.value = "<i>No map: set session.cube.</i>"
            return
        beam = (float(cube.bmaj), float(cube.bmin), float(cube.bpa))
        x, y = np.asarray(cube.xaxis, float), np.asarray(cube.yaxis, float)
        shared = {}
        for name in VIEWS:
            title = TITLES[name] + (AFTER_FIT if name == "rotation" else "")
            fig = MapFigure(x, y, title=title, unit=UNIT, beam=beam,
                            scheme="RdBu_r", symmetric=name in ("residual", "rotation"), **shared)
            shared = {"scale_x": fig.scale_x, "scale_y": fig.scale_y}
            fig.outline = Contour(contour_lines=[[]], level=0.5, color=MASK_COLOUR,
                                  label_steps=100000,
                                  scales={"x": fig.scale_x, "y": fig.scale_y})
            fig.figure.marks = [*fig.figure.marks, fig.outline]
            self.figures[name] = fig
        self.figures["rotation"].set_note(html.escape(minor_axis_note()))
        self.pan_zoom = bq.interacts.PanZoom(scales={"x": [self.scale_x],
                                                     "y": [self.scale_y]})
        for fig in self.figures.values():
            fig.mouse = MouseInteraction(x_scale=self.scale_x, y_scale=self.scale_y,
                                         move_throttle=70)
            fig.mouse.on_msg(self._mouse_message)
            fig.figure.interaction = fig.mouse
        self._mode_changed()
        self.figures["data"].set_image(cube.data)
        # the model on the data's colours, so the two compare by eye
        self.figures["model"].set_limits(*self.figures["data"].limits)
        self.grid.children = tuple(self.figures.values())
        self.refresh()

    @property
    def scale_x(self):
        return self.figures["data"].scale_x

    @property
    def scale_y(self):
        return self.figures["data"].scale_y

    # -- what is shown ---------------------------------------------------------

    def current_fit(self):
        """``(spec, theta)`` of the session's current values (None, None if
        they are not numbers yet). ``spec`` includes the session's mask."""
        kwargs = self.session.to_fit_kwargs(check=False)
        params = dict(kwargs["params"])
        for key in ("r_min", "r_max"):
            if kwargs.get(key) is not None:
                params[key] = kwargs[key]
        theta = kwargs["p0"]
        if any(v is None for v in theta):
            return None, None
        try:
            return FitSpec.parse(params), np.asarray(theta, dtype=float)
        except Exception:  # noqa: BLE001 - an incomplete set-up shows no model
            return None, None

    def refresh(self) -> None:
        """Model, coordinates and mask of the session's values, or the
        posterior median after a fit (``cube.posterior_median``)."""
        cube = self.session.cube
        if cube is None:
            return
        result = self.session.result
        run = getattr(self.session, "fit_run", None)
        status = self.session.status
        if (run is not None and result is not None and status in ("stopped", "done")
                and result.n_draws("sampling") > 0):
            self.show_theta(run.posterior.spec, cube.posterior_median(run),
                            run=run, posterior=True)
            self.status.value = STATUS_POSTERIOR
            self.draw_mask()
            return
        spec, theta = self.current_fit()
        if spec is not None:
            self.show_theta(spec, theta)
        self.status.value = (STATUS_FAILED if status == "error" else STATUS_SETUP
                             if spec is not None else "<i>No model: the set-up is "
                             "incomplete.</i>")
        self.draw_mask()

    def show_theta(self, spec: FitSpec, theta, run=None, posterior=False) -> None:
        """Model and residual at free values ``theta`` of ``spec``."""
        cube = self.session.cube
        theta = np.asarray(theta, dtype=float)
        if run is not None:
            model = run.posterior.model_map(theta)
        else:
            model = cube.evaluate_models(params=spec.to_params(theta))
        self.model, self.theta, self._spec = np.asarray(model, float), theta, spec
        # The disk coordinates of these values, computed when first read (the
        # readout, the v_phi map): a running fit's redraws need none.
        self._coords, self._coords_params = None, spec.to_params(theta)
        residual = np.asarray(cube.data, float) - self.model
        self.figures["model"].set_image(self.model)
        self.figures["residual"].set_image(residual)
        if posterior:
            inc = spec.model_params(theta)["inc"]
            phi = self.coords[1]
            v_phi = deproject_residual(residual, phi, self.coords[2], float(inc))[0]
            self.figures["rotation"].set_image(mask_minor_axis(v_phi, phi))
            self.figures["rotation"].figure.title = TITLES["rotation"]
        else:
            self.figures["rotation"].set_image(np.full_like(residual, np.nan))
            self.figures["rotation"].figure.title = TITLES["rotation"] + AFTER_FIT

    @property
    def coords(self):
        """``(r [arcsec], phi [rad], z [arcsec])`` maps of the values shown
        (``None`` before any model)."""
        if self._coords is None and self._coords_params is not None:
            r, phi, z = self.session.cube.evaluate_models(params=self._coords_params,
                                                          coords_only=True)
            self._coords = (np.asarray(r), np.asarray(phi), np.asarray(z))
        return self._coords

    def draw_mask(self) -> None:
        """Outline the pixels a fit with the session's mask would use, in the
        geometry of the session's current values (the next fit's); keeps
        that geometry (and its radius map) for dragging the rings and the
        wedge edges."""
        cube = self.session.cube
        spec, theta = self.current_fit()
        if cube is None or spec is None:
            return
        params = spec.to_params(theta)
        try:
            mask = cube.fit_mask(params, np.zeros(0))
        except Exception:  # noqa: BLE001 - e.g. zero pixels: no outline
            mask = np.zeros(np.shape(cube.data), bool)
        self.mask = mask
        self.mask_geometry = spec.model_params(theta)
        self.mask_radius = np.asarray(cube.evaluate_models(params=params,
                                                           coords_only=True)[0])
        lines = mask_outline(mask, np.asarray(cube.xaxis, float),
                             np.asarray(cube.yaxis, float))
        for fig in self.figures.values():
            fig.outline.contour_lines = [lines]

    # -- readout -----------------------------------------------------------------

    def pixel_at(self, x: float, y: float) -> tuple[int, int]:
        """(row, column) of the pixel nearest to (Delta RA, Delta Dec)."""
        cube = self.session.cube
        return (int(np.argmin(np.abs(np.asarray(cube.yaxis) - y))),
                int(np.argmin(np.abs(np.asarray(cube.xaxis) - x))))

    def readout_at(self, x: float, y: float) -> str:
        """The readout for the sky position (x, y) [arcsec]; also shown."""
        cube = self.session.cube
        if cube is None or self.coords is None:
            return ""
        j, i = self.pixel_at(x, y)
        r, phi, z = (float(c[j, i]) for c in self.coords)
        model = None if self.model is None else float(self.model[j, i])
        text = readout_text(x, y, r, float(np.degrees(phi)), z,
                            float(cube.data[j, i]), model)
        for fig in self.figures.values():
            fig.set_readout(text)
        return text

    # -- mouse -------------------------------------------------------------------

    def _mouse_message(self, widget, content, buffers=None) -> None:
        event = content.get("event")
        domain = content.get("domain") or {}
        if "x" not in domain:
            return
        x, y = float(domain["x"]), float(domain["y"])
        if event == "mousemove":
            self.readout_at(x, y)
        elif self.mode.value == "edit mask":
            self.drag(event, x, y)

    def radius_at(self, x: float, y: float) -> float:
        """Disk-frame radius [arcsec] at (x, y) in the geometry the mask
        outline is drawn with (the session's current values)."""
        j, i = self.pixel_at(x, y)
        return float(self.mask_radius[j, i])

    def disk_point(self, x: float, y: float) -> tuple[float, float]:
        """Disk-frame radius [arcsec] and azimuth phi [deg] of the sky
        position (x, y) itself (not its pixel), in the outline's geometry."""
        cube = self.session.cube
        r, phi, _ = pixel_coords([x], [y], self.mask_geometry,
                                 getattr(cube, "flared_niter", FLARED_NITER))
        return float(r[0, 0]), float(np.degrees(phi[0, 0]))

    def azimuth_at(self, x: float, y: float) -> float:
        """The mask's azimuth [deg] at (x, y) in the outline's geometry
        (``|phi|`` when the session's mask uses ``abs_phi``)."""
        phi = self.disk_point(x, y)[1]
        return abs(phi) if self.session.extra_params.get("abs_phi") else phi

    def phi_edge(self, name: str) -> float | None:
        """The session's ``phi_min`` / ``phi_max`` [deg] (the default when
        not set), None if it is not a number."""
        return _number(self.session.extra_params.get(name, MASK_SETTINGS[name]))

    def edge_near(self, x: float, y: float) -> str | None:
        """The ring (``'r_min'``, ``'r_max'``) or wedge edge (``'phi_min'``,
        ``'phi_max'``) a drag from (x, y) would move, or None. Near: within
        ``max(bmaj, 3 pixels)`` in radius of a ring, or in arc length
        r |dphi| of an edge's ray between the rings; rings first, then the
        nearer."""
        cube = self.session.cube
        tolerance = max(float(cube.bmaj), 3.0 * float(cube.dpix))
        r = self.radius_at(x, y)
        rings = {}
        for key in ("r_min", "r_max"):
            value = getattr(self.session, key)
            if value is None and key == "r_min":
                value = 0.0
            if isinstance(value, (int, float)):
                rings[key] = abs(r - float(value))
        near = [k for k, d in rings.items() if d <= tolerance]
        if near:
            return min(near, key=rings.get)
        r_min = _number(self.session.r_min) or 0.0
        r_max = _number(self.session.r_max)
        r, phi = self.disk_point(x, y)
        if r < r_min - tolerance or (r_max is not None and r > r_max + tolerance):
            return None
        if self.session.extra_params.get("abs_phi"):
            phi = abs(phi)
        edges = {}
        for key in PHI_EDGES:
            edge = self.phi_edge(key)
            if edge is not None:
                dphi = (phi - edge + 180.0) % 360.0 - 180.0
                # arc length, then the unwrapped difference (at -180 / 180 the
                # two rays coincide: the cursor's side picks)
                edges[key] = (r * abs(np.radians(dphi)), abs(phi - edge))
        near = [k for k, d in edges.items() if d[0] <= tolerance]
        return min(near, key=edges.get) if near else None

    def drag(self, event: str, x: float, y: float) -> None:
        """Move a ring or a wedge edge: ``dragstart`` near one picks it
        (:meth:`edge_near`), ``dragmove`` / ``dragend`` set it to the radius
        [arcsec, 0.01] or azimuth [deg, 0.1] under the cursor."""
        if self.mask_radius is None or self.mask_geometry is None:
            return
        if event == "dragstart":
            self._drag = self.edge_near(x, y)
        elif event in ("dragmove", "dragend") and self._drag is not None:
            if self._drag in PHI_EDGES:
                self.session.set_mask_setting(self._drag,
                                              round(self.azimuth_at(x, y), 1))
            else:
                setattr(self.session, self._drag,
                        round(max(self.radius_at(x, y), 0.0), 2))
            if event == "dragend":
                self._drag = None

    def _mode_changed(self, change=None) -> None:
        editing = self.mode.value == "edit mask"
        for fig in self.figures.values():
            fig.mouse.next = None if editing else self.pan_zoom
            fig.mouse.events = (["mousemove", "dragstart", "dragmove", "dragend"]
                                if editing else ["mousemove"])
            fig.mouse.cursor = "crosshair" if editing else "auto"

    # -- session events ------------------------------------------------------------

    def _cube_changed(self, change) -> None:
        self._build()

    def _mask_changed(self, change) -> None:
        self.draw_mask()

    def _values_changed(self, change) -> None:
        if not self.session.busy and self.session.status not in ("stopped", "done"):
            self.refresh()

    def _status_changed(self, change) -> None:
        if change["new"] in ("stopped", "done"):
            self.follower.flush()
            self.refresh()
        elif change["new"] == "error":
            self.follower.clear()
            self.refresh()
        elif change["new"] == "running":
            self.follower.clear()       # a new run's first median shows at once
            self.status.value = STATUS_FOLLOWING

    # -- following a running fit (the fit's thread) -------------------------------

    def _chunk(self, chunk, info) -> None:
        """In the fit's thread: offer the walkers' current median (circular
        in PA) to :attr:`follower`, which redraws at most
        ``max_redraws_per_second``."""
        run = getattr(self.session, "fit_run", None)
        cube = self.session.cube
        if run is not None and cube is not None:
            self.follower.offer(cube.posterior_median(run, np.asarray(chunk.draws)[:, -1, :]))

    def _show_current(self, theta) -> None:
        run = getattr(self.session, "fit_run", None)
        if run is not None and self.session.cube is not None:
            self.show_theta(run.posterior.spec, theta, run=run)
