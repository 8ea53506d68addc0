"""astro-eddy 3.2's calling convention: positional arguments, the attributes
its users read (with their units), ``optimize_kwargs``, the library's own
``mcmc_kwargs``, ``plots=['mask']``, ``evaluate_models`` / ``disk_coords`` /
``get_mask`` with astro-eddy's meanings, a user surface ``z_func``, and the
order of the flat samples."""

from __future__ import annotations

import inspect

from astropy.io import fits
import emcee
import jax.numpy as jnp
import numpy as np
import pytest

from eddy_widgets import rotationmap
from eddy_widgets.inference.backends import (
    BACKENDS,
    REFUSED,
    native_options,
    split_options,
)
from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk
from eddy_widgets.inference.spec import FitInputError
from eddy_widgets.model.velocity import AU, MSUN, G

from helpers import FREE, P0, tutorial_params

#: The example's disk (its truths) as astro-eddy geometry keywords.
GEOMETRY = dict(x0=0.02, y0=-0.015, inc=46.7, PA=312.0, z0=0.26, psi=1.7,
                r_taper=3.0, q_taper=2.0)


@pytest.fixture(scope="module")
def cube(example):
    """astro-eddy's positional order: path, FOV, uncertainty, downsample."""
    return rotationmap(example.v0, 8.0, None, 4)


# -- An astro-eddy script ----------------------------------------------------------


def test_astro_eddy_script_with_positional_arguments(example):
    cube = rotationmap(example.v0, 8.0, None, 8)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    params = tutorial_params(cube)
    samples, sampler, medians = cube.fit_map(
        P0, params, None, None, True, 20, 3, 4,
        optimize_kwargs={"method": "L-BFGS-B", "options": {"maxiter": 200}},
        mcmc_kwargs={"moves": emcee.moves.DEMove(), "thin_by": 2, "seed": 2,
                     "progress": False},
        plots=["mask", "walkers"], returns=["samples", "sampler", "dict"],
        verdict=False)
    assert samples.shape == (20 * 4, 9)
    assert sampler.get_chain().shape == (3 + 4, 20, 9)
    np.testing.assert_array_equal(samples, sampler.get_chain(discard=3, flat=True))
    assert medians["inc"] == 46.7 and abs(medians["mstar"] - 2.02) < 0.05
    # The mask figure: the data with the pixels the fit left out shaded.
    # astro-eddy's figures: a walker figure per parameter, the mask last.
    assert list(cube.figures) == [*(f"walkers_{n}" for n in FREE), "mask"]
    ax = cube.figures["mask"].axes[0]
    assert ax.images and len(ax.collections) >= 2
    # ivar is now the fitted pixels' inverse variance, as astro-eddy sets it.
    fitted = cube.last_run.posterior.mask
    np.testing.assert_allclose(cube.ivar[fitted], cube.error[fitted] ** -2)
    assert np.all(cube.ivar[~fitted] == 0.0) and (~fitted).any()


def test_nuts_arguments_reach_numpyro(small_cube):
    # step_size and adapt_step_size are numpyro NUTS's own arguments.
    result = small_cube.fit_map(
        P0, tutorial_params(small_cube), optimize=False, nwalkers=1, nburnin=3,
        nsteps=3, mcmc="numpyro", plots="none", returns="result", verdict=False,
        mcmc_kwargs={"step_size": 0.05, "adapt_step_size": False,
                     "max_tree_depth": 3, "progress": False})
    for phase in ("warmup", "sampling"):
        np.testing.assert_allclose(result.stats[phase]["step_size"], 0.05)
    assert result.settings["options"]["step_size"] == 0.05


def test_pool_and_other_streaming_conflicts_are_refused_with_the_reason(small_cube):
    with pytest.raises(FitInputError, match="one compiled, vectorised"):
        small_cube.fit_map(P0, tutorial_params(small_cube), pool=object())
    for key, why in [("pool", "vectorised"), ("backend", "checkpoint"),
                     ("vectorize", "always True")]:
        with pytest.raises(FitInputError, match=why):
            split_options(BACKENDS["emcee"], {key: None})
    with pytest.raises(FitInputError, match="p0"):
        split_options(BACKENDS["numpyro"], {"init_strategy": None})


