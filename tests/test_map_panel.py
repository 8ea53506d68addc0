"""The map panel on state: MapFigure (image, colour limits, unit, beam) and
MapPanel over a FitSession (readout, mask outline, dragging r_min/r_max,
model following a fit)."""

import numpy as np
import pytest

# bqplot-image-gl is in the widgets extra, which the test command installs:
# a missing install fails at this import rather than skipping the panel.
from eddy_widgets.widgets.mapview import MapFigure, beam_outline, mask_outline


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
    # Right under the image, above the colour controls: the nearest place
    # that does not push the map down.
    assert a.children[1] is a.readout


def test_the_readout_never_wraps_between_a_number_and_its_unit():
    import re

    from eddy_widgets.widgets.maps import readout_text

    text = readout_text(-1.2345, 0.5, 1.4, -35.0, 0.2, 5123.4, 5100.0, unit="m/s")
    pieces = re.findall(r"<span style='white-space:nowrap'>(.*?)</span>", text)
    assert len(pieces) == 8
    assert pieces[0].startswith("&Delta;RA -1.23") and pieces[0].endswith(" arcsec")
    assert pieces[-1] == "residual 23.4 m/s"
    # Between the pieces, and only there, the line may break.
    outside = re.sub(r"<span style='white-space:nowrap'>.*?</span>", "", text)
    assert re.sub(r"<[^>]+>", "", outside).replace("&nbsp;", "").strip() == ""


def test_mask_outline_runs_between_the_pixels_inside_and_outside():
    x, y = _axes()
    mask = np.zeros((21, 21), bool)
    mask[5:10, 8:14] = True             # rows y[5:10], columns x[8:14]
    (line,) = mask_outline(mask, x, y)
    assert line[:, 1].min() == pytest.approx(0.5 * (y[4] + y[5]))
    assert line[:, 1].max() == pytest.approx(0.5 * (y[9] + y[10]))
    assert line[:, 0].max() == pytest.approx(0.5 * (x[7] + x[8]))


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
    # a chunk: the model at the walkers' current median (circular in PA)
    last = session.result.chains["sampling"][:, -1, :]
    chunk_theta = small_cube.posterior_median(run, last)
    class Chunk:
        draws = session.result.chains["sampling"][:, -1:, :]
    panel.follower.clear()
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
    assert panel.figures["rotation"].figure.title == "rotation residual: v_phi [m/s]"


def test_median_is_circular_in_pa(small_cube):
    """Walkers on both sides of PA = 0/360: the median is near 0, not 180."""
    class Run:
        class result:
            names = ("PA", "mstar")
    samples = np.array([[358.0, 1.0], [359.0, 1.1], [1.0, 1.2], [2.0, 1.3], [3.0, 1.4]])
    theta = small_cube.posterior_median(Run(), samples)
    assert min(theta[0], 360.0 - theta[0]) < 2.0
    assert theta[1] == pytest.approx(1.2)


def test_chunks_redraw_at_most_three_times_a_second(panel):
    draws = []
    panel.show_theta = lambda *a, **k: draws.append(a)
    panel.session.fit_run = type("Run", (), {
        "posterior": type("P", (), {"spec": None})(),
        "result": type("R", (), {"names": tuple(f"p{i}" for i in range(9))})()})()
    class Chunk:
        draws = np.zeros((4, 1, 9))
    panel.follower.clear()
    for _ in range(10):
        panel._chunk(Chunk(), None)
    assert len(draws) == 1
    assert panel.follower.pending is not None
    panel.follower.flush()              # the run ends: the newest is shown
    assert len(draws) == 2 and panel.follower.pending is None
    # walkers on both sides of PA = 0/360: the model is drawn at PA near 0, not 180
    panel.session.fit_run.result.names = ("x0", "y0", "PA") + tuple(f"p{i}" for i in range(6))
    class Straddling:
        draws = np.zeros((4, 1, 9))
        draws[:, 0, 2] = [358.0, 359.0, 1.0, 2.0]
    panel.follower.clear()
    panel._chunk(Straddling(), None)
    pa = draws[-1][1][2]
    assert min(pa, 360.0 - pa) < 2.0


def test_model_uses_the_data_colours_residuals_are_symmetric(panel):
    figs = panel.figures
    assert figs["model"].limits == pytest.approx(figs["data"].limits, rel=1e-3)
    assert not figs["model"].auto_limits.value
    lo, hi = figs["residual"].limits
    assert lo == pytest.approx(-hi)
    assert not figs["data"].symmetric and not figs["model"].symmetric


