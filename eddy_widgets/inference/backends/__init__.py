"""The MCMC backends: one module per sampler behind one small interface.

- :mod:`.base`: what a backend is (:class:`Backend`: its counts and their
  names, options, refused library arguments, sampler, diagnostics, verdict
  and chain-view statistics);
- :mod:`.emcee` (``mcmc='emcee'``), :mod:`.nuts` (``mcmc='numpyro'``),
  :mod:`.zeus` (``mcmc='zeus'``, the ``zeus`` extra): one module each;
- this module: the registry (:data:`BACKENDS`, :func:`register`,
  :func:`get_backend`) and the checks every backend shares.

``fit_map`` keeps astro-eddy's count names for every backend; for numpyro they
mean numpyro's own names. The backend selector widget reads its labels from
here, and so does the numpyro tutorial's mapping table.

``mcmc_kwargs`` holds our options (each backend's ``options``: ``seed``,
``progress``, ``scatter``, ``moves``, ``max_tree_depth``, ...) and, as in
astro-eddy, the backend library's own arguments, read from their signatures
(:func:`native_options`). Arguments that ``fit_map`` sets itself, or that
cannot work when draws are streamed in chunks from one compiled call, are
refused with the reason (:data:`REFUSED`).

The checks of ``fit_map``'s counts and ``mcmc_kwargs`` live here too, so that
a bad value fails before the optimiser runs, with a message that says what to
change.
"""

from __future__ import annotations

import difflib

import numpy as np

from ..moves import MOVE_ALIASES, move_names, moves_to_json, normalise_moves
from ..spec import FitInputError
from .base import Backend, ChainStat
from .checks import check_bool, check_seed, is_int
from .emcee import EmceeBackend
from .nuts import CHAIN_METHODS, TREE_DEPTH_MAX, TREE_DEPTH_USUAL, NutsBackend
from .zeus import ZeusBackend

__all__ = ["BACKENDS", "CHAIN_METHODS", "COUNT_ARGS", "MOVE_ALIASES", "REFUSED",
           "TREE_DEPTH_MAX", "TREE_DEPTH_USUAL", "Backend", "ChainStat",
           "available_backends", "check_count", "check_count_values",
           "check_counts", "check_niter", "get_backend", "move_names",
           "moves_to_json", "native_options", "normalise_moves", "options_to_json",
           "register", "sampler_kwargs", "split_options"]

#: fit_map's count arguments, in display order.
COUNT_ARGS = ("nwalkers", "nburnin", "nsteps")

#: The registered backends by name (``fit_map(mcmc=name)``).
BACKENDS: dict[str, Backend] = {}
#: Arguments of each backend's library that mcmc_kwargs cannot take, and why.
REFUSED: dict[str, dict[str, str]] = {}


def register(backend: Backend) -> Backend:
    """Make ``backend`` known by its name (to ``fit_map``, the CLI, the
    dashboard's selector); returns it."""
    BACKENDS[backend.name] = backend
    REFUSED[backend.name] = backend.refused
    _NATIVE.pop(backend.name, None)
    return backend


def available_backends() -> list[str]:
    """Names of the registered backends whose library is installed."""
    return [name for name, b in BACKENDS.items() if b.available()]


def native_options(backend: Backend) -> dict:
    """The backend library's own arguments that ``mcmc_kwargs`` passes on,
    with their defaults, read with ``inspect.signature``: emcee's
    ``EnsembleSampler`` and ``EnsembleSampler.sample``, numpyro's ``NUTS``.
    Our options and the :data:`REFUSED` names are left out."""
    if backend.name not in _NATIVE:
        _NATIVE[backend.name] = _read_native(backend)
    return dict(_NATIVE[backend.name])


_NATIVE: dict[str, dict] = {}


def _read_native(backend: Backend) -> dict:
    out = {}
    for sig in backend.native_signatures():
        for p in sig.parameters.values():
            if p.name in ("self",) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name not in backend.options and p.name not in backend.refused:
                out[p.name] = None if p.default is p.empty else p.default
    return out


def library_name(backend: Backend) -> str:
    """Where the native options go, in words."""
    return backend.library


def sampler_kwargs(backend: Backend, options: dict) -> dict:
    """The library arguments among checked ``options`` (see
    :func:`split_options`), to hand to the sampler."""
    native = native_options(backend)
    return {k: v for k, v in options.items() if k in native}


def get_backend(name: str) -> Backend:
    """Look up a backend by name with an error that lists the choices."""
    key = str(name).lower()
    if key not in BACKENDS:
        raise ValueError(f"Unknown mcmc backend {name!r}: choose one of "
                         f"{', '.join(repr(k) for k in BACKENDS)}.")
    return BACKENDS[key]


