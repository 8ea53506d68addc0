"""Diagnostics that fit the sampler, and one verdict per fit in words.

- emcee's walkers are not independent chains (every move uses the others), so
  split R-hat over walkers is not a valid diagnostic. We use the integrated
  autocorrelation time ``tau`` of each parameter (emcee's own estimator,
  ``emcee.autocorr.integrated_time``): ``ESS = nwalkers * nsteps / tau``, and
  emcee's guidance on chain length and burn-in.
- NUTS chains are independent: rank-normalised split R-hat and bulk / tail
  ESS (ArviZ), divergent transitions after warmup, and draws that hit
  ``max_tree_depth``.
- For every fit: the reduced chi-squared over the fitted pixels and what the
  optimiser did with the start.

Every threshold is in :data:`THRESHOLDS` with where it comes from; the README
has the same table.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

#: Every number the verdict uses, and its source.
THRESHOLDS = {
    "emcee_min_chain_taus": (50, "emcee docs (autocorrelation tutorial): a chain "
                                 "of at least ~50 tau gives a trustworthy tau"),
    "emcee_min_burnin_taus": (3, "emcee docs: discard a burn-in of a few tau"),
    "emcee_min_acceptance": (0.1, "Foreman-Mackey et al. 2013 (emcee paper) advise "
                                  "0.2-0.5; below 0.1 the walkers barely move"),
    "nuts_max_rhat": (1.01, "Vehtari et al. 2021 (rank-normalised R-hat), as ArviZ"),
    "nuts_min_ess_per_chain": (100, "Vehtari et al. 2021: bulk and tail ESS above "
                                    "100 per chain"),
    "nuts_max_divergences": (0, "a divergence after warmup is where the sampler "
                                "could not follow the posterior (Betancourt "
                                "2017): a warning, as in Stan and ArviZ, not a "
                                "failed convergence check"),
    "nuts_max_treedepth_fraction": (0.01, "Stan warns on trees that hit the "
                                          "depth cap; we allow 1% of draws"),
    "reduced_chi2_range": ((0.5, 2.0), "a factor 2 in chi2 is uncertainties off "
                                       "by ~40%; chance scatter is sqrt(2/N)"),
    "chi2_chance_sigmas": (5, "reduced chi2 above 1 + 5 sqrt(2 / N) (N independent "
                              "pixels: fitted pixels / pixels per beam) is more "
                              "than noise"),
    "outlier_share": (0.25, "when the worst 1% of pixels carry 25% of chi2 or more, "
                            "outliers drive it (Gaussian noise: ~8%)"),
    "robust_chi2_ratio": (2.0, "chi2 more than twice its robust value (from the "
                               "median |residual|) means outliers, not a wrong "
                               "noise level (Gaussian noise: ratio ~1)"),
    "correlated_pixels": (1.5, "residuals whose correlation sums to 1.5 pixels "
                               "or more (measured at lags of 1-3 pixels) make the "
                               "widths of an independent-pixel fit ~sqrt(1.5) = "
                               "1.2x too narrow or worse"),
    "bound_widths": (0.75, "a median within 0.75 of the 16-84% width (~1.5 sigma) "
                           "of a flat prior bound is piled against it (a posterior "
                           "cut by the bound has its median at ~0.56 widths)"),
    "min_draws": (20, "fewer post-warmup draws per chain cannot be diagnosed"),
}


def threshold(name: str):
    return THRESHOLDS[name][0]


# ----------------------------------------------------------------------------
# Angles
# ----------------------------------------------------------------------------

#: Parameters that are angles on a circle [deg] (summarised circularly).
CIRCULAR = ("PA",)


def unwrap_near_mean(x, period: float = 360.0) -> np.ndarray:
    """Angles ``x`` [deg] moved by whole turns to lie within half a turn of
    their circular mean, so that percentiles and autocorrelations of a
    posterior that straddles 0/360 are right."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return x
    rad = np.radians(x)
    centre = math.degrees(math.atan2(np.mean(np.sin(rad)), np.mean(np.cos(rad))))
    return centre + (x - centre + 0.5 * period) % period - 0.5 * period


