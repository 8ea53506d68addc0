"""Run controls on state (no browser): counts kept per backend, the warning
about NUTS chains that run one after another, Continue tied to the run it
continues, 'stopping' at once, stop latency, and a failed run's progress
line."""

from __future__ import annotations

import os

from eddy_widgets.inference.backends import BACKENDS
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import BackendSelector

# -- Counts per backend --------------------------------------------------------


def test_each_backend_keeps_its_own_counts_both_ways():
    session = FitSession()
    selector = BackendSelector(session)
    walkers = selector.counts["nwalkers"]
    selector.counts["nsteps"].value = 4000
    assert walkers.value == 32
    selector.backend.value = "numpyro"
    numpyro = BACKENDS["numpyro"].count_defaults
    assert session.nwalkers == numpyro["nwalkers"] == walkers.value
    assert selector.counts["nsteps"].value == numpyro["nsteps"]
    assert walkers.description == "num_chains"
    walkers.value = 4
    selector.backend.value = "emcee"
    assert (walkers.value, selector.counts["nsteps"].value) == (32, 4000)
    assert walkers.description == "nwalkers"
    selector.backend.value = "numpyro"
    assert walkers.value == 4
    assert session.counts_of("emcee")["nsteps"] == 4000
    assert session.to_fit_kwargs()["nwalkers"] == 4


def test_a_loaded_call_sets_the_counts_of_its_backend():
    session = FitSession.from_fit_kwargs([0.0], {"x0": 0}, mcmc="numpyro", nwalkers=3,
                                         nburnin=50, nsteps=60)
    assert (session.nwalkers, session.nburnin, session.nsteps) == (3, 50, 60)
    session.mcmc = "emcee"
    assert session.nwalkers == BACKENDS["emcee"].count_defaults["nwalkers"]
    session.mcmc = "numpyro"
    assert (session.nwalkers, session.nburnin, session.nsteps) == (3, 50, 60)


def test_sequential_nuts_chains_are_warned_about_in_words():
    session = FitSession()
    selector = BackendSelector(session)
    assert selector.chain_message.value == ""  # emcee
    selector.backend.value = "numpyro"
    assert selector.chain_message.value == ""  # one chain
    selector.counts["nwalkers"].value = 4
    text = selector.chain_message.value
    assert "4 NUTS chains" in text and "one after another" in text
    assert "about 4 times as long" in text
    selector.options["numpyro"]["chain_method"].value = "vectorized"
    assert selector.chain_message.value == ""
    selector.options["numpyro"]["chain_method"].value = "parallel"
    cores = os.cpu_count() or 1
    selector.counts["nwalkers"].value = cores + 1
    assert f"this machine has {cores}" in selector.chain_message.value
    selector.counts["nwalkers"].value = 1
    assert selector.chain_message.value == ""
