"""What every MCMC backend is: one object with its counts, its names, its
options, its sampler, its diagnostics and its chain-view statistics.

The package's other modules never compare backend names: they ask the
backend object (``get_backend(name)``) what they need. The shape follows
numpyro's ``MCMCKernel`` (one object per kernel) and emcee's one move per
module. A new backend is a module of this package with a :class:`Backend`
subclass and its sampler, registered in ``__init__.py`` (docs/architecture.md
has the recipe; ``tests/test_backends.py`` registers a toy one).

A sampler made by :meth:`Backend.make_sampler` streams draws in chunks:

- ``advance(k)`` -> ``(draws (nchains, k, ndim), log_prob (nchains, k),
  stats {name: (nchains, k)})``;
- ``snapshot()`` / ``restore(snapshot)``: undo an ``advance`` in progress;
- ``export_state()`` -> ``{name: array}`` and ``load_state(saved)``: what a
  result file keeps so that a run continues exactly;
- ``set_options(**native)``: the library's own arguments from
  ``mcmc_kwargs``, before the first draw;
- ``nchains``, and optionally ``buffer`` (the most draws per chunk).
"""

from __future__ import annotations

from dataclasses import dataclass
import inspect

import numpy as np

from ..diagnostics import nan_diagnostics  # noqa: F401  (for the backends)
from ..spec import FitInputError

#: The counts of an ensemble, under fit_map's (and emcee's) names, and their
#: defaults (astro-eddy's).
ENSEMBLE_COUNTS = {"nwalkers": "nwalkers", "nburnin": "nburnin", "nsteps": "nsteps"}
ENSEMBLE_COUNT_DEFAULTS = {"nwalkers": 32, "nburnin": 300, "nsteps": 100}


@dataclass(frozen=True)
class ChainStat:
    """A sampler statistic the live chain view draws in a panel of its own.

    Attributes:
        title: the panel's title.
        source: the key in a chunk's ``stats`` (default: the panel's own key).
        log: a log-scaled axis.
        integer: integer ticks.
        limit: a dashed line at the run's limit (NUTS: ``max_tree_depth``).
        running_mean: show the walkers' mean of the running mean of the
            statistic (emcee's acceptance fraction) instead of each chain.
    """

    title: str
    source: str = ""
    log: bool = False
    integer: bool = False
    limit: bool = False
    running_mean: bool = False


