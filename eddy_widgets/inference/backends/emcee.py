"""emcee's affine-invariant ensemble sampler as a backend.

The whole walker batch is one compiled, vectorised call of the posterior;
emcee's own ``EnsembleSampler.sample`` makes the moves, with its random state
seeded from ``mcmc_kwargs['seed']`` and stored with the result. Convergence
by emcee's own guidance: the integrated autocorrelation time tau (emcee's
estimator), a chain of at least 50 tau after a burn-in of at least 3 tau,
and an acceptance fraction that shows the walkers move.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from .. import diagnostics as D
from ..moves import normalise_moves
from ..posterior import Posterior
from ..samplers import sampler_seed, scatter_start
from .base import (
    ENSEMBLE_COUNT_DEFAULTS,
    ENSEMBLE_COUNTS,
    Backend,
    ChainStat,
    nan_diagnostics,
)
from .checks import ENSEMBLE_START, LOG_PROB, check_scatter, check_thin_by

_DEPRECATED = "deprecated by emcee 3, which ignores it"


class EmceeBackend(Backend):
    name = "emcee"
    state_entries = {"coords": ("n", "d"), "log_prob": ("n",), "rng_key": (624,),
                     "rng_pos": (), "rng_gauss": (2,)}
    description = ("affine-invariant ensemble sampler (no gradients); all walkers "
                   "evaluated in one compiled call")
    counts = ENSEMBLE_COUNTS
    count_defaults = ENSEMBLE_COUNT_DEFAULTS
    options = {"seed": 0, "progress": True, "scatter": 1e-3, "moves": None}
    library = "emcee.EnsembleSampler and its sample()"
    module = "emcee"
    ensemble = True
    chain_stats = {"acceptance": ChainStat(
        "acceptance fraction (walker mean, cumulative)", source="accepted",
        running_mean=True)}
    refused = {
        "nwalkers": "set by fit_map's nwalkers",
        "ndim": "the number of free parameters in params",
        "log_prob_fn": LOG_PROB, "args": LOG_PROB, "kwargs": LOG_PROB,
        "pool": ("every walker is evaluated in one compiled, vectorised JAX call, "
                 "which a pool of processes would only slow down (and the compiled "
                 "function cannot be sent to them); leave pool out"),
        "vectorize": ("always True here: the walkers are evaluated together in one "
                      "compiled call"),
        "backend": ("the chain streams in chunks into the FitResult, which an emcee "
                    "backend would never see; to keep a run on disk use "
                    "fit_map(..., checkpoint='fit.npz') and FitResult.load"),
        "parameter_names": ("emcee cannot pass named parameters to a vectorised "
                            "log-probability; the names are params' keys, in "
                            "result.names"),
        "initial_state": ENSEMBLE_START, "log_prob0": ENSEMBLE_START,
        "rstate0": ENSEMBLE_START, "blobs0": ENSEMBLE_START,
        "iterations": "the run's length is nburnin + nsteps",
        "nsteps": "set by fit_map's nburnin + nsteps",
        "store": "every draw is kept by the FitResult (result.get_chain())",
        "thin": ("deprecated by emcee, and without effect when draws are streamed: "
                 "use thin_by"),
        "progress_kwargs": ("the progress bar is eddy_widgets' own; turn it off with "
                            "mcmc_kwargs={'progress': False}"),
        "a": f"{_DEPRECATED}; use moves=emcee.moves.StretchMove(a=...)",
        "postargs": _DEPRECATED, "threads": _DEPRECATED,
        "live_dangerously": _DEPRECATED, "runtime_sortingfn": _DEPRECATED,
    }

    def native_signatures(self):
        import emcee

        return [inspect.signature(emcee.EnsembleSampler),
                inspect.signature(emcee.EnsembleSampler.sample)]

    def check_options(self, options: dict, ndim):
        options["scatter"] = check_scatter(options["scatter"])
        options["moves"] = normalise_moves(options["moves"])
        if "thin_by" in options:
            options["thin_by"] = check_thin_by(options["thin_by"])
        return options

    def make_sampler(self, posterior, theta0, nwalkers, nburnin, options, state,
                     result=None):
        return EmceeSampler(posterior, nwalkers, theta0, seed=options["seed"],
                            scatter=options["scatter"], moves=options["moves"],
                            state=state)

    def parameter_diagnostics(self, x):
        return ensemble_diagnostics(x)

    def convergence_notes(self, result, diag):
        notes, unsettled = autocorrelation_notes(result, diag)
        acc = result.sampler_summary().get("acceptance_fraction")
        if acc is not None and acc < D.threshold("emcee_min_acceptance"):
            notes.append(f"acceptance fraction {acc:.2f}: the walkers barely move "
                         f"(want 0.2-0.5); start closer to the optimum (optimize=True), "
                         f"lower the walkers' scatter, or check the priors.")
            unsettled = True
        return notes, [], unsettled

    def summary(self, stats, settings):
        if "accepted" in stats and stats["accepted"].size:
            return {"acceptance_fraction": float(stats["accepted"].mean())}
        return {}

    def astro_eddy_sampler(self, run):
        """emcee's own ``EnsembleSampler`` with its backend filled with the
        run (astro-eddy returns the one it ran): ``acceptance_fraction``,
        ``get_autocorr_time()``, ``get_log_prob()``, ``get_chain()``,
        ``chain`` and ``lnprobability`` (``(nwalkers, nsteps)``) are emcee's.
        Its log-probability is the run's posterior and its random state the
        run's last, so ``run_mcmc(None, n)`` continues the chain (outside the
        run's ``FitResult``)."""
        return filled_emcee_sampler(run)


