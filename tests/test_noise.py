"""The correlated noise model (eddy_widgets.inference.noise): the block
Vecchia likelihood against a dense Cholesky, the kernel's estimator, and the
widths it gives against the scatter of fits to correlated maps."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eddy_widgets.inference.noise import (
    NoiseKernel,
    beam_metric,
    correlated_noise,
    dense_quadratic,
    estimate_kernel,
)
from eddy_widgets.inference.optimize import find_map
from eddy_widgets.inference.posterior import Posterior, estimate_noise
from eddy_widgets.inference.priors import default_priors
from eddy_widgets.inference.spec import FitInputError, FitSpec, with_noise
from eddy_widgets.model import v0_map

#: A CASA-like beam of 3 x 2.4 pixels FWHM, at a position angle.
BEAM = (0.15, 0.12, 30.0)
DPIX = 0.05
TRUTH = {"x0": 0.0, "y0": 0.0, "inc": 40.0, "PA": 60.0, "mstar": 1.0, "dist": 140.0,
         "vlsr": 5000.0}
FREE = ("inc", "PA", "mstar", "vlsr")


def mock_map(n, kernel=None, seed=0, dv0=60.0, holes=False):
    """Our model at ``TRUTH`` on an ``n x n`` grid plus noise of correlation
    ``kernel`` (white if None) and scatter ``dv0`` [m/s]."""
    axis = (np.arange(n) - (n - 1) / 2) * DPIX
    xaxis, yaxis = axis[::-1].copy(), axis.copy()
    truth = np.asarray(v0_map(xaxis, yaxis, TRUTH))
    rng = np.random.default_rng(seed)
    if kernel is None:
        noise = rng.standard_normal((n, n))
    else:
        noise = correlated_noise((n, n), kernel, rng)
    data = truth + dv0 * noise
    if holes:
        yy, xx = np.mgrid[:n, :n]
        data[((yy - n / 4) ** 2 + (xx - n / 2) ** 2) < (n / 8) ** 2] = np.nan
        data[(xx > 0.7 * n) & (yy > 0.5 * n) & (yy < 0.6 * n)] = np.nan
    return SimpleNamespace(data=data, error=np.full((n, n), dv0), xaxis=xaxis,
                           yaxis=yaxis, dpix=DPIX, bmaj=BEAM[0], bmin=BEAM[1],
                           bpa=BEAM[2], path="mock.fits", snr=None, snr_path=None)


def posterior(data, noise="independent", kernel=None, r_max=0.9, free=FREE):
    params = {name: (free.index(name) if name in free else value)
              for name, value in TRUTH.items()}
    params.update(r_min=0.1, r_max=r_max)
    p0 = [TRUTH[name] for name in free]
    params, p0 = with_noise(params, p0, noise)
    if kernel is not None:
        params.update(noise_nugget=kernel.nugget, noise_width=kernel.width)
    spec = FitSpec.parse(params, p0)
    return Posterior(data, spec, default_priors(), np.asarray(p0)), np.asarray(p0)


def dense_log_likelihood(post, kernel):
    """The correlated log-likelihood of ``post`` by a dense Cholesky."""
    a = post.arrays
    rows, cols = post._rows, post._cols

    def ll(theta):
        u = (a["data"] - post.model_pixels(theta)) * jnp.sqrt(a["ivar"])
        quad, _ = dense_quadratic(u, rows, cols, kernel)
        s = post.spec.noise_value("noise_scale", theta)
        return -0.5 * quad / s ** 2 - a["data"].size * jnp.log(s)
    return ll


def test_block_vecchia_matches_a_dense_cholesky_on_an_irregular_mask():
    """40 x 40 map, a mask with holes: differences of log L between
    parameter sets about one posterior sd apart (pairs of draws from the
    Laplace approximation) within 1%, gradients there within 1%, Laplace
    widths within 2%."""
    kernel = NoiseKernel(0.2, 1.0, beam_metric(*BEAM, DPIX))
    data = mock_map(40, kernel, seed=3, holes=True)
    post, p0 = posterior(data, "correlated", kernel)
    assert post.correlated and 600 < post.npix < 1300
    dense = jax.jit(dense_log_likelihood(post, kernel))
    vecchia = jax.jit(lambda t: post.log_likelihood(t))
    theta = find_map(post, p0).theta
    hess = np.asarray(jax.hessian(dense)(jnp.asarray(theta)))
    cov = np.linalg.inv(-hess)
    hess_v = np.asarray(jax.hessian(vecchia)(jnp.asarray(theta)))
    np.testing.assert_allclose(np.sqrt(np.diag(np.linalg.inv(-hess_v))),
                               np.sqrt(np.diag(cov)), rtol=0.02)
    draws = np.random.default_rng(0).multivariate_normal(theta, cov, size=24)
    rel = []
    for t1, t2 in zip(draws[::2], draws[1::2]):
        d_dense = float(dense(t2) - dense(t1))
        d_v = float(vecchia(t2) - vecchia(t1))
        rel.append(abs(d_v - d_dense) / abs(d_dense))
        g_dense = np.asarray(jax.grad(dense)(t2))
        g_v = np.asarray(jax.grad(vecchia)(t2))
        # In the posterior's own units (per sd of each parameter).
        scale = np.sqrt(np.diag(cov))
        assert np.linalg.norm((g_v - g_dense) * scale) <= 0.01 * np.linalg.norm(
            g_dense * scale), (g_v, g_dense)
    assert np.median(rel) <= 0.01 and max(rel) < 0.05, rel


def laplace_sd(post, theta):
    hess = np.asarray(jax.hessian(lambda t: post.log_prob(t))(jnp.asarray(theta)))
    return np.sqrt(np.diag(np.linalg.inv(-hess)))


def test_widths_match_the_scatter_of_fits_only_with_the_correlated_likelihood():
    """Over 20 seeded mock maps with beam-correlated noise, the scatter of the
    optimiser's maxima matches the Laplace widths of the correlated
    likelihood (kernel estimated from each map's residuals) and not the
    independent one's, which are ~sqrt(correlated pixels) too narrow."""
    kernel = NoiseKernel(0.2, 1.0, beam_metric(*BEAM, DPIX))
    free = ("inc", "PA", "vlsr")
    found = {"independent": [], "correlated": []}
    widths = {"independent": [], "correlated": []}
    for seed in range(20):
        data = mock_map(32, kernel, seed=100 + seed)
        for noise in found:
            post, p0 = posterior(data, noise, r_max=0.75, free=free)
            theta = find_map(post, p0).theta
            if noise == "correlated":
                spec, info = estimate_noise(post, theta)
                post = Posterior(data, spec, default_priors(), theta)
                theta = find_map(post, theta).theta
            found[noise].append(theta[:3])
            widths[noise].append(laplace_sd(post, theta)[:3])
    ratio = {noise: np.std(found[noise], axis=0, ddof=1) / np.mean(widths[noise], axis=0)
             for noise in found}
    # 20 maps: the scatter's own error is ~16%.
    assert np.all((ratio["correlated"] > 0.6) & (ratio["correlated"] < 1.5)), ratio
    assert 0.8 < np.mean(ratio["correlated"]) < 1.25, ratio
    assert np.all(ratio["independent"] > 1.3), ratio
    assert np.mean(ratio["independent"]) > 1.8, ratio


@pytest.mark.parametrize("nugget, width", [(0.2, 1.0), (0.5, 0.7), (0.1, 1.4)])
def test_the_kernel_estimator_recovers_a_known_correlation(nugget, width):
    kernel = NoiseKernel(nugget, width, beam_metric(*BEAM, DPIX))
    z = correlated_noise((160, 160), kernel, np.random.default_rng(7))
    z[40:60, 50:90] = np.nan                       # an irregular mask
    found, info = estimate_kernel(z, kernel.metric)
    assert abs(found.nugget - nugget) < 0.06
    assert abs(found.width / width - 1) < 0.12
    assert abs(found.correlated_pixels() / kernel.correlated_pixels() - 1) < 0.15


def test_white_noise_gives_an_identity_kernel_and_unchanged_widths(small_cube):
    """The bundled map's noise is white: the estimator finds K ~ I and the
    correlated likelihood's Laplace widths equal the independent one's."""
    from eddy_widgets.data.example import TUTORIAL_P0

    from helpers import tutorial_params

    params = tutorial_params(small_cube)
    posts = {}
    for noise in ("independent", "correlated"):
        p, p0 = with_noise(params, TUTORIAL_P0, noise)
        post = small_cube.posterior(p, p0)
        theta = find_map(post, p0).theta
        if noise == "correlated":
            spec, info = estimate_noise(post, theta)
            assert info["correlated_pixels"] < 1.15, info
            post = Posterior(small_cube.map, spec, small_cube.priors, theta)
            theta = find_map(post, theta).theta
            assert abs(theta[-1] - 1) < 0.05            # dv0 is the scatter
        posts[noise] = laplace_sd(post, theta)
    np.testing.assert_allclose(posts["correlated"][:-1], posts["independent"], rtol=0.05)


def test_noise_settings_are_checked():
    params = {"inc": 0, "PA": 60.0}
    with pytest.raises(FitInputError, match="not a noise model.*'correlated'"):
        FitSpec.parse({**params, "noise": "corelated"}, [40.0])
    with pytest.raises(FitInputError, match="noise='correlated'"):
        FitSpec.parse({**params, "noise_scale": 1}, [40.0, 1.0])
    with pytest.raises(FitInputError, match="kernel is fixed for the run"):
        FitSpec.parse({**params, "noise": "correlated", "noise_width": 1}, [40.0, 1.0])
    # noise= makes the scale free, last, starting at 1; the model never sees it.
    p, p0 = with_noise(params, [40.0], "correlated")
    spec = FitSpec.parse(p, p0)
    assert spec.free == ("inc", "noise_scale") and list(p0) == [40.0, 1.0]
    assert "noise_scale" not in spec.model_params(np.array([40.0, 1.3]))
    assert spec.noise_value("noise_scale", np.array([40.0, 1.3])) == 1.3
    # astro-eddy's params dict is unchanged without noise=.
    assert not {"noise", "noise_clip", "noise_scale"} & set(
        FitSpec.parse(params, [40.0]).to_params())


def write_map(folder, data, name="mock"):
    """``data`` (from :func:`mock_map`) as bettermoments-style FITS files."""
    from astropy.io import fits

    n = data.data.shape[0]
    paths = {}
    for kind, values in (("v0", data.data), ("dv0", data.error)):
        h = fits.Header()
        h["BUNIT"] = "m/s"
        h["BMAJ"], h["BMIN"], h["BPA"] = BEAM[0] / 3600, BEAM[1] / 3600, BEAM[2]
        for axis, sign, ctype in ((1, -1, "RA---SIN"), (2, 1, "DEC--SIN")):
            h[f"CTYPE{axis}"], h[f"CRVAL{axis}"] = ctype, 10.0
            h[f"CDELT{axis}"] = sign * DPIX / 3600
            h[f"CRPIX{axis}"], h[f"CUNIT{axis}"] = 0.5 * (n + 1), "deg"
        paths[kind] = folder / f"{name}_{kind}.fits"
        fits.PrimaryHDU(values.astype(np.float32), h).writeto(paths[kind])
    return paths["v0"]


@pytest.fixture(scope="module")
def correlated_cube(tmp_path_factory):
    from eddy_widgets import rotationmap

    kernel = NoiseKernel(0.2, 1.0, beam_metric(*BEAM, DPIX))
    # dv0 twice the true scatter, as bettermoments' edge-channel rms gives.
    data = mock_map(48, kernel, seed=11)
    data.error = data.error * 2.0
    return rotationmap(str(write_map(tmp_path_factory.mktemp("mock"), data)))


PARAMS = {"x0": 0.0, "y0": 0.0, "inc": 0, "PA": 1, "mstar": 1.0, "dist": 140.0,
          "vlsr": 2, "r_min": 0.1, "r_max": 1.1}


def test_the_verdict_never_advises_shrinking_dv0_on_correlated_residuals(correlated_cube,
                                                                         capsys):
    """dv0 2x too large, noise correlated over ~7 pixels: chi2 ~0.25 would say
    'overestimated, posterior too wide', yet the widths are ~sqrt(0.25 x 7) =
    1.3x too narrow. The verdict says so, from the measured correlation."""
    result = correlated_cube.fit_map([40.0, 60.0, 5000.0], PARAMS, nwalkers=16,
                                     nburnin=100, nsteps=100, plots="none",
                                     returns="result", mcmc_kwargs={"progress": False})
    quality = result.settings["fit_quality"]
    assert quality["reduced_chi2"] < 0.35 and quality["correlated_pixels"] > 4
    text = " ".join(result.warnings)
    assert "overestimated" not in text and "too wide" not in text
    assert "neighbouring pixels are correlated" in text
    assert "noise='correlated'" in text and "do not shrink" in text


def test_a_correlated_fit_saves_loads_and_continues(correlated_cube, tmp_path, capsys):
    result = correlated_cube.fit_map([40.0, 60.0, 5000.0], PARAMS, mcmc="numpyro",
                                     nwalkers=1, nburnin=100, nsteps=50, plots="none",
                                     returns="result", noise="correlated",
                                     mcmc_kwargs={"progress": False})
    assert "Noise correlated over the beam" in capsys.readouterr().out
    assert result.names[-1] == "noise_scale"
    s = result.percentiles([50])[0][-1]
    assert 0.4 < s < 0.6                           # dv0 is 2x the scatter
    noise = result.settings["noise"]
    assert 4 < noise["correlated_pixels"] < 10 and noise["estimated"]
    result.save(tmp_path / "r.npz")
    from eddy_widgets.inference.result import FitResult

    loaded = FitResult.load(tmp_path / "r.npz")
    more = correlated_cube.continue_fit(20, result=loaded, progress=False)
    assert more.n_draws("sampling") == 70
    post = correlated_cube.last_run.posterior
    assert post.correlated and post.kernel.nugget == pytest.approx(noise["nugget"])
    assert not any("correlated" in w and "neighbouring" in w for w in more.warnings)


def test_emcee_batch_equals_one_walker_at_a_time():
    kernel = NoiseKernel(0.2, 1.0, beam_metric(*BEAM, DPIX))
    post, p0 = posterior(mock_map(32, kernel, seed=5), "correlated", kernel, r_max=0.75)
    walkers = p0 + np.random.default_rng(0).normal(0, 1e-2, (6, p0.size)) * p0
    walkers[2, -1] = -1.0                        # a noise scale outside its prior
    batch = post.log_prob_numpy(walkers)
    single = [float(post.log_prob_jit(jnp.asarray(w))) for w in walkers]
    np.testing.assert_allclose(batch, single, rtol=1e-6)
    assert batch[2] == -np.inf


def test_a_kernel_estimated_at_an_unoptimised_start_is_flagged(correlated_cube):
    """With optimize=False the kernel comes from the residuals at p0, where a
    misfit looks like wide correlation: the run says so."""
    with pytest.warns(UserWarning, match="estimated from the residuals at p0"):
        run = correlated_cube.prepare_fit([40.0, 60.0, 5000.0], PARAMS,
                                          optimize=False, verbose=False,
                                          noise="correlated")
    assert any("optimize=True" in m for m in run.messages)
    fixed = {**PARAMS, "noise_nugget": 0.2, "noise_width": 1.0}
    run = correlated_cube.prepare_fit([40.0, 60.0, 5000.0], fixed, optimize=False,
                                      verbose=False, noise="correlated")
    assert not any("estimated from the residuals" in m for m in run.messages)


def test_the_low_snr_clip_uses_bettermoments_peak_map(tmp_path, capsys):
    """The line centre jumps to noise spikes where the line is faint, and
    dv0 does not see it: the clip takes the peak S/N from X_Fnu / X_dFnu
    beside the map, and says when there is none."""
    from eddy_widgets import rotationmap
    from eddy_widgets.mock import mock_observation

    truth = {"x0": 0.0, "y0": 0.0, "inc": 40.0, "PA": 60.0, "mstar": 1.5,
             "vlsr": 5000.0, "dist": 100.0, "z0": 0.25, "psi": 1.25}
    obs = mock_observation(truth, npix=64, rms=0.003, seed=3)
    paths = obs.write(tmp_path, "faint")
    cube = rotationmap(paths["v0"], uncertainty=paths["dv0"])
    assert cube.map.snr_path == str(paths["Fnu"])
    params = {"x0": 0.0, "y0": 0.0, "inc": 0, "PA": 1, "mstar": 2, "vlsr": 3,
              "dist": 100.0, "z0": 0.25, "psi": 1.25, "r_min": 0.2, "r_max": 1.5}
    run = cube.prepare_fit([40.0, 60.0, 1.5, 5000.0], params, noise="correlated",
                           mcmc="numpyro")
    info = run.result.settings["noise"]
    kept = run.posterior.mask
    region = cube.fit_mask({**params, "noise_clip": None, "noise": "correlated"},
                           run.theta0[:4])
    assert 0.8 < info["snr_scale"] < 1.6          # dv0 about right here
    low = region & ~(cube.map.snr / info["snr_scale"] >= 15)
    assert info["clipped"] == low.sum() > 20 and not (kept & low).any()
    assert "with a peak S/N below 15 left out" in capsys.readouterr().out
    # What the clip is for: outliers are far more common among the clipped.
    z = np.abs(obs.v0 - obs.v0_true) / obs.dv0
    assert np.mean(z[low] > 5) > 3 * np.mean(z[kept] > 5)
    # bettermoments given a ~3x too large rms (its estimate from edge
    # channels that hold line): dv0 and dFnu are both ~3x too large, the
    # scale measured at the start says so, and the clip still finds the
    # faint pixels instead of dropping every one.
    edge = mock_observation(truth, npix=64, rms=0.003, seed=3, noise_channels=30)
    epaths = edge.write(tmp_path, "edge")
    ecube = rotationmap(epaths["v0"], uncertainty=epaths["dv0"])
    run = ecube.prepare_fit([40.0, 60.0, 1.5, 5000.0], params, noise="correlated",
                            mcmc="numpyro")
    einfo = run.result.settings["noise"]
    assert einfo["snr_scale"] < 0.6 and 0 < einfo["clipped"] < 0.5 * run.posterior.npix
    # No peak map: nothing clipped, and the sentence says so.
    bare = rotationmap(paths["v0"], uncertainty=paths["dv0"], peak=False)
    run = bare.prepare_fit([40.0, 60.0, 1.5, 5000.0], params, noise="correlated",
                           mcmc="numpyro")
    assert run.result.settings["noise"]["clipped"] == 0
    assert "no peak map" in capsys.readouterr().out


def test_a_correlated_run_on_a_bettermoments_map_is_rebuilt_from_its_file(tmp_path):
    """The start is optimised again under the estimated kernel, and the fit
    region follows the start's geometry: the run's posterior is the one at
    its final start, so that its saved file rebuilds it (same pixels, same
    log-probability) and can be continued."""
    from eddy_widgets import rotationmap
    from eddy_widgets.inference.result import FitResult
    from eddy_widgets.mock import mock_observation

    truth = {"x0": 0.0, "y0": 0.0, "inc": 40.0, "PA": 60.0, "mstar": 1.5,
             "vlsr": 5000.0, "dist": 100.0, "z0": 0.25, "psi": 1.25}
    paths = mock_observation(truth, npix=96, seed=21).write(tmp_path, "mock")
    cube = rotationmap(paths["v0"], uncertainty=paths["dv0"])
    params = {**truth, "x0": 0, "y0": 1, "inc": 2, "PA": 3, "mstar": 4, "vlsr": 5,
              "r_min": 0.6, "r_max": 2.2}
    run = cube.prepare_fit([0.0, 0.0, 40.0, 60.0, 1.5, 5000.0], params,
                           noise="correlated", mcmc="numpyro", verbose=False)
    run.result.save(tmp_path / "r.npz")
    again = cube.resume(FitResult.load(tmp_path / "r.npz")).posterior
    start = np.asarray(run.result.settings["start"])
    assert (again.mask == run.posterior.mask).all()
    assert float(again.log_prob(start)) == float(run.posterior.log_prob(start))
