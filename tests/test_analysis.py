"""After the fit, in the disk frame: deprojections, radial profiles, residual
decompositions and the rotation curve from annuli, each against a known
answer on the bundled example's geometry (its truths, no fit)."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import pytest

from eddy_widgets.analysis import annuli, deprojection, profiles
from eddy_widgets.analysis.deprojection import DiskGeometry
from eddy_widgets.rotationmap import rotationmap

GEOMETRY = ("x0", "y0", "inc", "PA", "z0", "psi", "r_taper", "q_taper", "r_cavity")
#: Annuli 0.15 arcsec wide with edges at 1.5 and 1.8 arcsec.
RBINS = np.round(np.arange(0.3, 3.91, 0.15), 6)


@pytest.fixture(scope="module")
def cube(example):
    """The example at FOV 8, downsample 4 (80 x 80), owned by this module."""
    return rotationmap(example.v0, FOV=8.0, downsample=4)


@pytest.fixture(scope="module")
def truths(example):
    return dict(example.truths)


@pytest.fixture(scope="module")
def geo(truths):
    return {k: truths[k] for k in GEOMETRY}


@pytest.fixture(scope="module")
def coords(cube, truths):
    """(r, phi, z) of every pixel at the truths."""
    return DiskGeometry.from_params(truths).coords(cube.xaxis, cube.yaxis)


@pytest.fixture(scope="module")
def model(cube, truths):
    """The noiseless model map at the truths [m/s]."""
    return np.asarray(cube.evaluate_models(params=truths))


def with_data(cube, data):
    """A copy of ``cube`` whose v0 map is ``data``."""
    other = copy.copy(cube)
    other.map = dataclasses.replace(cube.map, data=np.asarray(data, float))
    return other


def projection(truths, phi, v_phi=0.0, v_r=0.0):
    """Line-of-sight velocity of a rotation v_phi and a radial flow v_r
    (positive away from the star) [m/s]."""
    inc = np.radians(truths["inc"])
    return v_phi * np.cos(phi) * abs(np.sin(inc)) - v_r * np.sin(phi) * np.sin(inc)


# -- Deprojection ----------------------------------------------------------------


def test_polar_deprojection_of_the_model_gives_its_keplerian_rotation(
        cube, geo, truths, model, coords):
    """(v0 - vlsr) / (cos(phi) sin i) of a model with v_r = 0, put on the
    (r, phi) grid, is the model's Keplerian speed with height at each r."""
    r, phi, _ = coords
    with np.errstate(divide="ignore", invalid="ignore"):
        sin_i = np.sin(np.radians(truths["inc"]))
        v_phi = (model - truths["vlsr"]) / (np.cos(phi) * sin_i)
    v_phi = np.where(np.abs(np.cos(phi)) > 0.3, v_phi, np.nan)
    rgrid = np.linspace(0.6, 3.4, 15)
    tgrid = np.radians(np.r_[-150:-30:10, -20:30:10, 40:160:10])
    rgrid, tgrid, gridded = cube.polar_deprojection(
        v_phi, **geo, rgrid=rgrid, tgrid=tgrid, griddata_kwargs={"method": "linear"})
    away = np.abs(np.cos(tgrid)) > 0.5
    expected = annuli.keplerian_profile(rgrid, truths)
    ratio = gridded[away] / expected[None, :]
    assert np.isfinite(ratio).all()
    # Linear interpolation of r^-1/2 between pixels 0.1 arcsec apart.
    assert np.max(np.abs(ratio - 1.0)) < 1e-2
    assert np.median(np.abs(ratio - 1.0)) < 1e-3


def test_polar_deprojection_returns_a_known_function_on_its_grid(cube, geo, coords):
    r, phi, _ = coords

    def f(r, phi):
        return 1.0 + r ** 2 + 0.5 * r * np.cos(phi) + 0.3 * np.sin(2 * phi)

    rgrid = np.linspace(0.5, 3.5, 13)
    tgrid = np.linspace(-np.pi, np.pi, 37)
    rg, tg, gridded = cube.polar_deprojection(
        f(r, phi), **geo, rgrid=rgrid, tgrid=tgrid,
        griddata_kwargs={"method": "linear"})
    assert gridded.shape == (tgrid.size, rgrid.size)
    np.testing.assert_array_equal(rg, rgrid)
    expected = f(rgrid[None, :], tgrid[:, None])
    inside = np.abs(tgrid) < np.pi - 0.1          # away from the branch cut
    assert np.isfinite(gridded[inside]).all()
    assert np.max(np.abs(gridded[inside] - expected[inside])) < 0.05
    # astro-eddy's default 'nearest': within a pixel's change of f.
    _, _, nearest = cube.polar_deprojection(f(r, phi), **geo, rgrid=rgrid, tgrid=tgrid)
    assert np.max(np.abs(nearest[inside] - expected[inside])) < 0.6