@pytest.mark.parametrize("mcmc, expected", [
    ("emcee", ["moves", "scatter", "seed", "progress", "thin_by", "tune",
               "skip_initial_state_check", "blobs_dtype"]),
    ("numpyro", ["max_tree_depth", "chain_method", "seed", "step_size",
                 "adapt_step_size", "adapt_mass_matrix", "inverse_mass_matrix"]),
])
def test_unknown_mcmc_kwargs_list_the_valid_names(small_cube, mcmc, expected):
    with pytest.raises(FitInputError) as err:
        small_cube.fit_map(P0, tutorial_params(small_cube), mcmc=mcmc,
                           nwalkers=20 if mcmc == "emcee" else 1,
                           mcmc_kwargs={"not_an_option": 1})
    for name in expected:
        assert name in str(err.value), (name, str(err.value))


def test_library_arguments_come_from_the_signatures():
    from numpyro.infer import NUTS

    backend = BACKENDS["emcee"]
    emcee_args = (set(inspect.signature(emcee.EnsembleSampler).parameters)
                  | set(inspect.signature(emcee.EnsembleSampler.sample).parameters))
    assert set(native_options(backend)) == (emcee_args - {"self"} - set(backend.options)
                                             - set(REFUSED["emcee"]))
    backend = BACKENDS["numpyro"]
    assert set(native_options(backend)) == (set(inspect.signature(NUTS).parameters)
                                             - set(backend.options)
                                             - set(REFUSED["numpyro"]))


def test_optimize_kwargs_reach_the_optimiser(small_cube):
    run = small_cube.prepare_fit(P0, tutorial_params(small_cube), nwalkers=20,
                                 verbose=False,
                                 optimize_kwargs={"options": {"maxiter": 1}})
    assert run.result.settings["optimizer"]["nit"] == 1
    for bad, words in [({"maxiter": 5}, "under 'options'"),
                       ({"method": "Nelder-Mead"}, "always L-BFGS-B"),
                       ({"options": {"maxitr": 5}}, "'maxiter'"),
                       ({"options": {"eps": 1e-8}}, "exact JAX gradient")]:
        with pytest.raises(FitInputError, match=words):
            small_cube.fit_map(P0, tutorial_params(small_cube), optimize_kwargs=bad)


# -- Attributes and units -------------------------------------------------------------


def test_attributes_with_known_values(cube):
    # 8 arcsec of 0.025 arcsec pixels is 322 pixels (astro-eddy's FOV rule);
    # every 4th from the 3rd leaves 80 of 0.1 arcsec.
    assert (cube.nxpix, cube.nypix) == (80, 80)
    assert cube.dpix == pytest.approx(0.1)
    assert cube.FOV == pytest.approx(7.9)
    assert cube.extent == pytest.approx([4.0125, -3.9875, -4.0125, 3.9875])
    np.testing.assert_allclose(cube.extent_au(101.0), 101.0 * np.array(cube.extent))
    np.testing.assert_array_equal(cube.mask, np.isfinite(cube.data))
    good = cube.error > 0
    np.testing.assert_allclose(cube.ivar[good], cube.error[good] ** -2)
    assert np.all(cube.ivar[~good] == 0.0)
    assert cube.bmaj == pytest.approx(0.104) and cube.bpa == pytest.approx(100.0)
    assert cube.beam == (cube.bmaj, cube.bmin, cube.bpa)
    assert cube.pix_per_beam == pytest.approx(
        np.pi * 0.104 * 0.095 / (4 * np.log(2)) / 0.1 ** 2)
    assert cube.fname == "HD163296_like_v0.fits"
    assert cube.default_parameters["r_taper"] == {
        "default": np.inf, "prior_type": "flat", "prior_values": [0.0, np.inf]}


def test_velocities_in_m_per_s_from_a_km_per_s_file(tmp_path, example):
    with fits.open(example.v0) as hdul:
        header, values = hdul[0].header.copy(), hdul[0].data.astype(float)
    header["BUNIT"] = "km/s"
    fits.writeto(tmp_path / "disk_v0.fits", values / 1e3, header)
    with fits.open(example.dv0) as hdul:
        fits.writeto(tmp_path / "disk_dv0.fits", hdul[0].data.astype(float) / 1e3,
                     header)
    km = rotationmap(str(tmp_path / "disk_v0.fits"), 8.0, None, 4)
    m = rotationmap(example.v0, 8.0, None, 4)
    np.testing.assert_allclose(km.data, m.data, rtol=1e-12)
    np.testing.assert_allclose(km.error, m.error, rtol=1e-12)
    assert km.vlsr == pytest.approx(np.nanmedian(values[np.isfinite(values)]), rel=0.02)
    assert km.vlsr == pytest.approx(np.nanmedian(m.data))
    assert km.vlsr_kms == pytest.approx(km.vlsr / 1e3)
    assert 5.7 < km.vlsr_kms < 5.8


