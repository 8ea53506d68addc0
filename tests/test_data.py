"""Tests of the data layer: FITS reading of rotation maps and the bundled example."""

from __future__ import annotations

import math
from pathlib import Path
import warnings

from astropy.io import fits
import numpy as np
import pytest

from eddy_widgets.data import (
    ExampleMap,
    MapFormatError,
    RotationMapData,
    example_paths,
    load_example,
    read_rotation_map,
)
from eddy_widgets.model import disk_coords, v0_map

DPIX = 0.1  # arcsec


def make_header(nx, ny, bunit="m/s", cdelt1=-DPIX, cdelt2=DPIX, beam=(0.3, 0.2, 30.0)):
    """Header of a small synthetic map (pixel scale in arcsec, beam in arcsec)."""
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---SIN", "DEC--SIN"
    if cdelt1 is not None:
        h["CDELT1"] = cdelt1 / 3600.0
    if cdelt2 is not None:
        h["CDELT2"] = cdelt2 / 3600.0
    h["CRPIX1"], h["CRPIX2"] = 0.5 * (nx + 1), 0.5 * (ny + 1)
    h["CRVAL1"], h["CRVAL2"] = 269.08866, -21.95615
    if bunit is not None:
        h["BUNIT"] = bunit
    if beam is not None:
        h["BMAJ"], h["BMIN"], h["BPA"] = beam[0] / 3600.0, beam[1] / 3600.0, beam[2]
    return h


def ramp(ny=10, nx=12):
    """A map whose value encodes the pixel: 100 * row + column (m/s)."""
    return (100.0 * np.arange(ny)[:, None] + np.arange(nx)[None, :]).astype(np.float32)


def write(path, data, header=None, **kwargs):
    """Write ``data`` to ``path`` with a header from :func:`make_header`."""
    data = np.asarray(data)
    if header is None:
        header = make_header(data.shape[-1], data.shape[-2], **kwargs)
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return Path(path)


def pair(tmp_path, data=None, error=None, name="disk", **kwargs):
    """Write ``name_v0.fits`` and ``name_dv0.fits``; return the v0 path."""
    data = ramp() if data is None else data
    error = np.full_like(data, 7.0) if error is None else error
    write(tmp_path / f"{name}_dv0.fits", error, **kwargs)
    return write(tmp_path / f"{name}_v0.fits", data, **kwargs)


# -- Axes, units, beam ------------------------------------------------------ #


def test_axes_and_sign_convention(tmp_path):
    d = read_rotation_map(pair(tmp_path))
    assert isinstance(d, RotationMapData)
    assert d.shape == (10, 12)
    np.testing.assert_allclose(d.xaxis, -DPIX * (np.arange(12) - 5.5))
    np.testing.assert_allclose(d.yaxis, DPIX * (np.arange(10) - 4.5))
    assert np.all(np.diff(d.xaxis) < 0) and np.all(np.diff(d.yaxis) > 0)
    assert d.dpix == pytest.approx(DPIX)
    np.testing.assert_array_equal(d.data, ramp())
    assert d.extent == pytest.approx([0.6, -0.6, -0.5, 0.5])
    for a in (d.data, d.error, d.xaxis, d.yaxis):
        assert a.dtype == np.float64 and a.dtype.isnative and a.flags.c_contiguous


def test_increasing_x_axis_is_flipped(tmp_path):
    normal = read_rotation_map(pair(tmp_path, name="a"))
    flipped = read_rotation_map(pair(tmp_path, data=ramp()[:, ::-1], name="b",
                                     cdelt1=+DPIX))
    np.testing.assert_allclose(flipped.xaxis, normal.xaxis)
    np.testing.assert_array_equal(flipped.data, normal.data)


def test_cd_matrix_and_degenerate_axes(tmp_path):
    h = make_header(12, 10, cdelt1=None, cdelt2=None)
    h["CD1_1"], h["CD2_2"] = -DPIX / 3600.0, DPIX / 3600.0
    path = write(tmp_path / "cd_v0.fits", ramp()[None, None], header=h)
    write(tmp_path / "cd_dv0.fits", np.ones((1, 1, 10, 12)), header=h)
    d = read_rotation_map(path)
    assert d.shape == (10, 12)
    assert d.dpix == pytest.approx(DPIX)
    np.testing.assert_allclose(d.xaxis[0], 0.55)