def filled_emcee_sampler(run):
    """An ``emcee.EnsembleSampler`` over ``run``'s posterior (vectorised, the
    run's moves) whose backend holds the run's chain, log-probabilities and
    acceptances, warmup first, and the run's random state."""
    import emcee

    result, posterior = run.result, run.posterior
    nwalkers, ndim = result.nchains, posterior.spec.ndim
    sampler = emcee.EnsembleSampler(nwalkers, ndim, posterior.log_prob_numpy,
                                    vectorize=True, moves=run.options.get("moves"))
    chains, log_prob, stats = result.chains, result.log_prob, result.stats
    chain = np.concatenate([chains["warmup"], chains["sampling"]], axis=1)
    lnprob = np.concatenate([log_prob["warmup"], log_prob["sampling"]], axis=1)
    accepted = sum(np.asarray(stats[p]["accepted"], dtype=float).sum(axis=1)
                   for p in ("warmup", "sampling") if "accepted" in stats[p])
    backend = sampler.backend
    backend.grow(chain.shape[1], None)
    backend.chain[:] = np.swapaxes(chain, 0, 1)
    backend.log_prob[:] = lnprob.T
    backend.accepted = np.zeros(nwalkers) + accepted
    backend.iteration = chain.shape[1]
    inner = getattr(run.sampler, "sampler", None)
    if inner is not None:
        sampler.random_state = inner.random_state
        backend.random_state = inner.random_state
    if chain.shape[1]:
        # What emcee keeps after run_mcmc, for run_mcmc(None, n) to go on.
        sampler._previous_state = emcee.State(chain[:, -1], log_prob=lnprob[:, -1],
                                              random_state=backend.random_state)
    return sampler


def ensemble_diagnostics(x: np.ndarray) -> dict:
    """tau (emcee's integrated autocorrelation time, in steps), the chain
    length in tau and ``ESS = nwalkers * n / tau`` of one parameter's draws
    ``x`` ``(nwalkers, n)``; R-hat and tail ESS do not apply to walkers."""
    nwalkers, n = x.shape
    d = nan_diagnostics()
    tau = max(D.integrated_time(x), 1.0)
    d.update(tau=tau, n_tau=n / tau, ess=nwalkers * n / tau)
    return d


def autocorrelation_notes(result, diag) -> tuple[list[str], bool]:
    """emcee's guidance for an ensemble: a chain of at least 50 tau and a
    burn-in of at least 3 tau; whether the burn-in is too short to judge."""
    notes = []
    n = result.n_draws("sampling")
    tau, worst = D.worst(diag, "tau", largest=True)
    if worst is not None:
        want = D.threshold("emcee_min_chain_taus")
        if n < want * tau:
            notes.append(
                f"run longer: the chain is {n / tau:.0f} tau long for {worst} "
                f"(tau = {tau:.0f} steps), want >= {want}: nsteps >= "
                f"{math.ceil(want * tau)}.")
        burn = result.n_draws("warmup")
        want_burn = D.threshold("emcee_min_burnin_taus")
        if burn < want_burn * tau:
            notes.append(f"burn-in of {burn} steps is {burn / tau:.1f} tau, want >= "
                         f"{want_burn}: set nburnin >= {math.ceil(want_burn * tau)}.")
    unsettled = any(note.startswith("burn-in") for note in notes)
    return notes, unsettled


