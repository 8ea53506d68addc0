"""zeus's ensemble slice sampler as a backend (``mcmc='zeus'``, the ``zeus``
extra: ``pip install 'eddy_widgets[zeus]'``).

zeus (Karamanis, Beutler & Peacock 2021, MNRAS 508, 3589) moves each walker
along a direction drawn from the other walkers (its differential move) by
slice sampling, and tunes the slice's scale factor ``mu`` while it runs
(Robbins-Monro, until the expansions and contractions balance). It needs no
gradients and no step size. Three traps of the library, and what this module
does about them:

- **Its random numbers come from numpy's global generator and Python's
  ``random`` module** (its differential move picks walker pairs with
  ``random.sample``): no seed argument, no generator object. Each run keeps
  its own state of both, seeded from ``mcmc_kwargs['seed']``; while the run
  draws, its states are swapped in, under a lock shared by every zeus run of
  the process (two runs in two threads never share a stream; they take
  turns), and the caller's global states are put back afterwards. The states
  are stored with the result, so a continued run draws on as an
  uninterrupted one.
- **It adapts mu while it runs**, counting the steps whose expansions and
  contractions balance inside its sampling loop, and shuffles the walkers
  with a permutation that lives there too, so a loop stopped and started
  again is not the loop that ran on. Here zeus makes one step per call of
  its loop, and its tuning rule (mu stops adapting once more than
  ``patience`` steps balanced within ``tolerance``) is kept by this module
  across calls, with mu, the count and whether tuning is on stored with the
  result: chunk sizes do not change the chain, and a run continued from its
  file equals one that ran on. (Each step shuffles a fresh order of the
  walkers: the same distribution of splits as zeus's own.)
- **It evaluates sub-ensembles of varying size**: the walkers still
  shrinking their slice. With ``vectorize=True`` they come as one batch,
  padded here to half the walkers so that one compiled program serves every
  call.

zeus's constructor also replaces the handlers of the root logger; they are
put back. Convergence as for emcee (an ensemble): the integrated
autocorrelation time, a chain of at least 50 tau after a burn-in of 3 tau.
"""

from __future__ import annotations

import inspect
import logging
import random
import threading

import numpy as np

from ..posterior import Posterior
from ..samplers import sampler_seed, scatter_start
from ..spec import FitInputError
from .base import ENSEMBLE_COUNT_DEFAULTS, ENSEMBLE_COUNTS, Backend, ChainStat
from .checks import ENSEMBLE_START, LOG_PROB, check_positive, check_scatter, is_int
from .emcee import autocorrelation_notes, ensemble_diagnostics

#: Held while a zeus run has its state in numpy's global generator.
GLOBAL_RNG_LOCK = threading.Lock()


