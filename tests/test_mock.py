"""Mock observations (eddy_widgets.mock): the model through a line cube, a
beam, noise and bettermoments' quadratic method. Physics on small maps: the
noise-free line centres follow the model, the noise is correlated over the
beam (and more with Hanning-smoothed channels), dv0 is the scatter when the
rms is right and too large when it is not, and the files read back."""

from __future__ import annotations

import importlib.util
import json
import sys

from astropy.io import fits
import numpy as np
import pytest

from eddy_widgets import rotationmap
from eddy_widgets.inference.noise import lag_correlations
from eddy_widgets.mock import DEFAULT_PARAMS, mock_observation
from eddy_widgets.model.pixels import pixel_coords

needs_bettermoments = pytest.mark.skipif(
    importlib.util.find_spec("bettermoments") is None,
    reason='bettermoments is not installed (pip install "eddy_widgets[mock]")')

#: 96 x 96 pixels of 0.05 arcsec, a 3-pixel FWHM beam (the default).
NPIX = 96
#: The pixels compared: 1-2.4 arcsec from the star (deprojected), where the
#: velocity changes by ~50 m/s per pixel, at peak S/N >= 10.
R_MIN, R_MAX, MIN_SNR = 1.0, 2.4, 10.0
#: Each regime of the noise, one seeded map.
REGIMES = {
    "independent": {},
    "hanning": {"hanning": True},
    # A beam of half a pixel: the convolution leaves the pixels independent.
    "white": {"beam": (0.025, 0.025, 0.0)},
    # rms from the first / last 5 channels, which hold the inner disk's
    # emission when the cube is cut at +-2.5 km/s.
    "edge": {"noise_channels": 5, "nchan": 51},
}


@pytest.fixture(scope="module")
def maps():
    return {name: mock_observation(npix=NPIX, seed=7, **kw)
            for name, kw in REGIMES.items()}


def compared(obs, min_snr=MIN_SNR) -> np.ndarray:
    """The pixels compared: within R_MIN-R_MAX of the star, S/N >= min_snr,
    with a dv0."""
    r = pixel_coords(obs.xaxis, obs.yaxis, obs.params)[0]
    return (r >= R_MIN) & (r <= R_MAX) & (obs.true_snr >= min_snr) & np.isfinite(obs.dv0)


def normalised(obs, min_snr=MIN_SNR) -> np.ndarray:
    """``(v0 - v0_true) / dv0`` on the compared pixels, NaN elsewhere."""
    return np.where(compared(obs, min_snr), (obs.v0 - obs.v0_true) / obs.dv0, np.nan)


def robust_std(z) -> float:
    """The width of the core of ``z``: 1.4826 x its median absolute deviation."""
    z = z[np.isfinite(z)]
    return float(1.4826 * np.median(np.abs(z - np.median(z))))


def neighbour_correlation(z) -> float:
    """Mean correlation of ``z`` at one pixel along the rows and the columns."""
    lags = lag_correlations(z, max_lag=1)
    return 0.5 * (lags[(0, 1)][0] + lags[(1, 0)][0])


