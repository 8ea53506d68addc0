"""The rotation curve: v_phi(r), v_r(r) and v_lsr (or v_z) fitted in annuli
at a fixed disk geometry (astro-eddy 3.2's ``fit_annuli``).

In each annulus the line-of-sight velocities are fitted by weighted linear
least squares with

    v0(phi) = A cos(phi) + B sin(phi) + C,
    A = v_phi sin|i|,  B = -v_r sin(i),  C = v_lsr - v_z cos(i),

the model's own projection, so a positive ``v_r`` is motion away from the
star. Weights are ``1 / error^2`` from the uncertainty map, and the
uncertainties are the covariance of the estimate (``curve_fit`` with
``absolute_sigma=True`` would give the same). Optionally each annulus is
sampled with emcee instead.

An annulus needs more pixels than the components it fits (3, or 2 without
``v_r``): with as many pixels as components the "fit" passes through every
pixel, leaves no residual and so nothing that tests the model or its
uncertainties (astro-eddy reports such annuli; here they are NaN, and
:func:`fit_annuli` warns, naming them with their pixel counts).
"""

from __future__ import annotations

from dataclasses import dataclass
import warnings

import numpy as np

from ..model.pixels import azimuth_mask
from .deprojection import DiskGeometry

#: Rows of ``velo`` and ``dvelo``, astro-eddy's order.
COMPONENTS = ("v_phi", "v_r", "v_z", "v_lsr")

#: Pixels per beam above which independent-pixel errors are flagged.
CORRELATED_PIXELS_PER_BEAM = 2.0

MCMC_DEFAULTS = {"nwalkers": 16, "nburnin": 300, "nsteps": 700, "seed": None}


@dataclass
class AnnuliFit:
    """Velocity profiles fitted in annuli.

    Attributes:
        rpnts: annulus centres [arcsec]; ``rbins``: their edges [arcsec].
        velo: ``(4, n)`` array of ``v_phi``, ``v_r``, ``v_z``, ``v_lsr``
            [m/s] (``v_z = 0`` unless ``fix_vlsr`` was given, then ``v_lsr``
            is that value); NaN where an annulus could not be fitted (no
            more pixels than fitted components, or angles that do not
            separate them: :func:`fit_annuli` warns).
        dvelo: their 1-sigma uncertainties [m/s], same shape.
        npix: pixels used in each annulus (of the last iteration).
        inc: inclination [deg].
    """

    rpnts: np.ndarray
    rbins: np.ndarray
    velo: np.ndarray
    dvelo: np.ndarray
    npix: np.ndarray
    inc: float

    def model(self, r, phi) -> np.ndarray:
        """The v0 map [m/s] of the profiles, linearly interpolated in radius
        (NaN outside the annulus centres), at disk coordinates ``r``
        [arcsec] and ``phi`` [rad]."""
        sin_i, cos_i = _trig(self.inc)
        a = self.velo[0] * abs(sin_i)
        b = -self.velo[1] * sin_i
        c = self.velo[3] - self.velo[2] * cos_i
        good = np.all(np.isfinite([a, b, c]), axis=0)
        x = self.rpnts[good]
        r = np.asarray(r, float)
        if x.size == 0:
            return np.full(r.shape, np.nan)
        inside = (r >= x.min()) & (r <= x.max())

        def at(values):
            return np.where(inside, np.interp(r, x, values[good]), np.nan)

        return at(a) * np.cos(phi) + at(b) * np.sin(phi) + at(c)


def annulus_bins(rpnts=None, rbins=None, *, bmaj: float, r_max: float):
    """Annulus centres and edges (astro-eddy's defaults: edges from half a
    beam to ``r_max`` every quarter beam).

    Returns:
        ``(rpnts, rbins)`` [arcsec].
    """
    if rpnts is None and rbins is None:
        rbins = np.arange(bmaj / 2.0, r_max, bmaj / 4.0)
    if rbins is not None:
        rbins = np.asarray(rbins, float)
        return 0.5 * (rbins[1:] + rbins[:-1]), rbins
    rpnts = np.atleast_1d(np.asarray(rpnts, float))
    if rpnts.size < 2:
        raise ValueError("Give at least two annulus centres (rpnts) or the edges "
                         "(rbins).")
    gaps = np.diff(rpnts)
    if not np.allclose(gaps, gaps[0]):
        warnings.warn("Unevenly spaced rpnts: edges are put half-way between "
                      "centres.", UserWarning, stacklevel=3)
    mid = 0.5 * (rpnts[1:] + rpnts[:-1])
    rbins = np.concatenate([[rpnts[0] - 0.5 * gaps[0]], mid,
                            [rpnts[-1] + 0.5 * gaps[-1]]])
    return rpnts, rbins