def split_options(backend: Backend, mcmc_kwargs: dict | None,
                  ndim: int | None = None) -> dict:
    """Backend options from ``mcmc_kwargs`` over the defaults, checked.

    Our options take their table defaults; the library's own arguments
    (:func:`native_options`) are kept only when given. Unknown keys (the
    message lists the valid ones), :data:`REFUSED` keys (the message says
    why) and values of the wrong type or range raise
    :class:`~eddy_widgets.inference.spec.FitInputError` (a ``ValueError``).
    emcee's ``moves`` are normalised: move names (``'DEMove'``, ...) and the
    stored form of :func:`moves_to_json` become ``emcee.moves`` objects;
    objects pass through unchanged. ``ndim`` (the number of free parameters)
    lets NUTS' ``inverse_mass_matrix`` be checked.
    """
    backend.require()
    native = native_options(backend)
    valid = sorted(backend.options) + sorted(native)
    if mcmc_kwargs is not None and not isinstance(mcmc_kwargs, dict):
        raise FitInputError(f"mcmc_kwargs must be a dict of {backend.name} options "
                            f"({', '.join(valid)}), got {mcmc_kwargs!r}.")
    options = dict(backend.options)
    listed = (f"Valid: {', '.join(sorted(backend.options))} (eddy_widgets) and "
              f"{', '.join(sorted(native))} (passed to {library_name(backend)}).")
    for key, value in (mcmc_kwargs or {}).items():
        if key in backend.refused:
            raise FitInputError(f"mcmc_kwargs[{key!r}] cannot be used with the "
                                f"{backend.name} backend: "
                                f"{backend.refused[key]}. {listed}")
        if key not in options and key not in native:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            other = [b.name for b in BACKENDS.values()
                     if b is not backend and key in b.options]
            where = (f" (it is an option of the {other[0]} backend: "
                     f"mcmc={other[0]!r})") if other else ""
            raise FitInputError(f"mcmc_kwargs[{key!r}] is not an option of the "
                                f"{backend.name} backend{where}. {listed}{hint}")
        options[key] = value
    for key in set(options) & set(native):
        if isinstance(native[key], bool):
            options[key] = check_bool(key, options[key])
    options["seed"] = check_seed(options["seed"])
    options["progress"] = check_bool("progress", options["progress"])
    return backend.check_options(options, ndim)


def options_to_json(options: dict) -> dict:
    """Backend options in a JSON-able form (``moves`` by :func:`moves_to_json`,
    arrays as lists, dtypes as strings) that :func:`split_options` takes back,
    e.g. to resume a saved result."""
    out = dict(options)
    if "moves" in out:
        out["moves"] = moves_to_json(out["moves"])
    for key, value in out.items():
        if isinstance(value, np.ndarray):
            out[key] = value.tolist()
        elif isinstance(value, (np.dtype, type)):
            out[key] = np.dtype(value).str
    return out


# -- Counts ---------------------------------------------------------------------


def check_niter(niter) -> int:
    """``fit_map``'s ``niter`` as an int >= 1."""
    if not is_int(niter) or int(niter) < 1:
        raise FitInputError(f"niter must be an int >= 1 (the number of successive "
                            f"runs, each starting from the previous medians; "
                            f"astro-eddy's default is 1), got {niter!r}.")
    return int(niter)


def check_count(backend: Backend, arg: str, value, ndim: int | None = None) -> int:
    """One of ``fit_map``'s counts (``nwalkers``, ``nburnin``, ``nsteps``) as an
    int, the backend's default for ``None``.

    ``nwalkers`` must be >= 1 (an ensemble: >= 2 * ``ndim`` when ``ndim`` is given),
    ``nburnin`` and ``nsteps`` >= 0.
    """
    if value is None:
        value = backend.count_defaults[arg]
    own = backend.counts[arg]
    also = "" if own == arg else f"fit_map's {arg}; "
    minimum = 1 if arg == "nwalkers" else 0
    if not is_int(value) or int(value) < minimum:
        # One message for fit_map, the CLI, fit_many and the dashboard.
        raise FitInputError(f"{own} must be >= {minimum} ({also}an int >= {minimum}: "
                            f"the number of {backend.count_meaning(arg)}), got "
                            f"{value!r}.")
    value = int(value)
    message = backend.walkers_message(value, ndim) if arg == "nwalkers" else ""
    if message:
        raise FitInputError(message)
    return value


def check_counts(backend: Backend, ndim: int | None, nwalkers=None, nburnin=None,
                 nsteps=None) -> tuple[int, int, int]:
    """``(nwalkers, nburnin, nsteps)`` checked by :func:`check_count`."""
    return tuple(check_count(backend, arg, value, ndim)
                 for arg, value in zip(COUNT_ARGS, (nwalkers, nburnin, nsteps)))


def check_count_values(backend: Backend, arg: str, value, ndim: int | None = None
                       ) -> None:
    """Check a count of ``fit_map``, which may also be a list (one value per
    ``niter`` run, used in turn)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        values = list(np.asarray(value, dtype=object).ravel())
        if not values:
            raise FitInputError(f"{arg} is empty: give an int, or a list of ints "
                                f"(one per niter run, used in turn).")
        for item in values:
            check_count(backend, arg, item, ndim)
    else:
        check_count(backend, arg, value, ndim)


for _backend in (EmceeBackend(), NutsBackend(), ZeusBackend()):
    register(_backend)