class EmceeSampler:
    """emcee's ensemble sampler; the whole walker batch is one compiled call."""

    backend = "emcee"

    def __init__(self, posterior: Posterior, nwalkers: int, theta0, seed=0,
                 scatter=1e-3, moves=None, state=None):
        import emcee

        ndim = posterior.spec.ndim
        if nwalkers < 2 * ndim:
            raise ValueError(f"emcee needs at least 2 x {ndim} = {2 * ndim} walkers "
                             f"for {ndim} free parameters; got nwalkers={nwalkers}.")
        self.posterior = posterior
        self.nchains = int(nwalkers)
        self._moves = moves
        self.sampler = emcee.EnsembleSampler(nwalkers, ndim, posterior.log_prob_numpy,
                                             vectorize=True, moves=moves)
        seed = sampler_seed(seed)
        rng = np.random.default_rng(seed)
        self.sampler.random_state = np.random.RandomState(seed).get_state()
        if state is not None:
            self.load_state(state)
        else:
            coords = scatter_start(theta0, scatter, nwalkers, rng, posterior)
            # In the two halves emcee's moves use, so no other batch shape
            # is compiled.
            half = nwalkers // 2
            log_prob = np.concatenate([posterior.log_prob_numpy(coords[:half]),
                                       posterior.log_prob_numpy(coords[half:])])
            self.state = emcee.State(coords, log_prob=log_prob,
                                     random_state=self.sampler.random_state)
        self._checked = state is not None
        self._sample_kwargs = {"tune": False, "thin_by": 1}

    def set_options(self, blobs_dtype=None, tune: bool = False,
                    skip_initial_state_check: bool = False, thin_by: int = 1) -> None:
        """emcee's own arguments from ``mcmc_kwargs`` (see
        :func:`~eddy_widgets.inference.backends.native_options`), before the
        first :meth:`advance`: ``blobs_dtype`` goes to ``EnsembleSampler``;
        ``tune``, ``skip_initial_state_check`` and ``thin_by`` to its
        ``sample`` (with ``thin_by``, each draw kept is ``thin_by`` steps
        after the previous one, as in ``run_mcmc``)."""
        import emcee

        if blobs_dtype is not None:
            random_state = self.sampler.random_state
            self.sampler = emcee.EnsembleSampler(
                self.nchains, self.posterior.spec.ndim, self.posterior.log_prob_numpy,
                vectorize=True, moves=self._moves, blobs_dtype=blobs_dtype)
            self.sampler.random_state = random_state
        self._checked = self._checked or bool(skip_initial_state_check)
        self._sample_kwargs = {"tune": bool(tune), "thin_by": int(thin_by)}

    def advance(self, k: int):
        """Move every walker ``k`` steps (``k * thin_by`` with ``thin_by``);
        returns draws, log-probs and stats."""
        ndim = self.posterior.spec.ndim
        draws = np.empty((self.nchains, k, ndim))
        logp = np.empty((self.nchains, k))
        accepted = np.empty((self.nchains, k), dtype=bool)
        prev = self.state.coords.copy()
        for j, state in enumerate(self.sampler.sample(
                self.state, iterations=k, store=False,
                skip_initial_state_check=self._checked, **self._sample_kwargs)):
            draws[:, j] = state.coords
            logp[:, j] = state.log_prob
            accepted[:, j] = np.any(state.coords != prev, axis=1)
            prev = state.coords.copy()
            self.state = state
        self._checked = True
        return draws, logp, {"accepted": accepted}

    def snapshot(self):
        """What :meth:`restore` needs to undo an :meth:`advance` in progress."""
        return self.state, self.sampler.random_state

    def restore(self, snapshot) -> None:
        self.state, random_state = snapshot
        self.sampler.random_state = random_state

    def export_state(self) -> dict:
        rs = self.sampler.random_state
        return {"coords": np.asarray(self.state.coords),
                "log_prob": np.asarray(self.state.log_prob),
                "rng_key": np.asarray(rs[1]), "rng_pos": np.asarray(rs[2]),
                "rng_gauss": np.asarray([rs[3], rs[4]])}

    def load_state(self, saved: dict) -> None:
        import emcee

        rs = ("MT19937", np.asarray(saved["rng_key"], dtype=np.uint32),
              int(saved["rng_pos"]), int(saved["rng_gauss"][0]),
              float(saved["rng_gauss"][1]))
        self.sampler.random_state = rs
        self.state = emcee.State(np.asarray(saved["coords"]),
                                 log_prob=np.asarray(saved["log_prob"]),
                                 random_state=rs)
