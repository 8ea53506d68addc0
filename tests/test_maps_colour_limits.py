"""Colour limits of the maps (issue 21, item 5): one percentile rule in
``eddy_widgets.analysis.colour_limits`` with presets, the v_phi residual's
pixels near the minor axis (where dividing by cos(phi) blows up) masked, used
by the map panel and by the after-fit methods."""

from __future__ import annotations

import numpy as np
import pytest

from eddy_widgets.analysis.colour_limits import (
    DEFAULT_PRESET,
    MIN_ABS_COS_PHI,
    PRESETS,
    colour_limits,
    mask_minor_axis,
)
from eddy_widgets.session import FitSession
from eddy_widgets.widgets.maps import MapPanel

from helpers import P0, tutorial_params


def test_percentile_presets():
    assert PRESETS["99.5%"] == 99.5 and PRESETS["95%"] == 95.0
    assert DEFAULT_PRESET in PRESETS
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 100.0, 20_000)
    values[:20] = 1e5                                    # a few wild pixels
    values[20:40] = np.nan
    finite = values[np.isfinite(values)]
    for preset, percent in (("99.5%", 99.5), ("95%", 95.0)):
        half = (100.0 - percent) / 2
        assert colour_limits(values, preset) == pytest.approx(
            tuple(np.percentile(finite, [half, 100.0 - half])))
        top = np.percentile(np.abs(finite), percent)
        assert colour_limits(values, preset, symmetric=True) == pytest.approx((-top, top))
    assert colour_limits(values, 90.0) == pytest.approx(
        tuple(np.percentile(finite, [5.0, 95.0])))
    # the wild pixels do not set the scale
    assert colour_limits(values, "99.5%", symmetric=True)[1] < 400.0
    assert colour_limits(values, "min/max") == pytest.approx((finite.min(), 1e5))
    assert colour_limits(np.full(5, np.nan)) == (-1.0, 1.0)
    lo, hi = colour_limits(np.full(5, 7.0))
    assert lo < 7.0 < hi
    with pytest.raises(ValueError, match="99.5%"):
        colour_limits(values, "99%%")


def test_pixels_near_the_minor_axis_are_masked_and_do_not_set_limits():
    phi = np.linspace(-np.pi, np.pi, 3601)
    v_phi = 100.0 / np.cos(phi)          # a 100 m/s residual, deprojected
    masked = mask_minor_axis(v_phi, phi)
    near = np.abs(np.cos(phi)) < MIN_ABS_COS_PHI
    assert np.isnan(masked[near]).all() and np.isfinite(masked[~near]).all()
    np.testing.assert_array_equal(masked[~near], v_phi[~near])
    lo, hi = colour_limits(v_phi, symmetric=True, phi=phi)
    assert (lo, hi) == colour_limits(masked, symmetric=True)
    assert hi <= 100.0 / MIN_ABS_COS_PHI
    assert colour_limits(v_phi, symmetric=True)[1] > 5 * hi   # unmasked: blown up
    assert mask_minor_axis(v_phi, phi, 0.5)[np.abs(np.cos(phi)) < 0.5].size > near.sum()


@pytest.fixture(scope="module")
def shown_at_truths(example):
    """A map panel showing the rotation residual of the example's true
    values (as after a fit), on the 40 x 40 example."""
    from eddy_widgets import rotationmap
    cube = rotationmap(example.v0, FOV=8.0, downsample=8)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    session = FitSession.from_fit_kwargs(
        P0, tutorial_params(cube), priors=cube.priors, cube=cube, r_max=3.0,
        nwalkers=20, nburnin=4, nsteps=4, optimize=False)
    panel = MapPanel(session)
    spec, _ = panel.current_fit()
    theta = np.array([example.truths[n] for n in spec.free])
    panel.show_theta(spec, theta, posterior=True)
    return cube, spec, theta, panel


def test_rotation_residual_map_is_not_empty(shown_at_truths):
    # Issue 21: +-4,375 m/s from a few pixels near the minor axis, beside a
    # data - model panel of +-236 m/s: the map looked empty.
    cube, spec, theta, panel = shown_at_truths
    rotation, residual = panel.figures["rotation"], panel.figures["residual"]
    lo, hi = rotation.limits
    assert lo == pytest.approx(-hi)
    assert hi < 4 * residual.limits[1]
    phi = panel.coords[1]
    near = np.abs(np.cos(phi)) < MIN_ABS_COS_PHI
    assert np.isnan(rotation.data[near]).all()
    assert np.isfinite(rotation.data[~near & np.isfinite(cube.data)]).mean() > 0.99
    # the cut is stated under the map
    assert f"{MIN_ABS_COS_PHI:g}" in rotation.note.value
    assert "minor axis" in rotation.note.value
    # the limits are the rule's, with the preset the person picks
    assert rotation.preset.value == DEFAULT_PRESET
    assert rotation.limits == pytest.approx(colour_limits(rotation.data, symmetric=True),
                                            rel=1e-6)
    rotation.preset.value = "95%"
    assert rotation.limits == pytest.approx(
        colour_limits(rotation.data, "95%", symmetric=True), rel=1e-6)
    assert rotation.auto_limits.value
    rotation.vmax.value = 50.0                  # typed: the preset is left
    assert not rotation.auto_limits.value
    rotation.preset.value = "99.5%"             # a preset: auto again
    assert rotation.auto_limits.value
    assert rotation.limits == pytest.approx(
        colour_limits(rotation.data, "99.5%", symmetric=True), rel=1e-6)
    rotation.preset.value = DEFAULT_PRESET


def test_after_fit_methods_use_the_same_rule(shown_at_truths):
    cube, spec, theta, panel = shown_at_truths
    values = spec.to_params(theta)
    v_p = cube.deproject_model_residuals(None, values)[0]
    geometry = {k: values[k] for k in ("x0", "y0", "inc", "PA", "z0", "psi", "r_taper",
                                       "q_taper")}
    phi = cube.disk_coords(**geometry)[1]
    assert cube.residual_limits(v_p, phi=phi) == colour_limits(v_p, symmetric=True,
                                                               phi=phi)
    assert cube.residual_limits(v_p, phi=phi, preset="95%") == colour_limits(
        v_p, "95%", symmetric=True, phi=phi)
    # on the panel's own map the same numbers
    np.testing.assert_allclose(cube.residual_limits(v_p, phi=phi),
                               panel.figures["rotation"].limits, rtol=1e-3)
