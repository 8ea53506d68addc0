"""emcee and numpyro NUTS behind one streaming interface.

A sampler advances all its chains (walkers) by ``k`` draws at a time and
returns them; :func:`drive` calls it in chunks sized to take a fraction of a
second, hands each chunk to the callbacks (result, progress bar, live chain
view), and honours a stop request between chunks. Nothing is recompiled
between chunks: the NUTS chunk is one compiled loop whose length is a runtime
argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
import math
import os
import threading
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .posterior import Posterior

#: Environment variable whose integer value is added to every sampler seed.
#: The notebooks' tests set it (``notebooks/conftest.py``) to run the chains
#: with other random bits than the stored outputs were made with, as another
#: processor would: nothing they compare may depend on those bits.
SEED_OFFSET_VARIABLE = "EDDY_WIDGETS_SEED_OFFSET"


def sampler_seed(seed) -> int:
    """The seed a sampler uses: ``seed`` plus ``EDDY_WIDGETS_SEED_OFFSET``
    (read at each call; unset or 0 in normal use), modulo 2**32."""
    text = os.environ.get(SEED_OFFSET_VARIABLE, "").strip() or "0"
    try:
        offset = int(text)
    except ValueError:
        raise ValueError(f"{SEED_OFFSET_VARIABLE} must be an integer, "
                         f"not {text!r}") from None
    return (int(seed) + offset) % 2**32


@dataclass
class Chunk:
    """Draws made in one step of the stream, all in one phase.

    Attributes:
        phase: ``'warmup'`` (burn-in) or ``'sampling'``.
        start: index of the first draw within its phase.
        draws: ``(nchains, k, ndim)`` parameter values (constrained).
        log_prob: ``(nchains, k)`` log-posterior of the draws.
        stats: per-draw sampler statistics, each ``(nchains, k)``: emcee has
            ``accepted``; NUTS has ``step_size``, ``num_steps``,
            ``tree_depth``, ``diverging`` and ``accept_prob``.
    """

    phase: str
    start: int
    draws: np.ndarray
    log_prob: np.ndarray
    stats: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.draws.shape[1]


@dataclass
class RunInfo:
    """Where a run stands, passed to callbacks with every chunk."""

    backend: str
    names: tuple
    nchains: int
    n_warmup: int
    n_samples: int
    done_warmup: int = 0
    done_samples: int = 0
    started: float = field(default_factory=time.perf_counter)
    draws_this_call: int = 0

    @property
    def total(self) -> int:
        return self.n_warmup + self.n_samples

    @property
    def done(self) -> int:
        return self.done_warmup + self.done_samples

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        """Draws (per chain) per second in this call."""
        return self.draws_this_call / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def remaining_seconds(self) -> float:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else math.nan


class StopRequested(Exception):
    """Raised by a callback to stop the run after the current chunk."""


class NonFiniteDrawError(FloatingPointError):
    """A sampler produced a non-finite draw; the run stops before keeping it."""


# ----------------------------------------------------------------------------
# emcee
# ----------------------------------------------------------------------------


def scatter_start(theta0, scatter, nwalkers, rng, posterior: Posterior):
    """astro-eddy's walker start: ``p0 * (1 + scatter * N(0, 1))`` (absolute
    scatter where p0 = 0), redrawn until every walker is inside the prior."""
    theta0 = np.asarray(theta0, dtype=float)
    base = np.where(theta0 == 0.0, 1.0, theta0)
    out = np.empty((nwalkers, theta0.size))
    for w in range(nwalkers):
        for _ in range(1000):
            trial = base * (1.0 + scatter * rng.standard_normal(theta0.size))
            trial = np.where(theta0 == 0.0, trial - 1.0, trial)
            if not posterior.in_support(trial):
                break
        else:
            trial = theta0
        out[w] = trial
    return out


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


# ----------------------------------------------------------------------------
# numpyro NUTS
# ----------------------------------------------------------------------------


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
            results = [_to_host(one(jax.tree_util.tree_map(lambda x: x[c], states),
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


def _key_count(n: int) -> int:
    """How many keys the start-up program splits the seed into, for ``n``
    needed: with JAX's partitionable random bits (its default), key ``i`` of a
    split does not depend on how many are split, so a fixed count serves
    every number of chains with one program; otherwise exactly ``n``."""
    if not jax.config.jax_threefry_partitionable:
        return n
    return max(64, 1 << (n - 1).bit_length())


def _to_host(tree):
    """Every array of ``tree`` as a numpy array (no device operation)."""
    return jax.tree_util.tree_map(np.asarray, tree)


def _stack(trees):
    """Stack equal trees of host arrays along a new first axis, on the host."""
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


# ----------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------


def drive(sampler, info: RunInfo, callbacks=(), stop: threading.Event | None = None,
          target_seconds: float = 0.3, first_chunk: int = 2) -> bool:
    """Advance ``sampler`` until ``info`` says the run is complete or a stop is
    requested (``stop`` set, a callback raising :class:`StopRequested`, or
    Ctrl-C). The first callback keeps the draws (the result); every draw it
    keeps matches the sampler's state, whatever interrupts the run:

    - Ctrl-C (SIGINT, in the main thread) is deferred: the chunk in progress
      is finished and kept, then the run stops. A second Ctrl-C interrupts at
      once, and the sampler is rolled back to the last kept draw.
    - Any exception while a chunk is made rolls the sampler back too, so a
      continued run equals an uninterrupted one with the same seed.
    - A non-finite draw raises :class:`NonFiniteDrawError` naming the
      parameters, before the chunk is kept.

    Returns True if the run completed, False if it was stopped.
    """
    k = first_chunk
    limit = getattr(sampler, "buffer", None) or 10 ** 9
    info.started = time.perf_counter()
    info.draws_this_call = 0
    keep, *others = list(callbacks) or [lambda chunk, info: None]
    with _deferred_interrupt() as interrupted:
        while info.done < info.total:
            if (stop is not None and stop.is_set()) or interrupted.is_set():
                return False
            in_warmup = info.done_warmup < info.n_warmup
            remaining = (info.n_warmup - info.done_warmup if in_warmup
                         else info.n_samples - info.done_samples)
            k = max(1, min(k, remaining, limit))
            phase = "warmup" if in_warmup else "sampling"
            start = info.done_warmup if in_warmup else info.done_samples
            snapshot = sampler.snapshot()
            t0 = time.perf_counter()
            try:
                draws, logp, stats = sampler.advance(k)
                seconds = time.perf_counter() - t0
                _check_finite(draws, info.names, phase, start)
                chunk = Chunk(phase, start, draws, logp, stats)
                keep(chunk, info)
                _count(info, in_warmup, k)
                for callback in others:
                    callback(chunk, info)
            except BaseException as err:
                # Was the chunk kept? Then the sampler's state matches the
                # kept draws; if not, roll it back to the last kept draw.
                n_kept = keep.n_draws(phase) if hasattr(keep, "n_draws") else start
                kept = n_kept == start + k
                done = info.done_warmup if in_warmup else info.done_samples
                if kept and done == start:
                    _count(info, in_warmup, k)
                if not kept:
                    sampler.restore(snapshot)
                if isinstance(err, (StopRequested, KeyboardInterrupt)):
                    return False
                raise
            # Size the next chunk to take about target_seconds.
            per_draw = seconds / k
            k = int(np.clip(target_seconds / max(per_draw, 1e-9), 1, 2 * k + 1))
    return True


def _count(info: RunInfo, in_warmup: bool, k: int) -> None:
    if in_warmup:
        info.done_warmup += k
    else:
        info.done_samples += k
    info.draws_this_call += k


def _check_finite(draws, names, phase: str, start: int) -> None:
    bad = ~np.isfinite(draws)
    if bad.any():
        chain, step, _ = np.argwhere(bad)[0]
        which = [n for n, b in zip(names, bad.any(axis=(0, 1))) if b]
        raise NonFiniteDrawError(
            f"The sampler produced a non-finite value of {', '.join(which)} (chain "
            f"{chain}, {phase} draw {start + step}); the run was stopped and the "
            f"draws before it are kept. This usually means a start on the edge of "
            f"a prior or a model that cannot be evaluated there: check p0 and the "
            f"priors of {', '.join(which)}.")


class _deferred_interrupt:  # noqa: N801 - used as a context manager
    """Turn the first Ctrl-C (SIGINT) into a stop request for the duration of
    a run; a second Ctrl-C raises ``KeyboardInterrupt`` as usual. Only in the
    main thread and only over Python's default handler (elsewhere, e.g. a
    widget's run thread, it is a no-op)."""

    def __enter__(self) -> threading.Event:
        import signal

        self.event = threading.Event()
        self._previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.default_int_handler

            def handler(signum, frame):
                if self.event.is_set():
                    raise KeyboardInterrupt
                self.event.set()
                print("\nStopping after the chunk in progress (every draw is kept); "
                      "press Ctrl-C again to interrupt at once.", flush=True)

            signal.signal(signal.SIGINT, handler)
        return self.event

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            import signal

            signal.signal(signal.SIGINT, self._previous)
