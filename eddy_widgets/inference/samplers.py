"""The streaming interface every sampler is driven through.

A sampler (one per backend, in :mod:`eddy_widgets.inference.backends`)
advances all its chains (walkers) by ``k`` draws at a time and returns them;
:func:`drive` calls it in chunks sized to take a fraction of a
second, hands each chunk to the callbacks (result, progress bar, live chain
view), and honours a stop request between chunks. Nothing is recompiled
between chunks: the NUTS chunk is one compiled loop whose length is a runtime
argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import os
import threading
import time

import numpy as np

from .interrupt import deferred_interrupt
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
# Ensembles (emcee, zeus)
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
    with deferred_interrupt() as ctrl_c:
        interrupted = ctrl_c.requested
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