def pixels_per_beam(bmaj: float, bmin: float, dpix: float) -> float:
    """Gaussian beam area in pixels, ``pi bmaj bmin / (4 ln 2 dpix^2)``."""
    return float(np.pi * bmaj * bmin / (4.0 * np.log(2.0) * dpix ** 2))


def fit_annulus(v, dv, phi, inc: float, fit_vrad: bool = True, fix_vlsr=None,
                error_scale: float = 1.0, mcmc: dict | None = None):
    """Fit one annulus.

    Args:
        v, dv: line-of-sight velocities and their uncertainties [m/s].
        phi: polar angles [rad]; ``inc``: inclination [deg].
        fit_vrad: include ``v_r`` (else it is 0).
        fix_vlsr: report ``v_z = (fix_vlsr - C) / cos(i)`` instead of
            ``v_lsr = C`` [m/s].
        error_scale: multiply the uncertainties by this (correlated noise).
        mcmc: sample with emcee (keys of :data:`MCMC_DEFAULTS`) and report
            the median and half the 16-84 percentile range.

    Returns:
        ``(velo, dvelo)``: four values each, in :data:`COMPONENTS` order;
        NaN if the annulus cannot constrain them: no more pixels than
        fitted coefficients (an exactly determined system has no residual
        to test the fit), or angles that do not separate them (rank).
    """
    v, dv, phi = (np.asarray(a, float) for a in (v, dv, phi))
    columns = [np.cos(phi), np.sin(phi), np.ones_like(phi)] if fit_vrad else [
        np.cos(phi), np.ones_like(phi)]
    design = np.stack(columns, axis=1)
    sigma = dv * error_scale
    wdesign, wv = design / sigma[:, None], v / sigma
    nan = np.full(4, np.nan)
    if v.size <= design.shape[1] or np.linalg.matrix_rank(wdesign) < design.shape[1]:
        return nan, nan.copy()
    coef, *_ = np.linalg.lstsq(wdesign, wv, rcond=None)
    cov = np.linalg.inv(wdesign.T @ wdesign)
    draws = None if mcmc is None else _sample(wdesign, wv, coef, cov, mcmc)
    if not fit_vrad:
        # B = 0: put it back so that every row reads (A, B, C).
        coef = np.insert(coef, 1, 0.0)
        cov = np.insert(np.insert(cov, 1, 0.0, axis=0), 1, 0.0, axis=1)
        draws = None if draws is None else np.insert(draws, 1, 0.0, axis=1)
    sin_i, cos_i = _trig(inc)

    def deproject(abc):
        a, b, c = np.moveaxis(np.asarray(abc), -1, 0)
        if fix_vlsr is None:
            vz, vlsr = np.zeros_like(c), c
        else:
            vz, vlsr = (fix_vlsr - c) / cos_i, np.full_like(c, fix_vlsr)
        return np.stack([a / abs(sin_i), -b / sin_i, vz, vlsr], axis=-1)

    if draws is not None:
        p16, p50, p84 = np.percentile(deproject(draws), [16, 50, 84], axis=0)
        return p50, 0.5 * (p84 - p16)
    err_a, err_b, err_c = np.sqrt(np.diag(cov))
    if fix_vlsr is None:
        dvelo = [err_a / abs(sin_i), err_b / abs(sin_i), 0.0, err_c]
    else:
        dvelo = [err_a / abs(sin_i), err_b / abs(sin_i), err_c / abs(cos_i), 0.0]
    return deproject(coef), np.array(dvelo)


