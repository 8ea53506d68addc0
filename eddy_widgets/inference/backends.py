"""The one table of MCMC backends: names of the counts, options and defaults.

``fit_map`` keeps astro-eddy's count names for every backend; for numpyro they
mean numpyro's own names. The backend selector widget reads its labels from
here, and so does the numpyro tutorial's mapping table.

``mcmc_kwargs`` holds our options (the table's: ``seed``, ``progress``,
``scatter``, ``moves``, ``max_tree_depth``, ``chain_method``, ...) and, as in
astro-eddy, the backend library's own arguments: those of
``emcee.EnsembleSampler`` and its ``sample`` method, or of numpyro's ``NUTS``,
read from their signatures (:func:`native_options`). Arguments that
``fit_map`` sets itself, or that cannot work when draws are streamed in
chunks from one compiled call, are refused with the reason
(:data:`REFUSED`).

The checks of ``fit_map``'s counts and ``mcmc_kwargs`` live here too, so that
a bad value fails before the optimiser runs, with a message that says what to
change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import difflib
import inspect
import math
import numbers

import numpy as np

from .moves import MOVE_ALIASES, move_names, moves_to_json, normalise_moves
from .spec import FitInputError

__all__ = ["BACKENDS", "CHAIN_METHODS", "COUNT_ARGS", "MOVE_ALIASES", "REFUSED",
           "Backend", "check_count", "check_count_values", "check_counts",
           "check_niter", "get_backend", "move_names", "moves_to_json",
           "native_options", "normalise_moves", "options_to_json", "sampler_kwargs",
           "split_options"]

#: fit_map's count arguments, in display order.
COUNT_ARGS = ("nwalkers", "nburnin", "nsteps")


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    #: fit_map count name -> the backend's own name for it.
    counts: dict
    #: default values of the counts (by fit_map name).
    count_defaults: dict
    #: options accepted in mcmc_kwargs, with their defaults.
    options: dict = field(default_factory=dict)

    def count_label(self, arg: str) -> str:
        """Label of a count field, e.g. ``'num_warmup'`` for numpyro's nburnin."""
        return self.counts[arg]

    def mapping_rows(self) -> list[tuple[str, str]]:
        """``(fit_map kwarg, backend name)`` rows of the mapping table."""
        return [(arg, self.counts[arg]) for arg in COUNT_ARGS]


BACKENDS: dict[str, Backend] = {
    "emcee": Backend(
        name="emcee",
        description="affine-invariant ensemble sampler (no gradients); "
                    "all walkers evaluated in one compiled call",
        counts={"nwalkers": "nwalkers", "nburnin": "nburnin", "nsteps": "nsteps"},
        count_defaults={"nwalkers": 32, "nburnin": 300, "nsteps": 100},
        options={"seed": 0, "progress": True, "scatter": 1e-3, "moves": None},
    ),
    "numpyro": Backend(
        name="numpyro",
        description="No-U-Turn sampler (numpyro) on the JAX gradient, started "
                    "at the optimum with the posterior's curvature as metric",
        counts={"nwalkers": "num_chains", "nburnin": "num_warmup",
                "nsteps": "num_samples"},
        count_defaults={"nwalkers": 1, "nburnin": 300, "nsteps": 100},
        options={"seed": 0, "progress": True, "max_tree_depth": 8,
                 "chain_method": "sequential", "dense_mass": True,
                 "target_accept_prob": 0.8},
    ),
}

#: The chain methods numpyro understands.
CHAIN_METHODS = ("sequential", "parallel", "vectorized")

#: Usual range of numpyro's max_tree_depth (2**15 leapfrog steps per draw is
#: already far more than a well-scaled posterior needs).
TREE_DEPTH_USUAL = (1, 15)
#: Above this the leapfrog count of a draw (up to 2**depth - 1) no longer fits
#: the int32 step counts the NUTS sampler reports.
TREE_DEPTH_MAX = 30

_LOG_PROB = ("the log-probability is the map's posterior, made from params and the "
             "priors (set_prior)")
_START = ("the walkers start around the (optimised) p0, spread by mcmc_kwargs"
          "['scatter'], with the random state of mcmc_kwargs['seed']")
_EMCEE_DEPRECATED = "deprecated by emcee 3, which ignores it"

