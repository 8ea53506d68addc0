"""astro-eddy's ``rotationmap`` calling convention over our data, model and
inference layers: ``rotationmap(path, FOV, uncertainty, downsample, fill,
force_center)``, its attributes, ``set_prior``, ``fit_map``,
``evaluate_models``, ``disk_coords`` and ``get_mask``.

Scripts written for astro-eddy move over by changing the import::

    from eddy_widgets import rotationmap

``docs/astro_eddy_compatibility.md`` lists every method and attribute of
astro-eddy 3.2's ``rotationmap`` and where each lives here.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..data import read_rotation_map
from ..inference.backends import (
    COUNT_ARGS,
    REFUSED,
    check_count_values,
    check_counts,
    check_niter,
    get_backend,
    split_options,
)
from ..inference.diagnostics import sample_medians
from ..inference.interrupt import deferred_interrupt
from ..inference.noise import noise_sentence
from ..inference.optimize import find_map, optimizer_options
from ..inference.posterior import (
    Posterior,
    check_defined,
    estimate_noise,
    fit_mask,
    unusable_error_pixels,
)
from ..inference.priors import Prior, PriorError, default_priors
from ..inference.progress import ProgressBar
from ..inference.result import FitResult
from ..inference.run import FitRun, check_start, unbounded_prior_message
from ..inference.spec import FitInputError, FitSpec, as_p0, with_noise
from ..parameters import PARAMETERS
from .after_fit import AfterFitMethods
from .figures import FigureMethods
from .map_methods import MapMethods, choices
from .returns import RETURNS, fit_map_returns, with_fit_map_defaults

PLOTS = ("mask", "walkers", "corner", "bestfit", "residual", "none")


class rotationmap(MapMethods, AfterFitMethods, FigureMethods):  # noqa: N801 - astro-eddy's name
    """A rotation map (``*_v0.fits``) and its uncertainty, ready to fit.

    Args:
        path: the v0 map.
        FOV: side of the square field to keep [arcsec].
        uncertainty: its uncertainty map; by default bettermoments' partner
            file (``X_v0.fits`` -> ``X_dv0.fits``), else a stated fallback.
        downsample: keep every N-th pixel (int), or ``'beam'``.
        fill: replace NaN pixels of the map with this value (file's unit);
            they are never fitted.
        force_center: axes as pixel offsets from the array centre (for a
            header without a pixel grid).
        peak: bettermoments' peak map ``X_Fnu.fits`` (with ``X_dFnu.fits``
            beside it) for the line's peak S/N, which ``noise='correlated'``
            clips on; by default the pair beside the map, if there;
            ``False``: none.

    Attributes (astro-eddy's names and units):
        data, error: maps in m/s (NaN / 0 where unknown); assignable.
        mask: pixels with finite data.
        ivar: inverse variance [s^2 m^-2] of the pixels the last fit used (0
            elsewhere); before a fit, of every pixel with data and error > 0.
        xaxis, yaxis: offsets from the image centre [arcsec].
        nxpix, nypix, dpix, FOV, extent: grid size, pixel size [arcsec], field
            of view and imshow extent [arcsec]; ``extent_au(dist)`` in au.
        bmaj, bmin, bpa, beam: beam [arcsec, arcsec, deg]; ``beamarea_arcsec``,
            ``beamarea_str``, ``pix_per_beam``, ``beams_per_pix``.
        vlsr, vlsr_kms: median of the data [m/s], [km/s].
        header, path, fname, velocity_unit: the file.
        priors: prior of every parameter (see :meth:`set_prior`).
        last_run: the :class:`~eddy_widgets.inference.run.FitRun` of the last
            fit (continue it with :meth:`continue_fit`).
        figures: the figures of the last ``fit_map`` by name.
    """

    def __init__(self, path, FOV=None, uncertainty=None, downsample=None, fill=None,
                 force_center=False, peak=None):
        self.map = read_rotation_map(path, uncertainty=uncertainty, FOV=FOV,
                                     downsample=downsample, fill=fill,
                                     force_center=force_center, peak=peak)
        self.priors: dict[str, Prior] = default_priors()
        self.last_run: FitRun | None = None
        self.figures: dict = {}
        self._fit_mask: np.ndarray | None = None

    # -- Priors ------------------------------------------------------------------

    def set_prior(self, param: str, args, type: str = "flat") -> None:  # noqa: A002
        """Set the prior of ``param``: ``'flat'`` with ``[low, high]`` or
        ``'gaussian'`` with ``[mean, sigma]``. Affects this map only."""
        if param not in PARAMETERS:
            raise PriorError(f"Unknown parameter '{param}'; known: "
                             f"{', '.join(PARAMETERS)}.")
        self.priors[param] = Prior.from_args(args, type, param)

    def print_default_prior(self, param: str) -> None:
        print(f"`{param}` has a {Prior.default(param).describe()} prior.")

    # -- Fitting -----------------------------------------------------------------

    def posterior(self, params: dict, theta_mask, r_min=None, r_max=None,
                  priors: dict | None = None) -> Posterior:
        """The :class:`Posterior` for ``params``, masked at ``theta_mask``,
        with this map's priors (``set_prior``) or, for the names it gives,
        ``priors`` (``{name: Prior}``; this map's are left as they are)."""
        spec = self._spec(params, theta_mask, r_min, r_max)
        return Posterior(self.map, spec, self._priors_with(priors), theta_mask)

    @staticmethod
    def _spec(params: dict, p0, r_min=None, r_max=None) -> FitSpec:
        """``params`` (with ``fit_map``'s ``r_min`` / ``r_max`` over its own)
        parsed and checked: the one parse of a fit's set-up."""
        params = dict(params)
        if r_min is not None:
            params["r_min"] = r_min
        if r_max is not None:
            params["r_max"] = r_max
        return FitSpec.parse(params, p0)

    def _priors_with(self, priors: dict | None) -> dict:
        """This map's priors with ``priors`` over them, as a new dict."""
        return dict(self.priors) if not priors else {**self.priors, **priors}

    def prepare_fit(self, p0, params, r_min=None, r_max=None, optimize=True,
                    nwalkers=None, nburnin=300, nsteps=100, mcmc="emcee",
                    mcmc_kwargs=None, verbose=True, warn=True, checkpoint=None,
                    checkpoint_interval: float = 60.0, optimize_kwargs=None,
                    priors: dict | None = None, spec: FitSpec | None = None,
                    noise: str | None = None) -> FitRun:
        """Validate the set-up, optimise the start and build a :class:`FitRun`
        (not yet run). ``fit_map`` runs it; the widgets run it in a thread,
        with their own ``priors`` (``{name: Prior}``, over this map's for
        this fit only: the map's own are never changed).

        Advice for the run (e.g. an unbounded prior under NUTS) goes to
        ``run.messages`` and, with ``warn=True``, to ``warnings.warn``. With
        ``checkpoint`` (a path) the run writes its result there every
        ``checkpoint_interval`` seconds and when it ends. ``optimize_kwargs``
        and ``noise`` as in :meth:`fit_map`.
        """
        backend = get_backend(mcmc)
        # What can be checked without the map, before any optimisation or
        # compilation: options, p0, params and the counts.
        params, p0 = with_noise(params, p0, noise)
        if spec is None:   # fit_map passes the set-up it has parsed
            spec = self._spec(params, p0, r_min, r_max)
        split_options(backend, mcmc_kwargs, spec.ndim)
        options = optimizer_options(optimize_kwargs)
        mcmc_kwargs = dict(mcmc_kwargs or {})
        spec.require_free()
        p0 = as_p0(p0)
        nwalkers, nburnin, nsteps = check_counts(backend, spec.ndim, nwalkers, nburnin,
                                                 nsteps)
        priors = self._priors_with(priors)
        post = Posterior(self.map, spec, priors, p0)
        check_start(post, p0)
        check_defined(post, p0)
        messages = []
        unusable = unusable_error_pixels(self.map, spec, p0)
        if unusable:
            where = os.path.basename(self.map.uncertainty_path or "") or \
                "the uncertainty map"
            messages.append(
                f"{unusable} pixel{'s' if unusable > 1 else ''} of the fitted region "
                f"{'have' if unusable > 1 else 'has'} a v0 but no usable uncertainty "
                f"(dv0 = 0 or NaN in {where}) and {'are' if unusable > 1 else 'is'} "
                f"left out of the fit.")
            if warn:
                warnings.warn(messages[-1], UserWarning, stacklevel=2)
        if backend.unconstrained:
            message = unbounded_prior_message(post)
            if message:
                messages.append(message)
                if warn:
                    warnings.warn(message, UserWarning, stacklevel=2)
        if verbose:
            print("Assuming:\n\tp0 = [%s]." % ", ".join(post.names))
        theta = p0
        optimizer = None
        if optimize:
            estimate = find_map(post, p0, options=options)
            theta = estimate.theta
            optimizer = estimate.outcome(p0)
            if verbose:
                _print_optimizer(estimate, optimizer, theta)
            # The sampler's mask is made at the optimised start (astro-eddy's).
            post = Posterior(self.map, spec, priors, theta)
        noise_info = None
        if spec.noise == "correlated":
            # The kernel from the residuals at the start, then the start
            # optimised again under it (the noise scale moves with it).
            spec, noise_info = estimate_noise(post, theta)
            post = Posterior(self.map, spec, priors, theta)
            if optimize:
                estimate = find_map(post, theta, options=options)
                theta = estimate.theta
                # The run's posterior at its own start, which is what a saved
                # run is rebuilt at: its mask follows the start's geometry.
                post = Posterior(self.map, spec, priors, theta)
            if verbose:
                print(noise_sentence(noise_info))
            if not optimize and noise_info["estimated"]:
                messages.append(
                    "The noise kernel was estimated from the residuals at p0 "
                    "(optimize=False): a start that misfits the map makes them "
                    "look correlated over wider scales than the noise is. Fit "
                    "with optimize=True, or fix noise_nugget and noise_width.")
                if warn:
                    warnings.warn(messages[-1], UserWarning, stacklevel=2)
        counts = {"nwalkers": nwalkers, "nburnin": nburnin, "nsteps": nsteps}
        counts = {k: backend.count_defaults[k] if v is None else int(v)
                  for k, v in counts.items()}
        settings = {"params": post.spec.to_json(), "p0": p0.tolist(),
                    "priors": {n: list(p.as_args()) for n, p in
                               zip(post.names, post.priors)},
                    "r_min": r_min, "r_max": r_max,
                    "user_mask": post.spec.mask.get("user_mask"),
                    "optimize": bool(optimize), "optimizer": optimizer,
                    "counts": counts}
        if noise_info is not None:
            settings["noise"] = noise_info
        run = FitRun(post, theta, backend.name, counts["nwalkers"], counts["nburnin"],
                     counts["nsteps"], mcmc_kwargs, settings, checkpoint=checkpoint,
                     checkpoint_interval=checkpoint_interval)
        if warn:   # the run's own notes (a start moved inside its prior)
            for message in run.messages:
                warnings.warn(message, UserWarning, stacklevel=2)
        run.messages[:0] = messages
        self._fit_mask = post.mask
        return run

    def fit_map(self, p0, params, r_min=None, r_max=None, optimize=True,
                nwalkers=None, nburnin=300, nsteps=100, scatter=1e-3, plots=None,
                returns=None, pool=None, mcmc="emcee", mcmc_kwargs=None, niter=1,
                optimize_kwargs=None, callbacks=(), checkpoint=None,
                checkpoint_interval: float = 60.0, verdict: bool = True,
                noise: str | None = None):
        """Fit the map (astro-eddy's ``fit_map``, same arguments in the same
        order).

        Args:
            p0: start values of the free parameters.
            params: ``{name: value}``; an int is an index into ``p0`` (free),
                a float is fixed; mask settings (``r_min``, ``r_max``,
                ``phi_min``, ..., ``beam``) and a user surface ``z_func``
                (JAX-traceable, r [arcsec] -> z [arcsec]) may also go here.
            r_min, r_max: radial range to fit [arcsec]; as in astro-eddy,
                ``r_max`` is 10 and v0 is fitted between ``v_min`` = -10 and
                ``v_max`` = 30 km/s unless ``params`` gives them.
            optimize: find the maximum a posteriori start first (JAX gradient).
            nwalkers, nburnin, nsteps: emcee walkers, burn-in and steps; for
                ``mcmc='numpyro'`` num_chains, num_warmup, num_samples.
            scatter: relative scatter of the emcee walkers' start.
            plots: any of ``'mask'``, ``'walkers'``, ``'corner'``,
                ``'bestfit'``, ``'residual'``, or ``'none'`` (default: all but
                ``'mask'``, as astro-eddy).
            returns: any of ``'samples'``, ``'sampler'``, ``'lnprob'``,
                ``'percentiles'``, ``'dict'``, ``'model'``, ``'residual'``,
                ``'result'`` or ``'none'`` (default ``'samples'``); see
                Returns.
            pool: not supported (the walker batch is one compiled call); must
                be ``None``.
            mcmc: ``'emcee'`` (default), ``'numpyro'`` or ``'zeus'``.
            mcmc_kwargs: our options (``seed``, ``progress``; emcee:
                ``scatter``, ``moves``; numpyro: ``max_tree_depth``,
                ``chain_method``, ``dense_mass``, ``target_accept_prob``) and
                the library's own arguments (emcee: ``tune``, ``thin_by``,
                ``skip_initial_state_check``, ``blobs_dtype``; numpyro
                ``NUTS``: ``step_size``, ``adapt_step_size``, ...); an unknown
                name is an error listing the valid ones.
            niter: runs, each starting from the previous medians.
            optimize_kwargs: astro-eddy's ``{'method': 'L-BFGS-B', 'options':
                {...}}``: L-BFGS-B options such as ``maxiter``, ``ftol``,
                ``gtol``.
            callbacks: extra streaming callbacks ``f(chunk, info)``.
            checkpoint: a path: the result (and the sampler's state) is written
                there every ``checkpoint_interval`` seconds and when the run
                ends, so a killed process loses at most one interval:
                ``cube.continue_fit(result=FitResult.load(checkpoint))``.
            verdict: print the verdict after the run (``result.converged``
                and ``result.warnings`` in words).
            noise: ``'independent'`` (default, astro-eddy's: pixels
                independent) or ``'correlated'``: the pixels' noise correlated
                over the beam, its kernel estimated from the residuals at the
                optimised start and a free noise scale ``noise_scale``
                appended to the free parameters (start 1) unless ``params``
                gives it; pixels whose peak S/N (``Fnu / dFnu``, see
                ``peak``) is below ``params['noise_clip']`` (default 15) are
                left out before sampling, where the line centre jumps to
                noise spikes (:mod:`eddy_widgets.inference.noise`).

        Returns:
            The items of ``returns`` in astro-eddy's order, whatever the
            list's: ``samples``, ``sampler``, ``lnprob``, ``percentiles``,
            ``dict``, ``model``, ``residual``, then ``result`` (a single item
            alone; :mod:`eddy_widgets.facade.returns`):

            - ``samples``: ``(n, ndim)`` post-burn-in draws, flat as
              astro-eddy's sampler flattens them;
            - ``sampler``: what astro-eddy returns: emcee's or zeus's own
              ``EnsembleSampler`` holding the run, for numpyro astro-eddy's
              adapter (``chain``, ``lnprobability``, ``get_chain``);
            - ``lnprob``: ``(nsteps, nwalkers)`` post-burn-in
              log-probabilities;
            - ``percentiles``: ``(3, ndim)``, the 16th, 50th and 84th;
            - ``dict``: astro-eddy's ``params`` (all 52 keys) at the medians;
            - ``model``, ``residual``: the model at the medians and
              ``data - model`` [m/s];
            - ``result``: the :class:`FitResult` (ours).
        """
        if pool is not None:
            raise FitInputError(f"pool cannot be used: {REFUSED['emcee']['pool']}.")
        plots = choices(plots, PLOTS, ("walkers", "corner", "bestfit", "residual"),
                         "plots")
        returns = choices(returns, RETURNS, ("samples",), "returns")
        niter = check_niter(niter)
        optimizer_options(optimize_kwargs)
        mcmc_kwargs = dict(mcmc_kwargs or {})
        backend = get_backend(mcmc)
        if "scatter" in backend.options:
            mcmc_kwargs.setdefault("scatter", scatter)
        progress = split_options(backend, mcmc_kwargs)["progress"]
        mcmc_kwargs.pop("progress", None)
        # astro-eddy's fit_map fits r <= 10 arcsec, -10 <= v0 <= 30 km/s
        # unless params says otherwise.
        params = with_fit_map_defaults(params, r_max)
        # Every run's counts are checked before the first one starts.
        params, p0 = with_noise(params, p0, noise)
        spec = self._spec(params, p0, r_min, r_max)
        spec.require_free()
        for arg, value in zip(COUNT_ARGS, (nwalkers, nburnin, nsteps)):
            check_count_values(backend, arg, value, spec.ndim)
        counts = {}
        for arg, value in zip(COUNT_ARGS, (nwalkers, nburnin, nsteps)):
            values = np.atleast_1d(value) if value is not None else [None]
            counts[arg] = values
        p0 = np.atleast_1d(np.asarray(p0, dtype=float))
        # Ctrl-C is recorded from here on (the optimiser and compilation
        # included, where JAX could swallow the exception): the first one
        # stops the run before its next chunk, every draw kept.
        with deferred_interrupt():
            run, result = self._fit_iterations(
                p0, params, r_min, r_max, optimize, counts, niter, mcmc, mcmc_kwargs,
                checkpoint, checkpoint_interval, optimize_kwargs, spec, progress,
                callbacks)
        if verdict and result.n_draws("sampling"):
            print(result.verdict_text())
        self.figures = self.fit_figures(run, plots)
        return self._returns(run, returns)

    def _fit_iterations(self, p0, params, r_min, r_max, optimize, counts, niter, mcmc,
                        mcmc_kwargs, checkpoint, checkpoint_interval, optimize_kwargs,
                        spec, progress, callbacks):
        """``fit_map``'s ``niter`` runs, each from the last one's medians;
        returns the last run and its result."""
        for n in range(int(niter)):
            run = self.prepare_fit(
                p0, params, r_min, r_max, optimize if n == 0 else False,
                *(counts[a][n % len(counts[a])] for a in COUNT_ARGS),
                mcmc=mcmc, mcmc_kwargs=mcmc_kwargs, checkpoint=checkpoint,
                checkpoint_interval=checkpoint_interval,
                optimize_kwargs=optimize_kwargs, spec=spec)
            self.last_run = run
            bar = [ProgressBar()] if progress else []
            try:
                result = run.run([*bar, *callbacks])
            finally:
                for b in bar:
                    b.close()
            if result.stopped:
                print(f"Stopped after {result.n_draws('warmup')} warmup and "
                      f"{result.n_draws('sampling')} post-warmup draws; every "
                      f"draw is kept. Continue with cube.continue_fit().")
                break
            if result.n_draws("sampling"):
                p0 = result.percentiles([50])[0]
        return run, result

    def continue_fit(self, nsteps: int = 0, result: FitResult | None = None,
                     callbacks=(), progress: bool = True, checkpoint=None,
                     checkpoint_interval: float = 60.0) -> FitResult:
        """Continue the last run (or a saved ``result``, e.g. a checkpoint)
        where it stopped, then add ``nsteps`` more post-warmup draws."""
        if result is None:
            if self.last_run is None:
                raise ValueError("No run to continue: run fit_map first, or pass "
                                 "result=FitResult.load(path).")
            run = self.last_run
        else:
            run = self.resume(result, checkpoint, checkpoint_interval)
            self.last_run = run
        bar = [ProgressBar("continuing")] if progress else []
        try:
            return run.extend(nsteps, [*bar, *callbacks])
        finally:
            for b in bar:
                b.close()

    def resume(self, result: FitResult, checkpoint=None,
               checkpoint_interval: float = 60.0, priors: dict | None = None) -> FitRun:
        """Rebuild the :class:`FitRun` of a saved result on this map.

        The map (file, FOV, downsample, values), the fitted pixels and this
        map's priors (with ``priors`` over them, as in :meth:`prepare_fit`)
        must be those the result was made with: otherwise a
        :class:`~eddy_widgets.inference.run.SetupMismatchError` names every
        difference.
        """
        s = result.settings
        if s["params"].get("z_func"):
            raise FitInputError(
                f"This result was made with a user surface z_func "
                f"({s['params']['z_func']}), which cannot be stored in a file: "
                f"continue it in the session that made it (cube.continue_fit()), or "
                f"start a new fit.")
        spec = FitSpec.from_json(s["params"], s.get("user_mask"))
        post = Posterior(self.map, spec, self._priors_with(priors), s["start"])
        run = FitRun(post, s["start"], result.backend, result.nchains,
                     result.n_warmup_target, result.n_samples_target,
                     s["options"], s, result=result, checkpoint=checkpoint,
                     checkpoint_interval=checkpoint_interval)
        self._fit_mask = post.mask
        return run

    # -- Models and outputs ------------------------------------------------------

    def model_function(self, params, compiled: bool = True):
        """The model as a function of the free values: ``theta -> v0`` map
        [m/s] (the cube's shape), compiled once with JAX if ``compiled``.

        Args:
            params: ``fit_map``'s ``params`` (int indices mark the free
                parameters, in the order of ``theta``) or a
                :class:`~eddy_widgets.inference.spec.FitSpec`.
            compiled: compile the model (worth it for many evaluations, e.g.
                a slider).
        """
        spec = params if isinstance(params, FitSpec) else FitSpec.parse(dict(params))
        return self._model_function(spec, coords_only=False, profile_only=False,
                                    compiled=compiled)

    def posterior_median(self, run: FitRun, samples=None) -> np.ndarray:
        """The median of each free parameter of ``run`` (circular in PA, by
        :func:`~eddy_widgets.inference.diagnostics.sample_medians`), in the
        order of ``run.result.names``.

        Args:
            run: a :class:`~eddy_widgets.inference.run.FitRun`.
            samples: ``(n, ndim)`` values to take the median of (e.g. the
                walkers' current positions); default: the run's post-warmup
                samples, or its start ``run.theta0`` if it has none yet.
        """
        if samples is None:
            samples = run.result.samples
            if not np.size(samples):
                return np.asarray(run.theta0, dtype=float)
        return np.asarray(sample_medians(np.asarray(samples, dtype=float),
                                         run.result.names), dtype=float)

    def median_model(self, run: FitRun) -> np.ndarray:
        """The v0 model map [m/s] of ``run`` at :meth:`posterior_median`
        (what ``fit_map(returns='model')`` gives)."""
        return run.posterior.model_map(self.posterior_median(run))

    def make_plots(self, run: FitRun, plots, truths: dict | None = None) -> dict:
        """The figures of a run by name (``plots`` as ``fit_map`` takes them);
        ``truths`` (``{name: value}``) draws the true values on the walkers
        and corner plots where they are known."""
        from .. import plots as P

        figures = {}
        if "mask" in plots:
            # astro-eddy's mask figure: the data with the unfitted pixels shaded.
            figures["mask"] = self.plot_data(ivar=run.posterior.mask.astype(float),
                                             return_fig=True)
        if "walkers" in plots:
            figures["walkers"] = P.plot_walkers(run.result, truths)
        if run.result.n_draws("sampling") == 0:
            return figures
        if "corner" in plots:
            figures["corner"] = P.plot_corner(run.result, truths)
        if "bestfit" in plots or "residual" in plots:
            model = self.median_model(run)
            if "bestfit" in plots:
                figures["bestfit"] = P.plot_bestfit(self.map, model, run.posterior.mask)
            if "residual" in plots:
                figures["residual"] = P.plot_residual(self.map, model,
                                                      run.posterior.mask)
        return figures

    def _returns(self, run: FitRun, returns):
        """``fit_map``'s return value (:mod:`eddy_widgets.facade.returns`)."""
        return fit_map_returns(self, run, returns)

    def fit_mask(self, params, theta) -> np.ndarray:
        """Pixels that a fit with ``params`` at ``theta`` would use."""
        return fit_mask(self.map, FitSpec.parse(params, theta), theta)


def _print_optimizer(estimate, optimizer: dict, theta) -> None:
    """What the optimiser did, as astro-eddy prints it."""
    if not optimizer["moved"] and optimizer["at_optimum"]:
        print("The optimiser found p0 already at the optimum "
              f"({estimate.message}); starting from it.")
    elif not optimizer["moved"]:
        print(f"WARNING: the optimiser left the start unchanged "
              f"({estimate.message}); the chains start from p0 as given.")
    elif not estimate.success:
        print(f"WARNING: the optimiser did not converge "
              f"({estimate.message}); starting from its last point:")
        print("\tp0 =", ["%.2e" % t for t in theta])
    else:
        print("Optimized starting positions:")
        print("\tp0 =", ["%.2e" % t for t in theta])
