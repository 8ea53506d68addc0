"""Physics tests of the JAX rotation-map model (eddy_widgets.model).

Each test checks a known answer: limiting cases, symmetries, an independent
numpy re-implementation of astro-eddy's flared model, the beam kernel's
moments, and finite gradients at the points where naive expressions are
singular (disk centre, cavity edge, infinite taper).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eddy_widgets  # noqa: F401  (enables JAX x64)
from eddy_widgets.model import (
    beam_kernel,
    beam_padding,
    convolve_fft,
    convolve_padded,
    disk_coords,
    disk_frame,
    effective_inclination,
    emission_surface,
    enclosed_disk_mass,
    keplerian,
    midplane_coords,
    padded_axes,
    power_law,
    v0_map,
    v0_model,
)

# Constants written out here so the test does not trust the model's own.
G_SI = 6.67430e-11
MSUN_KG = 1.98847e30
AU_M = 1.495978707e11
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548

# A flat disk used by several tests.
FLAT = dict(x0=0.0, y0=0.0, inc=35.0, PA=70.0, mstar=1.3, dist=140.0, vlsr=4200.0)
# A flared disk used by several tests.
FLARED = dict(FLAT, z0=0.25, psi=1.3, r_taper=2.5, q_taper=2.0)


def vkep_midplane(r_arcsec, mstar, dist):
    """Independent Keplerian speed sqrt(G M / r) in m/s, r in arcsec at dist pc."""
    r_m = np.asarray(r_arcsec) * dist * AU_M
    return np.sqrt(G_SI * mstar * MSUN_KG / r_m)


def major_axis(s, PA):
    """Sky offsets at distance s along the red-shifted major axis (x east, y north)."""
    pa = np.radians(PA)
    return s * np.sin(pa), s * np.cos(pa)


def minor_axis(s, PA):
    """Sky offsets at distance s along the minor axis (phi = +90 deg side)."""
    pa = np.radians(PA)
    return s * np.cos(pa), -s * np.sin(pa)


def sky_grid(n=31, half=3.0):
    """Meshgrid of sky offsets [arcsec]; x decreasing with column (east left)."""
    xaxis = np.linspace(half, -half, n)
    yaxis = np.linspace(-half, half, n)
    return np.meshgrid(xaxis, yaxis)


# --------------------------------------------------------------------------
# Geometry and projection limits.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("params", [FLAT, FLARED], ids=["flat", "flared"])
def test_face_on_is_systemic(params):
    # Face-on (i = 0): no rotation has a line-of-sight component, v0 = vlsr.
    x, y = sky_grid()
    p = dict(params, inc=0.0, vr_100=80.0, vr_q=-0.5)
    v0 = np.asarray(v0_model(x, y, p))
    assert np.all(np.isfinite(v0))
    np.testing.assert_allclose(v0, p["vlsr"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("inc", [35.0, -35.0, 75.0])
def test_major_axis_is_projected_keplerian(inc):
    # On the major axis of a flat disk phi = 0, so v0 - vlsr = sqrt(GM/r) sin|i|.
    s = np.array([0.05, 0.3, 1.0, 2.7, 8.0])
    p = dict(FLAT, inc=inc)
    x, y = major_axis(s, p["PA"])
    dv = np.asarray(v0_model(x, y, p)) - p["vlsr"]
    expected = vkep_midplane(s, p["mstar"], p["dist"]) * abs(math.sin(math.radians(inc)))
    np.testing.assert_allclose(dv, expected, rtol=1e-12)
    # The red-shifted side lies along PA (east of north): dv > 0 there.
    assert np.all(dv > 0)
    dv_opposite = np.asarray(v0_model(-x, -y, p)) - p["vlsr"]
    assert np.all(dv_opposite < 0)


def test_red_side_direction_on_image():
    # PA = 90 puts the red-shifted axis due east, i.e. at positive x, which is
    # the left of an image whose x axis decreases with column index.
    p = dict(FLAT, PA=90.0)
    xaxis = np.linspace(2.0, -2.0, 21)
    yaxis = np.linspace(-2.0, 2.0, 21)
    v = np.asarray(v0_map(xaxis, yaxis, p)) - p["vlsr"]
    assert v[10, 0] > 0 and v[10, -1] < 0  # left column (east) red, right blue
    np.testing.assert_allclose(v[:, 10], 0.0, atol=1e-9)  # north-south minor axis


def test_flat_disk_red_blue_antisymmetry():
    # A flat disk is point-symmetric: v(-x, -y) - vlsr = -(v(x, y) - vlsr).
    x, y = sky_grid(32)  # even grid: no pixel at the centre
    p = dict(FLAT, x0=0.0, y0=0.0)
    v = np.asarray(v0_model(x, y, p)) - p["vlsr"]
    v_flip = np.asarray(v0_model(-x, -y, p)) - p["vlsr"]
    np.testing.assert_allclose(v_flip, -v, rtol=0, atol=1e-9 * np.abs(v).max())
    # About an offset centre too.
    p = dict(FLAT, x0=0.3, y0=-0.2)
    v = np.asarray(v0_model(x, y, p)) - p["vlsr"]
    v_flip = np.asarray(v0_model(2 * 0.3 - x, 2 * -0.2 - y, p)) - p["vlsr"]
    np.testing.assert_allclose(v_flip, -v, rtol=0, atol=1e-9 * np.abs(v).max())


@pytest.mark.parametrize("params", [FLAT, FLARED], ids=["flat", "flared"])
def test_minor_axis_is_systemic(params):
    # On the minor axis cos(phi) = 0: pure rotation has no line-of-sight part.
    s = np.array([-2.5, -0.7, -0.1, 0.1, 0.7, 2.5])
    x, y = minor_axis(s, params["PA"])
    v0 = np.asarray(v0_model(x, y, params))
    np.testing.assert_allclose(v0, params["vlsr"], rtol=0, atol=1e-8)


def test_disk_coords_midplane():
    # Flat disk: r is the deprojected distance, phi = 0 on the red major axis
    # and +90 deg on the minor-axis side used by minor_axis().
    inc, PA = 50.0, 20.0
    x, y = major_axis(np.array([1.5]), PA)
    r, phi, z = disk_coords(x, y, inc=inc, PA=PA)
    np.testing.assert_allclose([r[0], phi[0], z[0]], [1.5, 0.0, 0.0], atol=1e-12)
    x, y = minor_axis(np.array([0.6]), PA)
    r, phi, z = disk_coords(x, y, inc=inc, PA=PA)
    np.testing.assert_allclose(r, 0.6 / math.cos(math.radians(inc)), rtol=1e-12)
    np.testing.assert_allclose(phi, math.pi / 2, rtol=1e-12)


# --------------------------------------------------------------------------
# Emission surface and flared deprojection.
# --------------------------------------------------------------------------

def test_emission_surface_formula():
    # astro-eddy 3.2 / disksurf: with r_eff = max(r - r_cav, 0),
    # z = z0 r_eff^psi exp(-(r_eff / r_taper)^q); the taper is measured from
    # the cavity edge too, and z = 0 inside the cavity.
    r = np.linspace(0.0, 6.0, 121)
    z0, psi, r_cav, r_taper, q = 0.3, 1.4, 0.8, 3.0, 2.5
    z = np.asarray(emission_surface(r, z0, psi, r_cav, r_taper, q))
    out = r > r_cav
    r_eff = r[out] - r_cav
    expected = z0 * r_eff ** psi * np.exp(-(r_eff / r_taper) ** q)
    np.testing.assert_allclose(z[out], expected, rtol=1e-12)
    assert np.all(z[~out] == 0.0)
    # Tapering r instead of r_eff would be a different surface (by > 10%).
    wrong = z0 * r_eff ** psi * np.exp(-(r[out] / r_taper) ** q)
    assert np.abs(z[out] / wrong - 1.0).max() > 0.1
    # Without a taper (r_taper = inf) it is the plain power law.
    z_nt = np.asarray(emission_surface(r, z0, psi, r_cav))
    np.testing.assert_allclose(z_nt[out], z0 * r_eff ** psi, rtol=1e-12)
    assert np.all(z_nt[~out] == 0.0)
    # Without a cavity the taper uses r itself.
    z_nc = np.asarray(emission_surface(r, z0, psi, 0.0, r_taper, q))
    np.testing.assert_allclose(z_nc, z0 * r ** psi * np.exp(-(r / r_taper) ** q),
                               rtol=1e-12, atol=1e-300)
    # A negative z0 gives the mirror (far-side) surface.
    np.testing.assert_allclose(emission_surface(r, -z0, psi, r_cav, r_taper, q), -z,
                               rtol=0, atol=0)


@pytest.mark.parametrize("inc", [40.0, -40.0])
def test_flared_fixed_point_converges(inc):
    # The line of sight meets the surface where y = y_mid + z(r) tan(i),
    # r = hypot(x_mid, y); the iteration converges to that point.
    x, y = sky_grid(41)
    kw = dict(x0=0.1, y0=-0.05, inc=inc, PA=312.0, z0=0.2, psi=1.25,
              r_cavity=0.2, r_taper=3.0, q_taper=2.0)
    r50, c50, s50, z50 = (np.asarray(a) for a in disk_frame(x, y, niter=50, **kw))
    x_mid, y_mid = (np.asarray(a) for a in midplane_coords(
        x, y, kw["x0"], kw["y0"], inc, kw["PA"]))
    z_expected = np.asarray(emission_surface(r50, kw["z0"], kw["psi"], kw["r_cavity"],
                                             kw["r_taper"], kw["q_taper"]))
    np.testing.assert_allclose(z50, z_expected, rtol=0, atol=1e-14)
    y_surf = r50 * s50
    resid = y_surf - (y_mid + z_expected * math.tan(math.radians(inc)))
    assert np.abs(resid).max() < 1e-6
    np.testing.assert_allclose(r50 * c50, x_mid, rtol=0, atol=1e-12)  # x unchanged
    assert np.abs(z_expected).max() > 0.2  # the test really lifts the surface
    # The default 5 iterations (astro-eddy's) are within 1e-3 arcsec of it.
    r5, c5, s5, _ = (np.asarray(a) for a in disk_frame(x, y, **kw))
    assert np.abs(r5 * s5 - y_surf).max() < 1e-3
    assert np.abs(r5 - r50).max() < 1e-3
    # disk_coords returns the same point with phi = arctan2(y, x).
    r, phi, z = (np.asarray(a) for a in disk_coords(x, y, niter=50, **kw))
    np.testing.assert_allclose(r, r50, rtol=1e-14)
    np.testing.assert_allclose(phi, np.arctan2(y_surf, x_mid), atol=1e-12)


def test_keplerian_with_height():
    # On a surface at height z, v = v_mid * (r^2 / (r^2 + z^2))^(3/4).
    r = np.array([0.2, 0.5, 1.0, 2.0, 4.0])
    z = np.array([0.01, 0.1, 0.3, 0.8, 1.5])
    mstar, dist = 2.0, 101.0
    v_mid = np.asarray(keplerian(r, np.zeros_like(r), mstar, dist))
    np.testing.assert_allclose(v_mid, vkep_midplane(r, mstar, dist), rtol=1e-12)
    v = np.asarray(keplerian(r, z, mstar, dist))
    np.testing.assert_allclose(v / v_mid, (r ** 2 / (r ** 2 + z ** 2)) ** 0.75,
                               rtol=1e-12)


def test_flared_major_axis_uses_surface_speed():
    # Above the major axis (x_mid = s, y_mid = 0) the line of sight meets the
    # surface at y = z(hypot(s, y)) tan(i), found here by a 1-D root solve;
    # there v0 - vlsr = v_kep(r) (r^2 / (r^2 + z^2))^(3/4) cos(phi) sin|i|.
    from scipy.optimize import brentq

    p = FLARED
    t = math.tan(math.radians(p["inc"]))

    def z_of(r):
        return p["z0"] * r ** p["psi"] * math.exp(-(r / p["r_taper"]) ** p["q_taper"])

    s = np.array([0.4, 1.0, 2.0])
    expected = []
    for si in s:
        y = brentq(lambda y: y - z_of(math.hypot(si, y)) * t,  # noqa: B023
                   0.0, 10.0, xtol=1e-15)
        r, z = math.hypot(si, y), z_of(math.hypot(si, y))
        v = vkep_midplane(r, p["mstar"], p["dist"]) * (r ** 2 / (r ** 2 + z ** 2)) ** 0.75
        expected.append(v * (si / r) * abs(math.sin(math.radians(p["inc"]))))
    x, y = major_axis(s, p["PA"])
    dv = np.asarray(v0_model(x, y, p, niter=50)) - p["vlsr"]
    np.testing.assert_allclose(dv, expected, rtol=1e-10)


# --------------------------------------------------------------------------
# Inclination conventions.
# --------------------------------------------------------------------------

def test_effective_inclination():
    # astro-eddy: inclinations >= 90 deg become inc - 180.
    np.testing.assert_allclose(effective_inclination(jnp.array([-60.0, 0.0, 89.9, 90.0,
                                                                120.0, 179.0])),
                               [-60.0, 0.0, 89.9, -90.0, -60.0, -1.0])


@pytest.mark.parametrize("inc", [120.0, 135.0, 100.0])
def test_inclination_above_90_equals_mapped(inc):
    # inc >= 90 describes the same disk as inc - 180: identical maps.
    x, y = sky_grid(25)
    p = dict(FLARED, inc=inc, vr_100=60.0, vr_q=-0.3)
    v = np.asarray(v0_model(x, y, p))
    v_mapped = np.asarray(v0_model(x, y, dict(p, inc=inc - 180.0)))
    np.testing.assert_array_equal(v, v_mapped)


def test_sign_of_inclination():
    # For a flared disk the sign of i picks which side of the surface faces us
    # (the near side flips), so the map changes; a flat disk does not care.
    x, y = sky_grid(25)
    v_pos = np.asarray(v0_model(x, y, dict(FLARED, inc=40.0)))
    v_neg = np.asarray(v0_model(x, y, dict(FLARED, inc=-40.0)))
    assert np.abs(v_pos - v_neg).max() > 10.0  # m/s
    # Flipping i is the same as mirroring the surface across the midplane
    # and the minor axis (z0 -> -z0 behaves like the far side).
    v_flat_pos = np.asarray(v0_model(x, y, dict(FLAT, inc=40.0)))
    v_flat_neg = np.asarray(v0_model(x, y, dict(FLAT, inc=-40.0)))
    np.testing.assert_allclose(v_flat_pos, v_flat_neg, rtol=0, atol=1e-9)


def test_flared_near_side_shift():
    # For i > 0 and z > 0 the surface point lies at larger deprojected y than
    # the midplane point (y = y_mid + z tan i); i < 0 moves it the other way.
    x, y = minor_axis(np.array([0.5]), FLARED["PA"])
    kw = {k: FLARED[k] for k in ("x0", "y0", "PA", "z0", "psi", "r_taper", "q_taper")}
    for inc, sign in [(40.0, 1.0), (-40.0, -1.0)]:
        r, c, s, z = disk_frame(x, y, inc=inc, **kw)
        _, y_mid = midplane_coords(x, y, 0.0, 0.0, inc, FLARED["PA"])
        assert sign * (float(r[0] * s[0]) - float(y_mid[0])) > 0.05


# --------------------------------------------------------------------------
# Other velocity components.
# --------------------------------------------------------------------------

def test_power_law_rotation_replaces_keplerian():
    # v_phi = vp_100 (r dist / 100 au)^vp_q, independent of mstar.
    s = np.array([0.2, 0.7, 1.0, 3.0])
    p = dict(FLAT, vp_100=2500.0, vp_q=-0.4)
    x, y = major_axis(s, p["PA"])
    dv = np.asarray(v0_model(x, y, p)) - p["vlsr"]
    expected = (2500.0 * (s * p["dist"] / 100.0) ** -0.4
                * abs(math.sin(math.radians(p["inc"]))))
    np.testing.assert_allclose(dv, expected, rtol=1e-12)
    dv_m = np.asarray(v0_model(x, y, dict(p, mstar=7.0))) - p["vlsr"]
    np.testing.assert_allclose(dv_m, dv, rtol=0, atol=0)
    np.testing.assert_allclose(power_law(s, p["dist"], 2500.0, -0.4),
                               2500.0 * (s * p["dist"] / 100.0) ** -0.4, rtol=1e-12)
    with pytest.raises(ValueError):
        v0_model(x, y, dict(FLAT, vp_100=2500.0))  # vp_q missing


@pytest.mark.parametrize("inc", [35.0, -35.0])
def test_radial_velocity_projection(inc):
    # A radial flow projects as -v_r sin(phi) sin(i) (astro-eddy _proj_vrad:
    # v_rad * sin(phi) * sin(-inc)); it vanishes on the major axis.
    vr_100, vr_q = 150.0, -0.5
    p = dict(FLAT, inc=inc, vr_100=vr_100, vr_q=vr_q)
    s = np.array([0.3, 1.0, 2.0])
    # Minor axis, phi = +90 deg: rotation contributes nothing.
    x, y = minor_axis(s, p["PA"])
    r = s / math.cos(math.radians(inc))
    v_r = vr_100 * (r * p["dist"] / 100.0) ** vr_q
    dv = np.asarray(v0_model(x, y, p)) - p["vlsr"]
    eddy_proj_vrad = v_r * math.sin(math.pi / 2) * math.sin(-math.radians(inc))
    np.testing.assert_allclose(dv, eddy_proj_vrad, rtol=1e-12)
    # Outflow (v_r > 0) on the phi = +90 side is blue-shifted for i > 0.
    assert np.all(np.sign(dv) == -np.sign(inc))
    # Other side (phi = -90 deg): opposite sign.
    dv_other = np.asarray(v0_model(-x, -y, p)) - p["vlsr"]
    np.testing.assert_allclose(dv_other, -eddy_proj_vrad, rtol=1e-12)
    # Major axis: only the rotation remains.
    x, y = major_axis(s, p["PA"])
    dv = np.asarray(v0_model(x, y, p)) - np.asarray(v0_model(x, y, FLAT))
    np.testing.assert_allclose(dv, 0.0, atol=1e-9)


@pytest.mark.parametrize("gamma, r_in, r_out", [(1.0, 0.0, 10.0), (0.5, 0.4, 2.5),
                                                (1.5, 0.2, 1.5)])
def test_pseudo_self_gravity(gamma, r_in, r_out):
    # The enclosed disk mass m_enc = mdisk clip((r^(2-g) - r_in^(2-g)) /
    # (r_out^(2-g) - r_in^(2-g)), 0, 1) adds to mstar: v scales by
    # sqrt((mstar + m_enc) / mstar).
    mdisk = 0.4
    s = np.array([0.1, 0.3, 0.6, 1.0, 2.0, 3.0, 12.0])
    e = 2.0 - gamma
    m_enc = mdisk * np.clip((s ** e - r_in ** e) / (r_out ** e - r_in ** e), 0.0, 1.0)
    np.testing.assert_allclose(enclosed_disk_mass(s, mdisk, gamma, r_in, r_out), m_enc,
                               rtol=1e-9, atol=1e-12)
    p = dict(FLAT, mdisk=mdisk, gamma=gamma, r_in=r_in, r_out=r_out)
    x, y = major_axis(s, p["PA"])
    dv_sg = np.asarray(v0_model(x, y, p)) - p["vlsr"]
    dv = np.asarray(v0_model(x, y, FLAT)) - p["vlsr"]
    np.testing.assert_allclose(dv_sg / dv, np.sqrt((p["mstar"] + m_enc) / p["mstar"]),
                               rtol=1e-9)
    assert dv_sg[-1] / dv[-1] == pytest.approx(math.sqrt((1.3 + mdisk) / 1.3))


# --------------------------------------------------------------------------
# Beam.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("bpa", [0.0, 30.0, 90.0, 135.0])
def test_beam_kernel_moments(bpa):
    # A Gaussian beam has sigma = FWHM / 2.3548 along its major axis, which
    # points bpa east of north; columns run east to the left.
    bmaj, bmin, dpix = 0.5, 0.3, 0.05
    k = np.asarray(beam_kernel(bmaj, bmin, bpa, dpix, nsigma=8.0))
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(k >= 0)
    half = k.shape[0] // 2
    offs = np.arange(-half, half + 1) * dpix
    col, row = np.meshgrid(offs, offs)
    east, north = -col, row
    assert (k * east).sum() == pytest.approx(0.0, abs=1e-12)  # centred
    assert (k * north).sum() == pytest.approx(0.0, abs=1e-12)
    pa = math.radians(bpa)
    along = east * math.sin(pa) + north * math.cos(pa)
    across = east * math.cos(pa) - north * math.sin(pa)
    s_maj = math.sqrt((k * along ** 2).sum())
    s_min = math.sqrt((k * across ** 2).sum())
    assert s_maj == pytest.approx(bmaj / FWHM_PER_SIGMA, rel=1e-3)
    assert s_min == pytest.approx(bmin / FWHM_PER_SIGMA, rel=1e-3)
    assert (k * along * across).sum() == pytest.approx(0.0, abs=1e-9)


def test_beam_kernel_orientation_on_array():
    # BPA = 45 (north-east): the beam runs from bottom-right to top-left of
    # the array (rows go north, columns go west), so row and column offsets
    # are anti-correlated.
    k = np.asarray(beam_kernel(0.5, 0.2, 45.0, 0.05))
    half = k.shape[0] // 2
    col, row = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1))
    assert (k * row * col).sum() < -0.5 * (k * row ** 2).sum()
    # Default nsigma still captures almost all of the Gaussian.
    assert k.sum() == pytest.approx(1.0)


def test_convolve_constant_map_stays_constant():
    # Edge-renormalised convolution keeps a constant map constant, edges too.
    k = beam_kernel(0.4, 0.25, 30.0, 0.1)
    img = jnp.full((23, 30), 5763.25)
    out = np.asarray(convolve_fft(img, k))
    assert out.shape == img.shape
    np.testing.assert_allclose(out, 5763.25, rtol=1e-12)


def test_convolve_delta_gives_kernel():
    # Convolving a delta with the kernel returns the kernel, not its mirror.
    rng = np.random.default_rng(1)
    for k in [np.asarray(beam_kernel(0.4, 0.25, 30.0, 0.1)), rng.random((5, 7))]:
        k = k / k.sum()
        ky, kx = k.shape
        img = np.zeros((31, 33))
        cy, cx = 15, 16
        img[cy, cx] = 1.0
        out = np.asarray(convolve_fft(jnp.asarray(img), k))
        expected = np.zeros_like(img)
        expected[cy - ky // 2:cy + ky // 2 + 1, cx - kx // 2:cx + kx // 2 + 1] = k
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-13)


def test_convolve_is_linear():
    # conv(a A + b B) = a conv(A) + b conv(B) (the edge weights do not depend
    # on the image).
    rng = np.random.default_rng(2)
    k = beam_kernel(0.4, 0.25, 30.0, 0.1)
    a_img, b_img = rng.normal(size=(2, 20, 24))
    lhs = convolve_fft(jnp.asarray(2.5 * a_img - 0.7 * b_img), k)
    rhs = 2.5 * convolve_fft(jnp.asarray(a_img), k) - 0.7 * convolve_fft(
        jnp.asarray(b_img), k)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12)


def test_v0_map_with_kernel_is_convolved_map():
    # v0_map(kernel=...) is the model map convolved with the beam: the model
    # on the grid padded by the kernel's half-width, convolved and cropped
    # (the border against a larger grid: tests/test_beam_border.py). Away
    # from the border any convolution of the map agrees.
    xaxis = np.linspace(2.0, -2.0, 24)
    yaxis = np.linspace(-2.0, 2.0, 20)
    k = beam_kernel(0.4, 0.25, 30.0, abs(xaxis[1] - xaxis[0]))
    raw = v0_map(xaxis, yaxis, FLARED)
    assert raw.shape == (20, 24)
    ours = v0_map(xaxis, yaxis, FLARED, kernel=k)
    padded = v0_map(*padded_axes(xaxis, yaxis, beam_padding(k)), FLARED)
    np.testing.assert_allclose(ours, convolve_padded(padded, k), rtol=1e-14)
    py, px = beam_padding(k)
    inner = (slice(py, 20 - py), slice(px, 24 - px))
    np.testing.assert_allclose(np.asarray(ours)[inner],
                               np.asarray(convolve_fft(raw, k))[inner], rtol=1e-12)


# --------------------------------------------------------------------------
# Independent numpy re-implementation of astro-eddy's flared model.
# --------------------------------------------------------------------------

def numpy_eddy_v0(xaxis, yaxis, x0, y0, inc, PA, mstar, dist, vlsr, z0, psi,
                  r_cavity, r_taper, q_taper, niter):
    """astro-eddy 3.2's flared rotation model written out in numpy (its
    ``_analytic_z`` surface, ``_get_flared_coords`` iteration, ``_vkep`` and
    ``_proj_vphi``): the cavity shifts the radius, r_eff = max(r - r_cavity,
    0), and both the power law and the taper use r_eff."""
    inc = inc if inc < 90.0 else inc - 180.0
    x_sky, y_sky = np.meshgrid(xaxis - x0, yaxis - y0)
    pa = np.radians(PA)
    x_mid = y_sky * np.cos(pa) + x_sky * np.sin(pa)
    y_mid = (x_sky * np.cos(pa) - y_sky * np.sin(pa)) / np.cos(np.radians(inc))

    def z_func(r):
        r_eff = np.clip(r - r_cavity, 0.0, None)
        return z0 * r_eff ** psi * np.exp(-(r_eff / r_taper) ** q_taper)

    r, y = np.hypot(x_mid, y_mid), y_mid
    for _ in range(niter):
        y = y_mid + z_func(r) * np.tan(np.radians(inc))
        r = np.hypot(y, x_mid)
    phi = np.arctan2(y, x_mid)
    r_m, z_m = r * dist * AU_M, z_func(r) * dist * AU_M
    v_phi = np.sqrt(G_SI * mstar * MSUN_KG * r_m ** 2 / np.hypot(r_m, z_m) ** 3)
    return v_phi * np.cos(phi) * np.sin(abs(np.radians(inc))) + vlsr


def test_matches_numpy_astro_eddy_flared_model():
    # HD 163296-like flared disk on a 60x60 grid agrees to < 1e-6 m/s.
    p = dict(x0=0.03, y0=-0.02, inc=46.7, PA=312.0, mstar=2.0, dist=101.0,
             vlsr=5763.0, z0=0.26, psi=1.7, r_cavity=0.0, r_taper=3.0, q_taper=2.0)
    n, dpix = 60, 0.1
    xaxis = (0.5 * (n - 1) - np.arange(n)) * dpix  # east to the left
    yaxis = (np.arange(n) - 0.5 * (n - 1)) * dpix
    v_model = np.asarray(v0_map(xaxis, yaxis, p, niter=5))
    v_ref = numpy_eddy_v0(xaxis, yaxis, niter=5, **p)
    assert v_model.shape == (n, n)
    assert np.ptp(v_ref) > 5000.0  # a real rotation pattern, not vlsr alone
    assert np.abs(v_model - v_ref).max() < 1e-6
    # The same geometry with inc >= 90 and a flat disk also agree.
    v_model = np.asarray(v0_map(xaxis, yaxis, dict(p, inc=180.0 - 46.7)))
    v_ref = numpy_eddy_v0(xaxis, yaxis, niter=5, **dict(p, inc=180.0 - 46.7))
    assert np.abs(v_model - v_ref).max() < 1e-6
    v_model = np.asarray(v0_map(xaxis, yaxis, dict(p, z0=None)))
    v_ref = numpy_eddy_v0(xaxis, yaxis, niter=5, **dict(p, z0=0.0))
    assert np.abs(v_model - v_ref).max() < 1e-6


#: A flared disk with both a cavity and a taper, where tapering r instead of
#: r - r_cavity (astro-eddy 3.2's convention) changes the map by tens of m/s.
CAVITY_TAPER = dict(x0=0.02, y0=-0.015, inc=46.7, PA=312.0, mstar=2.02, dist=101.0,
                    vlsr=5763.0, z0=0.3, psi=1.25, r_cavity=0.3, r_taper=2.5,
                    q_taper=1.5)


def test_evaluate_models_matches_numpy_astro_eddy_with_cavity_and_taper(example):
    # rotationmap.evaluate_models(params=...) on the bundled example's grid
    # against the independent numpy astro-eddy model, with a cavity AND a
    # taper: the taper acts on r_eff = r - r_cavity.
    from eddy_widgets.rotationmap import rotationmap

    cube = rotationmap(example.v0, FOV=8.0, downsample=2)
    model = cube.evaluate_models(params=CAVITY_TAPER)
    ref = numpy_eddy_v0(np.asarray(cube.xaxis), np.asarray(cube.yaxis), niter=5,
                        **CAVITY_TAPER)
    assert model.shape == ref.shape == cube.data.shape
    assert np.ptp(ref) > 5000.0  # a real rotation pattern
    assert np.abs(model - ref).max() < 1.0  # m/s
    # The same with a taper measured from r = 0 would be far off: the test
    # can tell the two conventions apart.
    wrong = numpy_eddy_v0(np.asarray(cube.xaxis), np.asarray(cube.yaxis), niter=5,
                          **dict(CAVITY_TAPER, r_cavity=0.0))
    assert np.abs(wrong - ref).max() > 10.0
    # And the mirrored inclination (the far side up).
    p = dict(CAVITY_TAPER, inc=-46.7)
    ref = numpy_eddy_v0(np.asarray(cube.xaxis), np.asarray(cube.yaxis), niter=5, **p)
    assert np.abs(cube.evaluate_models(params=p) - ref).max() < 1.0


def test_surface_gradient_with_cavity_and_taper():
    # d z / d(r, z0, psi, r_cavity, r_taper, q_taper) of astro-eddy's surface,
    # written out by hand, at radii on both sides of the cavity edge and
    # exactly on it (there every derivative is 0 for psi > 1, not NaN).
    z0, psi, r_cav, r_taper, q = 0.3, 1.25, 0.3, 2.5, 1.5
    r = np.array([0.0, 0.1, r_cav, r_cav + 1e-6, 0.5, 1.0, 2.0, 3.5, 6.0])

    def z_of(args):
        return emission_surface(*args)

    jac = jax.vmap(jax.grad(lambda a: z_of(a)))(
        tuple(jnp.asarray(np.broadcast_to(v, r.shape), float)
              for v in (r, z0, psi, r_cav, r_taper, q)))
    jac = np.stack([np.asarray(g) for g in jac])  # (6, len(r))
    assert np.all(np.isfinite(jac))
    out = r > r_cav
    re = r[out] - r_cav
    z = z0 * re ** psi * np.exp(-(re / r_taper) ** q)
    dz_dre = z * (psi / re - q / r_taper * (re / r_taper) ** (q - 1.0))
    expected = np.stack([
        dz_dre,                                               # r
        z / z0,                                               # z0
        z * np.log(re),                                       # psi
        -dz_dre,                                              # r_cavity
        z * q / r_taper * (re / r_taper) ** q,                # r_taper
        -z * (re / r_taper) ** q * np.log(re / r_taper),      # q_taper
    ])
    np.testing.assert_allclose(jac[:, out], expected, rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(jac[:, ~out], 0.0)  # inside and on the edge


def test_model_gradient_at_cavity_edge_matches_numpy_reference():
    # The model's gradient with a cavity and a taper, with r_cavity exactly on
    # two pixels' surface radius: finite everywhere, 0 on the edge pixels for
    # the surface parameters (z and its derivatives vanish there for psi > 1),
    # and elsewhere equal to central differences of the independent numpy
    # astro-eddy model.
    n, dpix = 40, 0.1  # even: no pixel at r = 0, where the numpy model is 0/0
    xaxis = (0.5 * (n - 1) - np.arange(n)) * dpix
    yaxis = (np.arange(n) - 0.5 * (n - 1)) * dpix
    x, y = np.meshgrid(xaxis, yaxis)
    base = dict(CAVITY_TAPER, x0=0.0, y0=0.0)
    r_flat = np.asarray(disk_coords(x, y, 0.0, 0.0, base["inc"], base["PA"])[0])
    # A pixel whose midplane radius is r_cavity stays there (z = 0 inside).
    r_cav = float(r_flat[18, 23])
    p = dict(base, r_cavity=r_cav)
    surface = ("x0", "y0", "inc", "PA", "z0", "psi", "r_cavity", "r_taper", "q_taper")
    r, _, z = disk_coords(x, y, **{k: p[k] for k in surface})
    edge = np.asarray(r) == r_cav
    assert edge.sum() == 2 and np.all(np.asarray(z)[edge] == 0.0)
    names = ("z0", "psi", "r_cavity", "r_taper", "q_taper", "inc", "mstar")
    fixed = {k: v for k, v in p.items() if k not in names}
    jac = jax.jacfwd(lambda t: v0_map(xaxis, yaxis, {**fixed, **t}))(
        {k: p[k] for k in names})
    for name in names:
        g = np.asarray(jac[name])
        assert np.all(np.isfinite(g)), name
        if name in ("z0", "psi", "r_cavity", "r_taper", "q_taper"):
            np.testing.assert_array_equal(g[edge], 0.0, err_msg=name)
        # Off the edge (where the model is smooth) the derivative is the
        # numpy model's; on it the central difference converges only as
        # h^(psi - 1), so it is left out.
        h = 1e-6 * max(1.0, abs(p[name]))
        up = numpy_eddy_v0(xaxis, yaxis, niter=5, **dict(p, **{name: p[name] + h}))
        dn = numpy_eddy_v0(xaxis, yaxis, niter=5, **dict(p, **{name: p[name] - h}))
        fd = (up - dn) / (2 * h)
        assert g[~edge].sum() == pytest.approx(fd[~edge].sum(), rel=1e-5), name
        np.testing.assert_allclose(g[~edge], fd[~edge], rtol=1e-3,
                                   atol=1e-4 * np.abs(fd).max(), err_msg=name)


# --------------------------------------------------------------------------
# Differentiability.
# --------------------------------------------------------------------------

GRAD_NAMES = ("x0", "y0", "inc", "PA", "mstar", "vlsr", "z0", "psi", "r_cavity",
              "r_taper", "q_taper", "vr_100", "vr_q", "mdisk")
GRAD_BASE = dict(x0=0.0, y0=0.0, inc=40.0, PA=312.0, mstar=1.5, dist=100.0,
                 vlsr=5000.0, z0=0.25, psi=1.3, r_cavity=0.3, r_taper=2.5,
                 q_taper=2.0, vr_100=50.0, vr_q=-0.5, mdisk=0.1)


def odd_grid():
    """21x21 grid with a pixel exactly at (0, 0)."""
    ax = np.arange(-10, 11) * 0.15
    return np.meshgrid(ax[::-1], ax)


def grad_sum_v0(x, y, params, names):
    """jax.grad of sum(v0) with respect to the named parameters."""
    free = {k: params[k] for k in names}
    fixed = {k: v for k, v in params.items() if k not in free}

    def total(theta):
        return jnp.sum(v0_model(x, y, {**fixed, **theta}))

    value = total(free)
    grads = jax.grad(total)(free)
    return float(value), {k: float(v) for k, v in grads.items()}


def assert_finite_grads(value, grads, names):
    assert math.isfinite(value)
    assert set(grads) == set(names)
    bad = {k: v for k, v in grads.items() if not math.isfinite(v)}
    assert not bad, f"non-finite gradients: {bad}"


def flat_radius(x, y, params):
    """Midplane radius of each pixel (the flared iteration keeps it inside the
    cavity, where z = 0)."""
    r, _, _, _ = disk_frame(x, y, params["x0"], params["y0"], params["inc"],
                            params["PA"])
    return np.asarray(r)


def test_grad_finite_at_disk_centre():
    # A pixel exactly on the centre (r = 0, also r = r_cavity = 0) must not
    # give NaN gradients (sqrt, r^psi, r^q, 1/r are all singular there).
    x, y = odd_grid()
    p = dict(GRAD_BASE, r_cavity=0.0)
    assert flat_radius(x, y, p).min() == 0.0
    v0 = np.asarray(v0_model(x, y, p))
    assert np.all(np.isfinite(v0)) and v0[10, 10] == p["vlsr"]
    assert_finite_grads(*grad_sum_v0(x, y, p, GRAD_NAMES), GRAD_NAMES)
    # Same with a cavity, and with gamma > 2 self-gravity (r^(2 - gamma)
    # diverges at r = 0).
    for extra in [dict(r_cavity=0.3), dict(gamma=2.5, r_in=0.0)]:
        assert_finite_grads(*grad_sum_v0(x, y, dict(p, **extra), GRAD_NAMES),
                            GRAD_NAMES)


@pytest.mark.parametrize("psi", [1.3, 0.5])
def test_grad_finite_at_cavity_edge(psi):
    # r_cavity equal to a pixel's radius puts r - r_cavity = 0 exactly, where
    # d(r_eff^psi)/dpsi = r_eff^psi log(r_eff) would be 0 * inf.
    x, y = odd_grid()
    r_mid = flat_radius(x, y, GRAD_BASE)
    r_cav = float(r_mid[7, 12])
    p = dict(GRAD_BASE, r_cavity=r_cav, psi=psi)
    r, _, _, z = disk_frame(x, y, p["x0"], p["y0"], p["inc"], p["PA"], p["z0"], psi,
                            r_cav, p["r_taper"], p["q_taper"])
    assert float(r[7, 12]) == r_cav and float(z[7, 12]) == 0.0  # exactly on the edge
    assert_finite_grads(*grad_sum_v0(x, y, p, GRAD_NAMES), GRAD_NAMES)


def test_grad_finite_without_taper():
    # r_taper = inf (fixed) switches the taper off without NaN in the gradient.
    x, y = odd_grid()
    p = dict(GRAD_BASE, r_taper=math.inf)
    names = tuple(n for n in GRAD_NAMES if n != "r_taper")
    value, grads = grad_sum_v0(x, y, p, names)
    assert_finite_grads(value, grads, names)
    # And the value equals a very large finite taper radius.
    value_big = float(jnp.sum(v0_model(x, y, dict(p, r_taper=1e12))))
    assert value == pytest.approx(value_big, rel=1e-14)
    # d/d r_taper at inf is zero (no taper to move).
    _, g = grad_sum_v0(x, y, p, ("r_taper",))
    assert g["r_taper"] == 0.0


@pytest.mark.parametrize("offset", [1e-9, 1e-4, -1e-9])
def test_grad_finite_psi_below_one_near_cavity(offset):
    # psi < 1: d(r_eff^psi)/dr = psi r_eff^(psi - 1) is large but finite for
    # pixels just outside the cavity.
    x, y = odd_grid()
    r_mid = flat_radius(x, y, GRAD_BASE)
    p = dict(GRAD_BASE, psi=0.4, r_cavity=float(r_mid[7, 12]) - offset)
    assert_finite_grads(*grad_sum_v0(x, y, p, GRAD_NAMES), GRAD_NAMES)


def test_grad_finite_flat_disk():
    # Flat disk (z0=None), with the centre pixel, radial flow and self-gravity.
    x, y = odd_grid()
    p = dict(GRAD_BASE, z0=None)
    names = ("x0", "y0", "inc", "PA", "mstar", "vlsr", "vr_100", "vr_q", "mdisk")
    value, grads = grad_sum_v0(x, y, p, names)
    assert_finite_grads(value, grads, names)
    assert grads["vlsr"] == pytest.approx(x.size)  # d sum(v0) / d vlsr = npix
    # Power-law rotation as well (which replaces the self-gravity term: the
    # model refuses the two together).
    p = dict(p, vp_100=3000.0, vp_q=-0.5, mdisk=None)
    names = ("inc", "PA", "vp_100", "vp_q", "x0")
    assert_finite_grads(*grad_sum_v0(x, y, p, names), names)


def test_grad_matches_finite_difference():
    # The gradient is the true derivative (central differences, smooth point).
    x, y = sky_grid(15, 2.0)
    p = dict(GRAD_BASE, x0=0.013, y0=-0.021)
    names = ("inc", "PA", "z0", "psi", "r_taper", "mdisk")
    _, grads = grad_sum_v0(x, y, p, names)
    total = jax.jit(lambda q: jnp.sum(v0_model(x, y, q)))
    for name in names:
        h = 1e-6 * max(1.0, abs(p[name]))
        up = float(total(dict(p, **{name: p[name] + h})))
        dn = float(total(dict(p, **{name: p[name] - h})))
        assert grads[name] == pytest.approx((up - dn) / (2 * h), rel=1e-5, abs=1e-3), name


# --------------------------------------------------------------------------
# jit and vmap.
# --------------------------------------------------------------------------

def test_jit_and_vmap():
    # The model is a pure function: jit and vmap give the same numbers.
    x, y = sky_grid(20)
    p = dict(FLARED, vr_100=40.0, vr_q=-0.2, mdisk=0.05)
    eager = np.asarray(v0_model(x, y, p))
    jitted = np.asarray(jax.jit(lambda q: v0_model(x, y, q))(p))
    np.testing.assert_allclose(jitted, eager, rtol=1e-13)

    masses = jnp.array([0.5, 1.0, 2.0, 3.3])

    def model_for(m):
        return v0_model(x, y, dict(p, mstar=m))

    batched = np.asarray(jax.vmap(model_for)(masses))
    looped = np.stack([np.asarray(model_for(float(m))) for m in masses])
    assert batched.shape == (4,) + x.shape
    np.testing.assert_allclose(batched, looped, rtol=1e-13)


def test_a_new_velocity_term_is_never_skipped_by_the_fast_path(monkeypatch):
    # The fast path for plain Keplerian rotation is chosen from the parameter
    # table: a velocity term added to the table and set by the user is either
    # evaluated or refused by name, never silently ignored.
    from eddy_widgets.parameters import PARAMETERS, Parameter

    monkeypatch.setitem(PARAMETERS, "vz_test", Parameter(
        "vz_test", "m/s", "v_z", None, ("flat", (-100.0, 100.0)), "velocity",
        "a vertical flow added by a developer"))
    x, y = np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-2, 2, 9))
    plain = v0_model(x, y, FLAT)
    np.testing.assert_allclose(v0_model(x, y, dict(FLAT, vz_test=None)), plain)
    with pytest.raises(NotImplementedError, match="vz_test"):
        v0_model(x, y, dict(FLAT, vz_test=50.0))


def test_one_combination_rule_for_the_model_and_the_fit():
    # The model refuses what fit_map's set-up refuses, with the same words.
    from eddy_widgets.inference.spec import FitSpec

    x, y = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-2, 2, 5))
    both = dict(FLAT, vp_100=2500.0, vp_q=-0.4, mdisk=0.1)
    with pytest.raises(ValueError, match="'mdisk' adds self-gravity") as model_error:
        v0_model(x, y, both)
    with pytest.raises(ValueError) as fit_error:
        FitSpec.parse(both).check_model()
    assert str(model_error.value) == str(fit_error.value)
