"""Shape and layout of the sky maps (issue 21, items 1 and 12): equal arcsec
per screen pixel on both axes, panels that wrap rather than squeeze, colour
bars as tall as the map with readable ticks, no hover toolbar over titles."""

from __future__ import annotations

import numpy as np
import pytest

from eddy_widgets.session import FitSession
from eddy_widgets.widgets.maps import MapPanel
from eddy_widgets.widgets.mapview import MapFigure

from helpers import P0, tutorial_params


def _axes(nx=21, ny=21, step=0.1):
    x = (np.arange(nx) - nx // 2) * step
    y = (np.arange(ny) - ny // 2) * step
    return x[::-1].copy(), y


def test_equal_arcsec_per_pixel_on_both_axes():
    fig = MapFigure(*_axes(), title="v0", unit="m/s")
    assert fig.figure.min_aspect_ratio == fig.figure.max_aspect_ratio == pytest.approx(1.0)
    # the ratio is the plot area's (bqplot's auto layout), not the element's
    assert fig.figure.auto_layout
    wide = MapFigure(*_axes(41, 21), title="v0", unit="m/s")
    assert wide.figure.min_aspect_ratio == pytest.approx(4.1 / 2.1)
    assert wide.figure.max_aspect_ratio == pytest.approx(4.1 / 2.1)
    assert not fig.figure.display_toolbar     # it covered the title on hover


def test_colour_bar_is_as_tall_as_the_map_with_readable_ticks():
    fig = MapFigure(*_axes(), title="residual", unit="m/s", symmetric=True)
    fig.set_image(np.linspace(-236.0, 236.0, 21 * 21).reshape(21, 21))
    bar = fig.colorbar
    assert bar.label == "m/s" and bar.scale is fig.image.scales["image"]
    assert bar.length >= 200                # bqplot's ColorAxis: plot height - 200
    lo, hi = fig.limits
    ticks = bar.ticks
    assert 3 <= len(ticks) <= 6
    assert all(lo <= t <= hi for t in ticks)
    labels = bar.labels
    assert len(set(labels)) == len(labels) and max(map(len, labels)) <= 6
    for label in labels:
        assert label in bar.value
    # the bar follows the limits and the stretch of the colour scale
    fig.set_limits(-50.0, 50.0)
    assert bar.ticks[0] >= -50.0 and bar.ticks[-1] <= 50.0 and "50" in bar.value
    before = bar.value
    fig.stretch.value = "asinh"
    assert bar.value != before
    assert fig.colour_scale.colors[5] in bar.value


@pytest.fixture(scope="module")
def panel(example):
    from eddy_widgets import rotationmap
    cube = rotationmap(example.v0, FOV=8.0, downsample=8)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    session = FitSession.from_fit_kwargs(
        P0, tutorial_params(cube), priors=cube.priors, cube=cube, r_max=3.0,
        nwalkers=20, nburnin=4, nsteps=4, optimize=False)
    return MapPanel(session)


def test_map_panel_keeps_the_disks_shape_and_wraps(panel):
    for name, fig in panel.figures.items():
        assert fig.figure.min_aspect_ratio == pytest.approx(1.0), name
        assert fig.figure.max_aspect_ratio == pytest.approx(1.0), name
        assert fig.figure.auto_layout and not fig.figure.display_toolbar, name
        assert fig.colorbar.length >= 200, name
    # a grid of columns at least 300 px wide: a narrow notebook gets fewer
    # columns, not thinner maps
    assert "minmax(300px" in panel.grid.layout.grid_template_columns