class ZeusBackend(Backend):
    name = "zeus"
    state_entries = {"coords": ("n", "d"), "log_prob": ("n",), "mu": (), "tune": (),
                     "balanced": (), "rng_key": (624,), "rng_pos": (),
                     "rng_gauss": (2,), "py_rng_version": (), "py_rng_key": (625,),
                     "py_rng_gauss": ()}
    description = ("ensemble slice sampler (zeus; no gradients, no step size to "
                   "tune); the walkers' slices evaluated as one compiled batch")
    counts = ENSEMBLE_COUNTS
    count_defaults = ENSEMBLE_COUNT_DEFAULTS
    options = {"seed": 0, "progress": True, "scatter": 1e-3}
    library = "zeus.EnsembleSampler"
    module = "zeus"
    extra = "zeus"
    ensemble = True
    chain_stats = {
        "mu": ChainStat("zeus scale factor mu (log scale)", log=True),
        "evaluations": ChainStat("log-probability calls per walker and step"),
    }
    refused = {
        "nwalkers": "set by fit_map's nwalkers",
        "ndim": "the number of free parameters in params",
        "logprob_fn": LOG_PROB, "args": LOG_PROB, "kwargs": LOG_PROB,
        "moves": ("zeus's differential move is used: other moves cannot be stored "
                  "with a result, so a checkpoint could not rebuild the sampler"),
        "pool": ("the walkers are evaluated in one compiled, vectorised JAX call, "
                 "which a pool of processes would only slow down; leave pool out"),
        "vectorize": "always True here: the walkers are evaluated as one batch",
        "blobs_dtype": "a rotation-map posterior returns no blobs",
        "verbose": ("zeus's log lines go to the root logger; eddy_widgets' progress "
                    "bar and verdict say the same"),
        "check_walkers": ("always on: zeus needs an even number of at least 2 x ndim "
                          "walkers"),
        "start": ENSEMBLE_START, "log_prob0": ENSEMBLE_START,
        "iterations": "the run's length is nburnin + nsteps",
        "thin": "every step is kept; thin afterwards (result.get_chain(thin=...))",
        "thin_by": "every step is kept; thin afterwards (result.get_chain(thin=...))",
    }

    def native_signatures(self):
        import zeus

        return [inspect.signature(zeus.EnsembleSampler)]

    def walkers_message(self, nwalkers, ndim):
        message = super().walkers_message(nwalkers, ndim)
        if not message and nwalkers % 2:
            message = (f"zeus needs an even number of walkers (it moves two halves "
                       f"in turn); got nwalkers={nwalkers}. Pass nwalkers="
                       f"{nwalkers + 1}.")
        return message

    def check_options(self, options, ndim):
        options["scatter"] = check_scatter(options["scatter"])
        # zeus's own numbers, checked before the optimiser runs.
        for key in ("mu", "tolerance"):
            if key in options:
                options[key] = check_positive(key, options[key])
        for key in ("patience", "maxsteps", "maxiter"):
            if key in options:
                if not is_int(options[key]) or int(options[key]) < 1:
                    raise FitInputError(f"mcmc_kwargs[{key!r}] must be an int >= 1, "
                                        f"got {options[key]!r}.")
                options[key] = int(options[key])
        return options

    def make_sampler(self, posterior, theta0, nwalkers, nburnin, options, state,
                     result=None):
        return ZeusSampler(posterior, nwalkers, theta0, seed=options["seed"],
                           scatter=options["scatter"], state=state)

    def parameter_diagnostics(self, x):
        return ensemble_diagnostics(x)

    def convergence_notes(self, result, diag):
        notes, unsettled = autocorrelation_notes(result, diag)
        return notes, [], unsettled

    def astro_eddy_sampler(self, run):
        """zeus's own ``EnsembleSampler`` holding the run (astro-eddy returns
        the one it ran): ``chain`` and ``get_chain()`` ``(nsteps, nwalkers,
        ndim)``, ``get_log_prob()``, ``act``, ``ess``, ``ncall``,
        ``efficiency``, ``scale_factor``, ``summary`` are zeus's. zeus has no
        ``lnprobability`` or ``acceptance_fraction`` (nor has astro-eddy's)."""
        return filled_zeus_sampler(run)

    def astro_eddy_samples(self, result):
        """zeus flattens walker-major (``get_chain(flat=True)`` reshapes in
        Fortran order): every step of the first walker, then of the second,
        ..."""
        samples = result.samples
        n, ndim = result.n_draws("sampling"), len(result.names)
        return np.ascontiguousarray(
            samples.reshape(n, result.nchains, ndim).swapaxes(0, 1).reshape(-1, ndim))

    def summary(self, stats, settings):
        out = {}
        if "evaluations" in stats and stats["evaluations"].size:
            out["evaluations_per_step"] = float(stats["evaluations"].mean())
            out["scale_factor"] = float(stats["mu"][0, -1])
        return out


