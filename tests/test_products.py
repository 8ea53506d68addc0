"""Science products: maps written to FITS on the map's own sky grid
(``to_fits``, ``save_model``) and the chains as ArviZ ``InferenceData``."""

from __future__ import annotations

import errno
import os
import shutil
import warnings

from astropy.io import fits
from astropy.wcs import WCS
import numpy as np
import pytest

from eddy_widgets import rotationmap
from eddy_widgets.inference.result import FitResult
from eddy_widgets.inference.samplers import Chunk

from helpers import FREE


def world(wcs, px, py):
    """RA, Dec [deg] of pixel (px, py) (0-based)."""
    ra, dec = wcs.pixel_to_world_values(px, py)
    return np.array([ra, dec], dtype=float)


def file_pixels(cube, nx_file, ny_file, dpix_file, flipped_x=False):
    """0-based pixel of the file for every column / row of the map in memory,
    from the reader's convention (offsets from the image centre)."""
    cx, cy = 0.5 * (nx_file - 1), 0.5 * (ny_file - 1)
    ix = cx - cube.xaxis / dpix_file          # x decreases with column index
    if flipped_x:
        ix = cx + cube.xaxis / dpix_file      # the file's x increased: read flipped
    iy = cy + cube.yaxis / dpix_file
    return ix, iy