def test_cartesian_deprojection_of_a_radial_map_is_round(cube, geo, coords):
    """A map of r itself, face on, is hypot(x, y): the same after a
    rotation by 90 degrees."""
    r = coords[0]
    data = np.where(r < 3.8, r, np.nan)
    grid, face_on = cube.cartesian_deprojection(data, **geo,
                                                griddata_kwargs={"method": "linear"})
    np.testing.assert_array_equal(grid, cube.yaxis)
    grid = np.linspace(-3.5, 3.5, 71)           # symmetric about 0
    grid, face_on = cube.cartesian_deprojection(data, **geo, grid=grid,
                                                griddata_kwargs={"method": "linear"})
    radius = np.hypot(grid[:, None], grid[None, :])
    inner = (radius > 0.3) & (radius < 3.0)     # away from the cusp at r = 0
    assert np.isfinite(face_on[inner]).all()
    assert np.max(np.abs(face_on[inner] - radius[inner])) < 0.01
    rotated = np.rot90(face_on)
    assert np.max(np.abs(face_on[inner] - rotated[inner])) < 0.02


def test_cartesian_deprojection_puts_the_major_axis_along_rows(cube, geo, coords):
    """astro-eddy's layout: gridded[i, j] is at disk x = grid[i] (the
    red-shifted major axis), y = grid[j]."""
    r, phi, _ = coords
    grid, face_on = cube.cartesian_deprojection(r * np.cos(phi), **geo,
                                                griddata_kwargs={"method": "linear"})
    i, j = np.searchsorted(grid, 2.0), np.searchsorted(grid, 0.0)
    assert face_on[i, j] == pytest.approx(grid[i], abs=0.01)
    assert face_on[j, i] == pytest.approx(grid[j], abs=0.01)


def test_deprojection_refuses_shadowed_and_wrong_shapes(cube, geo):
    with pytest.raises(NotImplementedError, match="shadowed"):
        cube.polar_deprojection(cube.data, **geo, shadowed=True)
    with pytest.raises(ValueError, match="shape"):
        cube.cartesian_deprojection(cube.data[:10], **geo)


def test_griddata_kwargs_are_not_modified(cube, geo):
    kwargs = {"method": "linear"}
    cube.polar_deprojection(cube.data, **geo, griddata_kwargs=kwargs)
    assert kwargs == {"method": "linear"}


# -- Radial profiles and backgrounds ---------------------------------------------


def test_radial_profile_of_a_linear_law(cube, geo, coords):
    r = coords[0]
    data = np.where(r < 3.9, 3.0 + 2.0 * r, np.nan)
    rbins = np.arange(0.5, 3.6, 0.25)
    x, y, dy = cube.radial_profile(rbins=rbins, **geo, data=data)
    np.testing.assert_allclose(x, 0.5 * (rbins[1:] + rbins[:-1]))
    # The mean radius of a ring of uniform surface density.
    a, b = rbins[:-1], rbins[1:]
    mean_r = 2.0 / 3.0 * (b ** 3 - a ** 3) / (b ** 2 - a ** 2)
    np.testing.assert_allclose(y, 3.0 + 2.0 * mean_r, rtol=3e-3)
    # The scatter of 2 r across a bin of width w is about 2 w / sqrt(12) ...
    _, _, scatter = cube.radial_profile(rbins=rbins, **geo, data=data,
                                        assume_correlated=False)
    np.testing.assert_allclose(scatter, 2.0 * 0.25 / np.sqrt(12.0), rtol=0.15)
    # ... and divided by the square root of the beams around the ring.
    np.testing.assert_allclose(dy, scatter / np.sqrt(2 * np.pi * x / cube.bmaj))
    # Percentiles (astro-eddy 3.2 fails here: np.nabpercentile).
    xp, yp, dyp = cube.radial_profile(rbins=rbins, **geo, data=data, percentiles=True)
    assert dyp.shape == (2, x.size)
    np.testing.assert_allclose(yp, 3.0 + 2.0 * mean_r, rtol=5e-3)
    assert np.all(dyp > 0)