def fit_annuli(data, error, xaxis, yaxis, geometry: DiskGeometry, rbins,
               phi_min=None, phi_max=None, exclude_phi: bool = False,
               abs_phi: bool = False, mask_frame: str = "disk", user_mask=None,
               fit_vrad: bool = True, fix_vlsr=None, beam_spacing=0, niter: int = 1,
               beam: tuple[float, float] | None = None,
               assume_correlated: bool = False, MCMC: bool = False,
               mcmc_kwargs: dict | None = None, rng=None) -> AnnuliFit:
    """Fit v_phi, v_r and v_lsr in each annulus at a fixed geometry.

    Args:
        data, error: v0 map and its uncertainty [m/s] on the sky grid.
        xaxis, yaxis: sky axes [arcsec]; ``geometry``: the disk.
        rbins: annulus edges [arcsec]; a pixel belongs to each annulus with
            ``r_min <= r <= r_max`` (astro-eddy's mask).
        phi_min, phi_max: polar-angle range [deg]; ``exclude_phi`` keeps the
            outside of it, ``abs_phi`` compares ``|phi|``.
        mask_frame: ``'disk'``, or ``'sky'`` for radii and angles on the sky
            about ``(x0, y0)`` (the fit still uses disk-frame angles).
        user_mask: boolean map of pixels that may be used.
        fit_vrad, fix_vlsr: see :func:`fit_annulus`.
        beam_spacing: keep only pixels about ``beam_spacing`` beams apart in
            azimuth (random start), for independent samples; with
            ``niter > 1`` the iterations' values are averaged and their
            median uncertainty reported.
        beam: ``(bmaj, bmin)`` [arcsec], needed for ``beam_spacing`` and
            ``assume_correlated``.
        assume_correlated: the noise is correlated over the beam: multiply
            the uncertainties by ``sqrt(pixels per beam)`` (at least 1).
        MCMC: sample each annulus with emcee (``mcmc_kwargs``: keys of
            :data:`MCMC_DEFAULTS`).
        rng: numpy ``Generator`` (or seed) for the thinning.

    Returns:
        An :class:`AnnuliFit`.

    Warns:
        UserWarning: naming the annuli left NaN and their pixel counts.
    """
    data = np.asarray(data, float)
    error = np.asarray(error, float)
    rbins = np.asarray(rbins, float)
    if _trig(geometry.inc)[0] == 0.0:
        raise ValueError("fit_annuli needs an inclined disk (inc != 0): a face-on "
                         "disk has no line-of-sight rotation.")
    if beam_spacing and assume_correlated:
        raise ValueError("Choose one: beam_spacing keeps independent pixels, "
                         "assume_correlated scales the errors of all pixels.")
    if (beam_spacing or assume_correlated) and beam is None:
        raise ValueError("beam=(bmaj, bmin) is needed for beam_spacing and "
                         "assume_correlated.")
    if niter > 1 and not beam_spacing:
        warnings.warn("niter > 1 only differs between iterations with "
                      "beam_spacing > 0; running one iteration.", UserWarning,
                      stacklevel=2)
        niter = 1
    rng = np.random.default_rng(rng)
    dpix = float(np.mean(np.abs(np.diff(yaxis))))
    error_scale = 1.0
    if beam is not None:
        ppb = pixels_per_beam(beam[0], beam[1], dpix)
        if assume_correlated:
            error_scale = np.sqrt(max(ppb, 1.0))
        elif not beam_spacing and ppb > CORRELATED_PIXELS_PER_BEAM:
            warnings.warn(
                f"fit_annuli's uncertainties treat every pixel as independent, but "
                f"this map has {ppb:.1f} pixels per beam: if its noise is correlated "
                f"over the beam (any map made from interferometric data), pass "
                f"assume_correlated=True (uncertainties x {np.sqrt(ppb):.2f}) or "
                f"beam_spacing=1.", UserWarning, stacklevel=2)
    mcmc = None
    if MCMC:
        mcmc = dict(MCMC_DEFAULTS)
        unknown = set(mcmc_kwargs or {}) - set(mcmc)
        if unknown:
            raise ValueError(f"Unknown mcmc_kwargs {sorted(unknown)}: use "
                             f"{', '.join(MCMC_DEFAULTS)}.")
        mcmc.update(mcmc_kwargs or {})
    r, phi, _ = geometry.coords(xaxis, yaxis)
    r_mask, phi_mask = r, phi
    if mask_frame.lower() == "sky":
        r_mask, phi_mask, _ = geometry.sky_frame().coords(xaxis, yaxis)
    elif mask_frame.lower() != "disk":
        raise ValueError("mask_frame must be 'disk' or 'sky'.")
    keep = np.isfinite(data) & np.isfinite(error) & (error > 0.0)
    keep &= azimuth_mask(phi_mask, phi_min, phi_max, exclude_phi, abs_phi)
    if user_mask is not None:
        keep &= np.asarray(user_mask, bool)
    velo = np.full((4, rbins.size - 1), np.nan)
    dvelo = np.full_like(velo, np.nan)
    npix = np.zeros(rbins.size - 1, int)
    for k, (lo, hi) in enumerate(zip(rbins[:-1], rbins[1:])):
        inside = keep & (r_mask >= lo) & (r_mask <= hi)
        values, errors = [], []
        for _ in range(niter):
            idx = np.flatnonzero(inside)
            if beam_spacing:
                idx = _thin(idx, r.ravel(), phi.ravel(), beam_spacing * beam[0], rng)
            npix[k] = idx.size
            res = fit_annulus(data.ravel()[idx], error.ravel()[idx], phi.ravel()[idx],
                              geometry.inc, fit_vrad, fix_vlsr, error_scale, mcmc)
            values.append(res[0])
            errors.append(res[1])
        velo[:, k] = np.mean(values, axis=0)
        dvelo[:, k] = np.median(errors, axis=0)
    unfitted = np.flatnonzero(np.isnan(velo[0]))
    if unfitted.size:
        warnings.warn(unfitted_message(0.5 * (rbins[1:] + rbins[:-1]), npix, unfitted,
                                       fit_vrad, fix_vlsr), UserWarning, stacklevel=2)
    return AnnuliFit(0.5 * (rbins[1:] + rbins[:-1]), rbins, velo, dvelo, npix,
                     float(geometry.inc))