def rotate_header(h, how, degrees=10.0):
    """Rotate the grid of ``h`` (CDELT1 = -DPIX, CDELT2 = DPIX) by ``degrees``
    on the sky with FITS's CROTA2 convention, written as a CD matrix, as a PC
    matrix with CDELT, or as CROTA2."""
    rho = math.radians(degrees)
    c1, c2 = h["CDELT1"], h["CDELT2"]
    if how == "cd":
        del h["CDELT1"], h["CDELT2"]
        h["CD1_1"], h["CD1_2"] = c1 * math.cos(rho), -c2 * math.sin(rho)
        h["CD2_1"], h["CD2_2"] = c1 * math.sin(rho), c2 * math.cos(rho)
    elif how == "pc":
        h["PC1_1"], h["PC1_2"] = math.cos(rho), -(c2 / c1) * math.sin(rho)
        h["PC2_1"], h["PC2_2"] = (c1 / c2) * math.sin(rho), math.cos(rho)
    else:
        h["CROTA2"] = degrees
    return h


@pytest.mark.parametrize("how, keys", [("cd", "CD1_2 / CD2_1"), ("pc", "PC1_2 / PC2_1"),
                                       ("crota", "CROTA2")])
def test_rotated_grid_warns_and_reads_true_pixel_size(tmp_path, how, keys):
    # A grid rotated by 10 deg (CD, PC x CDELT or CROTA2): read as unrotated,
    # with a warning saying so and what to do; the pixel size is the true
    # pixel scale, not a diagonal term (CD2_2 = DPIX cos 10 deg).
    h = rotate_header(make_header(12, 10), how)
    path = write(tmp_path / "rot_v0.fits", ramp(), header=h)
    write(tmp_path / "rot_dv0.fits", np.ones((10, 12)), header=h)
    with pytest.warns(UserWarning, match=r"rotated by 10 deg") as record:
        d = read_rotation_map(path)
    messages = [str(w.message) for w in record if "rotated" in str(w.message)]
    assert any("rot_v0.fits" in m for m in messages)
    message = messages[0]
    assert keys in message
    assert "assumes the columns run east-west" in message
    assert "regrid" in message and "unrotated RA/Dec grid" in message
    assert d.dpix == pytest.approx(DPIX, rel=1e-12)
    np.testing.assert_allclose(d.xaxis, -DPIX * (np.arange(12) - 5.5), rtol=1e-12)
    np.testing.assert_allclose(d.yaxis, DPIX * (np.arange(10) - 4.5), rtol=1e-12)
    np.testing.assert_array_equal(d.data, ramp())


def test_pc_matrix_without_rotation(tmp_path):
    # PC = identity (up to rounding noise) does not warn; a PC matrix that
    # scales the axes gives the pixel size of PC x CDELT, not CDELT alone.
    h = make_header(12, 10)
    h["PC1_1"], h["PC1_2"], h["PC2_1"], h["PC2_2"] = 1.0, 1e-12, 0.0, 1.0
    path = write(tmp_path / "pc_v0.fits", ramp(), header=h)
    write(tmp_path / "pc_dv0.fits", np.ones((10, 12)), header=h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = read_rotation_map(path)
    assert d.dpix == pytest.approx(DPIX, rel=1e-12)
    h = make_header(12, 10, cdelt1=-2 * DPIX, cdelt2=2 * DPIX)
    h["PC1_1"], h["PC2_2"] = 0.5, 0.5
    path = write(tmp_path / "half_v0.fits", ramp(), header=h)
    write(tmp_path / "half_dv0.fits", np.ones((10, 12)), header=h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = read_rotation_map(path)
    assert d.dpix == pytest.approx(DPIX, rel=1e-12)
    np.testing.assert_allclose(d.xaxis, -DPIX * (np.arange(12) - 5.5), rtol=1e-12)


def test_header_beam_in_arcsec_and_bpa_modulo_180(tmp_path):
    d = read_rotation_map(pair(tmp_path, beam=(0.104, 0.095, -80.0)))
    assert d.beam == pytest.approx((0.104, 0.095, 100.0))


def test_casa_beam_table_median(tmp_path):
    h = make_header(12, 10, beam=None)
    h["CASAMBM"] = True
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="BMAJ", format="E", unit="arcsec", array=[0.30, 0.32, 0.50]),
        fits.Column(name="BMIN", format="E", unit="arcsec", array=[0.20, 0.22, 0.40]),
        fits.Column(name="BPA", format="E", unit="deg", array=[-10.0, -12.0, 40.0]),
        fits.Column(name="CHAN", format="J", array=[0, 1, 2]),
        fits.Column(name="POL", format="J", array=[0, 0, 0]),
    ])
    path = tmp_path / "casa_v0.fits"
    fits.HDUList([fits.PrimaryHDU(ramp(), header=h), table]).writeto(path)
    error = write(tmp_path / "e.fits", np.ones((10, 12)), header=h)
    d = read_rotation_map(path, uncertainty=error)
    assert d.beam == pytest.approx((0.32, 0.22, 170.0), rel=1e-6)  # median -10 deg