def test_default_radial_bins_are_a_quarter_beam(cube):
    rbins, rvals = cube.radial_sampling()
    assert rbins[0] == 0.0 and np.allclose(np.diff(rbins), cube.bmaj / 4.0)
    rbins, rvals = cube.radial_sampling(rvals=[1.0, 1.5, 2.0])
    np.testing.assert_allclose(rbins, [0.75, 1.25, 1.75, 2.25])
    with pytest.raises(ValueError, match="only"):
        cube.radial_sampling(rbins=[0, 1], rvals=[0.5])


def test_background_residual_of_a_radial_function_is_zero(cube, geo, coords):
    r = coords[0]
    data = np.where(r < 3.9, 100.0 * np.exp(-r), np.nan)
    residual = cube.background_residual(**geo, data=data,
                                        rbins=np.arange(0.2, 3.8, 0.1))
    inner = (r > 0.4) & (r < 3.5)
    # Of a 67 -> 3 range: the pixels of a bin do not sit at its centre.
    assert np.nanmax(np.abs(residual[inner])) < 1.0
    assert np.nanmedian(np.abs(residual[inner])) < 0.05
    background = cube.background_residual(**geo, data=data, return_background=True,
                                          rbins=np.arange(0.2, 3.8, 0.1))
    np.testing.assert_allclose(background[inner] + residual[inner], data[inner])


# -- Residual decompositions -----------------------------------------------------


def fixed_params(truths):
    """astro-eddy-style params with mstar free (one sample at its truth)."""
    params = {k: float(v) for k, v in truths.items()}
    params["mstar"] = 0
    return params, np.array([[truths["mstar"]]])


def test_deproject_model_residuals_recovers_injected_motions(cube, truths, model,
                                                             coords):
    """+50 m/s of rotation and a +30 m/s outflow come back with their signs
    (astro-eddy 3.2 returns -50 and -30 for inc > 0)."""
    r, phi, _ = coords
    params, samples = fixed_params(truths)
    disk = (r > 0.5) & (r < 3.5)
    kinked = with_data(cube, model + projection(truths, phi, v_phi=50.0))
    v_p, v_r, v_z = kinked.deproject_model_residuals(samples, params)
    along = disk & (np.abs(np.cos(phi)) > 0.5)
    np.testing.assert_allclose(v_p[along], 50.0, atol=1e-6)
    flowing = with_data(cube, model + projection(truths, phi, v_r=30.0))
    v_p, v_r, v_z = flowing.deproject_model_residuals(samples, params)
    across = disk & (np.abs(np.sin(phi)) > 0.5)
    np.testing.assert_allclose(v_r[across], 30.0, atol=1e-6)
    # A vertical flow away from the (upper) surface lowers v0 by v_z cos(i).
    rising = with_data(cube, model - 20.0 * np.cos(np.radians(truths["inc"])))
    v_z = rising.deproject_model_residuals(samples, params)[2]
    np.testing.assert_allclose(v_z[disk], 20.0, atol=1e-6)


@pytest.mark.parametrize("axis", ["minor", "major"])
def test_mirror_of_an_axisymmetric_model_is_zero(cube, truths, model, axis):
    params, samples = fixed_params(truths)
    clean = with_data(cube, model)
    x, y, mirrored = clean.mirror_residual(samples, params,
                                           mirror_velocity_residual=False,
                                           mirror_axis=axis)
    np.testing.assert_array_equal(x, cube.xaxis)
    disk = np.isfinite(mirrored)
    assert disk.sum() > 0.5 * np.isfinite(model).sum()
    # Of a rotation signal of up to ~4 km/s: interpolation error only.
    assert np.nanpercentile(np.abs(mirrored), 95) < 15.0
    x, y, face_on = clean.mirror_residual(samples, params,
                                          mirror_velocity_residual=False,
                                          mirror_axis=axis, return_deprojected=True)
    assert face_on.shape == (x.size, x.size)
    np.testing.assert_allclose(x, -x[::-1], atol=1e-12)