def zeus_sampler(nwalkers: int, ndim: int, log_prob, **kwargs):
    """``zeus.EnsembleSampler`` (vectorised, quiet) with the root logger's
    handlers and level put back as they were (zeus replaces them)."""
    import zeus

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return zeus.EnsembleSampler(nwalkers, ndim, log_prob, vectorize=True,
                                    verbose=False, **kwargs)
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def filled_zeus_sampler(run):
    """A ``zeus.EnsembleSampler`` over ``run``'s posterior holding the run as
    zeus's own ``run_mcmc(p0, nburnin + nsteps)`` leaves it: the chain and
    log-probabilities (warmup first), the last state, the evaluations per
    step (``neval``), the scale factor ``mu`` and the values it took while
    tuning (``mus``, read from the run's per-step ``mu``)."""
    result, zs = run.result, run.sampler
    nwalkers, ndim = result.nchains, len(result.names)
    native = {k: v for k, v in zs._native.items() if k not in ("mu", "tune")}
    mu0 = float(zs._native.get("mu", 1.0))
    sampler = zeus_sampler(nwalkers, ndim, zs._log_prob, mu=mu0, **native)
    chains, log_prob, stats = result.chains, result.log_prob, result.stats
    chain = np.concatenate([chains["warmup"], chains["sampling"]], axis=1)
    lnprob = np.concatenate([log_prob["warmup"], log_prob["sampling"]], axis=1)
    n = chain.shape[1]
    per_step = {key: np.concatenate([np.asarray(stats[p][key], dtype=float)[0]
                                     for p in ("warmup", "sampling")
                                     if key in stats[p]] or [np.empty(0)])
                for key in ("mu", "evaluations")}
    store = sampler.samples
    if n:
        store.extend(n, None)
        store.samples[:] = np.swapaxes(chain, 0, 1)
        store.logp[:] = lnprob.T
        store.index = n
        sampler.state_X, sampler.state_Z = chain[:, -1].copy(), lnprob[:, -1].copy()
    sampler.iteration = sampler.nsteps = n
    sampler.thin = sampler.thin_by = sampler.ncheckpoint = 1
    sampler.neval = np.rint(per_step["evaluations"] * nwalkers).astype(int)
    mus = per_step["mu"]
    changed = np.flatnonzero(np.diff(np.concatenate([[mu0], mus])))
    sampler.mus = [mu0, *mus[:changed[-1] + 1].tolist()] if changed.size else [mu0]
    sampler.mu = float(zs._mu)
    sampler.tune = bool(zs._tune)
    return sampler


class _NoStore:
    """zeus keeps every step in memory; the result keeps them here."""

    def extend(self, n, blobs=None):
        pass

    def save(self, x, z, blobs=None):
        pass


