"""The map panel on state: MapFigure (image, colour limits, unit, beam) and
MapPanel over a FitSession (readout, mask outline, dragging r_min/r_max,
model following a fit)."""

import numpy as np
import pytest

pytest.importorskip("bqplot_image_gl")

from eddy_widgets.widgets.mapview import MapFigure, beam_outline  # noqa: E402


def _axes(n=21, step=0.1):
    x = (np.arange(n) - n // 2) * step
    return x[::-1].copy(), x.copy()     # RA decreasing like cube.xaxis


def test_map_figure_shows_image_with_east_to_the_left():
    x, y = _axes()
    fig = MapFigure(x, y, title="v0", unit="km/s")
    data = np.add.outer(y, 2 * x)        # data[j, i] at (x[i], y[j])
    fig.set_image(data)
    shown = fig.image.image
    # shown columns increase in Delta RA; the scale is reversed (east left)
    assert shown[0, 0] == pytest.approx(y[0] + 2 * x.min())
    assert shown[0, -1] == pytest.approx(y[0] + 2 * x.max())
    assert fig.scale_x.reverse is True
    assert tuple(fig.image.x) == pytest.approx((-1.05, 1.05))
    assert tuple(fig.image.y) == pytest.approx((-1.05, 1.05))


def test_nan_stays_nan_for_transparency():
    x, y = _axes()
    fig = MapFigure(x, y, title="v0", unit="km/s")
    data = np.ones((21, 21))
    data[3, 4] = np.nan
    fig.set_image(data)
    assert np.isnan(fig.image.image).sum() == 1


def test_colour_limits_auto_then_kept_when_set_by_user():
    x, y = _axes()
    fig = MapFigure(x, y, title="v0", unit="km/s")
    fig.set_image(np.linspace(0, 10, 21 * 21).reshape(21, 21))
    lo, hi = fig.limits
    assert fig.auto_limits.value
    assert lo == pytest.approx(0.1, abs=0.01) and hi == pytest.approx(9.9, abs=0.01)
    assert fig.vmin.value == pytest.approx(lo, rel=1e-3)
    # the person types a maximum: auto turns off and a new image keeps it
    fig.vmax.value = 5.0
    assert not fig.auto_limits.value
    fig.set_image(np.linspace(0, 100, 21 * 21).reshape(21, 21))
    assert fig.limits == pytest.approx((lo, 5.0), rel=1e-3)
    # back to auto: the new image's limits
    fig.auto_limits.value = True
    assert fig.limits[1] == pytest.approx(99.0, abs=0.1)


def test_symmetric_limits_and_stretch_recolours_without_new_image():
    x, y = _axes()
    fig = MapFigure(x, y, title="residual", unit="m/s", symmetric=True)
    fig.set_image(np.linspace(-3, 1, 21 * 21).reshape(21, 21))
    lo, hi = fig.limits
    assert lo == pytest.approx(-hi)
    image_before, colours = fig.image.image, list(fig.colour_scale.colors)
    fig.stretch.value = "asinh"
    assert fig.image.image is image_before
    assert fig.colour_scale.colors != colours
    assert fig.colour_scale.colors[0] == colours[0]     # ends stay the ends
    assert fig.colour_scale.colors[-1] == colours[-1]


def test_unit_on_colour_bar():
    x, y = _axes()
    fig = MapFigure(x, y, title="v0", unit="km/s")
    assert fig.colorbar.label == "km/s"
    assert fig.colorbar.scale is fig.image.scales["image"]


def test_beam_ellipse_in_lower_east_corner_with_its_size():
    x, y = _axes()
    fig = MapFigure(x, y, title="v0", unit="km/s", beam=(0.4, 0.2, 0.0))
    bx, by = np.asarray(fig.beam_mark.x), np.asarray(fig.beam_mark.y)
    assert fig.beam_mark.visible
    # PA 0: major axis north-south (0.4 arcsec), minor east-west (0.2 arcsec)
    assert by.max() - by.min() == pytest.approx(0.4, rel=1e-3)
    assert bx.max() - bx.min() == pytest.approx(0.2, rel=1e-2)
    # lower left as drawn = east (large Delta RA), south (small Delta Dec)
    assert bx.mean() > 0.5 and by.mean() < -0.5
    ex, ey = beam_outline(0.4, 0.2, 90.0)
    assert ex.max() - ex.min() == pytest.approx(0.4, rel=1e-3)   # PA 90: east-west


def test_no_beam_hidden_and_shared_scales():
    x, y = _axes()
    a = MapFigure(x, y, title="a", unit="km/s")
    b = MapFigure(x, y, title="b", unit="km/s", scale_x=a.scale_x, scale_y=a.scale_y)
    assert not a.beam_mark.visible
    assert b.image.scales["x"] is a.image.scales["x"]
    a.set_readout("<b>r</b> = 1")
    assert "r</b> = 1" in a.readout.value


# -- MapPanel over a FitSession on the bundled example -------------------------

from eddy_widgets.session import FitSession  # noqa: E402
from eddy_widgets.widgets.maps import MapPanel, readout_text  # noqa: E402
from helpers import P0, tutorial_params  # noqa: E402


@pytest.fixture
def panel(small_cube):
    session = FitSession.from_fit_kwargs(
        P0, tutorial_params(small_cube), priors=small_cube.priors, cube=small_cube,
        r_max=3.0, nwalkers=20, nburnin=4, nsteps=4, optimize=False,
        mcmc_kwargs={"seed": 2})
    return MapPanel(session)


def test_panel_maps_share_scales_and_show_m_per_s(panel, small_cube):
    figs = panel.figures
    assert list(figs) == ["data", "model", "residual", "rotation"]
    assert {f.colorbar.label for f in figs.values()} == {"m/s"}
    assert all(f.scale_x is panel.scale_x and f.scale_y is panel.scale_y
               for f in figs.values())
    assert figs["data"].beam == pytest.approx(
        (small_cube.bmaj, small_cube.bmin, small_cube.bpa))
    np.testing.assert_allclose(figs["data"].data, small_cube.data.astype(np.float32))
    # the model of the session's values, the residual data - model
    params = dict(tutorial_params(small_cube), r_max=3.0)
    for i, name in enumerate(["x0", "y0", "PA", "mstar", "vlsr", "z0", "psi",
                              "r_taper", "q_taper"]):
        params[name] = P0[i]
    expected = small_cube.evaluate_models(params=params)
    np.testing.assert_allclose(figs["model"].data, expected, rtol=1e-5)


def test_readout_for_a_known_pixel_matches_disk_coords(panel, small_cube):
    j, i = 12, 30
    x, y = float(small_cube.xaxis[i]), float(small_cube.yaxis[j])
    text = panel.readout_at(x + 0.1 * small_cube.dpix, y)
    r, phi, z = small_cube.disk_coords(x0=0.0, y0=0.0, inc=46.7, PA=312.0, z0=0.25,
                                       psi=1.0, r_taper=3.0, q_taper=2.0)
    assert f"<b>r</b> {r[j, i]:.3f}" in text
    assert f"<b>&phi;</b> {np.degrees(phi[j, i]):+.1f}&deg;" in text
    assert f"z {z[j, i]:.3f}" in text
    assert f"v0 {small_cube.data[j, i]:.1f}" in text
    assert panel.figures["residual"].readout.value == text
    # moving the mouse (the front end's message) shows the same line
    panel._mouse_message(None, {"event": "mousemove", "domain": {"x": x, "y": y}})
    shown = panel.figures["data"].readout.value
    assert f"<b>r</b> {r[j, i]:.3f}" in shown and f"&Delta;RA {x:+.3f}" in shown
    assert "residual" in readout_text(0, 0, 1, 2, 3, 4.0, 3.0)
    assert "residual 1.0 m/s" in readout_text(0, 0, 1, 2, 3, 4.0, 3.0)


def _outline_extent(panel):
    lines = panel.figures["data"].outline.contour_lines[0]
    points = np.concatenate(lines)
    return np.abs(points).max()


def test_mask_outline_follows_session_r_max(panel):
    wide = _outline_extent(panel)
    panel.session.r_max = 1.5
    narrow = _outline_extent(panel)
    assert narrow < wide
    assert panel.mask.sum() > 0
    # every map shows the same outline
    assert all(len(f.outline.contour_lines[0]) == len(
        panel.figures["data"].outline.contour_lines[0]) for f in panel.figures.values())


def _radius_point(panel, r_target):
    """A sky position whose pixel radius is close to ``r_target``."""
    r = panel.coords[0]
    j, i = np.unravel_index(np.argmin(np.abs(r - r_target)), r.shape)
    cube = panel.session.cube
    return float(cube.xaxis[i]), float(cube.yaxis[j]), float(r[j, i])


def test_dragging_near_r_max_sets_session_r_max(panel):
    panel.mode.value = "edit mask"
    x0, y0, _ = _radius_point(panel, 3.0)
    x1, y1, r1 = _radius_point(panel, 2.2)
    send = panel._mouse_message
    send(None, {"event": "dragstart", "domain": {"x": x0, "y": y0}})
    send(None, {"event": "dragmove", "domain": {"x": x1, "y": y1}})
    send(None, {"event": "dragend", "domain": {"x": x1, "y": y1}})
    assert panel.session.r_max == pytest.approx(round(r1, 2))
    assert panel.session.r_min == pytest.approx(2.0 * panel.session.cube.bmaj)
    # a drag far from both rings changes nothing; pan/zoom mode ignores drags
    xf, yf, _ = _radius_point(panel, 1.2)
    send(None, {"event": "dragstart", "domain": {"x": xf, "y": yf}})
    send(None, {"event": "dragmove", "domain": {"x": x0, "y": y0}})
    assert panel.session.r_max == pytest.approx(round(r1, 2))
    panel.mode.value = "pan/zoom"
    send(None, {"event": "dragstart", "domain": {"x": x1, "y": y1}})
    send(None, {"event": "dragmove", "domain": {"x": x0, "y": y0}})
    assert panel.session.r_max == pytest.approx(round(r1, 2))


def test_edit_mode_sends_drags_pan_mode_pans(panel):
    fig = panel.figures["model"]
    assert fig.mouse.next is panel.pan_zoom and "dragstart" not in fig.mouse.events
    panel.mode.value = "edit mask"
    assert fig.mouse.next is None and "dragmove" in fig.mouse.events


def test_model_follows_a_fit_then_shows_posterior_median(panel, small_cube):
    session = panel.session
    before = panel.figures["model"].data.copy()
    session.start()
    assert session.wait(300)
    assert session.status == "done", session.error
    run = session.fit_run
    # a chunk: the model at the walkers' current median
    chunk_theta = np.median(session.result.chains["sampling"][:, -1, :], axis=0)
    class Chunk:
        draws = session.result.chains["sampling"][:, -1:, :]
    panel._last_draw = 0.0
    panel._chunk(Chunk(), None)
    np.testing.assert_allclose(panel.figures["model"].data,
                               run.posterior.model_map(chunk_theta), rtol=1e-5)
    # after the run: the posterior median model (as fit_map returns it)
    panel.refresh()
    median = small_cube.median_model(run)
    np.testing.assert_allclose(panel.figures["model"].data, median, rtol=1e-5)
    np.testing.assert_allclose(panel.figures["residual"].data,
                               small_cube.data - median, rtol=1e-4, atol=1e-2)
    assert not np.allclose(panel.figures["model"].data, before)
    assert np.isfinite(panel.figures["rotation"].data).any()
    assert panel.status.value == "posterior median model"


def test_chunks_redraw_at_most_three_times_a_second(panel):
    draws = []
    panel.show_theta = lambda *a, **k: draws.append(a)
    panel.session.fit_run = type("Run", (), {"posterior": type(
        "P", (), {"spec": None})()})()
    class Chunk:
        draws = np.zeros((4, 1, 9))
    panel._last_draw = 0.0
    for _ in range(10):
        panel._chunk(Chunk(), None)
    assert len(draws) == 1
    assert panel._pending is not None


def test_model_uses_the_data_colours_residuals_are_symmetric(panel):
    figs = panel.figures
    assert figs["model"].limits == pytest.approx(figs["data"].limits, rel=1e-3)
    assert not figs["model"].auto_limits.value
    lo, hi = figs["residual"].limits
    assert lo == pytest.approx(-hi)
    assert not figs["data"].symmetric and not figs["model"].symmetric