def test_no_beam_warns_and_uses_pixel(tmp_path):
    with pytest.warns(UserWarning, match="pixel size"):
        d = read_rotation_map(pair(tmp_path, beam=None))
    assert d.beam == pytest.approx((DPIX, DPIX, 0.0))


@pytest.mark.parametrize("unit", ["km/s", "KM/S", "km s-1", "km.s-1"])
def test_km_per_s_converted_to_m_per_s(tmp_path, unit):
    m = read_rotation_map(pair(tmp_path, name="m", bunit="m/s"))
    km = read_rotation_map(pair(tmp_path, data=ramp() / 1e3,
                                error=np.full((10, 12), 7e-3, np.float32), name="km",
                                bunit=unit))
    assert m.velocity_unit == "m/s" and km.velocity_unit == "km/s"
    np.testing.assert_allclose(km.data, m.data, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(km.error, m.error, rtol=1e-6)


@pytest.mark.parametrize("unit", ["M/S", "m s-1"])
def test_m_per_s_variants(tmp_path, unit):
    assert read_rotation_map(pair(tmp_path, bunit=unit)).velocity_unit == "m/s"


def test_uncertainty_without_bunit_takes_map_unit(tmp_path):
    path = write(tmp_path / "u_v0.fits", ramp() / 1e3, bunit="km/s")
    err = write(tmp_path / "u_dv0.fits", np.full((10, 12), -0.05), bunit=None)
    with pytest.warns(UserWarning, match="no BUNIT"):
        d = read_rotation_map(path, uncertainty=err)
    np.testing.assert_allclose(d.error, 50.0)  # absolute value, in m/s
    assert d.uncertainty_path == str(err)


@pytest.mark.parametrize("unit", ["m/s", "km/s"])
def test_uncertainty_without_bunit_warns_with_assumed_unit(tmp_path, unit):
    # The dv0 map has no BUNIT while the v0 map has one: the v0 unit is
    # assumed, and the warning names the file, the unit and how to silence it.
    scale = 1e3 if unit == "km/s" else 1.0
    path = write(tmp_path / "w_v0.fits", ramp() / scale, bunit=unit)
    write(tmp_path / "w_dv0.fits", np.full((10, 12), 20.0 / scale), bunit=None)
    with pytest.warns(UserWarning) as record:
        d = read_rotation_map(path)  # dv0 found by bettermoments' naming
    messages = [str(w.message) for w in record if "BUNIT" in str(w.message)]
    assert len(messages) == 1
    message = messages[0]
    assert "w_dv0.fits" in message and "w_v0.fits" in message
    assert f"({unit})" in message and "assumed" in message
    assert f"Set BUNIT = '{unit}'" in message and "w_dv0.fits" in message.split("Set")[1]
    np.testing.assert_allclose(d.error, 20.0)


# -- Bad inputs ------------------------------------------------------------- #


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope_v0.fits"):
        read_rotation_map(tmp_path / "nope_v0.fits")


def test_missing_uncertainty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dv0.fits"):
        read_rotation_map(pair(tmp_path), uncertainty=tmp_path / "missing_dv0.fits")


def test_missing_bunit(tmp_path):
    path = write(tmp_path / "x_v0.fits", ramp(), bunit=None)
    with pytest.raises(MapFormatError, match=r"Add BUNIT = 'm/s' or 'km/s'.*x_v0.fits"):
        read_rotation_map(path)


def test_unknown_bunit(tmp_path):
    path = write(tmp_path / "x_v0.fits", ramp(), bunit="Jy/beam")
    with pytest.raises(MapFormatError, match="BUNIT") as info:
        read_rotation_map(path)
    assert "'m/s' or 'km/s'" in str(info.value) and "x_v0.fits" in str(info.value)


def test_cube_is_rejected(tmp_path):
    path = write(tmp_path / "cube.fits", np.zeros((5, 10, 12), np.float32))
    with pytest.raises(MapFormatError, match="cube") as info:
        read_rotation_map(path)
    message = str(info.value)
    assert "bettermoments" in message and "_v0.fits" in message
    assert "cube.fits" in message


def test_one_dimensional_is_rejected(tmp_path):
    path = write(tmp_path / "line_v0.fits", np.zeros((1, 12), np.float32))
    with pytest.raises(MapFormatError, match="2-D"):
        read_rotation_map(path)


def test_uncertainty_of_another_shape(tmp_path):
    path = pair(tmp_path)
    err = write(tmp_path / "small.fits", np.ones((8, 8), np.float32))
    with pytest.raises(MapFormatError, match="map's pixels") as info:
        read_rotation_map(path, uncertainty=err)
    assert "(8, 8)" in str(info.value) and "(10, 12)" in str(info.value)


def test_an_uncertainty_on_a_larger_aligned_grid_is_cut_to_the_map(tmp_path):
    """A map written after a FOV cut (to_fits) with the original *_dv0.fits:
    the same pixels on the sky, so the uncertainty is cut to the map."""
    big = ramp(20, 24)
    write(tmp_path / "big_dv0.fits", big + 0.5)
    small = big[5:15, 6:18]            # the central 10 x 12 pixels
    header = make_header(12, 10)
    path = write(tmp_path / "cut_v0.fits", small, header=header)
    d = read_rotation_map(path, uncertainty=tmp_path / "big_dv0.fits")
    np.testing.assert_array_equal(d.error, small + 0.5)
    # Off-centre too: a crop whose centre lies 2 columns east, 3 rows north.
    # (East is to the left: RA grows as the column index falls.)
    header = make_header(12, 10)
    off = big[8:18, 4:16]
    header["CRVAL2"] = -21.95615 + 3 * DPIX / 3600.0
    header["CRVAL1"] = 269.08866 + 2 * DPIX / 3600.0 / np.cos(np.radians(-21.95615))
    path = write(tmp_path / "off_v0.fits", off, header=header)
    d = read_rotation_map(path, uncertainty=tmp_path / "big_dv0.fits")
    np.testing.assert_array_equal(d.error, off + 0.5)


@pytest.mark.parametrize("change, words", [
    ({"CRVAL2": -21.95615 + 1.0 / 3600.0}, "another pointing"),
    ({"CDELT2": -DPIX / 3600.0}, "CDELT2 has the other sign"),
    ({"CDELT1": -2 * DPIX / 3600.0}, "another pixel scale"),
])
def test_an_uncertainty_of_another_sky_grid_is_refused(tmp_path, change, words):
    path = write(tmp_path / "m_v0.fits", ramp())
    header = make_header(12, 10)
    header.update(change)
    err = write(tmp_path / "other_dv0.fits", np.ones((10, 12), np.float32),
                header=header)
    with pytest.raises(MapFormatError, match=words):
        read_rotation_map(path, uncertainty=err)


def test_all_nan(tmp_path):
    path = pair(tmp_path, data=np.full((10, 12), np.nan, np.float32))
    with pytest.raises(MapFormatError, match="NaN"):
        read_rotation_map(path)


def test_all_nan_inside_fov(tmp_path):
    data = np.full((40, 40), np.nan, np.float32)
    data[0, 0] = 1.0
    path = pair(tmp_path, data=data, error=np.ones((40, 40), np.float32))
    with pytest.raises(MapFormatError, match="FOV"):
        read_rotation_map(path, FOV=1.0)


def test_not_a_fits_file(tmp_path):
    path = tmp_path / "notes_v0.fits"
    path.write_text("this is not a FITS file\n" * 10)
    with pytest.raises(MapFormatError, match="not a readable FITS file") as info:
        read_rotation_map(path)
    assert "notes_v0.fits" in str(info.value)


def test_missing_pixel_scale(tmp_path):
    path = write(tmp_path / "x_v0.fits", ramp(), cdelt1=None, cdelt2=None)
    with pytest.raises(MapFormatError, match="pixel scale") as info:
        read_rotation_map(path)
    assert "CDELT1" in str(info.value) and "x_v0.fits" in str(info.value)


# -- Uncertainty discovery -------------------------------------------------- #


def test_bettermoments_naming_found(tmp_path):
    path = pair(tmp_path, name="HD163296_CO")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = read_rotation_map(path)
    assert d.uncertainty_path == str(tmp_path / "HD163296_CO_dv0.fits")
    assert "HD163296_CO_dv0.fits" in d.uncertainty_note
    np.testing.assert_allclose(d.error, 7.0)


def test_fallback_uncertainty_with_warning(tmp_path):
    data = ramp()
    data[0, 0] = np.nan
    path = write(tmp_path / "lonely_v0.fits", data)
    with pytest.warns(UserWarning, match=r"lonely_dv0.fits not found.*uncertainty="):
        d = read_rotation_map(path)
    values = data[np.isfinite(data)]
    expected = 0.1 * np.median(np.abs(values - np.median(values)))
    assert d.uncertainty_path is None
    assert "fallback" in d.uncertainty_note
    assert d.error[0, 0] == 0.0
    np.testing.assert_allclose(d.error[np.isfinite(d.data)], expected)


# -- FOV and downsampling --------------------------------------------------- #


def test_fov_clipping_sizes(tmp_path):
    path = pair(tmp_path, data=np.ones((40, 50), np.float32),
                error=np.ones((40, 50), np.float32))
    # astro-eddy's rule: |offset| < FOV / 2 plus the first pixel beyond on
    # each side (pixels of 0.1 arcsec centred at +-0.05, ..., +-1.05).
    d = read_rotation_map(path, FOV=2.0)
    assert d.shape == (22, 22)
    assert np.isclose(np.abs(d.xaxis).max(), 1.05)
    assert np.isclose(np.abs(d.yaxis).max(), 1.05)
    assert read_rotation_map(path, FOV=2.01).shape == (22, 22)
    assert read_rotation_map(path, FOV=2.2).shape == (24, 24)
    # A pixel exactly on the edge ends the field there.
    assert read_rotation_map(path, FOV=2.1).shape == (22, 22)


def test_fov_larger_than_map_warns(tmp_path):
    path = pair(tmp_path)
    with pytest.warns(UserWarning, match="larger than the map"):
        d = read_rotation_map(path, FOV=5.0)
    assert d.shape == (10, 12)


def test_downsample_int(tmp_path):
    data = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    path = pair(tmp_path, data=data, error=np.ones_like(data))
    full = read_rotation_map(path)
    d = read_rotation_map(path, downsample=4)
    assert d.shape == (10, 10)
    np.testing.assert_array_equal(d.data, full.data[2::4, 2::4])
    np.testing.assert_allclose(d.xaxis, full.xaxis[2::4])
    assert d.dpix == pytest.approx(4 * DPIX)
    assert read_rotation_map(path, downsample=1).shape == (40, 40)


def test_downsample_beam(tmp_path):
    data = np.ones((40, 40), np.float32)
    path = pair(tmp_path, data=data, error=data, beam=(0.35, 0.3, 0.0))
    d = read_rotation_map(path, downsample="beam")  # ceil(0.35 / 0.1) = 4
    assert d.shape == (10, 10)
    assert d.dpix == pytest.approx(4 * DPIX)


@pytest.mark.parametrize("bad", [0, -2, 2.5, "half", True])
def test_downsample_invalid(tmp_path, bad):
    with pytest.raises(ValueError, match="'beam'"):
        read_rotation_map(pair(tmp_path), downsample=bad)


# -- Bundled example -------------------------------------------------------- #


def test_example_loads_with_truths():
    ex = load_example()
    assert isinstance(ex, ExampleMap)
    paths = example_paths()
    assert paths["v0"] == ex.v0 and paths["dv0"] == ex.dv0
    assert Path(ex.v0).is_absolute() and Path(ex.v0).name == "HD163296_like_v0.fits"
    t = ex.truths
    assert t["inc"] == 46.7 and t["dist"] == 101.0
    assert t["PA"] == pytest.approx(312.0, abs=1.0)
    assert t["mstar"] == pytest.approx(2.0, abs=0.05)
    assert t["vlsr"] / 1e3 == pytest.approx(5.77, abs=0.01)
    assert (t["x0"], t["y0"]) == (0.02, -0.015)
    assert (t["z0"], t["psi"], t["r_taper"], t["q_taper"], t["r_cavity"]) == (
        0.26, 1.7, 3.0, 2.0, 0.0)
    assert "seed" in ex.description and "beam" in ex.description


def test_example_files_are_small():
    paths = example_paths()
    assert sum(Path(p).stat().st_size for p in paths.values()) < 5e6


@pytest.fixture(scope="module")
def example_data():
    ex = load_example()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # beam and dv0 are found: no warning
        data = read_rotation_map(ex.v0, FOV=8.0, downsample=4)
    return ex, data


def test_example_fov8_downsample4(example_data):
    ex, d = example_data
    assert d.shape == (80, 80)
    assert d.dpix == pytest.approx(0.1)
    assert d.velocity_unit == "m/s"
    assert d.uncertainty_path == ex.dv0
    assert d.beam == pytest.approx((0.104, 0.095, 100.0), rel=1e-6)
    x_sky, y_sky = np.meshgrid(d.xaxis, d.yaxis)
    geometry = {k: ex.truths[k] for k in ("x0", "y0", "inc", "PA", "z0", "psi",
                                          "r_cavity", "r_taper", "q_taper")}
    r = np.asarray(disk_coords(x_sky, y_sky, **geometry)[0])
    finite = np.isfinite(d.data)
    assert np.all(d.error[finite] > 0) and np.all(d.error[~finite] == 0)
    n = int(np.sum(finite & (r >= 0.2)))
    assert 4100 <= n <= 4500


def test_example_residual_is_noise(example_data):
    ex, d = example_data
    model = np.asarray(v0_map(d.xaxis, d.yaxis, ex.truths))
    finite = np.isfinite(d.data)
    normalised = ((d.data - model) / d.error)[finite]
    assert abs(np.mean(normalised)) < 0.1
    assert np.std(normalised) == pytest.approx(1.0, abs=0.1)
    assert math.isfinite(float(np.max(np.abs(normalised))))


def test_a_map_cut_by_fov_loads_with_its_original_uncertainty(tmp_path):
    """to_fits after a FOV cut, then the original *_dv0.fits (astro-eddy
    loads this pair): the uncertainty is cut to the map's pixels."""
    from eddy_widgets import rotationmap
    from eddy_widgets.data.example import example_paths

    paths = example_paths()
    cut = rotationmap(paths["v0"], FOV=8.0)
    out = cut.to_fits(tmp_path / "cut_v0.fits")
    again = rotationmap(out, uncertainty=paths["dv0"])
    assert again.map.shape == cut.map.shape
    np.testing.assert_array_equal(again.map.error, cut.map.error)


def test_a_downsample_larger_than_the_map_is_refused(tmp_path):
    with pytest.raises(ValueError, match="keeps no pixel of the 10 x 12 map"):
        read_rotation_map(pair(tmp_path), downsample=30)


def test_pixels_without_a_usable_dv0_are_counted(tmp_path):
    """dv0 = 0 (or NaN) leaves a pixel out of the fit, as in astro-eddy; the
    run says how many of the fitted region's pixels that was."""
    from eddy_widgets import rotationmap
    from eddy_widgets.data.example import example_paths

    paths = example_paths()
    with fits.open(paths["dv0"]) as hdul:
        error, header = hdul[0].data.astype(float), hdul[0].header
    ny, nx = error.shape
    error[ny // 2 - 20:ny // 2 + 20, nx // 2 + 10:nx // 2 + 30] = 0.0   # 800 pixels
    error[ny // 2 - 20:ny // 2 + 20, nx // 2 - 30:nx // 2 - 10] = np.nan
    fits.PrimaryHDU(error, header).writeto(tmp_path / "disk_dv0.fits")
    with fits.open(paths["v0"]) as hdul:
        hdul.writeto(tmp_path / "disk_v0.fits")
    cube = rotationmap(str(tmp_path / "disk_v0.fits"), FOV=8.0)
    params = {"x0": 0.0, "y0": 0.0, "inc": 46.7, "PA": 312.0, "mstar": 0,
              "vlsr": 5760.0, "dist": 101.0, "r_max": 3.0}
    with pytest.warns(UserWarning, match="1600 pixels of the fitted region have a v0 "
                                         "but no usable uncertainty"):
        run = cube.prepare_fit([2.0], params, optimize=False, verbose=False)
    assert "disk_dv0.fits" in run.messages[0]
