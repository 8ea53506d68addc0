"""Fitting: recovery of the bundled example's truths with both backends,
agreement between them, and the fit_map calling convention."""

from __future__ import annotations

import numpy as np
import pytest

from eddy_widgets.inference.backends import BACKENDS, COUNT_ARGS

from helpers import FREE, P0, sd, tutorial_params


@pytest.mark.parametrize("fit", ["emcee_fit", "nuts_fit"])
def test_truths_recovered_within_3_sigma(fit, request, example):
    # Each posterior median lies within 3 posterior standard deviations of
    # the value the example map was made with.
    result = request.getfixturevalue(fit)
    assert result.names == tuple(FREE)
    med = result.percentiles()[1]
    truth = np.array([example.truths[n] for n in FREE])
    z = (med - truth) / sd(result)
    assert np.all(np.abs(z) < 3.0), dict(zip(FREE, np.round(z, 2)))
    # And the posterior is not absurdly wide either: mstar to better than 1%.
    assert sd(result)[FREE.index("mstar")] < 0.02


def test_emcee_and_nuts_agree(emcee_fit, nuts_fit):
    # Same map, same priors: medians within 0.5 sigma, widths within 25%.
    med_e, med_n = emcee_fit.percentiles()[1], nuts_fit.percentiles()[1]
    sd_e, sd_n = sd(emcee_fit), sd(nuts_fit)
    dz = np.abs(med_e - med_n) / np.sqrt(0.5 * (sd_e ** 2 + sd_n ** 2))
    assert np.all(dz < 0.5), dict(zip(FREE, np.round(dz, 2)))
    ratio = sd_n / sd_e
    assert np.all(np.abs(ratio - 1.0) < 0.25), dict(zip(FREE, np.round(ratio, 2)))


def test_nuts_diagnostics(nuts_fit):
    # Two chains that mixed: R-hat near 1, a useful effective sample size,
    # no divergences after warmup, and short trees once the metric fits.
    diag = nuts_fit.diagnostics()
    assert all(d["r_hat"] < 1.05 for d in diag.values()), diag
    assert min(d["ess"] for d in diag.values()) > 100, diag
    summary = nuts_fit.sampler_summary()
    assert summary["divergences"] <= 5
    assert summary["median_steps_per_draw"] <= 31
    stats = nuts_fit.stats["sampling"]
    assert stats["tree_depth"].shape == (2, 500)
    assert np.all(stats["step_size"] > 0)


def test_emcee_stats(emcee_fit):
    # The stretch move accepts a healthy fraction in 9 dimensions.
    acc = emcee_fit.sampler_summary()["acceptance_fraction"]
    assert 0.15 < acc < 0.7
    assert emcee_fit.chains["warmup"].shape == (32, 800, 9)
    assert emcee_fit.chains["sampling"].shape == (32, 800, 9)
    assert emcee_fit.get_chain().shape == (1600, 32, 9)
    assert emcee_fit.get_chain(discard=800, flat=True).shape == (800 * 32, 9)


def test_backend_table_maps_counts():
    # The one table: fit_map names -> numpyro names.
    assert BACKENDS["numpyro"].mapping_rows() == [
        ("nwalkers", "num_chains"), ("nburnin", "num_warmup"), ("nsteps", "num_samples")]
    assert [BACKENDS["emcee"].count_label(a) for a in COUNT_ARGS] == list(COUNT_ARGS)


def test_fit_map_returns(small_cube):
    # astro-eddy's returns, in its fixed order, from one short run.
    params = tutorial_params(small_cube)
    out = small_cube.fit_map(
        P0, params, nwalkers=20, nburnin=5, nsteps=10, mcmc="emcee",
        mcmc_kwargs={"seed": 3, "progress": False}, plots="none",
        returns=["samples", "sampler", "lnprob", "percentiles", "dict", "model",
                 "residual"])
    samples, sampler, lnprob, pct, medians, model, resid = out
    assert samples.shape == (200, 9)
    assert sampler.get_chain().shape == (15, 20, 9)
    assert lnprob.shape == (10, 20)
    assert pct.shape == (3, 9)
    assert medians["inc"] == 46.7 and np.isclose(medians["mstar"], pct[1, 3])
    assert model.shape == small_cube.data.shape
    np.testing.assert_allclose(resid, small_cube.data - model)
    # The model of the median agrees with evaluate_models on the same values.
    again = small_cube.evaluate_models(params=medians)
    np.testing.assert_allclose(again, model, atol=1e-6)


def test_plots(small_cube):
    small_cube.fit_map(P0, tutorial_params(small_cube), nwalkers=20, nburnin=5,
                       nsteps=10, mcmc_kwargs={"progress": False},
                       plots=["walkers", "corner", "bestfit", "residual"], returns="none")
    figs = small_cube.figures
    # astro-eddy's figures in its order: a walker figure per parameter.
    assert list(figs) == [*(f"walkers_{n}" for n in FREE), "corner", "bestfit",
                          "residual"]


def test_evaluate_models_from_samples(small_cube, example):
    # The median over draws of identical samples is the model of that point.
    params = tutorial_params(small_cube)
    theta = np.array([example.truths[n] for n in FREE])
    samples = np.tile(theta, (20, 1))
    model = small_cube.evaluate_models(samples=samples, params=params, draws=5)
    fixed = {**params, **dict(zip(FREE, theta))}
    np.testing.assert_allclose(model, small_cube.evaluate_models(params=fixed))
    # Residuals of the truth model are noise: about one sigma per pixel.
    finite = np.isfinite(small_cube.data)
    z = ((small_cube.data - model) / small_cube.error)[finite]
    assert 0.9 < np.std(z) < 1.1


def test_kms_and_ms_maps_give_the_same_fit(tmp_path, example):
    # A map stored in km/s is converted on load: the fit is the same.
    from astropy.io import fits

    from eddy_widgets.rotationmap import rotationmap

    paths = {}
    for key, src in (("v0", example.v0), ("dv0", example.dv0)):
        with fits.open(src) as hdul:
            hdu = hdul[0].copy()
        hdu.data = hdu.data.astype(np.float64) / 1e3
        hdu.header["BUNIT"] = "km/s"
        paths[key] = tmp_path / f"kms_{key}.fits"
        hdu.writeto(paths[key])
    fits_ = []
    for v0, dv0 in ((example.v0, example.dv0), (paths["v0"], paths["dv0"])):
        cube = rotationmap(str(v0), uncertainty=str(dv0), FOV=8.0, downsample=8)
        cube.set_prior("r_taper", [0.0, 50.0], "flat")
        fits_.append(cube.fit_map(P0, tutorial_params(cube), nwalkers=20, nburnin=0,
                                  nsteps=5, mcmc_kwargs={"seed": 0, "progress": False},
                                  plots="none", returns="samples"))
    np.testing.assert_allclose(fits_[0], fits_[1], rtol=1e-6)
