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