def test_readout_gives_every_number_its_unit_and_titles_say_absolute_v0(panel):
    text = readout_text(0.5, -0.25, 1.234, 30.0, 0.2, 5712.3, 5700.1)
    for part in ["&Delta;RA +0.500 arcsec", "&Delta;Dec -0.250 arcsec",
                 "<b>r</b> 1.234 arcsec", "<b>&phi;</b> +30.0&deg;", "z 0.200 arcsec",
                 "v0 5712.3 m/s", "model 5700.1 m/s", "residual 12.2 m/s"]:
        assert part in text, part
    titles = {k: f.figure.title for k, f in panel.figures.items()}
    # absolute v0 in m/s here (the explorer's titles say v0 - vlsr [km/s])
    assert titles["data"] == "data: v0 [m/s]" and titles["model"] == "model: v0 [m/s]"
    assert titles["residual"] == "residual: data - model [m/s]"
    assert all("vlsr" not in t for t in titles.values())


def test_rotation_view_says_after_a_fit_before_one(panel):
    fig = panel.figures["rotation"]
    assert fig.figure.title == "rotation residual: v_phi [m/s] (after a fit)"
    assert np.isnan(fig.data).all()
    assert panel.status.value == "model of the current set-up"


def test_model_changes_while_running_rotation_waits(panel, small_cube):
    import threading
    session = panel.session
    session.checkpoint = None
    before = panel.figures["model"].data.copy()
    inside, release, seen = threading.Event(), threading.Event(), []

    def hold(chunk, info):              # after the panel's own observer
        seen.append(np.asarray(chunk.draws)[:, -1, :].copy())
        inside.set()
        release.wait(60)

    session.observe_chunks(hold)
    session.start()
    try:
        assert inside.wait(120), session.error
        assert session.status == "running"
        assert panel.status.value == "following the fit's current median"
        theta = small_cube.posterior_median(session.fit_run, seen[0])
        np.testing.assert_allclose(panel.figures["model"].data,
                                   session.fit_run.posterior.model_map(theta), rtol=1e-5)
        assert not np.allclose(panel.figures["model"].data, before, rtol=1e-7, atol=0)
        assert panel.figures["rotation"].figure.title.endswith("(after a fit)")
    finally:
        session.unobserve_chunks(hold)
        release.set()
        session.wait(120)


def test_failed_run_says_so_and_shows_the_setups_model(panel, small_cube, monkeypatch):
    session = panel.session
    session.checkpoint = None
    setup_model = panel.figures["model"].data.copy()
    session.start()
    assert session.wait(300) and session.status == "done", session.error
    assert panel.status.value == "posterior median model"
    assert not np.allclose(panel.figures["model"].data, setup_model, rtol=1e-7, atol=0)

    def fail(*args, **kwargs):
        raise RuntimeError("sampler broke")

    monkeypatch.setattr(type(small_cube), "prepare_fit", fail)
    session.start()
    assert session.wait(300)
    assert session.status == "error" and "sampler broke" in session.error
    assert panel.status.value == "last run failed; maps show the current set-up's model"
    np.testing.assert_allclose(panel.figures["model"].data, setup_model, rtol=1e-6)
    assert panel.figures["rotation"].figure.title.endswith("(after a fit)")


def test_drag_ending_on_the_drawn_ring_leaves_it_there(panel, small_cube):
    """The maps show another geometry (as after a fit); the ring is drawn with
    the session's values, and a drag from the ring to the ring keeps it."""
    spec, theta = panel.current_fit()
    other = theta.copy()
    other[0] += 0.6                     # x0 [arcsec] of the shown model
    panel.show_theta(spec, other)
    r_setup = np.asarray(small_cube.evaluate_models(params=spec.to_params(theta),
                                                    coords_only=True)[0])
    mask = panel.mask
    # the pixels just inside the drawn r_max ring, where the two geometries differ most
    ring = mask & (r_setup > 3.0 - 1.5 * small_cube.dpix)
    j, i = np.unravel_index(np.argmax(np.where(ring, np.abs(panel.coords[0] - r_setup),
                                               -1)), r_setup.shape)
    assert abs(panel.coords[0][j, i] - r_setup[j, i]) > 0.3
    x, y = float(small_cube.xaxis[i]), float(small_cube.yaxis[j])
    panel.mode.value = "edit mask"
    for event in ("dragstart", "dragmove", "dragend"):
        panel._mouse_message(None, {"event": event, "domain": {"x": x, "y": y}})
    # the radius of that pixel in the drawn ring's geometry, not the shown model's
    assert panel.session.r_max == pytest.approx(round(float(r_setup[j, i]), 2))
    assert panel.session.r_max == pytest.approx(3.0, abs=1.5 * small_cube.dpix)
    assert abs(int(panel.mask.sum()) - int(mask.sum())) <= 0.05 * mask.sum()