def circular_percentiles(x, q, period: float = 360.0) -> np.ndarray:
    """Percentiles of angles: the median wrapped into ``[0, period)``, the
    other percentiles at the same offsets from it (so p16 < p50 < p84 always,
    and p16 may be negative or p84 above 360)."""
    unwrapped = unwrap_near_mean(x, period)
    values = np.percentile(unwrapped, q)
    median = np.percentile(unwrapped, 50)
    return values - median + median % period


def sample_medians(samples, names) -> np.ndarray:
    """Median of each column of ``samples`` ``(n, ndim)``, angles (PA) on
    the circle (wrapped into [0, 360))."""
    samples = np.atleast_2d(np.asarray(samples, dtype=float))
    return np.array([circular_percentiles(samples[:, i], [50])[0] if name in CIRCULAR
                     else np.median(samples[:, i]) for i, name in enumerate(names)])


# ----------------------------------------------------------------------------
# Chain diagnostics
# ----------------------------------------------------------------------------


def integrated_time(x) -> float:
    """emcee's integrated autocorrelation time of ``x`` ``(walkers, steps)``
    in steps (``quiet=True``: the verdict says when the chain is short)."""
    import emcee

    logger = logging.getLogger("emcee.autocorr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = emcee.autocorr.integrated_time(np.asarray(x).T[:, :, None],
                                                 quiet=True)
        return float(tau[0])
    finally:
        logger.setLevel(level)


def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz

    # Its shape checks log to this logger; our inputs are checked here.
    logging.getLogger("arviz").setLevel(logging.ERROR)
    return arviz


def nan_diagnostics() -> dict:
    """Every per-parameter diagnostic, NaN (too few draws to say)."""
    return {k: math.nan for k in ("tau", "n_tau", "ess", "ess_bulk", "ess_tail",
                                  "r_hat")}


def chain_diagnostics(chains, names, backend) -> dict:
    """Per-parameter diagnostics of post-warmup ``chains`` ``(nchains, n, ndim)``
    by ``backend`` (a :class:`~eddy_widgets.inference.backends.Backend`).

    An ensemble (emcee, zeus): ``tau`` [steps], ``n_tau`` (chain length in
    tau), ``ess`` (``nwalkers * n / tau``); ``r_hat``, ``ess_tail`` are NaN
    (not valid for walkers). Independent chains (NUTS): ``r_hat``
    (rank-normalised split R-hat), ``ess`` (= bulk), ``ess_bulk``,
    ``ess_tail`` from ArviZ; ``tau`` is ``n * nchains / ess``. Everything is
    NaN when there are too few draws to say.
    """
    chains = np.asarray(chains, dtype=float)
    n = chains.shape[1]
    out = {}
    for i, name in enumerate(names):
        x = chains[:, :, i]
        if name in CIRCULAR:
            x = unwrap_near_mean(x.ravel()).reshape(x.shape)
        d = nan_diagnostics()
        if n >= 4 and np.ptp(x) > 0:
            d.update(backend.parameter_diagnostics(x))
        out[name] = d
    return out


# ----------------------------------------------------------------------------
# The verdict
# ----------------------------------------------------------------------------


def worst(diag: dict, key: str, largest: bool):
    """``(value, name)`` of the largest (or smallest) finite ``diag[name][key]``."""
    values = [(d[key], name) for name, d in diag.items() if math.isfinite(d[key])]
    if not values:
        return math.nan, None
    return max(values) if largest else min(values)


def verdict(result, diag: dict | None = None) -> tuple[bool, list[str]]:
    """``(converged, warnings)`` of a :class:`FitResult`.

    ``converged`` is True when the chains pass every convergence check of
    their sampler; ``warnings`` lists every problem found, each a sentence
    that says what to do: first what makes the fit itself questionable (a
    posterior piled against a prior bound, the optimiser, the reduced
    chi-squared and the residuals), then convergence, then an unfinished run.
    A good fit has none.
    """
    convergence, efficiency, unsettled = _convergence_notes(result, diag)
    optimizer = _optimizer_notes(result)
    notes = optimizer + _bound_notes(result)
    notes += _quality_notes(result, judged=not (unsettled or optimizer))
    notes += convergence + efficiency
    if result.stopped and convergence:
        # A stopped run whose chains pass every check is usable as it is.
        done, planned = result.n_draws("sampling"), result.n_samples_target
        notes.append(f"the run was stopped at {result.n_draws('warmup')} of "
                     f"{result.n_warmup_target} warmup and {done} of {planned} "
                     f"post-warmup draws: continue it (cube.continue_fit(), or "
                     f"Continue in the dashboard) before trusting it.")
    return not convergence, notes


