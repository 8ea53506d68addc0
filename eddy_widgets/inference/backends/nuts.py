"""numpyro's No-U-Turn sampler (NUTS) as a backend (``mcmc='numpyro'``).

The chains move in the posterior's unconstrained, standardised space; each
chunk of draws is one compiled loop. Convergence as Vehtari et al. (2021)
and ArviZ: rank-normalised split R-hat and bulk and tail ESS per chain;
divergent draws after warmup and trees at the depth cap are warnings.
"""

from __future__ import annotations

from functools import partial
import inspect
import math
import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ...formatting import plural
from .. import diagnostics as D
from ..optimize import hessian_fd
from ..posterior import Posterior
from ..samplers import sampler_seed
from ..spec import FitInputError
from .base import Backend, ChainStat, nan_diagnostics
from .checks import LOG_PROB, check_bool, check_positive, is_int

#: The chain methods numpyro understands.
CHAIN_METHODS = ("sequential", "parallel", "vectorized")

#: Usual range of numpyro's max_tree_depth (2**15 leapfrog steps per draw is
#: already far more than a well-scaled posterior needs).
TREE_DEPTH_USUAL = (1, 15)
#: Above this the leapfrog count of a draw (up to 2**depth - 1) no longer fits
#: the int32 step counts the NUTS sampler reports.
TREE_DEPTH_MAX = 30


class NutsBackend(Backend):
    name = "numpyro"
    description = ("No-U-Turn sampler (numpyro) on the JAX gradient, started at the "
                   "optimum with the posterior's curvature as metric")
    counts = {"nwalkers": "num_chains", "nburnin": "num_warmup",
              "nsteps": "num_samples"}
    count_defaults = {"nwalkers": 1, "nburnin": 300, "nsteps": 100}
    options = {"seed": 0, "progress": True, "max_tree_depth": 8,
               "chain_method": "sequential", "dense_mass": True,
               "target_accept_prob": 0.8}
    library = "numpyro.infer.NUTS"
    module = "numpyro"
    unconstrained = True
    state_prefix = "nuts_"
    divergences = True
    chain_stats = {
        "step_size": ChainStat("NUTS step size (log scale)", log=True),
        "tree_depth": ChainStat("NUTS tree depth (dashed: max_tree_depth)",
                                integer=True, limit=True),
    }
    refused = {
        "model": LOG_PROB, "potential_fn": LOG_PROB,
        "kinetic_fn": ("a custom kinetic energy cannot be stored with the result, so "
                       "a checkpoint or continue_fit could not rebuild the sampler"),
        "init_strategy": ("every chain starts at the (optimised) p0, the first exactly "
                          "and the others a quarter of a posterior width away; set "
                          "the start with p0 (and optimize)"),
        "num_chains": "set by fit_map's nwalkers",
        "num_warmup": "set by fit_map's nburnin",
        "num_samples": "set by fit_map's nsteps",
        "progress_bar": "use mcmc_kwargs={'progress': False}",
    }

    def native_signatures(self):
        from numpyro.infer import NUTS

        return [inspect.signature(NUTS)]

    def check_options(self, options: dict, ndim):
        options["max_tree_depth"] = _check_tree_depth(options["max_tree_depth"])
        if options["chain_method"] not in CHAIN_METHODS:
            raise FitInputError(f"chain_method must be one of "
                                f"{', '.join(repr(m) for m in CHAIN_METHODS)}, not "
                                f"{options['chain_method']!r}.")
        options["dense_mass"] = check_bool("dense_mass", options["dense_mass"])
        options["target_accept_prob"] = _check_accept(options["target_accept_prob"])
        for key in ("step_size", "trajectory_length"):
            if key in options and not (key == "trajectory_length"
                                       and options[key] is None):
                options[key] = check_positive(key, options[key])
        if "inverse_mass_matrix" in options:
            options["inverse_mass_matrix"] = _check_mass_matrix(
                options["inverse_mass_matrix"], ndim)
        return options

    def make_sampler(self, posterior, theta0, nwalkers, nburnin, options, state,
                     result=None):
        if result is not None and "standardizer_centre" in result.settings:
            posterior.set_standardizer(result.settings["standardizer_centre"],
                                       result.settings["standardizer_scale"])
            inv_mass = None
        else:
            inv_mass = unconstrained_metric(posterior, theta0)
        if not options["dense_mass"] and inv_mass is not None:
            inv_mass = np.diag(inv_mass)
        warm = result.n_warmup_target if result is not None else nburnin
        return NutsSampler(
            posterior, nwalkers, warm, theta0, seed=options["seed"],
            max_tree_depth=options["max_tree_depth"],
            chain_method=options["chain_method"], dense_mass=options["dense_mass"],
            target_accept_prob=options["target_accept_prob"],
            inverse_mass_matrix=inv_mass, state=state)

    def run_settings(self, posterior):
        return {"standardizer_centre": np.asarray(posterior.standardizer.centre).tolist(),
                "standardizer_scale": np.asarray(posterior.standardizer.scale).tolist()}

    def warm_up(self, sampler):
        sampler.advance(0)

    def astro_eddy_sampler(self, run):
        return NumpyroSampler.from_result(run.result)

    def parameter_diagnostics(self, x):
        return independent_chain_diagnostics(x)

    def convergence_notes(self, result, diag):
        return nuts_notes(result, diag)

    def summary(self, stats, settings):
        out = {}
        if "num_steps" in stats and stats["num_steps"].size:
            out["median_steps_per_draw"] = float(np.median(stats["num_steps"]))
            out["mean_tree_depth"] = float(stats["tree_depth"].mean())
            out["step_size"] = float(stats["step_size"][:, -1].mean())
            out["divergences"] = int(stats["diverging"].sum())
            depth = (settings.get("options") or {}).get("max_tree_depth")
            if depth is not None:
                out["max_tree_depth"] = int(depth)
                out["max_tree_depth_hits"] = int(
                    (stats["num_steps"] >= 2 ** int(depth) - 1).sum())
        return out


