"""Shared fixtures: the bundled example at test size and fits made once per
session (short chains, fixed seeds)."""

from __future__ import annotations

import signal

import matplotlib

matplotlib.use("Agg")

# A suite started in the background by a shell without job control (nohup
# ... &) inherits SIGINT ignored, and so would every process it starts: the
# Ctrl-C tests send real SIGINTs, so give this process (and through exec its
# children) Python's own handler back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402

from eddy_widgets.data import load_example  # noqa: E402
from eddy_widgets.rotationmap import rotationmap  # noqa: E402

from helpers import P0, tutorial_params  # noqa: E402


@pytest.fixture(scope="session")
def example():
    return load_example()


@pytest.fixture(scope="module")
def cube(example):
    """The bundled example at FOV 4 arcsec, every 8th pixel (20 x 20): a short
    fit takes a fraction of a second after the first compilation. One per
    module, as tests may set priors on it; modules that need another cut of
    the map define their own ``cube``."""
    return rotationmap(example.v0, FOV=4.0, downsample=8)


@pytest.fixture
def in_tmp_path(tmp_path, monkeypatch):
    """Run in a fresh directory: fits write their checkpoints under the
    working directory, keep them out of the repository. Modules whose tests
    all run fits use it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def small_cube(example):
    """The bundled example at FOV 8 arcsec, downsample 8 (40 x 40 pixels)."""
    cube = rotationmap(example.v0, FOV=8.0, downsample=8)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    return cube


@pytest.fixture(scope="session")
def standard_cube(example):
    """The benchmark's standard problem: FOV 8 arcsec, downsample 4 (80 x 80)."""
    cube = rotationmap(example.v0, FOV=8.0, downsample=4)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    return cube


@pytest.fixture(scope="session")
def emcee_fit(standard_cube):
    samples, result = standard_cube.fit_map(
        P0, tutorial_params(standard_cube), nwalkers=32, nburnin=800, nsteps=800,
        mcmc="emcee", mcmc_kwargs={"seed": 1, "progress": False}, plots="none",
        returns=["samples", "result"])
    return result


@pytest.fixture(scope="session")
def nuts_fit(standard_cube):
    samples, result = standard_cube.fit_map(
        P0, tutorial_params(standard_cube), nwalkers=2, nburnin=300, nsteps=500,
        mcmc="numpyro", mcmc_kwargs={"seed": 1, "progress": False,
                                     "chain_method": "sequential"},
        plots="none", returns=["samples", "result"])
    return result


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")