def headline(converged: bool, warnings_: list[str]) -> str:
    """The verdict's first line."""
    if converged and not warnings_:
        return "Verdict: converged; no warnings"
    if converged:
        return ("Verdict: the chains converged, but the fit is questionable: read "
                "the warnings below")
    return "Verdict: NOT converged"


def _convergence_notes(result, diag) -> tuple[list[str], list[str], bool]:
    """Sentences for failed convergence checks; for an efficiency problem
    (e.g. NUTS trees at the depth cap, divergences) that is said but not
    counted; and whether the chains are still far from settled, so that the
    posterior median is not yet a fit to judge by chi2. Too few draws is
    judged here; the rest by the run's backend
    (``Backend.convergence_notes``)."""
    diag = result.diagnostics() if diag is None else diag
    n = result.n_draws("sampling")
    if n < threshold("min_draws"):
        counts = result.backend_spec.counts
        return [f"only {n} post-warmup draws per chain: too few to judge "
                f"convergence; run with {counts['nsteps']} >= "
                f"{max(10 * threshold('min_draws'), 200)}."], [], True
    return result.backend_spec.convergence_notes(result, diag)


def _bound_notes(result) -> list[str]:
    """A posterior piled against a flat prior bound: the data want a value at
    or beyond it, so median +- width is not a measurement."""
    if result.n_draws("sampling") < threshold("min_draws"):
        return []
    priors = result.settings.get("priors") or {}
    p16, p50, p84 = result.percentiles()
    notes = []
    for i, name in enumerate(result.names):
        args, kind = priors.get(name, (None, None))
        if kind != "flat":
            continue
        width = max(p84[i] - p16[i], 0.0)
        hint = (", or start within 180 deg of the answer (the PA bound is at "
                "+-360)" if name in CIRCULAR else "")
        for bound, side in ((args[0], "lower"), (args[1], "upper")):
            if not math.isfinite(bound):
                continue
            if abs(p50[i] - bound) <= width * threshold("bound_widths"):
                notes.append(
                    f"{name} is piled against the {side} bound of its flat prior "
                    f"({bound:g}; median {p50[i]:.6g}): the data want a value at or "
                    f"beyond it, so median +- width is not a measurement. If the "
                    f"bound is not physical, widen it (set_prior('{name}', ...)) and "
                    f"fit again{hint}; if it is, quote a one-sided limit.")
    return notes


def _optimizer_notes(result) -> list[str]:
    opt = result.settings.get("optimizer") or {}
    if not opt:
        return []
    if not opt.get("moved", True) and not opt.get("at_optimum", False):
        return ["the optimiser left the start unchanged "
                f"({opt.get('message', '')}) although the start is not an optimum: "
                "the chains start from p0 as given; give a p0 closer to the answer "
                "and check the priors, or run a long burn-in and check the trace "
                "plot."]
    if not opt.get("success", True):
        return [f"the optimiser did not converge ({opt.get('message', '')}, "
                f"{opt.get('nit', '?')} iterations): the chains start from its last "
                f"point; give a better p0 or a longer burn-in, and check the trace "
                f"plot."]
    return []