def unfitted_message(rpnts, npix, unfitted, fit_vrad: bool = True, fix_vlsr=None,
                     listed: int = 12) -> str:
    """Why the annuli ``unfitted`` (indices) are NaN, each with its radius and
    pixel count (the first ``listed`` of them)."""
    names = ["v_phi"] + (["v_r"] if fit_vrad else []) + [
        "v_lsr" if fix_vlsr is None else "v_z"]
    ncomp = len(names)
    few = [k for k in unfitted if npix[k] <= ncomp]
    rank = [k for k in unfitted if npix[k] > ncomp]

    def where(ks):
        items = [f'{rpnts[k]:.3g}" ({npix[k]} pixel{"" if npix[k] == 1 else "s"})'
                 for k in ks[:listed]]
        more = f" and {len(ks) - listed} more" if len(ks) > listed else ""
        return ", ".join(items) + more

    parts = []
    if few:
        parts.append(
            f"{len(few)} with no more pixels than the {ncomp} components fitted "
            f"({', '.join(names)}) at r = {where(few)}: {ncomp} pixels would be "
            f"solved exactly, leaving no residual to test the fit or its "
            f"uncertainties (astro-eddy reports them), fewer cannot be solved")
    if rank:
        parts.append(f"{len(rank)} whose pixels' angles do not separate the "
                     f"components at r = {where(rank)}")
    return (f"fit_annuli: {unfitted.size} of {len(rpnts)} annuli are NaN: "
            + "; ".join(parts) + ". Use wider annuli there (rbins or rpnts)"
            + (" or fit_vrad=False." if fit_vrad else "."))


def keplerian_profile(r, params: dict) -> np.ndarray:
    """Keplerian rotation with the height of the emission surface [m/s] at
    radii ``r`` [arcsec] for model parameters ``params`` (values: mstar,
    dist, z0, psi, r_cavity, r_taper, q_taper, mdisk, ...)."""
    from ..model import emission_surface, keplerian
    from ..model.rotation import complete

    p = complete(params)
    r = np.asarray(r, float)
    z = 0.0 * r if p["z0"] is None else emission_surface(
        r, p["z0"], p["psi"], p["r_cavity"], p["r_taper"], p["q_taper"])
    return np.asarray(keplerian(r, z, p["mstar"], p["dist"], p["mdisk"], p["gamma"],
                                p["r_in"], p["r_out"]))


def _thin(idx, r, phi, spacing, rng) -> np.ndarray:
    """astro-eddy's thinning: pixels in order of ``phi`` from a random
    start, keeping one every ``floor(spacing / (mean r * median dphi))``."""
    if idx.size < 2:
        return idx
    idx = idx[np.argsort(phi[idx])]
    step = spacing / (np.mean(r[idx]) * np.median(np.diff(phi[idx])))
    step = int(np.floor(step)) if np.isfinite(step) else 1
    if step <= 1:
        return idx
    return np.roll(idx, -int(rng.integers(idx.size)))[::step]


def _sample(wdesign, wv, coef, cov, options) -> np.ndarray:
    """emcee draws of the linear coefficients (flat priors)."""
    import emcee

    ndim = coef.size
    nwalkers = max(int(options["nwalkers"]), 2 * ndim + 2)
    rng = np.random.default_rng(options["seed"])

    def log_prob(theta):
        resid = wv[None, :] - theta @ wdesign.T
        return -0.5 * np.sum(resid ** 2, axis=1)

    start = rng.multivariate_normal(coef, cov, size=nwalkers)
    sampler = emcee.EnsembleSampler(nwalkers, ndim, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(rng.integers(2 ** 31)).get_state()
    sampler.run_mcmc(start, int(options["nburnin"]) + int(options["nsteps"]),
                     progress=False)
    return sampler.get_chain(discard=int(options["nburnin"]), flat=True)


def _trig(inc: float):
    inc = inc if inc < 90.0 else inc - 180.0
    return np.sin(np.radians(inc)), np.cos(np.radians(inc))
