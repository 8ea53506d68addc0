"""Checks of option values shared by the backends (each raises
:class:`~eddy_widgets.inference.spec.FitInputError` with what to change)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..spec import FitInputError

#: Text for arguments that would replace the posterior.
LOG_PROB = ("the log-probability is the map's posterior, made from params and the "
            "priors (set_prior)")
#: Text for arguments that would replace an ensemble's start.
ENSEMBLE_START = ("the walkers start around the (optimised) p0, spread by "
                  "mcmc_kwargs['scatter'], with the random state of "
                  "mcmc_kwargs['seed']")


def is_int(value) -> bool:
    """An int (numpy ints included, bools not), or a float with a whole value."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return (isinstance(value, numbers.Real) and math.isfinite(float(value))
            and float(value).is_integer())


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise FitInputError(f"mcmc_kwargs[{name!r}] must be True or False, got "
                            f"{value!r}.")
    return bool(value)


def check_seed(value) -> int:
    if not is_int(value) or not 0 <= int(value) < 2 ** 32:
        raise FitInputError(f"mcmc_kwargs['seed'] must be an int >= 0 (below 2**32), "
                            f"got {value!r}.")
    return int(value)


def check_positive(name: str, value) -> float:
    """A finite number > 0."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value)) or not float(value) > 0.0):
        raise FitInputError(f"mcmc_kwargs[{name!r}] must be a finite number > 0, "
                            f"got {value!r}.")
    return float(value)


def check_scatter(value) -> float:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value)) or not float(value) > 0.0):
        raise FitInputError(f"scatter (the relative spread of the walkers around "
                            f"the start) must be a finite number > 0, e.g. 1e-3, got "
                            f"{value!r}.")
    return float(value)


def check_thin_by(value) -> int:
    if not is_int(value) or int(value) < 1:
        raise FitInputError(f"mcmc_kwargs['thin_by'] must be an int >= 1 (keep one "
                            f"step in thin_by; nburnin and nsteps count the kept "
                            f"ones, as in emcee's run_mcmc), got {value!r}.")
    return int(value)