class Backend:
    """One MCMC backend. Subclasses set the class attributes and implement
    :meth:`make_sampler`, :meth:`native_signatures` and
    :meth:`convergence_notes`."""

    #: The name of ``fit_map(mcmc=...)``.
    name: str = ""
    #: One line for the backend selector and the docs.
    description: str = ""
    #: fit_map count name -> the backend's own name for it.
    counts: dict = {}
    #: Default counts (by fit_map name).
    count_defaults: dict = {}
    #: Our options accepted in ``mcmc_kwargs``, with their defaults.
    options: dict = {}
    #: Arguments of the library that ``mcmc_kwargs`` cannot take, and why.
    refused: dict = {}
    #: Where the library's own options go, in words.
    library: str = ""
    #: The package to import, and the extra that installs it.
    module: str = ""
    extra: str = ""
    #: Walkers that move together (emcee, zeus): they are not independent
    #: chains, so R-hat does not apply, at least 2 x ndim are needed, and the
    #: chain is laid out ``(nsteps, nwalkers, ndim)`` as emcee's.
    ensemble: bool = False
    #: The sampler uses the posterior's unconstrained, standardised space
    #: (its standardiser is stored with the result).
    unconstrained: bool = False
    #: Prefix of the sampler state's keys in a result file.
    state_prefix: str = ""
    #: The state entries ``export_state`` writes (``state_<key>``): key ->
    #: shape, ``'n'`` for the chains and ``'d'`` for the free parameters;
    #: a result file's state is checked against it before loading
    #: (:mod:`..result_file`). ``None``: only for numbers or text.
    state_entries: dict | None = None
    #: Statistics the live chain view draws: panel key -> :class:`ChainStat`.
    chain_stats: dict = {}
    #: The sampler reports divergent transitions (``stats['diverging']``),
    #: which the chain view marks after warmup.
    divergences: bool = False

    # -- Words ---------------------------------------------------------------

    @property
    def unit(self) -> str:
        """``'walker'`` or ``'chain'``."""
        return "walker" if self.ensemble else "chain"

    def count_label(self, arg: str) -> str:
        """Label of a count field, e.g. ``'num_warmup'`` for numpyro's nburnin."""
        return self.counts[arg]

    def mapping_rows(self) -> list[tuple[str, str]]:
        """``(fit_map kwarg, backend name)`` rows of the mapping table."""
        return [(arg, self.counts[arg]) for arg in ("nwalkers", "nburnin", "nsteps")]

    def count_meaning(self, arg: str) -> str:
        """What a count counts, in words."""
        if self.ensemble:
            return {"nwalkers": "walkers", "nburnin": "burn-in steps",
                    "nsteps": "steps after burn-in"}[arg]
        return {"nwalkers": "chains", "nburnin": "warmup draws per chain",
                "nsteps": "draws per chain after warmup"}[arg]

    def walkers_message(self, nwalkers: int, ndim: int | None) -> str:
        """Why ``nwalkers`` cannot run ``ndim`` free parameters, or ``''``."""
        if self.ensemble and ndim is not None and nwalkers < 2 * ndim:
            return (f"{self.name} needs at least 2 x {ndim} = {2 * ndim} walkers for "
                    f"{ndim} free parameters; got nwalkers={nwalkers}. Pass "
                    f"nwalkers={2 * ndim} or more.")
        return ""

    # -- The library ------------------------------------------------------------

    def available(self) -> bool:
        """Whether the library is installed."""
        if not self.module:
            return True
        import importlib.util

        return importlib.util.find_spec(self.module) is not None

    def require(self) -> None:
        """A clear error when the library is missing."""
        if not self.available():
            raise FitInputError(
                f"mcmc={self.name!r} needs the {self.module} package, which is not "
                f"installed: pip install 'eddy_widgets[{self.extra or self.module}]'.")

    def native_signatures(self) -> list[inspect.Signature]:
        """Signatures whose arguments ``mcmc_kwargs`` may pass to the library."""
        return []

    def check_options(self, options: dict, ndim: int | None) -> dict:
        """Check and normalise this backend's own options (in place)."""
        return options

    # -- The run ------------------------------------------------------------------

    def make_sampler(self, posterior, theta0, nwalkers: int, nburnin: int,
                     options: dict, state: dict | None, result=None):
        """The streaming sampler (see the module's docstring)."""
        raise NotImplementedError

    def run_settings(self, posterior) -> dict:
        """Settings to store with the result besides the options."""
        return {}

    def warm_up(self, sampler) -> None:
        """Compile the sampler's chunk before the first draw (if it compiles)."""

    # -- astro-eddy's returns -----------------------------------------------------

    def astro_eddy_sampler(self, run):
        """What astro-eddy 3.2's ``fit_map(returns='sampler')`` gives for this
        backend, built from ``run`` (a finished or stopped
        :class:`~eddy_widgets.inference.run.FitRun`); by default the run's
        :class:`~eddy_widgets.inference.result.FitResult`."""
        return run.result

    def astro_eddy_samples(self, result) -> np.ndarray:
        """astro-eddy's ``returns='samples'``: its sampler's
        ``get_chain(discard=nburnin, flat=True)``, PA in [0, 360). By default
        ``result.samples`` (emcee's step-major order, NUTS' chain-major)."""
        return result.samples

    # -- Diagnostics ----------------------------------------------------------------

    def parameter_diagnostics(self, x: np.ndarray) -> dict:
        """Diagnostics of one parameter's post-warmup draws ``x``
        ``(nchains, n)`` (see ``diagnostics.chain_diagnostics``)."""
        raise NotImplementedError

    def convergence_notes(self, result, diag: dict) -> tuple[list, list, bool]:
        """``(failed checks, efficiency warnings, far from settled)``."""
        raise NotImplementedError

    def summary(self, stats: dict, settings: dict) -> dict:
        """Run-level statistics of the post-warmup ``stats`` for
        ``FitResult.sampler_summary``."""
        return {}

    def diagnostic_columns(self) -> tuple[str, ...]:
        """Keys of ``result.diagnostics()`` the posterior tables show."""
        return ("ess", "n_tau") if self.ensemble else ("ess_bulk", "ess_tail", "r_hat")