# -- dragging the wedge edges (phi_min, phi_max) --------------------------------

from eddy_widgets.model.geometry import disk_coords  # noqa: E402

#: The session's geometry in ``panel`` (P0 and tutorial_params).
GEOMETRY = dict(x0=0.0, y0=0.0, inc=46.7, PA=312.0, z0=0.25, psi=1.0, r_taper=3.0,
                q_taper=2.0)


def _sky_of_disk_point(r, phi_deg, step=0.01):
    """Sky offsets (x, y) [arcsec] of the disk-frame point (r, phi), found on
    a fine sky grid through the package's geometry, and the exact azimuth
    [deg] there."""
    grid = np.arange(-4.0, 4.0, step)
    xs, ys = np.meshgrid(grid, grid)
    rr, pp, _ = (np.asarray(c) for c in disk_coords(xs, ys, **GEOMETRY))
    target = r * np.exp(1j * np.radians(phi_deg))
    k = np.argmin(np.abs(rr * np.exp(1j * pp) - target))
    x, y = float(xs.flat[k]), float(ys.flat[k])
    _, phi, _ = disk_coords(np.array([x]), np.array([y]), **GEOMETRY)
    return x, y, float(np.degrees(phi[0]))


def test_dragging_near_the_phi_max_edge_sets_session_phi_max(panel):
    from eddy_widgets.widgets import ParameterEditor
    session = panel.session
    session.extra_params = {"phi_min": -120.0, "phi_max": 60.0}
    editor = ParameterEditor(session)
    before = panel.mask.copy()
    lines_before = panel.figures["data"].outline.contour_lines[0]
    x0, y0, phi0 = _sky_of_disk_point(2.0, 61.0)       # 2 arcsec x 1 deg from the edge
    x1, y1, phi1 = _sky_of_disk_point(2.2, 85.0)
    assert abs(phi1 - 85.0) < 1.0
    for event, (x, y) in (("dragstart", (x0, y0)), ("dragmove", (x1, y1)),
                          ("dragend", (x1, y1))):
        panel.drag(event, x, y)
    assert session.extra_params["phi_max"] == pytest.approx(phi1, abs=0.5)
    assert session.extra_params["phi_min"] == -120.0
    assert session.r_max == 3.0
    assert float(editor.phi_max.value) == session.extra_params["phi_max"]
    # the outline follows: more pixels inside, a different line
    assert panel.mask.sum() > before.sum()
    assert not np.array_equal(panel.mask, before)
    lines_after = panel.figures["data"].outline.contour_lines[0]
    assert len(lines_after) != len(lines_before) or any(
        a.shape != b.shape or not np.allclose(a, b)
        for a, b in zip(lines_after, lines_before))


def test_a_drag_far_from_every_edge_and_ring_changes_nothing(panel):
    session = panel.session
    session.extra_params = {"phi_min": -120.0, "phi_max": 60.0}
    mask = panel.mask.copy()
    r_min, r_max = session.r_min, session.r_max
    far = _sky_of_disk_point(1.8, -30.0)[:2]
    to = _sky_of_disk_point(2.2, 30.0)[:2]
    for event, (x, y) in (("dragstart", far), ("dragmove", to), ("dragend", to)):
        panel.drag(event, x, y)
    assert session.extra_params == {"phi_min": -120.0, "phi_max": 60.0}
    assert (session.r_min, session.r_max) == (r_min, r_max)
    np.testing.assert_array_equal(panel.mask, mask)


def test_a_drag_near_a_ring_and_an_edge_moves_the_ring(panel):
    session = panel.session
    session.extra_params = {"phi_min": -120.0, "phi_max": 60.0}
    x0, y0, _ = _sky_of_disk_point(3.0, 60.0)           # on r_max, on the edge
    x1, y1, _ = _sky_of_disk_point(2.5, 80.0)
    for event, (x, y) in (("dragstart", (x0, y0)), ("dragend", (x1, y1))):
        panel.drag(event, x, y)
    assert session.extra_params["phi_max"] == 60.0
    assert session.r_max == pytest.approx(panel.radius_at(x1, y1), abs=0.01)
    assert session.r_max < 2.8