@needs_bettermoments
def test_the_noise_free_line_centres_follow_the_model(maps):
    obs = maps["independent"]
    sel = compared(obs)
    assert sel.sum() > 2000
    width = obs.settings["channel_width"]
    # Beam smearing and the channels move the line centres by ~1 m/s here.
    offset = np.abs(obs.v0_true - obs.v_model)[sel]
    assert np.median(offset) < 0.05 * width
    assert np.percentile(offset, 95) < 0.5 * width
    # The noisy map scatters about them without a bias.
    assert abs(np.median((obs.v0 - obs.v0_true)[sel])) < 0.25 * np.median(obs.dv0[sel])
    # The channels cover the model's velocities (plus a margin) and are
    # centred on the systemic velocity.
    assert obs.velax.size % 2 == 1
    assert obs.velax[obs.velax.size // 2] == pytest.approx(DEFAULT_PARAMS["vlsr"])
    assert np.all(np.diff(obs.velax) == width)


@needs_bettermoments
def test_the_noise_is_correlated_over_the_beam_and_more_with_hanning(maps):
    independent = neighbour_correlation(normalised(maps["independent"]))
    hanning = neighbour_correlation(normalised(maps["hanning"]))
    white = neighbour_correlation(normalised(maps["white"]))
    # Measured on 4 seeds of 120 x 120 maps, 1-2 arcsec: 0.55 and 0.71.
    assert 0.4 < independent < 0.8
    assert hanning > independent + 0.05
    assert abs(white) < 0.08


@needs_bettermoments
@pytest.mark.parametrize("bpa, along", [(0.0, (1, 0)), (90.0, (0, 1))])
def test_the_beam_position_angle_is_east_of_north(bpa, along):
    # The noise of the line peak is the cube's: correlated most along the
    # beam's major axis (rows run north, columns west).
    obs = mock_observation(npix=64, beam=(0.3, 0.1, bpa), seed=1)
    lags = lag_correlations(obs.Fnu - obs.Fnu_true, max_lag=1)
    across = (0, 1) if along == (1, 0) else (1, 0)
    assert lags[along][0] > lags[across][0] + 0.15


@needs_bettermoments
def test_dv0_is_the_scatter_when_the_rms_is_right(maps):
    # Independent channels, bettermoments given the true rms: the core of
    # (v0 - v0_true) / dv0 has unit width at high S/N.
    assert 0.85 < robust_std(normalised(maps["independent"], min_snr=20.0)) < 1.2
    assert 0.85 < robust_std(normalised(maps["white"], min_snr=20.0)) < 1.2
    assert maps["independent"].rms_used == maps["independent"].rms


@needs_bettermoments
def test_dv0_is_too_large_with_hanning_or_an_edge_channel_rms(maps):
    # Hanning-smoothed channels are correlated; the quadratic method assumes
    # they are not (measured: 0.72-0.78).
    assert robust_std(normalised(maps["hanning"])) < 0.85
    # The edge channels hold line emission: the rms, and dv0 with it, are
    # several times too large.
    edge = maps["edge"]
    assert edge.rms_used > 3.0 * edge.rms
    assert robust_std(normalised(edge)) < 0.35
    assert edge.settings["rms_used"] == edge.rms_used


@needs_bettermoments
def test_a_seed_gives_one_map():
    a, b = (mock_observation(npix=32, seed=4) for _ in range(2))
    np.testing.assert_array_equal(a.v0, b.v0)
    c = mock_observation(npix=32, seed=5)
    assert not np.allclose(a.v0, c.v0, equal_nan=True)
    np.testing.assert_array_equal(a.v0_true, c.v0_true)


@needs_bettermoments
def test_clip_removes_the_faint_pixels():
    kw = {"npix": 48, "seed": 2, "peak": 0.03}
    full = mock_observation(**kw)
    clipped = mock_observation(clip=10.0, **kw)
    faint = ~(full.Fnu >= 10.0 * full.rms_used)
    assert 0 < faint.sum() < faint.size
    for name in ("v0", "dv0", "Fnu", "dFnu"):
        assert np.all(np.isnan(getattr(clipped, name)[faint]))
    np.testing.assert_array_equal(clipped.v0[~faint], full.v0[~faint])
    np.testing.assert_array_equal(clipped.v0_true, full.v0_true)


@needs_bettermoments
def test_oversampling_averages_the_model_within_pixels():
    plain = mock_observation(npix=48, seed=0)
    fine = mock_observation(npix=48, seed=0, oversample=3)
    r = pixel_coords(plain.xaxis, plain.yaxis, plain.params)[0]
    ring = (r > 0.6) & (r < 1.2)
    # The same line centres to a few m/s away from the star.
    assert np.median(np.abs(fine.v0_true - plain.v0_true)[ring]) < 5.0
    assert fine.settings["oversample"] == 3


@needs_bettermoments
def test_the_files_read_back_as_a_rotation_map(tmp_path):
    beam = (0.15, 0.12, 30.0)
    obs = mock_observation(npix=40, beam=beam, seed=3)
    paths = obs.write(tmp_path / "mocks", "disk")
    assert set(paths) == {"v0", "dv0", "Fnu", "dFnu", "v0_true", "truths"}

    cube = rotationmap(paths["v0"], uncertainty=paths["dv0"])
    assert cube.dpix == pytest.approx(obs.pixel_scale)
    assert (cube.bmaj, cube.bmin, cube.bpa) == pytest.approx(beam)
    np.testing.assert_allclose(cube.xaxis, obs.xaxis, atol=1e-9)
    np.testing.assert_allclose(cube.yaxis, obs.yaxis, atol=1e-9)
    np.testing.assert_array_equal(cube.data, obs.v0)
    np.testing.assert_array_equal(cube.error, np.where(np.isfinite(obs.dv0), obs.dv0, 0))
    # bettermoments' naming finds the uncertainty on its own.
    assert rotationmap(paths["v0"]).map.uncertainty_path == paths["dv0"]
    np.testing.assert_array_equal(
        rotationmap(paths["v0_true"], uncertainty=paths["dv0"]).data, obs.v0_true)

    header = fits.getheader(paths["Fnu"])
    assert header["BUNIT"] == "Jy/beam"
    assert header["CDELT1"] < 0 < header["CDELT2"]
    assert fits.getheader(paths["dv0"])["BUNIT"] == "m/s"
    info = json.loads((tmp_path / "mocks" / "disk_truths.json").read_text())
    assert info["truths"] == obs.params
    assert info["settings"]["seed"] == 3
    assert info["settings"]["beam"] == list(beam)


def test_without_bettermoments_the_error_says_what_to_install(monkeypatch):
    for name in ("bettermoments", "bettermoments.methods",
                 "bettermoments.collapse_cube"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "eddy_widgets\[mock\]"'):
        mock_observation(npix=16)


@needs_bettermoments
def test_an_unknown_parameter_is_an_error():
    with pytest.raises(ValueError, match="Unknown model parameter.*'incl'"):
        mock_observation({"incl": 30.0}, npix=16)