def independent_chain_diagnostics(x: np.ndarray) -> dict:
    """ArviZ's rank-normalised split R-hat and bulk / tail ESS of one
    parameter's draws ``x`` ``(nchains, n)``; one chain is given to ArviZ as
    its two halves (which ArviZ splits again: a stricter test)."""
    nchains, n = x.shape
    az = D._arviz()
    d = nan_diagnostics()
    halves = x if nchains > 1 else x[:, : 2 * (n // 2)].reshape(2, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d["r_hat"] = float(az.rhat(halves, method="rank"))
        d["ess_bulk"] = float(az.ess(x, method="bulk"))
        d["ess_tail"] = float(az.ess(x, method="tail"))
    d["ess"] = d["ess_bulk"]
    if d["ess"] > 0:
        d["tau"] = nchains * n / d["ess"]
        d["n_tau"] = n / d["tau"]
    return d


def nuts_notes(result, diag) -> tuple[list[str], list[str], bool]:
    notes: list[str] = []
    n, nchains = result.n_draws("sampling"), result.nchains
    rhat, worst = D.worst(diag, "r_hat", largest=True)
    unsettled = worst is not None and rhat > 1.1
    if worst is not None and rhat > D.threshold("nuts_max_rhat"):
        notes.append(f"R-hat = {rhat:.3f} for {worst} (want <= "
                     f"{D.threshold('nuts_max_rhat')}): the chains (or their halves) "
                     f"disagree; run longer (num_warmup, num_samples) or look for "
                     f"several modes in the trace plot.")
    want = D.threshold("nuts_min_ess_per_chain") * nchains
    for kind in ("bulk", "tail"):
        ess, worst = D.worst(diag, f"ess_{kind}", largest=False)
        if worst is not None and ess < want:
            more = math.ceil(n * want / max(ess, 1.0))
            notes.append(f"{kind} ESS = {ess:.0f} for {worst}, want >= {want} "
                         f"({D.threshold('nuts_min_ess_per_chain')} per chain): run "
                         f"longer, num_samples >= {more}.")
    summary = result.sampler_summary()
    total = max(n * nchains, 1)
    efficiency = []
    div = summary.get("divergences", 0)
    if div > D.threshold("nuts_max_divergences"):
        # A warning, not a failed convergence check (as Stan and ArviZ): the
        # chains may have mixed, but where the draws diverge the sampler could
        # not follow the posterior, and the posterior there may be biased.
        accept = (result.settings.get("options") or {}).get("target_accept_prob", 0.8)
        advice = (f"raise target_accept_prob (now {accept:g}; e.g. 0.95) or tighten "
                  f"the priors" if accept < 0.95 else
                  f"target_accept_prob is already {accept:g}: tighten the priors, "
                  f"fix a parameter the map cannot constrain, or look for a hard "
                  f"edge of the posterior (a prior bound) in the trace plot")
        efficiency.append(
            f"{plural(div, 'divergent draw')} after warmup ({100 * div / total:.2g}% of "
            f"{total}): {advice}. Where they cluster (red in the trace plot) the "
            f"sampler could not follow the posterior, which may be biased there.")
    hits = summary.get("max_tree_depth_hits", 0)
    if hits > D.threshold("nuts_max_treedepth_fraction") * total:
        depth = summary.get("max_tree_depth")
        efficiency.append(f"{hits} of {total} draws ({100 * hits / total:.0f}%) hit "
                          f"max_tree_depth = {depth}: the sampler is slowed or "
                          f"truncated; raise max_tree_depth to "
                          f"{depth + 2 if depth else 10} or tighten the priors.")
    return notes, efficiency, unsettled


def _check_tree_depth(value) -> int:
    low, high = TREE_DEPTH_USUAL
    if not is_int(value) or not 1 <= int(value) <= TREE_DEPTH_MAX:
        raise FitInputError(
            f"mcmc_kwargs['max_tree_depth'] must be an int >= 1 (at most "
            f"{TREE_DEPTH_MAX}; usually {low}..{high}, default "
            f"{NutsBackend.options['max_tree_depth']}): each NUTS draw takes "
            f"up to 2**max_tree_depth leapfrog steps. Got {value!r}.")
    return int(value)


def _check_accept(value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise FitInputError(f"mcmc_kwargs['target_accept_prob'] must be a number "
                            f"with 0 < value < 1 (e.g. 0.8), got {value!r}.")
    if not 0.0 < float(value) < 1.0:
        raise FitInputError(f"mcmc_kwargs['target_accept_prob'] must satisfy "
                            f"0 < value < 1 (e.g. 0.8; higher means smaller steps), "
                            f"got {value!r}.")
    return float(value)


def _check_mass_matrix(value, ndim: int | None):
    if value is None:
        return None
    try:
        matrix = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        matrix = np.asarray([np.nan])
    good = matrix.ndim in (1, 2) and np.all(np.isfinite(matrix)) and (
        matrix.ndim == 1 or matrix.shape[0] == matrix.shape[1])
    if good and ndim is not None:
        good = matrix.shape[0] == ndim
    if not good:
        size = "" if ndim is None else f" of size {ndim} (the free parameters)"
        raise FitInputError(
            f"mcmc_kwargs['inverse_mass_matrix'] must be a finite vector (diagonal) or "
            f"square matrix{size}, in p0's order and in numpyro's unconstrained space "
            f"(each parameter through its prior's bijection), got {value!r}.")
    return matrix


def unconstrained_hessian(posterior: Posterior, theta) -> np.ndarray:
    """Hessian of NUTS' potential at ``theta`` in the plain unconstrained
    space (no standardisation), by the chain rule from the constrained
    Hessian (central differences of the compiled gradient) and the 1-D
    derivatives of each prior's bijection (central differences too): no new
    compilation at all."""
    theta = np.asarray(theta, dtype=float)
    grad = np.asarray(posterior.value_and_grad(jnp.asarray(theta))[1])
    hess = hessian_fd(posterior.value_and_grad, theta)
    ndim = posterior.spec.ndim
    posterior.set_standardizer(np.zeros(ndim), np.ones(ndim))
    w = posterior.to_unconstrained(theta)
    # The bijections act coordinate by coordinate, so one central difference
    # of the whole vector gives every 1-D derivative at once.
    h = 1e-4
    (x_lo, ld_lo), (x_0, ld_0), (x_hi, ld_hi) = (posterior.bijection(w + d)
                                                  for d in (-h, 0.0, h))
    d1 = (x_hi - x_lo) / (2 * h)
    d2 = (x_hi - 2 * x_0 + x_lo) / h ** 2
    logdet2 = (ld_hi - 2 * ld_0 + ld_lo) / h ** 2
    return -(np.outer(d1, d1) * hess + np.diag(grad * d2 + logdet2))


def unconstrained_metric(posterior: Posterior, theta):
    """Standardise the unconstrained space at ``theta`` and return the inverse
    mass matrix there (the inverse Hessian of the potential), or the identity
    where the Hessian is not positive definite (e.g. far from the optimum)."""
    hess = unconstrained_hessian(posterior, theta)  # leaves no standardisation
    w = posterior.to_unconstrained(theta)
    curv = np.diag(hess)
    ok = np.isfinite(curv) & (curv > 0)
    scale = np.where(ok, 1.0 / np.sqrt(np.where(ok, curv, 1.0)), 1.0)
    posterior.set_standardizer(w, scale)
    h = hess * np.outer(scale, scale)
    try:
        inv = np.linalg.inv(h)
        np.linalg.cholesky(inv)
        if not np.all(np.isfinite(inv)):
            raise np.linalg.LinAlgError
        return inv
    except np.linalg.LinAlgError:
        return np.eye(len(scale))


class NutsSampler:
    """numpyro's NUTS kernel on the posterior's unconstrained potential.

    Every chain starts near the MAP, with the inverse mass matrix set from the
    curvature there (the posterior's standardiser already scales each
    direction to order one), and adapts step size and mass matrix during
    warmup with numpyro's windowed schedule. Because the metric is already
    scaled to the posterior, the first step size (0.5) is close to where dual
    averaging settles, and numpyro's heuristic step-size search (a program of
    its own to compile) is skipped.
    """

    backend = "numpyro"

    def __init__(self, posterior: Posterior, num_chains: int, num_warmup: int, theta0,
                 seed=0, max_tree_depth=8, chain_method="sequential", dense_mass=True,
                 target_accept_prob=0.8, inverse_mass_matrix=None, state=None,
                 buffer: int = 256, step_size: float = 0.5):
        from numpyro.infer.hmc import hmc

        self.posterior = posterior
        self.nchains = int(num_chains)
        self.num_warmup = int(num_warmup)
        self.buffer = int(buffer)
        ndim = posterior.spec.ndim
        # The standardiser and the map's arrays go in as model arguments, not
        # constants, so that the compiled sampler is the same program from one
        # fit (and one map of the same shape) to the next. The potential is
        # one compiled program even where numpyro calls it outside a compiled
        # sampler (its start-up evaluates the gradient eagerly, which would
        # otherwise compile each operation on its own).
        potential = posterior.programs.potential
        self._init_kernel, self._sample_kernel = hmc(
            potential_fn_gen=lambda centre, scale, arrays: partial(
                potential, arrays, centre=centre, scale=scale),
            algo="NUTS")
        self._model_args = (posterior.standardizer.centre,
                            posterior.standardizer.scale, posterior.arrays)
        if chain_method == "parallel" and jax.local_device_count() < self.nchains:
            warnings.warn(f"chain_method='parallel' needs {self.nchains} devices but "
                          f"JAX sees {jax.local_device_count()}; running the chains "
                          f"sequentially.", stacklevel=3)
            chain_method = "sequential"
        self.chain_method = chain_method
        self._u0 = np.asarray(posterior.to_unconstrained(theta0))
        self._seed = sampler_seed(seed)
        if inverse_mass_matrix is None:
            inverse_mass_matrix = np.eye(ndim) if dense_mass else np.ones(ndim)
        # numpyro's init_kernel arguments; set_options may change them until
        # the chains are made (on first use of :attr:`state`).
        self._settings = {"step_size": float(step_size),
                          "inverse_mass_matrix": np.asarray(inverse_mass_matrix),
                          "dense_mass": bool(dense_mass),
                          "target_accept_prob": float(target_accept_prob),
                          "max_tree_depth": int(max_tree_depth),
                          "find_heuristic_step_size": False}
        self._state = None
        self._saved_state = state
        self._run = self._compile()

    def set_options(self, inverse_mass_matrix=None, **nuts_kwargs) -> None:
        """numpyro ``NUTS`` arguments from ``mcmc_kwargs`` (see
        :func:`~eddy_widgets.inference.backends.native_options`), before the
        chains are made: ``step_size`` (the first step size, in the
        posterior's scaled space), ``adapt_step_size``, ``adapt_mass_matrix``,
        ``find_heuristic_step_size``, ``regularize_mass_matrix``,
        ``forward_mode_differentiation``, ``trajectory_length`` and
        ``inverse_mass_matrix`` (given in numpyro's unconstrained space, in p0
        order; it replaces the curvature at the start)."""
        if self._state is not None:
            raise RuntimeError("NUTS options must be set before the chains are made.")
        self._settings.update(nuts_kwargs)
        if inverse_mass_matrix is not None:
            # Into the standardised space u = (w - centre) / scale.
            scale = np.asarray(self.posterior.standardizer.scale, dtype=float)
            matrix = np.asarray(inverse_mass_matrix, dtype=float)
            matrix = (matrix / scale ** 2 if matrix.ndim == 1
                      else matrix / np.outer(scale, scale))
            self._settings["inverse_mass_matrix"] = matrix

    @property
    def state(self):
        """numpyro's sampler state of every chain (stacked), made on first use."""
        if self._state is None:
            self._state = self._initial_state()
            if self._saved_state is not None:
                self.load_state(self._saved_state)
                self._saved_state = None
        return self._state

    @state.setter
    def state(self, value) -> None:
        self._state = value

    def _initial_state(self):
        ndim = self.posterior.spec.ndim
        settings = dict(self._settings)
        dense = settings["dense_mass"]
        inverse_mass_matrix = np.asarray(settings.pop("inverse_mass_matrix"))
        if not dense and inverse_mass_matrix.ndim == 2:
            inverse_mass_matrix = np.diag(inverse_mass_matrix)
        elif dense and inverse_mass_matrix.ndim == 1:
            inverse_mass_matrix = np.diag(inverse_mass_matrix)
        rng = np.random.default_rng(self._seed)
        chol = (np.linalg.cholesky(inverse_mass_matrix) if dense
                else np.diag(np.sqrt(inverse_mass_matrix)))
        # numpyro's start-up as one compiled program (run eagerly it compiles
        # dozens of single operations, seconds on every new process), the
        # chain's random key included. Settings that numpyro keeps in its
        # sampler's closure stay Python values here, so no traced value
        # outlives this program.
        num_warmup, init_kernel = self.num_warmup, self._init_kernel
        nkeys = _key_count(self.nchains + 1)
        step_size = settings.pop("step_size")

        @jax.jit
        def init(start, step_size, inverse_mass_matrix, seed, chain, model_args):
            key = jax.random.split(jax.random.PRNGKey(seed), nkeys)[chain + 1]
            return init_kernel(start, num_warmup, step_size=step_size,
                               inverse_mass_matrix=inverse_mass_matrix,
                               rng_key=key, model_args=model_args, **settings)

        states = []
        for c in range(self.nchains):
            # Chains start at the MAP, spread by a quarter of the posterior
            # width so that R-hat can see if they disagree.
            start = (self._u0 if c == 0
                     else self._u0 + 0.25 * chol @ rng.standard_normal(ndim))
            states.append(_to_host(init(np.asarray(start, dtype=float),
                                        np.float64(step_size),
                                        np.asarray(inverse_mass_matrix, dtype=float),
                                        np.int64(self._seed), np.int32(c),
                                        self._model_args)))
        # Chains are stacked on the host: on the device, stacking and slicing
        # them would compile a program per operation and shape.
        return _stack(states)

    def _compile(self):
        sample_kernel = self._sample_kernel
        to_constrained = self.posterior.to_constrained
        log_prob = self.posterior.log_prob
        ndim = self.posterior.spec.ndim
        nbuf = self.buffer

        def chunk(state, count, centre, scale, arrays):
            def body(j, carry):
                state, out = carry
                state = sample_kernel(state, model_args=(centre, scale, arrays))
                theta = to_constrained(state.z, centre, scale)
                row = (theta, log_prob(theta, value_only=True, arrays=arrays),
                       state.adapt_state.step_size,
                       state.num_steps.astype(jnp.int32), state.diverging,
                       state.accept_prob)
                out = tuple(o.at[j].set(r) for o, r in zip(out, row))
                return state, out

            out = (jnp.zeros((nbuf, ndim)), jnp.zeros(nbuf), jnp.zeros(nbuf),
                   jnp.zeros(nbuf, dtype=jnp.int32), jnp.zeros(nbuf, dtype=bool),
                   jnp.zeros(nbuf))
            return jax.lax.fori_loop(0, count, body, (state, out))

        if self.chain_method == "vectorized":
            return jax.jit(jax.vmap(chunk, in_axes=(0, None, None, None, None)))
        if self.chain_method == "parallel":
            return jax.pmap(chunk, in_axes=(0, None, None, None, None))
        one = jax.jit(chunk)

        def sequential(states, count, centre, scale, arrays):
            # Sliced and stacked on the host (see _initial_state).
            states = _to_host(states)
            results = [_to_host(one(jax.tree_util.tree_map(partial(_take, c), states),
                                    np.int32(count), centre, scale, arrays))
                       for c in range(self.nchains)]
            return _stack(results)

        return sequential

    def advance(self, k: int):
        """Make ``k`` NUTS transitions in every chain."""
        k = int(min(k, self.buffer))
        self.state, out = self._run(self.state, k, *self._model_args)
        theta, logp, step, nsteps, div, acc = (np.asarray(o)[:, :k] for o in out)
        depth = np.ceil(np.log2(nsteps.astype(float) + 1.0)).astype(int)
        return theta, logp, {"step_size": step, "num_steps": nsteps,
                             "tree_depth": depth, "diverging": div,
                             "accept_prob": acc}

    def snapshot(self):
        """What :meth:`restore` needs to undo an :meth:`advance` in progress
        (the state is immutable, so a reference is enough)."""
        return self.state

    def restore(self, snapshot) -> None:
        self.state = snapshot

    def export_state(self) -> dict:
        leaves = jax.tree_util.tree_leaves(self.state)
        return {f"leaf_{i:03d}": np.asarray(jax.random.key_data(x)
                                            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
                                            else x)
                for i, x in enumerate(leaves)}

    def load_state(self, saved: dict) -> None:
        leaves, treedef = jax.tree_util.tree_flatten(self.state)
        new = [np.asarray(saved[f"leaf_{i:03d}"], dtype=leaf.dtype)
               for i, leaf in enumerate(leaves)]
        self.state = jax.tree_util.tree_unflatten(treedef, new)


class NumpyroSampler:
    """What astro-eddy 3.2's ``fit_map(mcmc='numpyro', returns='sampler')``
    gives: its NUTS adapter (``eddy.helper_functions._NumpyroSampler``),
    the part of emcee's sampler that its post-processing reads, with
    astro-eddy's shapes.

    Attributes:
        chain: ``(num_chains, num_warmup + num_samples, ndim)``, NaN over the
            warmup as astro-eddy's (its adapter never sees warmup draws).
        lnprobability: ``(num_warmup + num_samples, num_chains)``, NaN over
            the warmup: steps first, unlike emcee's. The log-posterior of
            each draw; astro-eddy's is minus numpyro's potential energy, in
            numpyro's unconstrained space, which adds the log-Jacobian of the
            priors' transforms.
        result: the run's :class:`~eddy_widgets.inference.result.FitResult`,
            warmup draws included (not in astro-eddy).

    ``get_chain(discard=0, flat=False)`` as astro-eddy's: ``chain[:,
    discard:]``, flat chain-major. astro-eddy's adapter has nothing else: no
    ``acceptance_fraction``, ``get_log_prob`` or ``get_autocorr_time``
    (``result.diagnostics()`` has the effective sample sizes and R-hat).
    """

    def __init__(self, chain, lnprobability, result=None):
        self.chain = np.array(chain, dtype=float)
        self.lnprobability = np.array(lnprobability, dtype=float)
        self.result = result

    @classmethod
    def from_result(cls, result) -> "NumpyroSampler":
        nchains, ndim = result.nchains, len(result.names)
        warm = result.n_draws("warmup")
        chain = np.concatenate([np.full((nchains, warm, ndim), np.nan),
                                result.chains["sampling"]], axis=1)
        lnprob = np.concatenate([np.full((warm, nchains), np.nan),
                                 result.log_prob["sampling"].T], axis=0)
        return cls(chain, lnprob, result)

    def get_chain(self, discard=0, flat=False):
        out = self.chain[:, discard:, :]
        return out.reshape(-1, out.shape[-1]) if flat else out

    def __repr__(self) -> str:
        return (f"<NumpyroSampler: {self.chain.shape[0]} chain(s) x "
                f"{self.chain.shape[1]} draws x {self.chain.shape[2]} parameters>")


def _key_count(n: int) -> int:
    """How many keys the start-up program splits the seed into, for ``n``
    needed: with JAX's partitionable random bits (its default), key ``i`` of a
    split does not depend on how many are split, so a fixed count serves
    every number of chains with one program; otherwise exactly ``n``."""
    if not jax.config.jax_threefry_partitionable:
        return n
    return max(64, 1 << (n - 1).bit_length())


def _take(index: int, x):
    """Row ``index`` of ``x`` (one chain of stacked states)."""
    return x[index]


def _to_host(tree):
    """Every array of ``tree`` as a numpy array (no device operation)."""
    return jax.tree_util.tree_map(np.asarray, tree)


def _stack(trees):
    """Stack equal trees of host arrays along a new first axis, on the host."""
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)