#: Arguments of the backend libraries that mcmc_kwargs cannot take, and why.
REFUSED: dict[str, dict[str, str]] = {
    "emcee": {
        "nwalkers": "set by fit_map's nwalkers",
        "ndim": "the number of free parameters in params",
        "log_prob_fn": _LOG_PROB, "args": _LOG_PROB, "kwargs": _LOG_PROB,
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
        "initial_state": _START, "log_prob0": _START, "rstate0": _START,
        "blobs0": _START,
        "iterations": "the run's length is nburnin + nsteps",
        "nsteps": "set by fit_map's nburnin + nsteps",
        "store": "every draw is kept by the FitResult (result.get_chain())",
        "thin": ("deprecated by emcee, and without effect when draws are streamed: "
                 "use thin_by"),
        "progress_kwargs": ("the progress bar is eddy_widgets' own; turn it off with "
                            "mcmc_kwargs={'progress': False}"),
        "a": f"{_EMCEE_DEPRECATED}; use moves=emcee.moves.StretchMove(a=...)",
        "postargs": _EMCEE_DEPRECATED, "threads": _EMCEE_DEPRECATED,
        "live_dangerously": _EMCEE_DEPRECATED, "runtime_sortingfn": _EMCEE_DEPRECATED,
    },
    "numpyro": {
        "model": _LOG_PROB, "potential_fn": _LOG_PROB,
        "kinetic_fn": ("a custom kinetic energy cannot be stored with the result, so "
                       "a checkpoint or continue_fit could not rebuild the sampler"),
        "init_strategy": ("every chain starts at the (optimised) p0, the first exactly "
                          "and the others a quarter of a posterior width away; set "
                          "the start with p0 (and optimize)"),
        "num_chains": "set by fit_map's nwalkers",
        "num_warmup": "set by fit_map's nburnin",
        "num_samples": "set by fit_map's nsteps",
        "progress_bar": "use mcmc_kwargs={'progress': False}",
    },
}


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
    if backend.name == "emcee":
        import emcee

        sigs = [inspect.signature(emcee.EnsembleSampler),
                inspect.signature(emcee.EnsembleSampler.sample)]
    else:
        from numpyro.infer import NUTS

        sigs = [inspect.signature(NUTS)]
    refused = REFUSED[backend.name]
    out = {}
    for sig in sigs:
        for p in sig.parameters.values():
            if p.name in ("self",) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name not in backend.options and p.name not in refused:
                out[p.name] = None if p.default is p.empty else p.default
    return out


def library_name(backend: Backend) -> str:
    """Where the native options go, in words."""
    return ("emcee.EnsembleSampler and its sample()" if backend.name == "emcee"
            else "numpyro.infer.NUTS")


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
    native = native_options(backend)
    valid = sorted(backend.options) + sorted(native)
    if mcmc_kwargs is not None and not isinstance(mcmc_kwargs, dict):
        raise FitInputError(f"mcmc_kwargs must be a dict of {backend.name} options "
                            f"({', '.join(valid)}), got {mcmc_kwargs!r}.")
    options = dict(backend.options)
    listed = (f"Valid: {', '.join(sorted(backend.options))} (eddy_widgets) and "
              f"{', '.join(sorted(native))} (passed to {library_name(backend)}).")
    for key, value in (mcmc_kwargs or {}).items():
        if key in REFUSED[backend.name]:
            raise FitInputError(f"mcmc_kwargs[{key!r}] cannot be used with the "
                                f"{backend.name} backend: "
                                f"{REFUSED[backend.name][key]}. {listed}")
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
        options[key] = _check_native(key, options[key], native[key], ndim)
    options["seed"] = _check_seed(options["seed"])
    options["progress"] = _check_bool("progress", options["progress"])
    if "scatter" in options:
        options["scatter"] = _check_scatter(options["scatter"])
    if "moves" in options:
        options["moves"] = normalise_moves(options["moves"])
    if "max_tree_depth" in options:
        options["max_tree_depth"] = _check_tree_depth(options["max_tree_depth"])
    if "chain_method" in options and options["chain_method"] not in CHAIN_METHODS:
        raise FitInputError(f"chain_method must be one of "
                            f"{', '.join(repr(m) for m in CHAIN_METHODS)}, not "
                            f"{options['chain_method']!r}.")
    if "dense_mass" in options:
        options["dense_mass"] = _check_bool("dense_mass", options["dense_mass"])
    if "target_accept_prob" in options:
        options["target_accept_prob"] = _check_accept(options["target_accept_prob"])
    return options


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


