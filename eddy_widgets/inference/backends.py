"""The one table of MCMC backends: names of the counts, options and defaults.

``fit_map`` keeps astro-eddy's count names for every backend; for numpyro they
mean numpyro's own names. The backend selector widget reads its labels from
here, and so does the numpyro tutorial's mapping table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def get_backend(name: str) -> Backend:
    """Look up a backend by name with an error that lists the choices."""
    key = str(name).lower()
    if key not in BACKENDS:
        raise ValueError(f"Unknown mcmc backend {name!r}: choose one of "
                         f"{', '.join(repr(k) for k in BACKENDS)}.")
    return BACKENDS[key]


def split_options(backend: Backend, mcmc_kwargs: dict | None) -> dict:
    """Backend options from ``mcmc_kwargs`` over the defaults; unknown keys raise."""
    options = dict(backend.options)
    for key, value in (mcmc_kwargs or {}).items():
        if key not in options:
            raise ValueError(f"mcmc_kwargs[{key!r}] is not an option of the "
                             f"{backend.name} backend; it accepts "
                             f"{', '.join(sorted(options))}.")
        options[key] = value
    if backend.name == "numpyro" and options["chain_method"] not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, not "
                         f"{options['chain_method']!r}.")
    return options
