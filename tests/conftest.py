"""Shared fixtures: the bundled example at test size and fits made once per
session (short chains, fixed seeds)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from eddy_widgets.data import load_example  # noqa: E402
from eddy_widgets.rotationmap import rotationmap  # noqa: E402

#: The tutorial's 9 free parameters, with inc and dist fixed.
FREE = ["x0", "y0", "PA", "mstar", "vlsr", "z0", "psi", "r_taper", "q_taper"]
P0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]


def tutorial_params(cube) -> dict:
    params = {name: i for i, name in enumerate(FREE)}
    params.update(inc=46.7, dist=101.0, r_min=2.0 * cube.bmaj)
    return params


@pytest.fixture(scope="session")
def example():
    return load_example()


@pytest.fixture(scope="session")
def small_cube(example):
    """The bundled example at FOV 8 arcsec, downsample 8 (40 x 40 pixels)."""
    cube = rotationmap(example.v0, FOV=8.0, downsample=8)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    return cube


@pytest.fixture(scope="session")
def emcee_fit(small_cube):
    samples, result = small_cube.fit_map(
        P0, tutorial_params(small_cube), nwalkers=32, nburnin=800, nsteps=800,
        mcmc="emcee", mcmc_kwargs={"seed": 1, "progress": False}, plots="none",
        returns=["samples", "result"])
    return result


@pytest.fixture(scope="session")
def nuts_fit(small_cube):
    samples, result = small_cube.fit_map(
        P0, tutorial_params(small_cube), nwalkers=2, nburnin=300, nsteps=500,
        mcmc="numpyro", mcmc_kwargs={"seed": 1, "progress": False,
                                     "chain_method": "sequential"},
        plots="none", returns=["samples", "result"])
    return result


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def sd(result) -> np.ndarray:
    """Posterior standard deviation from the 16/84 percentiles."""
    p16, _, p84 = result.percentiles()
    return 0.5 * (p84 - p16)
