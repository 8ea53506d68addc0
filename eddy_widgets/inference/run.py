"""A fit run: posterior + sampler + result, streamed in chunks, stoppable and
continuable. ``rotationmap.fit_map`` and the widgets' session both drive one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
import threading
import time
import warnings

import jax
import numpy as np

from .backends import get_backend, options_to_json, sampler_kwargs, split_options
from .backends.nuts import unconstrained_hessian  # noqa: F401  (public here too)
from .interrupt import deferred_interrupt, pause_point, pause_requested
from .noise import beam_metric, estimate_kernel
from .optimize import find_map
from .posterior import Posterior
from .result import FitResult
from .samplers import RunInfo, drive
from .sandwich import block_sandwich


class FitRun:
    """One MCMC run that can be driven in pieces.

    Args:
        posterior: the log-posterior (mask fixed).
        theta0: start (the optimum, or p0).
        mcmc: a backend's name (``'emcee'``, ``'numpyro'``, ``'zeus'``).
        nwalkers, nburnin, nsteps: astro-eddy's counts (numpyro: num_chains,
            num_warmup, num_samples).
        options: backend options (see :mod:`eddy_widgets.inference.backends`).
        settings: the set-up to store with the result.
        result: an existing result to continue (e.g. loaded from a file).
    """

    def __init__(self, posterior: Posterior, theta0, mcmc: str, nwalkers: int,
                 nburnin: int, nsteps: int, options: dict | None = None,
                 settings: dict | None = None, result: FitResult | None = None,
                 checkpoint=None, checkpoint_interval: float = 60.0):
        self.backend = get_backend(mcmc)
        self.options = split_options(self.backend, options)
        self.posterior = posterior
        #: Advice about the set-up, for whoever shows the run.
        self.messages: list[str] = []
        if result is not None:
            check_same_setup(result, posterior)
            self.theta0 = np.asarray(theta0, dtype=float)
        else:
            self.theta0, moved = inside_support(posterior, theta0)
            if moved:
                self.messages.append(
                    f"The start lay on the edge of the prior for "
                    f"{'; '.join(moved)}: moved inside by 1% of the posterior's "
                    f"width there (at most 0.1% of the prior's), as NUTS' space "
                    f"ends at a bound.")
        nwalkers, nburnin, nsteps = int(nwalkers), int(nburnin), int(nsteps)
        if nwalkers < 1 or nburnin < 0 or nsteps < 0:
            raise ValueError("nwalkers must be >= 1 and nburnin, nsteps >= 0.")
        state = result.sampler_state if result is not None else None
        if result is not None:
            nwalkers = result.nchains
        prefix = self.backend.state_prefix
        if state is not None and prefix:
            state = {k[len(prefix):]: v for k, v in state.items()
                     if k.startswith(prefix)} or None
        self.sampler = self.backend.make_sampler(posterior, self.theta0, nwalkers,
                                                 nburnin, self.options, state, result)
        # The libraries' own arguments passed through mcmc_kwargs.
        self.sampler.set_options(**sampler_kwargs(self.backend, self.options))
        settings = dict(settings or {})
        settings.setdefault("setup", setup_fingerprint(posterior))
        settings.update({"mcmc": self.backend.name,
                         "options": options_to_json(self.options),
                         "start": self.theta0.tolist()})
        settings.update(self.backend.run_settings(posterior))
        if result is None:
            result = FitResult(posterior.names, self.backend.name, nwalkers, settings)
            result.n_warmup_target, result.n_samples_target = nburnin, nsteps
        self.result = result
        self.info = RunInfo(self.backend.name, posterior.names, nwalkers,
                            result.n_warmup_target, result.n_samples_target,
                            result.n_draws("warmup"), result.n_draws("sampling"))
        self._stop = threading.Event()
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.checkpoint_interval = float(checkpoint_interval)
        #: Whether the last :meth:`run` wrote its result to ``checkpoint``
        #: when it ended.
        self.saved = False
        # Test-only (interrupt.pause_point): just after the optimiser and the
        # set-up, where JAX's callbacks would swallow a KeyboardInterrupt.
        pause_point("before_sampling", swallow=True)

    @property
    def complete(self) -> bool:
        return self.info.done >= self.info.total

    def request_stop(self) -> None:
        """Ask the run to stop after the chunk in progress (thread-safe)."""
        self._stop.set()

    def warm_up(self) -> None:
        """Make the chains and compile the sampler's chunk now, without a draw
        (NUTS: several seconds), so that the run's first chunk is as short as
        the others and a stop request is honoured within one chunk. Drawing
        afterwards gives the same draws as without it."""
        self.backend.warm_up(self.sampler)

    def compile_fit_quality(self) -> None:
        """Compile the program :meth:`record_fit_quality` runs (the model at
        the fitted pixels), without a draw (see :mod:`eddy_widgets.cli.warm_cache`)."""
        _model_pixels(self.posterior)(self.posterior.arrays, self.theta0)

    def run(self, callbacks=(), target_seconds: float = 0.3) -> FitResult:
        """Run (or resume) until the planned draws are made or a stop request.

        Every chunk goes to the result first, then to ``callbacks`` in order.
        With a checkpoint file, the result is written there every
        ``checkpoint_interval`` seconds and when the run ends, however it ends.

        Ctrl-C (:mod:`eddy_widgets.inference.interrupt`): the first stops the
        run after the chunk in progress (also one pressed before this call,
        under the command line's handler); a second interrupts a chunk at
        once and the sampler is rolled back to the last kept draw. From the
        moment the sampler returns until the result is saved a Ctrl-C waits:
        ``KeyboardInterrupt`` is raised once the result is on disk.
        """
        self._stop.clear()
        self.saved = False
        callbacks = list(callbacks)
        if pause_requested("chunk"):          # test-only: after a chunk is kept
            callbacks.append(lambda chunk, info: pause_point("chunk"))
        saver = None
        if self.checkpoint is not None:
            saver = Checkpoint(self, self.checkpoint, self.checkpoint_interval)
            callbacks.append(saver)
        finished = False
        with deferred_interrupt() as ctrl_c, ctrl_c.holding():
            ctrl_c.stoppable = True
            try:
                finished = drive(_Interruptible(self.sampler, ctrl_c), self.info,
                                 [self.result, *callbacks],
                                 _Stop(self._stop, ctrl_c.requested), target_seconds)
            finally:
                ctrl_c.stoppable = False
                pause_point("after_sampling")        # test-only
                self.result.stopped = not finished
                self.result.sampler_state = self._export_state()
                self.record_fit_quality()
                self.record_sandwich()
                if saver is not None:
                    saver.save()
                    self.saved = not saver.failed
        return self.result

    def record_fit_quality(self) -> None:
        """Store in ``result.settings['fit_quality']`` the reduced chi-squared
        of the posterior median over the fitted pixels, the number of
        independent pixels (fitted pixels / pixels per beam), and the share
        of chi-squared carried by the worst 1% of pixels."""
        if self.result.n_draws("sampling") == 0:
            return
        post = self.posterior
        theta = self.result.percentiles([50])[0]
        model = np.asarray(_model_pixels(post)(post.arrays,
                                               np.asarray(theta, dtype=float)))
        data = post.data
        z2 = (data.data[post.mask] - model) ** 2 / data.error[post.mask] ** 2
        chi2 = float(np.sum(z2))
        dof = max(post.npix - post.spec.ndim, 1)
        worst = np.sort(z2)[::-1][: max(1, post.npix // 100)]
        beam_pixels = np.pi * data.bmaj * data.bmin / (4 * np.log(2)) / data.dpix ** 2
        z = np.full(post.mask.shape, np.nan)
        z[post.mask] = (data.data[post.mask] - model) / data.error[post.mask]
        kernel, measured = estimate_kernel(
            z, beam_metric(data.bmaj, data.bmin, data.bpa, data.dpix))
        self.result.settings["fit_quality"] = {
            # The residuals' correlation, measured (never the header beam's).
            "correlated_pixels": kernel.correlated_pixels(),
            "neighbour_correlation": list(measured["neighbour"]),
            "chi2": chi2, "npix": post.npix, "dof": dof, "reduced_chi2": chi2 / dof,
            "independent_pixels": float(post.npix / max(beam_pixels, 1.0)),
            "outlier_share": float(worst.sum() / chi2) if chi2 > 0 else 0.0,
            # (1.4826 x median |z|)^2: chi2 per pixel as the bulk of the
            # pixels sees it, blind to a minority of outliers.
            "robust_reduced_chi2": float((1.4826 * np.median(np.sqrt(z2))) ** 2),
            "at": "posterior median"}

    def record_sandwich(self) -> None:
        """Under ``noise='correlated'``: the block sandwich adjustment
        (:mod:`eddy_widgets.inference.sandwich`) at the posterior's mode
        nearest the draws' median, in ``settings['noise']['sandwich']``
        (``{'error': ...}`` where it cannot be made; the draws then stay as
        sampled and the summary says so). ``FitResult.samples`` reads it.
        It depends on the posterior alone, not on the draws: a run continued
        (here or from its file, the same set-up) keeps the one it has."""
        noise = self.result.settings.get("noise")
        if not noise or self.result.n_draws("sampling") == 0 or \
                "omega" in (noise.get("sandwich") or {}):
            return
        start = np.median(self.result.raw_samples, axis=0)
        try:
            theta = find_map(self.posterior, start).theta
            noise["sandwich"] = block_sandwich(self.posterior, theta).to_json()
        except (ValueError, np.linalg.LinAlgError) as err:
            noise["sandwich"] = {"error": str(err)}

    def extend(self, nsteps: int, callbacks=(), target_seconds: float = 0.3) -> FitResult:
        """Add ``nsteps`` post-warmup draws to a finished (or stopped) run and
        run until all planned draws are made."""
        if nsteps < 0:
            raise ValueError("nsteps must be >= 0")
        self.info.n_samples += int(nsteps)
        self.result.n_samples_target = self.info.n_samples
        return self.run(callbacks, target_seconds)

    def _export_state(self) -> dict:
        prefix = self.backend.state_prefix
        return {f"{prefix}{k}": v for k, v in self.sampler.export_state().items()}


class _Stop:
    """The run's stop request: :meth:`FitRun.request_stop`'s or the first
    Ctrl-C's."""

    def __init__(self, *events):
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


class _Interruptible:
    """The sampler as the driver sees it: a second Ctrl-C interrupts a chunk
    at once (the driver then rolls the sampler back to the last kept draw)."""

    def __init__(self, sampler, ctrl_c):
        self._sampler, self._ctrl_c = sampler, ctrl_c

    def __getattr__(self, name):
        return getattr(self._sampler, name)

    def advance(self, k):
        with self._ctrl_c.interruptible():
            return self._sampler.advance(k)


def _model_pixels(posterior: Posterior):
    """The model at the fitted pixels as one compiled program, shared by the
    posteriors of a set-up (taking the map's arrays as an argument); run
    eagerly it would compile each operation of the model on its own. (The
    model as the gradient sees it: the same values as ``model_map``.)"""
    programs = posterior.programs
    found = getattr(programs, "model_pixels", None)
    if found is None:
        found = programs.model_pixels = jax.jit(
            lambda arrays, theta: posterior.model_pixels(theta, arrays=arrays))
    return found


class Checkpoint:
    """A streaming callback that writes the run's result (with the sampler
    state, so it can be continued exactly) to ``path`` every ``interval``
    seconds. A failed write (a full disk) is reported once and retried at the
    next interval; the run goes on."""

    def __init__(self, run: "FitRun", path, interval: float = 60.0):
        self.run = run
        self.path = Path(path)
        self.interval = float(interval)
        self.last = time.monotonic()
        self.failed = False

    def __call__(self, chunk, info) -> None:
        if time.monotonic() - self.last >= self.interval:
            self.save()

    def save(self) -> None:
        result = self.run.result
        with result._lock:
            stopped = result.stopped
            result.stopped = not self.run.complete
            result.sampler_state = self.run._export_state()
            try:
                result.save(self.path)
                self.failed = False
            except OSError as err:
                if not self.failed:
                    message = (f"Could not write the checkpoint {self.path} ({err}); "
                               f"the run goes on and will try again. Free some space "
                               f"or choose another checkpoint path.")
                    self.run.messages.append(message)
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                self.failed = True
            finally:
                result.stopped = stopped
        self.last = time.monotonic()


class SetupMismatchError(ValueError):
    """A result continued on another map or set-up than its own."""


def setup_fingerprint(posterior: Posterior) -> dict:
    """What identifies the data and set-up of a fit: the map (file name,
    shape, FOV, downsample, a hash of its values and uncertainties), the
    fitted pixels, beam convolution and the priors."""
    data = posterior.data
    digest = hashlib.sha256()
    for array in (data.data, data.error, data.xaxis, data.yaxis):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return {
        "map": Path(str(data.path)).name,
        "shape": list(data.data.shape),
        "FOV": getattr(data, "FOV", None),
        "downsample": getattr(data, "downsample", None),
        "map_sha256": digest.hexdigest(),
        "fitted_pixels": int(posterior.npix),
        "mask_sha256": hashlib.sha256(np.packbits(posterior.mask).tobytes()).hexdigest(),
        "beam": bool(posterior.beam),
        "noise": _noise_setup(posterior.spec),
        "priors": {n: p.describe() for n, p in zip(posterior.names, posterior.priors)},
    }


def _noise_setup(spec) -> str:
    """The noise model in words, with the kernel's numbers when correlated."""
    if spec.noise != "correlated":
        return "independent"
    return (f"correlated (nugget {spec.fixed.get('noise_nugget')}, width "
            f"{spec.fixed.get('noise_width')}, S/N clip "
            f"{spec.mask.get('noise_clip')} at dv0 scale "
            f"{spec.mask.get('noise_snr_scale')})")


def check_same_setup(result: FitResult, posterior: Posterior) -> None:
    """Raise :class:`SetupMismatchError` naming every difference between the
    set-up a result was made with and ``posterior``'s."""
    saved = result.settings.get("setup")
    if not saved:
        raise SetupMismatchError(
            "This result does not record the map and set-up it was made with (it "
            "was written by an older version), so continuing it cannot be checked: "
            "start a new fit with fit_map.")
    now = setup_fingerprint(posterior)
    labels = {"map": "map file", "shape": "map shape", "FOV": "FOV",
              "downsample": "downsample", "fitted_pixels": "number of fitted pixels",
              "beam": "beam convolution", "noise": "noise model"}
    saved = {"noise": "independent", **saved}    # results of earlier versions
    diffs = [f"{label}: {saved.get(key)!r} in the result, {now[key]!r} now"
             for key, label in labels.items() if saved.get(key) != now[key]]
    if saved.get("map_sha256") != now["map_sha256"] and not any(
            d.startswith(("map file", "map shape", "FOV", "downsample")) for d in diffs):
        diffs.append("map values: the pixels or uncertainties differ from the "
                     "map the result was made on")
    if (saved.get("mask_sha256") != now["mask_sha256"]
            and saved.get("fitted_pixels") == now["fitted_pixels"]):
        diffs.append("fit mask: other pixels are fitted (r_min, r_max, phi or "
                     "velocity limits, user mask)")
    for name, prior in now["priors"].items():
        was = saved.get("priors", {}).get(name)
        if was != prior:
            diffs.append(f"prior of {name}: {was} in the result, {prior} now "
                         f"(set it back with set_prior)")
    if diffs:
        raise SetupMismatchError(
            "Cannot continue this result here: it was made on another map or "
            "set-up, and continuing would mix two posteriors (" + "; ".join(diffs)
            + "). Load the map with the same file, FOV and downsample, or start a "
            "new fit.")


#: A start on a prior's bound moves inward by this share of the parameter's
#: own scale there (the posterior's width along it, from its curvature).
INWARD_STEP = 0.01


def inside_support(posterior: Posterior, theta) -> tuple[np.ndarray, list[str]]:
    """``theta`` moved strictly inside each flat prior where it lies on a
    bound (where NUTS' transformed space is infinite). The step is small
    against the parameter's own scale: 1% of the posterior's width along it
    (``1 / sqrt(-d2 log p / d theta2)``, from the gradient's change over a
    tiny step inside the bound), and never more than 0.1% of the prior's
    width; a fixed share of a wide prior (r_cavity's [0, 1000]) could move a
    start by a quarter of the disk. Returns the new values and a note per
    parameter moved (``'r_cavity 0 -> 2.1e-05'``)."""
    theta = np.array(theta, dtype=float)
    moved = []
    for i, (name, prior) in enumerate(zip(posterior.names, posterior.priors)):
        if prior.kind != "flat":
            continue
        lo, hi = prior.a, prior.b
        side = +1.0 if np.isfinite(lo) and theta[i] <= lo else \
            -1.0 if np.isfinite(hi) and theta[i] >= hi else 0.0
        if not side:
            continue
        bound = lo if side > 0 else hi
        width = hi - lo if np.isfinite(hi - lo) else max(abs(bound), 1.0)
        step = 1e-3 * width
        scale = _posterior_width(posterior, theta, i, bound, side, 1e-6 * width)
        if scale is not None:
            step = min(step, INWARD_STEP * scale)
        before = theta[i]
        theta[i] = bound + side * step
        moved.append(f"{name} {before:.4g} -> {theta[i]:.4g}")
    return theta, moved


def _posterior_width(posterior: Posterior, theta, i: int, bound: float, side: float,
                     h: float) -> float | None:
    """The posterior's width along parameter ``i`` just inside ``bound``, from
    the change of the gradient over ``h`` (``None`` where it is not curved
    down there or cannot be evaluated)."""
    try:
        points = []
        for k in (1.0, 2.0):
            t = np.array(theta, dtype=float)
            t[i] = bound + side * k * h
            points.append(float(posterior.value_and_grad(t)[1][i]))
        curvature = (points[1] - points[0]) / (side * h)
    except Exception:  # noqa: BLE001 - the prior's share is the fallback
        return None
    if not (np.isfinite(curvature) and curvature < 0.0):
        return None
    return float(1.0 / np.sqrt(-curvature))


def check_start(posterior: Posterior, theta, what: str = "p0") -> None:
    """Raise ``ValueError`` if a start value lies outside its prior."""
    for name, prior, value in zip(posterior.names, posterior.priors, theta):
        if not prior.contains(float(value)):
            args, kind = prior.as_args()
            raise ValueError(
                f"{what} value for '{name}' ({value:g}) is outside its prior "
                f"{prior.describe()}: change {what}, or widen the prior with "
                f"set_prior('{name}', [low, high], 'flat').")


def unbounded_prior_message(posterior: Posterior) -> str | None:
    """What to tell the user before a NUTS run with unbounded flat priors
    (``None`` if every prior is bounded)."""
    names = posterior.unbounded()
    if not names:
        return None
    hints = []
    for name in names:
        prior = posterior.priors[posterior.names.index(name)]
        if np.isfinite(prior.a):
            hints.append(f"set_prior('{name}', [{prior.a:g}, <finite upper bound>], "
                         f"'flat')")
        else:
            hints.append(f"set_prior('{name}', [<low>, <high>], 'flat')")
    return (f"NUTS with an unbounded flat prior on {', '.join(names)}: the sampler "
            f"works in an unbounded transformed space and trees can grow very long. "
            f"Set a finite bound larger than the physically interesting range, e.g. "
            f"{'; '.join(hints)}.")