def _check_native(key: str, value, default, ndim: int | None):
    """One library argument of mcmc_kwargs, checked as far as its meaning
    is known; others pass as given (the library checks them)."""
    if isinstance(default, bool):
        return _check_bool(key, value)
    if key == "thin_by":
        if not _is_int(value) or int(value) < 1:
            raise FitInputError(f"mcmc_kwargs['thin_by'] must be an int >= 1 (keep one "
                                f"step in thin_by; nburnin and nsteps count the kept "
                                f"ones, as in emcee's run_mcmc), got {value!r}.")
        return int(value)
    if key in ("step_size", "trajectory_length"):
        if value is None and key == "trajectory_length":
            return None
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
                or not math.isfinite(float(value)) or not float(value) > 0.0):
            raise FitInputError(f"mcmc_kwargs[{key!r}] must be a finite number > 0, "
                                f"got {value!r}.")
        return float(value)
    if key == "inverse_mass_matrix":
        return _check_mass_matrix(value, ndim)
    return value


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


# -- Counts ---------------------------------------------------------------------


def _is_int(value) -> bool:
    """An int (numpy ints included, bools not), or a float with a whole value."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return (isinstance(value, numbers.Real) and math.isfinite(float(value))
            and float(value).is_integer())


def check_niter(niter) -> int:
    """``fit_map``'s ``niter`` as an int >= 1."""
    if not _is_int(niter) or int(niter) < 1:
        raise FitInputError(f"niter must be an int >= 1 (the number of successive "
                            f"runs, each starting from the previous medians; "
                            f"astro-eddy's default is 1), got {niter!r}.")
    return int(niter)


def check_count(backend: Backend, arg: str, value, ndim: int | None = None) -> int:
    """One of ``fit_map``'s counts (``nwalkers``, ``nburnin``, ``nsteps``) as an
    int, the backend's default for ``None``.

    ``nwalkers`` must be >= 1 (emcee: >= 2 * ``ndim`` when ``ndim`` is given),
    ``nburnin`` and ``nsteps`` >= 0.
    """
    if value is None:
        value = backend.count_defaults[arg]
    own = backend.counts[arg]
    label = arg if own == arg else f"{arg} ({backend.name}: {own})"
    minimum = 1 if arg == "nwalkers" else 0
    if not _is_int(value) or int(value) < minimum:
        what = {"nwalkers": "walkers" if backend.name == "emcee" else "chains",
                "nburnin": "burn-in steps" if backend.name == "emcee"
                           else "warmup draws per chain",
                "nsteps": "steps after burn-in" if backend.name == "emcee"
                          else "draws per chain after warmup"}[arg]
        raise FitInputError(f"{label} must be an int >= {minimum} (the number of "
                            f"{what}), got {value!r}.")
    value = int(value)
    if arg == "nwalkers" and backend.name == "emcee" and ndim is not None \
            and value < 2 * ndim:
        raise FitInputError(f"emcee needs at least 2 x {ndim} = {2 * ndim} walkers "
                            f"for {ndim} free parameters; got nwalkers={value}. "
                            f"Pass nwalkers={2 * ndim} or more.")
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


# -- Option values -----------------------------------------------------------------


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise FitInputError(f"mcmc_kwargs[{name!r}] must be True or False, got "
                            f"{value!r}.")
    return bool(value)


def _check_seed(value) -> int:
    if not _is_int(value) or not 0 <= int(value) < 2 ** 32:
        raise FitInputError(f"mcmc_kwargs['seed'] must be an int >= 0 (below 2**32), "
                            f"got {value!r}.")
    return int(value)


def _check_scatter(value) -> float:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value)) or not float(value) > 0.0):
        raise FitInputError(f"scatter (the relative spread of the emcee walkers "
                            f"around the start) must be a finite number > 0, e.g. "
                            f"1e-3, got {value!r}.")
    return float(value)


def _check_tree_depth(value) -> int:
    low, high = TREE_DEPTH_USUAL
    if not _is_int(value) or not 1 <= int(value) <= TREE_DEPTH_MAX:
        raise FitInputError(
            f"mcmc_kwargs['max_tree_depth'] must be an int >= 1 (at most "
            f"{TREE_DEPTH_MAX}; usually {low}..{high}, default "
            f"{BACKENDS['numpyro'].options['max_tree_depth']}): each NUTS draw takes "
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