def test_assigned_error_is_what_the_fit_uses(example):
    cube = rotationmap(example.v0, 8.0, None, 8)
    cube.error = 50.0
    assert cube.map.error.shape == cube.data.shape
    np.testing.assert_allclose(cube.ivar[cube.mask], 1 / 2500.0)
    post = cube.posterior(tutorial_params(cube), P0)
    np.testing.assert_allclose(np.asarray(post._ivar), 1 / 2500.0)


def test_fill_and_force_center(tmp_path):
    values = np.arange(36.0).reshape(6, 6) + 5000.0
    values[0, :2] = np.nan
    header = fits.Header()
    header["BUNIT"] = "km/s"
    header["BMAJ"], header["BMIN"], header["BPA"] = 0.3 / 3600, 0.2 / 3600, 10.0
    fits.writeto(tmp_path / "grid_v0.fits", values / 1e3, header)
    fits.writeto(tmp_path / "grid_dv0.fits", np.full((6, 6), 0.01), header)
    # No pixel grid in the header: only force_center can read the file.
    with pytest.raises(ValueError, match="pixel scale"):
        rotationmap(str(tmp_path / "grid_v0.fits"))
    with pytest.warns(UserWarning, match="one pixel as the beam"):
        cube = rotationmap(str(tmp_path / "grid_v0.fits"), force_center=True,
                           fill=4.0)
    np.testing.assert_allclose(cube.xaxis, [2.5, 1.5, 0.5, -0.5, -1.5, -2.5])
    np.testing.assert_allclose(cube.yaxis, [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert cube.dpix == 1.0
    # fill is in the file's unit (km/s here); filled pixels are never fitted.
    np.testing.assert_allclose(cube.data[0, :2], 4000.0)
    assert cube.mask.all()
    assert np.all(cube.error[0, :2] == 0.0) and np.all(cube.error[1:] == 10.0)
    # With a pixel scale, the beam is converted to pixels (0.1 arcsec).
    header["CDELT1"], header["CDELT2"] = -0.1 / 3600, 0.1 / 3600
    fits.writeto(tmp_path / "scaled_v0.fits", values / 1e3, header)
    fits.writeto(tmp_path / "scaled_dv0.fits", np.full((6, 6), 0.01), header)
    scaled = rotationmap(str(tmp_path / "scaled_v0.fits"), force_center=True)
    assert (scaled.bmaj, scaled.bmin) == pytest.approx((3.0, 2.0))


def test_downsample_cube_and_clip_cube_spatial(example):
    cube = rotationmap(example.v0, 8.0)
    cube.downsample_cube(4)
    np.testing.assert_array_equal(cube.data, rotationmap(example.v0, 8.0, None, 4).data)
    assert cube.dpix == pytest.approx(0.1)
    cube = rotationmap(example.v0, 8.0)
    cube.clip_cube_spatial(4.0)
    ref = rotationmap(example.v0, 4.0)
    assert cube.nxpix == ref.nxpix == 162
    np.testing.assert_array_equal(cube.xaxis, ref.xaxis)
    np.testing.assert_array_equal(cube.error, ref.error)
    with pytest.raises(ValueError, match="larger FOV"):
        cube.clip_cube_spatial(10.0)


# -- Disk coordinates, masks and models ---------------------------------------------


def _to_sky(x, y, z, x0, y0, inc, PA):
    """Disk frame -> sky offsets [arcsec]: incline the disk (the point at
    height z is seen z sin(i) closer to the centre along the minor axis), then
    turn its red-shifted major axis (x) to PA east of north."""
    inc, pa = np.radians(inc), np.radians(PA)
    y_minor = np.cos(inc) * y - np.sin(inc) * z
    return (np.sin(pa) * x + np.cos(pa) * y_minor + x0,
            np.cos(pa) * x - np.sin(pa) * y_minor + y0)


def test_disk_coords_frames(cube):
    x_sky, y_sky = np.meshgrid(cube.xaxis, cube.yaxis)
    flat = {k: GEOMETRY[k] for k in ("x0", "y0", "inc", "PA")}
    # Projected back onto the sky, the disk-frame points are the pixels.
    x, y, z = cube.disk_coords(**flat, outframe="cartesian")
    assert np.all(z == 0.0)
    back = _to_sky(x, y, z, **flat)
    np.testing.assert_allclose(back, (x_sky, y_sky), atol=1e-12)
    # On the flared surface, to the precision of its 5 fixed-point iterations
    # (a few % of a 0.1 arcsec pixel at worst).
    x, y, z = cube.disk_coords(**GEOMETRY, outframe="cartesian")
    inside = np.hypot(x, y) < 3.0
    miss = np.hypot(*(np.asarray(_to_sky(x, y, z, **flat)) - (x_sky, y_sky)))[inside]
    assert np.max(miss) < 5e-3 and np.median(miss) < 1e-5
    r, phi, z2 = cube.disk_coords(**GEOMETRY)
    np.testing.assert_allclose((r * np.cos(phi), r * np.sin(phi)), (x, y), atol=1e-12)
    flat_r = cube.disk_coords(**GEOMETRY, flatten=True)[0]
    assert flat_r.shape == (80 * 80,)
    np.testing.assert_array_equal(flat_r, r.ravel())
    with pytest.raises(ValueError, match="outframe"):
        cube.disk_coords(outframe="spherical")
    with pytest.raises(NotImplementedError, match="shadowed"):
        cube.disk_coords(**GEOMETRY, shadowed=True)


def test_get_mask_frames(cube):
    x_sky, y_sky = np.meshgrid(cube.xaxis, cube.yaxis)
    # Sky frame: a ring about (x0, y0) whatever the inclination.
    sky = cube.get_mask(r_min=1.0, r_max=2.0, mask_frame="sky", **GEOMETRY)
    ring = np.hypot(x_sky - 0.02, y_sky + 0.015)
    np.testing.assert_array_equal(sky, (ring >= 1.0) & (ring <= 2.0))
    # phi in the sky frame runs east of north: [0, 180] deg is the east half.
    east = cube.get_mask(phi_min=0.0, phi_max=180.0, mask_frame="sky")
    np.testing.assert_array_equal(east, x_sky >= 0.0)
    # Disk frame: the deprojected radius.
    r = cube.disk_coords(**GEOMETRY)[0]
    disk = cube.get_mask(r_min=1.0, r_max=2.0, **GEOMETRY)
    np.testing.assert_array_equal(disk, (r >= 1.0) & (r <= 2.0))
    outside = cube.get_mask(r_min=1.0, r_max=2.0, exclude_r=True, **GEOMETRY)
    np.testing.assert_array_equal(outside, ~disk)
    user = np.zeros(cube.data.shape)
    user[:40] = 1.0
    np.testing.assert_array_equal(
        cube.get_mask(r_min=1.0, r_max=2.0, user_mask=user, **GEOMETRY), disk * user)
    with pytest.raises(ValueError, match="zero pixels"):
        cube.get_mask(r_min=50.0, r_max=60.0)
    # astro-eddy 3.2 takes warp parameters and ignores them; we say so.
    with pytest.warns(UserWarning, match="warps are not modelled"):
        warped = cube.get_mask(r_min=1.0, r_max=2.0, w_i=5.0, **GEOMETRY)
    np.testing.assert_array_equal(warped, disk)
    with pytest.raises(ValueError, match="r_min"):
        cube.get_mask(r_min=2.0, r_max=1.0)


def test_evaluate_models_coords_only_and_profile_only(cube, example):
    truths = dict(example.truths)
    r, phi, z = cube.evaluate_models(params=truths, coords_only=True)
    np.testing.assert_array_equal(r, cube.disk_coords(**GEOMETRY)[0])
    # The profile: every pixel's radius, sorted, and v_phi there with the
    # height of the surface (not projected).
    rp, v = cube.evaluate_models(params=truths, profile_only=True)
    order = np.argsort(r.ravel())
    np.testing.assert_array_equal(rp, r.ravel()[order])
    r_m, z_m = rp * 101.0 * AU, z.ravel()[order] * 101.0 * AU
    kepler = np.sqrt(G * 2.02 * MSUN * r_m ** 2 / np.hypot(r_m, z_m) ** 3)
    np.testing.assert_allclose(v, kepler, rtol=1e-10)
    # With samples: draws collapse to one set of maps (three for coords).
    params = dict(truths, mstar=0)
    samples = np.array([[1.9], [2.02], [2.2]])
    coords = cube.evaluate_models(samples, params, draws=5, coords_only=True)
    assert np.shape(coords) == (3, 80, 80)
    rs, vs = cube.evaluate_models(samples, params, draws=5, profile_only=True)
    assert rs.shape == vs.shape == (80 * 80,)
    # A float draws is a percentile as a fraction: 0.5 is the median sample.
    np.testing.assert_allclose(cube.evaluate_models(samples, params, draws=0.5),
                               cube.evaluate_models(params=truths), atol=1e-9)
    with pytest.raises(ValueError, match="draws"):
        cube.evaluate_models(samples, params, draws=2.5)


def test_z_func_reproduces_the_analytic_surface(cube, example):
    truths = dict(example.truths)

    def z_func(r):
        return 0.26 * r ** 1.7 * jnp.exp(-(r / 3.0) ** 2.0)

    surface = ("z0", "psi", "r_taper", "q_taper", "r_cavity")
    user = {k: v for k, v in truths.items() if k not in surface}
    user["z_func"] = z_func
    analytic = cube.evaluate_models(params=truths)
    assert np.max(np.abs(cube.evaluate_models(params=user) - analytic)) < 1e-6  # m/s
    flat = {k: GEOMETRY[k] for k in ("x0", "y0", "inc", "PA")}
    for a, b in zip(cube.disk_coords(**flat, z_func=z_func),
                    cube.disk_coords(**GEOMETRY)):
        np.testing.assert_allclose(a, b, atol=1e-12)
    # In fit_map's params, as astro-eddy: the fit and its mask use it.
    params = {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4, "inc": 46.7,
              "dist": 101.0, "r_min": 0.2, "z_func": z_func}
    run = cube.prepare_fit(P0[:5], params, optimize=False, nwalkers=10, verbose=False)
    theta = [truths[k] for k in ("x0", "y0", "PA", "mstar", "vlsr")]
    np.testing.assert_allclose(run.posterior.model_map(theta), analytic, atol=1e-6)
    with pytest.raises(FitInputError, match="z_func"):
        cube.prepare_fit([*P0[:5], 0.3], {**params, "z0": 5}, nwalkers=12)
    # A function cannot be stored in a result file, so its fit cannot resume.
    saved = FitResult(run.result.names, "emcee", 10, dict(run.result.settings))
    with pytest.raises(FitInputError, match="continue it in the session"):
        cube.resume(saved)


# -- Sample order ---------------------------------------------------------------------


def _result(backend, nchains=4, nsteps=5, ndim=2, nwarm=2):
    """A result whose draws encode (chain, step): value = 100 * chain + step."""
    result = FitResult(["a", "b"], backend, nchains)
    code = 100.0 * np.arange(nchains)[:, None] + np.arange(nwarm + nsteps)[None, :]
    draws = np.repeat(code[:, :, None], ndim, axis=2)
    result.append(Chunk("warmup", 0, draws[:, :nwarm], code[:, :nwarm]))
    result.append(Chunk("sampling", 0, draws[:, nwarm:], code[:, nwarm:]))
    return result, draws


def test_emcee_samples_in_emcee_order():
    result, draws = _result("emcee")
    # The same draws through emcee's own storage and get_chain.
    backend = emcee.backends.Backend()
    backend.reset(4, 2)
    backend.grow(draws.shape[1], None)
    for step in range(draws.shape[1]):
        state = emcee.State(draws[:, step], log_prob=np.zeros(4))
        backend.save_step(state, np.ones(4, dtype=bool))
    np.testing.assert_array_equal(result.samples, backend.get_chain(discard=2, flat=True))
    np.testing.assert_array_equal(result.get_chain(), backend.get_chain())
    # Step-major: all walkers of the first post-burn-in step come first.
    np.testing.assert_array_equal(result.samples[:4, 0], [2, 102, 202, 302])


def test_nuts_samples_chain_major_as_numpyro():
    result, draws = _result("numpyro")
    # numpyro's MCMC.get_samples() flattens (chains, draws) chain by chain.
    np.testing.assert_array_equal(result.samples,
                                  draws[:, 2:].reshape(-1, 2))
    np.testing.assert_array_equal(result.samples[:5, 0], [2, 3, 4, 5, 6])
    assert result.get_chain().shape == (4, 7, 2)  # astro-eddy's NUTS adapter