class ZeusSampler:
    """zeus's ``EnsembleSampler`` behind the streaming interface."""

    backend = "zeus"

    def __init__(self, posterior: Posterior, nwalkers: int, theta0, seed=0,
                 scatter=1e-3, state=None):
        ndim = posterior.spec.ndim
        message = ZeusBackend().walkers_message(int(nwalkers), ndim)
        if message:
            raise ValueError(message)
        self.posterior = posterior
        self.nchains = int(nwalkers)
        self._half = self.nchains // 2
        self._native: dict = {}
        self._sampler = None
        seed = sampler_seed(seed)
        self._rng = np.random.RandomState(seed).get_state()
        self._py_rng = random.Random(seed).getstate()
        self._mu, self._tune, self._balanced = 1.0, True, 0
        self._restored = state is not None
        if state is not None:
            self.load_state(state)
        else:
            coords = scatter_start(theta0, scatter, self.nchains,
                                   np.random.default_rng(seed), posterior)
            self._x = coords
            self._z = self._log_prob(coords)

    # -- The library ---------------------------------------------------------

    def _log_prob(self, x) -> np.ndarray:
        """Log-probabilities of ``x`` ``(n, ndim)`` in batches of half the
        walkers (the last one padded), so that one program serves all."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        out = np.empty(len(x))
        for start in range(0, len(x), self._half):
            part = x[start:start + self._half]
            n = len(part)
            if n < self._half:
                part = np.concatenate([part, np.repeat(part[:1], self._half - n, 0)])
            out[start:start + n] = self.posterior.log_prob_numpy(part)[:n]
        return out

    def set_options(self, **native) -> None:
        """zeus's own ``EnsembleSampler`` arguments from ``mcmc_kwargs``
        (``tune``, ``tolerance``, ``patience``, ``maxsteps``, ``mu``,
        ``maxiter``, ``shuffle_ensemble``, ``light_mode``), before the first
        draw."""
        if self._sampler is not None:
            raise RuntimeError("zeus options must be set before the first draw.")
        self._native = dict(native)
        if not self._restored:   # a continued run keeps its adapted mu
            if "mu" in native:
                self._mu = float(native["mu"])
            if "tune" in native:
                self._tune = bool(native["tune"])

    def _make(self):
        kwargs = {k: v for k, v in self._native.items() if k not in ("mu", "tune")}
        sampler = zeus_sampler(self.nchains, self.posterior.spec.ndim, self._log_prob,
                               mu=self._mu, **kwargs)
        sampler.samples = _NoStore()
        return sampler

    # -- Streaming -------------------------------------------------------------

    def advance(self, k: int):
        """Move every walker ``k`` steps; returns draws, log-probs and stats
        (``mu`` after each step, ``evaluations`` per walker in each step)."""
        ndim = self.posterior.spec.ndim
        draws = np.empty((self.nchains, k, ndim))
        logp = np.empty((self.nchains, k))
        mu = np.empty(k)
        evaluations = np.empty(k)
        with GLOBAL_RNG_LOCK:
            outside, py_outside = np.random.get_state(), random.getstate()
            np.random.set_state(self._rng)
            random.setstate(self._py_rng)
            try:
                if self._sampler is None:
                    self._sampler = self._make()
                for j in range(k):
                    self._step()
                    draws[:, j], logp[:, j] = self._x, self._z
                    mu[j] = self._mu
                    evaluations[j] = self._sampler.neval[0] / self.nchains
            finally:
                self._rng, self._py_rng = np.random.get_state(), random.getstate()
                np.random.set_state(outside)
                random.setstate(py_outside)
        ones = np.ones((self.nchains, 1))
        return draws, logp, {"mu": ones * mu, "evaluations": ones * evaluations}

    def _step(self) -> None:
        """One step of zeus's loop, then its tuning rule across steps."""
        sampler = self._sampler
        sampler.mu, sampler.tune = self._mu, self._tune
        tuned = len(sampler.nexps)
        loop = sampler.sample(start=self._x, log_prob0=self._z, iterations=1,
                              progress=False)
        x, z, _ = next(loop)
        loop.close()
        self._x, self._z = np.copy(x), np.copy(z)
        self._mu = float(sampler.mu)
        if self._tune and len(sampler.nexps) > tuned:
            nexp, ncon = max(1, sampler.nexps[-1]), sampler.ncons[-1]
            if abs(nexp / (nexp + ncon) - 0.5) < sampler.tolerance:
                self._balanced += 1
            if self._balanced > sampler.patience:
                self._tune = False
                if sampler.light_mode:
                    self._mu *= 1.0 + sampler.nexps[-1] / self.nchains
                    sampler.maxsteps = 1

    def snapshot(self):
        """What :meth:`restore` needs to undo an :meth:`advance` in progress."""
        return (np.copy(self._x), np.copy(self._z), self._rng, self._py_rng,
                self._mu, self._tune, self._balanced)

    def restore(self, snapshot) -> None:
        (self._x, self._z, self._rng, self._py_rng, self._mu, self._tune,
         self._balanced) = snapshot

    def export_state(self) -> dict:
        rs = self._rng
        return {"coords": np.asarray(self._x), "log_prob": np.asarray(self._z),
                "mu": np.asarray(self._mu), "tune": np.asarray(self._tune),
                "balanced": np.asarray(self._balanced),
                "rng_key": np.asarray(rs[1]), "rng_pos": np.asarray(rs[2]),
                "rng_gauss": np.asarray([rs[3], rs[4]]),
                "py_rng_version": np.asarray(self._py_rng[0]),
                "py_rng_key": np.asarray(self._py_rng[1], dtype=np.uint64),
                "py_rng_gauss": np.asarray(np.nan if self._py_rng[2] is None
                                           else self._py_rng[2])}

    def load_state(self, saved: dict) -> None:
        self._rng = ("MT19937", np.asarray(saved["rng_key"], dtype=np.uint32),
                     int(saved["rng_pos"]), int(saved["rng_gauss"][0]),
                     float(saved["rng_gauss"][1]))
        gauss = float(saved["py_rng_gauss"])
        self._py_rng = (int(saved["py_rng_version"]),
                        tuple(int(v) for v in saved["py_rng_key"]),
                        None if np.isnan(gauss) else gauss)
        self._x = np.asarray(saved["coords"], dtype=float)
        self._z = np.asarray(saved["log_prob"], dtype=float)
        self._mu = float(saved["mu"])
        self._tune = bool(saved["tune"])
        self._balanced = int(saved["balanced"])