def _quality_notes(result, judged: bool = True) -> list[str]:
    """The reduced chi-squared and what it says; ``judged=False`` when the
    chains have not converged or the optimiser failed (then a chi2 far from
    1 says nothing yet about the map or its uncertainties)."""
    quality = result.settings.get("fit_quality") or {}
    chi2 = quality.get("reduced_chi2")
    if chi2 is None or not math.isfinite(chi2):
        return []
    lo, hi = threshold("reduced_chi2_range")
    npix = quality.get("npix")
    noise = ((result.settings.get("params") or {}).get("mask") or {}).get(
        "noise", "independent")
    corr = quality.get("correlated_pixels") or 1.0
    correlated = corr >= threshold("correlated_pixels")
    if noise == "correlated":
        return _correlated_noise_notes(result, quality)
    if not judged and not lo <= chi2 <= hi:
        return [f"reduced chi2 = {chi2:.3g} over {npix} fitted pixels is far from 1, "
                f"but the chains are far from settled or started from a failed "
                f"optimisation: fix that first, then judge the fit by chi2 and the "
                f"residual map."]
    # Noise alone scatters chi2 by sqrt(2 / N) with N independent pixels
    # (pixels within one beam are not independent).
    n_eff = max(quality.get("independent_pixels") or npix or 1, 1)
    chance = math.sqrt(2.0 / n_eff)
    outliers = quality.get("outlier_share") or 0.0
    robust = quality.get("robust_reduced_chi2", chi2)
    head = f"reduced chi2 = {chi2:.3g} over {npix} fitted pixels"
    if chi2 > hi and (outliers >= threshold("outlier_share")
                      or robust < chi2 / threshold("robust_chi2_ratio")):
        return [f"{head}, but {robust:.3g} for the bulk of the pixels (from their "
                f"median residual), and the worst 1% carry {100 * outliers:.0f}% of "
                f"it: many pixels lie far from any model of this kind (noise outside "
                f"the disk, unclipped channels, a bad uncertainty, another "
                f"component). The parameters are biased, not just too narrow: mask "
                f"those pixels (a smaller r_max, a clipped map, a user mask) and fit "
                f"again before using any parameter. If the residual map shows them "
                f"as one coherent region rather than scattered pixels, the fit took "
                f"a wrong mode instead (PA off by 180 deg, a nearly edge-on disk's "
                f"surface on the other side, a wrong vlsr): start from a better p0 "
                f"or narrower priors rather than masking."]
    if chi2 > hi:
        return [f"{head} (want {lo}-{hi}): the model does not describe the map or "
                f"the uncertainties are underestimated (by ~{math.sqrt(chi2):.2g}x); "
                f"look at the residual map, fit a smaller r_max or a clipped map, or "
                f"check the uncertainty map. If the uncertainties are the cause, the "
                f"posterior widths are too narrow by ~{math.sqrt(chi2):.2g}x."]
    if chi2 > 1.0 + threshold("chi2_chance_sigmas") * chance:
        return [f"{head} is more than noise allows (1 +- {chance:.2g}): the model "
                f"misses part of the velocity field (look for rings, spirals or arcs "
                f"in the residual map) or the uncertainties are "
                f"~{100 * (math.sqrt(chi2) - 1):.0f}% too small; the parameters may "
                f"be biased by more than their widths."]
    notes = []
    if correlated:
        # Correlated residuals: whatever chi2 says of dv0, the widths of an
        # independent fit scale by sqrt(chi2 x correlated pixels).
        factor = math.sqrt(chi2 * corr)
        notes.append(
            f"neighbouring pixels are correlated (the residuals' correlation sums "
            f"to ~{corr:.1f} pixels), so they are not independent as this fit "
            f"assumes"
            + (f"; with reduced chi2 = {chi2:.2g} the widths are ~{factor:.2g}x too "
               f"small" if factor > 1.1 else
               f"; with reduced chi2 = {chi2:.2g} the widths are ~{factor:.2g}x the "
               f"right ones only by chance")
            + ": fit with noise='correlated' (which also fits the noise scale) or "
              "downsample='beam'; do not shrink the uncertainty map.")
    elif chi2 < lo:
        notes.append(f"{head} (want {lo}-{hi}): the uncertainties are overestimated "
                     f"(by ~{1 / math.sqrt(chi2):.2g}x), so the posterior is too wide; "
                     f"check the uncertainty map.")
    return notes


def _correlated_noise_notes(result, quality) -> list[str]:
    """Under ``noise='correlated'`` the fitted noise scale absorbs a wrong
    dv0 level, so chi2 says nothing of the widths; outliers still bias."""
    outliers = quality.get("outlier_share") or 0.0
    if outliers >= threshold("outlier_share"):
        return [f"the worst 1% of the fitted pixels carry {100 * outliers:.0f}% of "
                f"chi2: many pixels lie far from any model of this kind; mask them "
                f"(a smaller r_max, a larger noise_clip cut, a user mask) and fit "
                f"again before using any parameter."]
    return []