def test_mirror_residual_shows_a_blob_and_its_mirror_image(cube, truths, model,
                                                           coords):
    """A residual blob at phi = 40 deg appears with the opposite sign at its
    mirror image about the minor axis, phi = 140 deg."""
    r, phi, _ = coords
    params, samples = fixed_params(truths)
    x_disk, y_disk = r * np.cos(phi), r * np.sin(phi)
    centre = 2.0 * np.array([np.cos(np.radians(40)), np.sin(np.radians(40))])
    blob = 80.0 * np.exp(-0.5 * ((x_disk - centre[0]) ** 2 + (y_disk - centre[1]) ** 2)
                         / 0.25 ** 2)
    lumpy = with_data(cube, model + blob)
    _, _, mirrored = lumpy.mirror_residual(samples, params)
    at_blob = np.argmin(np.hypot(x_disk - centre[0], y_disk - centre[1]))
    at_mirror = np.argmin(np.hypot(x_disk + centre[0], y_disk - centre[1]))
    assert mirrored.flat[at_blob] == pytest.approx(blob.flat[at_blob], abs=10.0)
    assert mirrored.flat[at_mirror] == pytest.approx(-blob.flat[at_blob], abs=10.0)
    far = np.hypot(x_disk - centre[0], y_disk - centre[1]) > 1.0
    far &= np.hypot(x_disk + centre[0], y_disk - centre[1]) > 1.0
    assert np.nanmax(np.abs(mirrored[far])) < 5.0


# -- The rotation curve ----------------------------------------------------------


def test_fit_annuli_of_a_noiseless_model_is_keplerian(cube, truths, model):
    fit = annuli.fit_annuli(model, cube.error, cube.xaxis, cube.yaxis,
                            DiskGeometry.from_params(truths), RBINS)
    expected = annuli.keplerian_profile(fit.rpnts, truths)
    np.testing.assert_allclose(fit.velo[0], expected, rtol=5e-3)
    assert np.all(np.abs(fit.velo[1]) < 0.01 * expected)
    np.testing.assert_allclose(fit.velo[3], truths["vlsr"], atol=30.0)
    assert np.all(fit.velo[2] == 0.0)
    assert np.all(fit.npix > 20)


def test_fit_annuli_recovers_an_injected_rotation_annulus(cube, truths, model,
                                                          coords):
    """+100 m/s of v_phi between r = 1.5 and 1.8 arcsec, with the example's
    noise: recovered within its error there, nothing elsewhere."""
    r, phi, _ = coords
    geometry = DiskGeometry.from_params(truths)
    kink = np.where((r >= 1.5) & (r < 1.8), 100.0, 0.0)
    noise = np.random.default_rng(1).normal(size=model.shape) * cube.error
    data = model + projection(truths, phi, v_phi=kink) + noise
    fit = annuli.fit_annuli(data, cube.error, cube.xaxis, cube.yaxis, geometry, RBINS)
    reference = annuli.fit_annuli(model, cube.error, cube.xaxis, cube.yaxis, geometry,
                                  RBINS)
    dv_phi = fit.velo[0] - reference.velo[0]
    pull = dv_phi / fit.dvelo[0]
    inside = (fit.rpnts > 1.5) & (fit.rpnts < 1.8)
    assert inside.sum() == 2
    assert np.all(np.abs(dv_phi[inside] - 100.0) < 2.0 * fit.dvelo[0][inside])
    assert np.all(fit.dvelo[0][inside] < 10.0)
    assert np.all(np.abs(pull[~inside]) < 3.0)
    vr_pull = (fit.velo[1] - reference.velo[1]) / fit.dvelo[1]
    assert np.all(np.abs(vr_pull) < 3.0)
    assert 0.4 < np.mean(vr_pull ** 2) < 2.0