def assert_same_sky(path_written, path_read, cube, dpix_file, flipped_x=False):
    """The written pixels have the world coordinates of the pixels of the file
    they were read from, at the corners, the centre and a few others."""
    w_new = WCS(fits.getheader(path_written))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w_old = WCS(fits.getheader(path_read)).celestial
    h = fits.getheader(path_read)
    ix, iy = file_pixels(cube, h["NAXIS1"], h["NAXIS2"], dpix_file, flipped_x)
    ny, nx = cube.data.shape
    for kx, ky in [(0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1),
                   (nx // 2, ny // 3), (3, ny - 5)]:
        a = world(w_new, kx, ky)
        b = world(w_old, ix[kx], iy[ky])
        assert np.allclose(a, b, rtol=0, atol=1e-10), (kx, ky, a, b)


# -- to_fits -------------------------------------------------------------------


def test_to_fits_round_trip_keeps_sky_grid_values_and_beam(example, tmp_path):
    cube = rotationmap(example.v0, uncertainty=example.dv0, FOV=6.0)
    path = cube.to_fits(tmp_path / "clipped.fits")
    assert_same_sky(path, example.v0, cube, 0.025)
    header = fits.getheader(path)
    assert header["BUNIT"] == "m/s" and header["NAXIS"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # no uncertainty map next to it
        back = rotationmap(path)
    np.testing.assert_allclose(back.xaxis, cube.xaxis, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.yaxis, cube.yaxis, rtol=0, atol=1e-9)
    assert back.dpix == pytest.approx(cube.dpix, rel=1e-9)
    np.testing.assert_allclose(back.beam, cube.beam, rtol=1e-9)
    np.testing.assert_array_equal(np.isnan(back.data), np.isnan(cube.data))
    np.testing.assert_allclose(back.data, cube.data, rtol=0, atol=1e-9, equal_nan=True)


def test_to_fits_after_downsampling_keeps_every_pixel_on_the_sky(small_cube, example,
                                                                 tmp_path):
    path = small_cube.to_fits(tmp_path / "small.fits")
    assert_same_sky(path, example.v0, small_cube, 0.025)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = rotationmap(path)
    np.testing.assert_allclose(back.data, small_cube.data, atol=1e-9, equal_nan=True)
    assert back.dpix == pytest.approx(small_cube.dpix, rel=1e-9)
    np.testing.assert_allclose(back.beam, small_cube.beam, rtol=1e-9)
    # The reader (as astro-eddy's) measures offsets from the written image's
    # centre: the kept pixels of FOV 8, downsample 8 are centred half an
    # original pixel (0.0125 arcsec) west and south of the original centre.
    np.testing.assert_allclose(back.xaxis - small_cube.xaxis, -0.0125, atol=1e-9)
    np.testing.assert_allclose(back.yaxis - small_cube.yaxis, 0.0125, atol=1e-9)


def test_to_fits_rebuilds_a_cd_matrix_flipped_axes_and_extra_axes(example, tmp_path):
    """A map stored east to the right with a CD matrix, its reference pixel
    off the centre, Stokes and frequency axes of length 1 and in km/s."""
    data = fits.getdata(example.v0).astype(float)
    h0 = fits.getheader(example.v0)
    h = fits.Header()
    h["BUNIT"] = "km/s"
    h["CTYPE1"], h["CTYPE2"] = "RA---SIN", "DEC--SIN"
    h["CRVAL1"], h["CRVAL2"] = h0["CRVAL1"], h0["CRVAL2"]
    h["CRPIX1"], h["CRPIX2"] = 120.0, 310.0
    h["CD1_1"], h["CD2_2"] = -h0["CDELT1"], h0["CDELT2"]   # x increases: flipped
    h["CD1_2"], h["CD2_1"] = 0.0, 0.0
    h["CTYPE3"], h["CRVAL3"], h["CDELT3"], h["CRPIX3"] = "FREQ", 2.3e11, 1e5, 1.0
    h["CTYPE4"], h["CRVAL4"], h["CDELT4"], h["CRPIX4"] = "STOKES", 1.0, 1.0, 1.0
    h["BMAJ"], h["BMIN"], h["BPA"] = h0["BMAJ"], h0["BMIN"], h0["BPA"]
    h["OBJECT"] = "flipped"
    src = tmp_path / "flip_v0.fits"
    fits.PrimaryHDU(data[None, None, :, ::-1] / 1e3, header=h).writeto(src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # no uncertainty map: uniform
        cube = rotationmap(src, FOV=5.0, downsample=3)
    path = cube.to_fits(tmp_path / "out.fits")
    assert_same_sky(path, src, cube, 0.025, flipped_x=True)
    header = fits.getheader(path)
    assert header["NAXIS"] == 2 and "CTYPE3" not in header and "CD1_1" not in header
    assert header["BUNIT"] == "m/s" and header["OBJECT"] == "flipped"
    assert header["CDELT1"] < 0 < header["CDELT2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = rotationmap(path)
    np.testing.assert_allclose(back.data, cube.data, rtol=1e-6, equal_nan=True)


def test_to_fits_never_overwrites_silently(small_cube, tmp_path):
    path = small_cube.to_fits(tmp_path / "map.fits")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        small_cube.to_fits(path, data=np.zeros(small_cube.data.shape))
    assert path.read_bytes() == before
    small_cube.to_fits(path, data=np.zeros(small_cube.data.shape), overwrite=True)
    assert np.all(fits.getdata(path) == 0.0)
    assert sorted(os.listdir(tmp_path)) == ["map.fits"]


def test_a_failed_write_leaves_the_old_file_whole(small_cube, tmp_path, monkeypatch):
    path = small_cube.to_fits(tmp_path / "map.fits")
    before = path.read_bytes()

    def full_disk(self, fh, *args, **kwargs):
        fh.write(b"SIMPLE  =  partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fits.PrimaryHDU, "writeto", full_disk)
    with pytest.raises(OSError, match="No space left"):
        small_cube.to_fits(path, data=np.zeros(small_cube.data.shape), overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["map.fits"]          # no temporary file left


# -- save_model ----------------------------------------------------------------


def true_params(example, cube):
    params = {k: float(v) for k, v in example.truths.items()}
    params["r_min"] = 2.0 * cube.bmaj
    return params


def test_save_model_writes_model_and_residual(small_cube, example, tmp_path):
    params = true_params(example, small_cube)
    model = small_cube.evaluate_models(params=params)
    paths = small_cube.save_model(params=params, filename=tmp_path / "fit_model.fits")
    assert [p.name for p in paths] == ["fit_model.fits", "fit_residual.fits"]
    written_model, residual = (fits.getdata(p) for p in paths)
    np.testing.assert_allclose(written_model, model, rtol=1e-12)
    fitted = small_cube.fit_mask(params, [])
    assert fitted.sum() > 100
    np.testing.assert_allclose(residual[fitted], (small_cube.data - model)[fitted],
                               rtol=1e-12)
    assert np.all(np.isnan(residual[~np.isfinite(small_cube.data)]))
    # Residuals of the true model are the map's noise: ~20-200 m/s.
    assert 10.0 < np.nanstd(residual[fitted]) < 200.0
    for p in paths:
        h = fits.getheader(p)
        assert h["BUNIT"] == "m/s"
        assert h["BMAJ"] * 3600 == pytest.approx(small_cube.bmaj)


def test_save_model_default_names_and_overwrite(example, tmp_path):
    src = tmp_path / "disk_v0.fits"
    shutil.copy(example.v0, src)
    shutil.copy(example.dv0, tmp_path / "disk_dv0.fits")
    cube = rotationmap(src, FOV=4.0, downsample=10)
    params = true_params(example, cube)
    model_path, residual_path = cube.save_model(params=params)
    assert model_path == tmp_path / "disk_v0_model.fits"
    assert residual_path == tmp_path / "disk_v0_residual.fits"
    # overwrite=False refuses before writing anything, even if only one exists.
    model_path.unlink()
    with pytest.raises(FileExistsError, match="disk_v0_residual.fits"):
        cube.save_model(params=params, overwrite=False)
    assert not model_path.exists()
    cube.save_model(params=params)                     # astro-eddy's default: replace
    assert model_path.exists()


def test_save_model_from_samples_uses_the_fit(small_cube, example, tmp_path):
    params = {name: i for i, name in enumerate(FREE)}
    params.update(inc=46.7, dist=101.0, r_min=2.0 * small_cube.bmaj)
    truth = np.array([example.truths[n] for n in FREE])
    samples = truth + 1e-4 * np.abs(truth) * np.random.default_rng(0).standard_normal(
        (200, truth.size))
    path, _ = small_cube.save_model(samples, params, filename=tmp_path / "m.fits")
    expected = small_cube.evaluate_models(params=true_params(example, small_cube))
    assert np.nanmax(np.abs(fits.getdata(path) - expected)) < 5.0    # m/s


# -- File names ----------------------------------------------------------------


def test_a_map_with_a_non_ascii_name_writes_its_fits(example, tmp_path):
    """A FITS header holds printable ASCII only: the map's name goes into the
    HISTORY escaped; the files keep their own names (issue 19, item 11)."""
    src = tmp_path / "Scheibe_ü_v0.fits"
    shutil.copy(example.v0, src)
    shutil.copy(example.dv0, tmp_path / "Scheibe_ü_dv0.fits")
    cube = rotationmap(src, FOV=4.0, downsample=10)
    written = cube.to_fits(tmp_path / "Kopie_ü.fits")
    paths = cube.save_model(params=true_params(example, cube))
    assert [p.name for p in paths] == ["Scheibe_ü_v0_model.fits",
                                       "Scheibe_ü_v0_residual.fits"]
    for path in (written, *paths):
        history = str(fits.getheader(path)["HISTORY"])
        assert "Scheibe_\\xfc_v0.fits" in history
    np.testing.assert_array_equal(fits.getdata(written), cube.data)


def test_a_bytes_path_reads_as_its_name(example, tmp_path):
    """``rotationmap(b'...')`` as ``rotationmap('...')`` (issue 19, item 15)."""
    shutil.copy(example.v0, tmp_path / "disk_v0.fits")
    shutil.copy(example.dv0, tmp_path / "disk_dv0.fits")
    cube = rotationmap(os.fsencode(tmp_path / "disk_v0.fits"), FOV=4.0, downsample=10,
                       uncertainty=os.fsencode(tmp_path / "disk_dv0.fits"))
    assert cube.path == str(tmp_path / "disk_v0.fits")
    assert cube.map.uncertainty_path == str(tmp_path / "disk_dv0.fits")


# -- to_arviz ------------------------------------------------------------------


def synthetic_result(backend, nchains, nwarm, n, centre, sd, seed=0):
    """A result whose post-warmup draws are Gaussian (centre, sd); warmup
    draws start far away."""
    rng = np.random.default_rng(seed)
    names = ("PA", "mstar", "vlsr")
    result = FitResult(names, backend, nchains)
    warm = centre + 50 * sd * rng.standard_normal((nchains, nwarm, 3))
    draws = centre + sd * rng.standard_normal((nchains, n, 3))
    draws[..., 0] %= 360.0                 # raw PA chains may sit either side of 0
    if backend == "emcee":
        stats = lambda k: {"accepted": rng.random((nchains, k)) < 0.3}  # noqa: E731
    else:
        stats = lambda k: {"step_size": np.full((nchains, k), 0.4),  # noqa: E731
                           "num_steps": np.full((nchains, k), 7),
                           "tree_depth": np.full((nchains, k), 3),
                           "diverging": np.zeros((nchains, k), bool),
                           "accept_prob": rng.random((nchains, k))}
    result.append(Chunk("warmup", 0, warm, -rng.random((nchains, nwarm)) - 100,
                        stats(nwarm)))
    result.append(Chunk("sampling", 0, draws, -rng.random((nchains, n)), stats(n)))
    return result


CENTRE = np.array([359.99, 2.02, 5763.0])     # PA straddles 0/360
SD = np.array([0.03, 0.006, 1.5])


@pytest.mark.parametrize("backend, nchains", [("numpyro", 2), ("emcee", 16)])
def test_to_arviz_groups_shapes_and_names(backend, nchains):
    result = synthetic_result(backend, nchains, 50, 400, CENTRE, SD)
    idata = result.to_arviz()
    assert set(idata.groups()) == {"posterior", "sample_stats", "warmup_posterior",
                                   "warmup_sample_stats"}
    for name in result.names:
        assert idata.posterior[name].dims == ("chain", "draw")
        assert idata.posterior[name].shape == (nchains, 400)
        assert idata.warmup_posterior[name].shape == (nchains, 50)
    assert idata.posterior["PA"].attrs["units"] == "deg"
    stats = set(idata.sample_stats.data_vars)
    if backend == "numpyro":
        assert stats == {"lp", "diverging", "tree_depth", "step_size",
                         "acceptance_rate", "n_steps"}
        assert idata.posterior.attrs["chain_dimension"] == "independent chain"
    else:
        assert stats == {"lp", "accepted"}
        assert "not valid" in idata.posterior.attrs["diagnostics_note"]
        assert idata.posterior.attrs["chain_dimension"] == "emcee walker"
    np.testing.assert_array_equal(idata.sample_stats["lp"].values,
                                  result.log_prob["sampling"])
    assert set(result.to_arviz(warmup=False).groups()) == {"posterior", "sample_stats"}


def test_arviz_summary_agrees_with_our_percentiles_and_plot_trace_works():
    import arviz as az

    result = synthetic_result("numpyro", 2, 50, 2000, CENTRE, SD)
    idata = result.to_arviz()
    table = az.summary(idata, stat_focus="median", round_to="none")
    ours = result.percentiles([50])[0]
    # Same draws: the medians agree (PA on the circle: ~0, not ~180).
    assert np.all(np.abs(table["median"].values - ours) < 0.01 * SD), (
        table["median"].values, ours)
    table = az.summary(idata, round_to="none")
    # Means within Monte-Carlo error of the truth (PA: 359.99, not 180).
    assert np.all(np.abs(table["mean"].values - CENTRE) < 5 * SD / np.sqrt(1000))
    np.testing.assert_allclose(table["sd"].values, SD, rtol=0.1)
    assert np.all(table["r_hat"].values < 1.01)
    axes = az.plot_trace(idata)
    assert axes.shape == (3, 2)


def test_to_arviz_needs_post_warmup_draws():
    result = FitResult(("mstar",), "numpyro", 1)
    with pytest.raises(ValueError, match="no post-warmup draws"):
        result.to_arviz()