def test_fit_annuli_uncertainties_match_the_scatter_of_noise(cube, truths, model):
    """Over 30 noise realisations the fitted values scatter by their stated
    uncertainties (chi2 per value ~ 1) for every component."""
    geometry = DiskGeometry.from_params(truths)
    rng = np.random.default_rng(2)
    rbins = RBINS[::2]
    fits = [annuli.fit_annuli(model + rng.normal(size=model.shape) * cube.error,
                              cube.error, cube.xaxis, cube.yaxis, geometry, rbins)
            for _ in range(30)]
    velo = np.array([f.velo for f in fits])
    dvelo = fits[0].dvelo
    scatter = velo.std(axis=0)
    ratio = scatter[[0, 1, 3]] / dvelo[[0, 1, 3]]
    assert 0.85 < np.mean(ratio ** 2) < 1.15
    assert np.all((ratio > 0.5) & (ratio < 1.6))


def test_fit_annuli_correlated_noise_scales_uncertainties(truths, model, cube):
    geometry = DiskGeometry.from_params(truths)
    args = (model, cube.error, cube.xaxis, cube.yaxis, geometry, RBINS)
    with pytest.warns(UserWarning, match="pixels per beam"):
        plain = annuli.fit_annuli(*args, beam=(0.5, 0.4))
    scaled = annuli.fit_annuli(*args, beam=(0.5, 0.4), assume_correlated=True)
    ppb = np.pi * 0.5 * 0.4 / (4 * np.log(2) * cube.dpix ** 2)
    np.testing.assert_allclose(scaled.dvelo, plain.dvelo * np.sqrt(ppb))
    np.testing.assert_allclose(scaled.velo, plain.velo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # the example's beam: ~1 pixel
        annuli.fit_annuli(*args, beam=(cube.bmaj, cube.bmin))


def test_fit_annuli_by_mcmc_agrees_with_least_squares(cube, truths, model):
    noise = np.random.default_rng(3).normal(size=model.shape) * cube.error
    geometry = DiskGeometry.from_params(truths)
    rbins = RBINS[8:12]
    args = (model + noise, cube.error, cube.xaxis, cube.yaxis, geometry, rbins)
    exact = annuli.fit_annuli(*args)
    sampled = annuli.fit_annuli(*args, MCMC=True, mcmc_kwargs={"seed": 4})
    rows = [0, 1, 3]
    assert np.all(np.abs(sampled.velo[rows] - exact.velo[rows])
                  < 0.25 * exact.dvelo[rows])
    np.testing.assert_allclose(sampled.dvelo[rows], exact.dvelo[rows], rtol=0.25)


def test_fit_annuli_method_returns_profiles_model_and_residual(cube, geo, truths):
    rp, velo, dvelo, model, residual = cube.fit_annuli(
        rbins=RBINS, **geo, plots="none", returns=["profiles", "model", "residual"])
    assert velo.shape == dvelo.shape == (4, rp.size)
    np.testing.assert_allclose(rp, 0.5 * (RBINS[1:] + RBINS[:-1]))
    np.testing.assert_allclose(residual, cube.data - model)
    annulus = np.isfinite(model)
    assert np.nanstd(residual[annulus]) < 3.0 * np.nanmedian(cube.error[annulus])
    # With v_lsr fixed, v_z = (v_lsr - C) / cos(i) is reported instead.
    rp, fixed, dfixed = cube.fit_annuli(rbins=RBINS, **geo, plots="none",
                                        fix_vlsr=truths["vlsr"])
    cos_i = np.cos(np.radians(truths["inc"]))
    np.testing.assert_allclose(fixed[2], (truths["vlsr"] - velo[3]) / cos_i)
    np.testing.assert_allclose(dfixed[2], dvelo[3] / cos_i)
    assert np.all(fixed[3] == truths["vlsr"]) and np.all(dfixed[3] == 0.0)
    np.testing.assert_allclose(fixed[:2], velo[:2])
    # Without v_r: zero, and v_phi barely moves.
    rp, rot, drot = cube.fit_annuli(rbins=RBINS, **geo, plots="none", fit_vrad=False)
    assert np.all(rot[1] == 0.0) and np.all(drot[1] == 0.0)
    assert np.all(np.abs(rot[0] - velo[0]) < dvelo[0])


def test_fit_annuli_masks_and_default_figures(cube, geo):
    rp, velo, dvelo = cube.fit_annuli(rbins=RBINS, **geo, phi_min=-90.0, phi_max=90.0,
                                      fit_vrad=False)
    assert set(cube.figures) == {"profiles", "model", "residual"}
    assert np.isfinite(velo[0]).all()
    with pytest.raises(ValueError, match="plots"):
        cube.fit_annuli(rbins=RBINS, **geo, plots="corner")
    with pytest.raises(ValueError, match="inc != 0"):
        cube.fit_annuli(rbins=RBINS, **{**geo, "inc": 0.0}, plots="none")
    with pytest.raises(ValueError, match="Choose one"):
        cube.fit_annuli(rbins=RBINS, **geo, plots="none", beam_spacing=1,
                        assume_correlated=True)


def test_fit_annuli_thinned_to_beam_spacing(cube, geo):
    rp, velo, dvelo = cube.fit_annuli(rbins=RBINS, **geo, plots="none")
    rp, thin, dthin = cube.fit_annuli(rbins=RBINS, **geo, plots="none",
                                      beam_spacing=3, niter=3, seed=0)
    outer = rp > 2.0            # where three beams span several pixels
    assert np.all(dthin[0][outer] > 1.3 * dvelo[0][outer])
    assert np.all(np.abs(thin[0] - velo[0])[outer] < 3.0 * dthin[0][outer])


def test_default_annuli_are_a_quarter_beam_from_half_a_beam(cube):
    rpnts, rbins = annuli.annulus_bins(bmaj=cube.bmaj, r_max=float(cube.xaxis.max()))
    assert rbins[0] == pytest.approx(cube.bmaj / 2)
    assert np.allclose(np.diff(rbins), cube.bmaj / 4)
    rpnts, rbins = annuli.annulus_bins([1.0, 1.2, 1.4], bmaj=0.1, r_max=4.0)
    np.testing.assert_allclose(rbins, [0.9, 1.1, 1.3, 1.5])


def test_plot_velocity_profiles_draws_the_keplerian_curve(cube, geo, truths):
    params, samples = fixed_params(truths)
    rp, velo, dvelo = cube.fit_annuli(rbins=RBINS, **geo, plots="none")
    fig = cube.plot_velocity_profiles(rp, velo, dvelo, params=params, samples=samples)
    top = fig.axes[0]
    assert len(fig.axes) == 3
    (kepler,) = [line for line in top.get_lines() if line.get_label() == "Keplerian"]
    r, v = kepler.get_data()
    np.testing.assert_allclose(v, annuli.keplerian_profile(r, truths) / 1e3)
    assert r.min() == pytest.approx(rp.min()) and r.max() == pytest.approx(rp.max())
    assert "v_{\\rm LSR}" in fig.axes[2].get_ylabel()
    fig = cube.plot_velocity_profiles(rp, velo, dvelo)
    assert not [line for line in fig.axes[0].get_lines()
                if line.get_label() == "Keplerian"]


def test_pure_functions_match_the_methods(cube, geo):
    geometry = DiskGeometry(**geo)
    a = cube.polar_deprojection(cube.data, **geo)
    b = deprojection.polar_deprojection(cube.data, cube.xaxis, cube.yaxis, geometry)
    np.testing.assert_array_equal(a[2], b[2])
    r = geometry.coords(cube.xaxis, cube.yaxis)[0]
    rbins, _ = cube.radial_sampling()
    np.testing.assert_array_equal(
        cube.radial_profile(**geo)[1],
        profiles.radial_profile(cube.data, r, rbins, cube.bmaj)[1])


def test_a_z_func_surface_deprojects_as_the_analytic_one(cube, geo, truths):
    """astro-eddy's z_func: the analytic surface given as a function gives
    the same face-on map and rotation curve."""
    import jax.numpy as jnp

    def z_func(r):
        return truths["z0"] * r ** truths["psi"] * jnp.exp(
            -(r / truths["r_taper"]) ** truths["q_taper"])

    plane = {k: truths[k] for k in ("x0", "y0", "inc", "PA")}
    _, analytic = cube.cartesian_deprojection(cube.data, **geo)
    _, given = cube.cartesian_deprojection(cube.data, **plane, z_func=z_func)
    np.testing.assert_array_equal(given, analytic)
    _, velo, _ = cube.fit_annuli(rbins=RBINS, **geo, plots="none")
    _, velo_z, _ = cube.fit_annuli(rbins=RBINS, **plane, z_func=z_func, plots="none")
    np.testing.assert_allclose(velo_z, velo, atol=1e-6)
    # A flat z_func is the midplane, whatever z0 says.
    _, flat = cube.cartesian_deprojection(cube.data, **plane)
    _, zero = cube.cartesian_deprojection(cube.data, **geo,
                                          z_func=lambda r: 0.0 * r)
    np.testing.assert_array_equal(zero, flat)


def test_the_kink_example_shows_at_its_radius_and_azimuth_in_the_disk_frame():
    """What a person looks for: the bundled 'kink' example's residual, put on
    the (r, phi) grid and smoothed, peaks where the kink was put, and its
    mirror image about the minor axis is its negative."""
    from scipy.ndimage import gaussian_filter

    from eddy_widgets import load_example

    example = load_example("kink")
    kink, truths = example.perturbation, example.truths
    cube = rotationmap(example.v0, FOV=8.0)
    geo = {k: truths[k] for k in GEOMETRY}
    residual = cube.data - cube.evaluate_models(params=truths)
    rgrid, tgrid = np.arange(0.5, 3.5, 0.025), np.radians(np.arange(-180, 180, 2.0))
    _, _, polar = cube.polar_deprojection(residual, **geo, rgrid=rgrid, tgrid=tgrid,
                                          griddata_kwargs={"method": "linear"})
    smooth = gaussian_filter(np.nan_to_num(polar), sigma=(2, 4))
    j, i = np.unravel_index(np.argmax(smooth), smooth.shape)
    assert rgrid[i] == pytest.approx(kink["r"], abs=0.05)
    assert np.degrees(tgrid[j]) == pytest.approx(kink["phi"], abs=6.0)
    params, samples = fixed_params(truths)
    x, y, face_on = cube.mirror_residual(samples, params, return_deprojected=True)
    # Face-on frame rotated by 90 deg: disk (x, y) sits at (-y, x).
    phi_k = np.radians(kink["phi"])
    at = (kink["r"] * -np.sin(phi_k), kink["r"] * np.cos(phi_k))
    i, j = np.argmin(np.abs(x - at[0])), np.argmin(np.abs(x - at[1]))
    smooth = gaussian_filter(np.nan_to_num(face_on), sigma=2)
    assert smooth[i, j] > 0.5 * kink["amplitude"]
    assert smooth[i, -1 - j] < -0.5 * kink["amplitude"]


def test_after_fit_medians_take_pa_on_the_circle(small_cube, example):
    # Samples of PA straddling 0/360: the model is made at PA ~ 0.5, not 180.
    import numpy as np

    from eddy_widgets.inference.diagnostics import sample_medians

    rng = np.random.default_rng(0)
    pa = (0.5 + rng.standard_normal(4000)) % 360.0
    assert sample_medians(pa[:, None], ["PA"])[0] == pytest.approx(0.5, abs=0.1)
    params = {k: float(v) for k, v in example.truths.items()}
    params["PA"] = 0
    values, _ = small_cube._fitted(pa[:, None], params, model=False)
    assert values["PA"] == pytest.approx(0.5, abs=0.1)
    assert small_cube._median_params(pa[:, None], params)["PA"] == pytest.approx(
        0.5, abs=0.1)


def test_polar_residual_is_blank_beyond_the_data_and_finds_the_kink():
    """``polar_residual`` (the results panel's and the CLI's disk-frame
    residual): nothing beyond the largest radius with data (regridding would
    repeat the edge there), and on the 'kink' example the largest smoothed
    residual sits at the kink's radius and azimuth."""
    from scipy.ndimage import gaussian_filter

    from eddy_widgets import load_example

    example = load_example("kink")
    kink, truths = example.perturbation, example.truths
    cube = rotationmap(example.v0, FOV=8.0)
    params, samples = fixed_params(truths)
    # A map with data out to 2.5 arcsec only (as after clipping).
    geo = {k: truths[k] for k in GEOMETRY}
    r_pix = cube.disk_coords(**geo)[0]
    cube = with_data(cube, np.where(r_pix < 2.5, cube.data, np.nan))
    rgrid, phi, polar = cube.polar_residual(samples, params)
    assert polar.shape == (len(phi), len(rgrid)) and np.all(np.abs(phi) <= 180.0)
    beyond = np.asarray(rgrid) > 2.5
    assert beyond.any() and np.all(np.isnan(polar[:, beyond]))
    assert np.isfinite(polar[:, np.asarray(rgrid) < 2.4]).all()
    smooth = gaussian_filter(np.nan_to_num(polar), sigma=(2, 2))
    j, i = np.unravel_index(np.argmax(smooth), smooth.shape)
    assert rgrid[i] == pytest.approx(kink["r"], abs=0.1)
    assert phi[j] == pytest.approx(kink["phi"], abs=10.0)


# -- Tiny annuli (issue 20, item 7) ------------------------------------------------

#: astro-eddy's default annuli (a quarter beam wide from half a beam) out to
#: 0.45": on 0.1" pixels they hold 0 to 9 pixels each.
TINY = np.arange(0.052, 0.45, 0.026)


def test_annuli_with_no_more_pixels_than_components_are_nan_and_named(
        cube, truths, model, coords):
    """An annulus of exactly 3 pixels fitted with v_phi, v_r and v_lsr is
    solved exactly (zero residual, its uncertainties untested): NaN, as
    fewer are, and a warning names each with its pixel count; with v_r left
    out 3 pixels are fitted and 2 are NaN."""
    r, _, _ = coords
    geometry = DiskGeometry.from_params(truths)
    usable = np.isfinite(model) & (cube.error > 0)
    counts = np.array([np.sum(usable & (r >= lo) & (r <= hi))
                       for lo, hi in zip(TINY[:-1], TINY[1:])])
    assert {0, 1, 2, 3} <= set(counts) and counts.max() > 4
    rpnts = 0.5 * (TINY[1:] + TINY[:-1])
    for fit_vrad, ncomp in ((True, 3), (False, 2)):
        with pytest.warns(UserWarning, match="annuli are NaN") as caught:
            fit = annuli.fit_annuli(model, cube.error, cube.xaxis, cube.yaxis,
                                    geometry, TINY, fit_vrad=fit_vrad)
        np.testing.assert_array_equal(fit.npix, counts)
        assert np.all(np.isnan(fit.velo[:, counts <= ncomp]))
        assert np.all(np.isfinite(fit.velo[:, counts > ncomp]))
        message = str(caught[-1].message)
        assert f"{np.sum(counts <= ncomp)} of {counts.size} annuli are NaN" in message
        for k in np.flatnonzero(counts <= ncomp):
            n = counts[k]
            assert f'{rpnts[k]:.3g}" ({n} pixel{"" if n == 1 else "s"})' in message
        for k in np.flatnonzero(counts > ncomp):
            assert f'{rpnts[k]:.3g}"' not in message
    # Annuli that all hold enough pixels fit silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        annuli.fit_annuli(model, cube.error, cube.xaxis, cube.yaxis, geometry,
                          RBINS)


def test_three_pixels_for_three_components_leave_no_residual():
    # Why 3 pixels are not fitted: whatever the data, the solution passes
    # through every pixel (chi2 = 0 for any noise), so neither the model nor
    # the uncertainties are tested; a fourth pixel leaves one residual.
    rng = np.random.default_rng(5)
    phi = np.radians([-141.0, -29.0, 144.0, 41.0])
    dv = np.full(4, 20.0)
    design = np.stack([np.cos(phi), np.sin(phi), np.ones(4)], axis=1)
    for _ in range(3):      # any noise, even 25 times dv0, is fitted exactly
        v = 5763.0 + 7000.0 * np.cos(phi) + rng.normal(size=4) * 500.0
        coef = np.linalg.solve(design[:3], v[:3])
        np.testing.assert_allclose(design[:3] @ coef, v[:3], rtol=1e-12)
    assert np.all(np.isnan(annuli.fit_annulus(v[:3], dv[:3], phi[:3], 46.7)[0]))
    assert np.all(np.isnan(annuli.fit_annulus(v[:2], dv[:2], phi[:2], 46.7, False)[0]))
    assert np.all(np.isfinite(annuli.fit_annulus(v, dv, phi, 46.7)[0]))
    assert np.all(np.isfinite(annuli.fit_annulus(v[:3], dv[:3], phi[:3], 46.7,
                                                 False)[0]))
    # Enough pixels at one angle do not separate the components: named too.
    message = annuli.unfitted_message(np.array([0.2]), np.array([5]), np.array([0]))
    assert "angles do not separate" in message and '0.2" (5 pixels)' in message
