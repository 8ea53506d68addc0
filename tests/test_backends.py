"""The sampler backends: one module each behind one interface.

- A toy backend, registered in one place, runs a fit, saves, loads and
  continues, is judged by the verdict and offered by the dashboard, without a
  line of the package changed: what adding a sampler takes.
- zeus (``mcmc='zeus'``): seeded, stoppable and continuable as emcee is,
  though it draws from numpy's global generator and adapts its scale factor
  ``mu`` while it runs; two runs in two threads keep their own streams.
- Nothing outside the backends package compares backend names.
"""

from __future__ import annotations

import math
from pathlib import Path
import re
import threading

import numpy as np
import pytest

from eddy_widgets import FitResult
from eddy_widgets.inference.backends import (
    BACKENDS,
    REFUSED,
    Backend,
    ChainStat,
    available_backends,
    register,
)

from helpers import P0, tutorial_params

PACKAGE = Path(__file__).resolve().parents[1] / "eddy_widgets"

SMALL = dict(x0=0, y0=1, PA=2, mstar=3, vlsr=4)
SMALL_P0 = [0.0, 0.0, 312.0, 2.0, 5.7e3]


def small_params(cube) -> dict:
    return dict(SMALL, inc=46.7, dist=101.0, z0=0.26, psi=1.7, r_taper=3.0,
                q_taper=2.0, r_min=2.0 * cube.bmaj)


# ----------------------------------------------------------------------------
# A toy backend
# ----------------------------------------------------------------------------


class ToySampler:
    """Independent Gaussian draws around the start, one row of walkers per
    step: a sampler that is nothing but the streaming interface."""

    def __init__(self, posterior, nwalkers, theta0, seed, state=None):
        self.posterior = posterior
        self.nchains = nwalkers
        self.theta0 = np.asarray(theta0, dtype=float)
        self.scale = 1e-3 * np.maximum(np.abs(self.theta0), 1.0)
        self.rng = np.random.default_rng(seed)
        if state is not None:
            self.load_state(state)

    def set_options(self, **native):
        pass

    def advance(self, k):
        ndim = self.theta0.size
        # Step by step, so that the chunk sizes do not change the stream.
        steps = [self.rng.standard_normal((self.nchains, ndim)) for _ in range(k)]
        draws = self.theta0 + self.scale * np.stack(steps, axis=1).reshape(
            self.nchains, k, ndim)
        logp = self.posterior.log_prob_numpy(draws.reshape(-1, ndim)).reshape(
            self.nchains, k)
        return draws, logp, {"jitter": np.full((self.nchains, k), 0.5)}

    def snapshot(self):
        return self.rng.bit_generator.state

    def restore(self, snapshot):
        self.rng.bit_generator.state = snapshot

    def export_state(self):
        return {"rng": np.asarray(repr(self.rng.bit_generator.state))}

    def load_state(self, saved):
        import ast

        self.rng.bit_generator.state = ast.literal_eval(str(saved["rng"]))


class ToyBackend(Backend):
    name = "toy"
    description = "independent draws around the start (a test's backend)"
    counts = {"nwalkers": "ndraws", "nburnin": "nskip", "nsteps": "nkeep"}
    count_defaults = {"nwalkers": 4, "nburnin": 5, "nsteps": 50}
    options = {"seed": 0, "progress": True}
    chain_stats = {"jitter": ChainStat("a toy statistic")}

    def make_sampler(self, posterior, theta0, nwalkers, nburnin, options, state,
                     result=None):
        return ToySampler(posterior, nwalkers, theta0, options["seed"], state)

    def parameter_diagnostics(self, x):
        nchains, n = x.shape
        return {"ess": float(nchains * n), "tau": 1.0, "n_tau": float(n)}

    def convergence_notes(self, result, diag):
        return [], [], False

    def summary(self, stats, settings):
        return {"mean_jitter": float(stats["jitter"].mean())}


@pytest.fixture
def toy():
    backend = register(ToyBackend())
    try:
        yield backend
    finally:
        BACKENDS.pop("toy", None)
        REFUSED.pop("toy", None)


def test_a_backend_registered_in_one_place_fits_saves_continues_and_is_offered(
        toy, small_cube, tmp_path):
    from eddy_widgets.session import FitSession
    from eddy_widgets.widgets.backend import BackendSelector
    from eddy_widgets.widgets.chains import ChainView

    params = small_params(small_cube)
    result = small_cube.fit_map(SMALL_P0, params, nwalkers=3, nburnin=4, nsteps=30,
                                mcmc="toy", mcmc_kwargs={"seed": 5, "progress": False},
                                plots="none", returns="result", verdict=False)
    assert result.backend == "toy" and result.chains["sampling"].shape == (3, 30, 5)
    assert result.sampler_summary()["mean_jitter"] == 0.5
    assert result.converged and result.verdict_text().startswith("Verdict: converged")
    # The counts under the backend's own names, in fit_map's errors too.
    with pytest.raises(ValueError, match=r"nkeep must be >= 0 \(fit_map's nsteps"):
        small_cube.fit_map(SMALL_P0, params, nsteps=-1, mcmc="toy")
    with pytest.raises(ValueError, match="'moves'.*not an option of the toy backend"):
        small_cube.fit_map(SMALL_P0, params, mcmc="toy", mcmc_kwargs={"moves": "de"})
    # Saved, loaded and continued: the same stream as one longer run.
    path = result.save(tmp_path / "toy.npz")
    again = small_cube.continue_fit(nsteps=10, result=FitResult.load(path),
                                    progress=False)
    longer = small_cube.fit_map(SMALL_P0, params, nwalkers=3, nburnin=4, nsteps=40,
                                mcmc="toy", mcmc_kwargs={"seed": 5, "progress": False},
                                plots="none", returns="result", verdict=False)
    np.testing.assert_array_equal(again.chains["sampling"],
                                  longer.chains["sampling"])
    # The dashboard offers it, under its own count names, and draws its stats.
    assert "toy" in available_backends()
    session = FitSession(cube=small_cube)
    selector = BackendSelector(session)
    assert "toy" in selector.backend.options
    session.mcmc = "toy"
    assert selector.counts["nsteps"].description == "nkeep"
    view = ChainView(session, min_interval=0.0)
    view._rebuild_from_result(result)
    assert "jitter" in view.panels and "acceptance" not in view.panels


def test_nothing_outside_the_backends_compares_backend_names():
    # Adding a sampler touches its module, its registration and its tests:
    # no other module asks "is this emcee?".
    pattern = re.compile(r"""(==|!=)\s*["'](emcee|numpyro|zeus)["']|"""
                         r"""["'](emcee|numpyro|zeus)["']\s*(==|!=)""")
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "backends" in path.relative_to(PACKAGE).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line.split("#", 1)[0]):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []


# ----------------------------------------------------------------------------
# zeus
# ----------------------------------------------------------------------------


def _zeus(cube, nsteps=40, seed=3, **kwargs):
    return cube.fit_map(SMALL_P0, small_params(cube), nwalkers=12, nburnin=10,
                        nsteps=nsteps, mcmc="zeus",
                        mcmc_kwargs={"seed": seed, "progress": False, **kwargs},
                        plots="none", returns="result", verdict=False,
                        optimize=False)


def test_zeus_is_seeded_and_leaves_numpys_global_generator_alone(small_cube):
    np.random.seed(123)
    outside = np.random.get_state()[1].copy()
    first = _zeus(small_cube)
    assert np.array_equal(np.random.get_state()[1], outside), "global state changed"
    assert first.backend == "zeus" and first.chains["sampling"].shape == (12, 40, 5)
    again = _zeus(small_cube)
    np.testing.assert_array_equal(first.chains["sampling"], again.chains["sampling"])
    other = _zeus(small_cube, seed=4)
    assert not np.array_equal(first.chains["sampling"], other.chains["sampling"])
    summary = first.sampler_summary()
    assert summary["evaluations_per_step"] > 1 and summary["scale_factor"] > 0
    # An ensemble: emcee's layout, autocorrelation diagnostics, walkers.
    assert first.get_chain().shape == (50, 12, 5)
    assert math.isfinite(first.diagnostics()["mstar"]["tau"])
    assert math.isnan(first.diagnostics()["mstar"]["r_hat"])
    assert BACKENDS["zeus"].unit == "walker"


def test_zeus_stop_and_continue_from_a_file_equal_one_run(small_cube, tmp_path):
    # mu and the generator's state travel in the result: a run saved after
    # 20 steps (tuning over by then) and continued to 40 equals one of 40.
    whole = _zeus(small_cube, nsteps=40)
    part = _zeus(small_cube, nsteps=20)
    assert part.sampler_state["tune"] == np.asarray(False)
    loaded = FitResult.load(part.save(tmp_path / "zeus.npz"))
    assert float(loaded.sampler_state["mu"]) == float(part.sampler_state["mu"])
    continued = small_cube.continue_fit(nsteps=20, result=loaded, progress=False)
    np.testing.assert_array_equal(continued.chains["sampling"],
                                  whole.chains["sampling"])


def test_two_zeus_runs_in_two_threads_keep_their_own_streams(small_cube):
    alone = {seed: _zeus(small_cube, seed=seed).chains["sampling"] for seed in (3, 4)}
    together, errors = {}, []

    def run(seed):
        try:
            together[seed] = _zeus(small_cube, seed=seed).chains["sampling"]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for seed in (3, 4):
        np.testing.assert_array_equal(together[seed], alone[seed])


def test_zeus_refuses_what_cannot_work_and_needs_an_even_ensemble(small_cube):
    params = small_params(small_cube)
    with pytest.raises(ValueError, match="even number of walkers.*nwalkers=13"):
        small_cube.fit_map(SMALL_P0, params, nwalkers=13, mcmc="zeus")
    with pytest.raises(ValueError, match="at least 2 x 5 = 10 walkers"):
        small_cube.fit_map(SMALL_P0, params, nwalkers=8, mcmc="zeus")
    with pytest.raises(ValueError, match="'pool'.*compiled"):
        small_cube.fit_map(SMALL_P0, params, mcmc="zeus", mcmc_kwargs={"pool": 2})
    with pytest.raises(ValueError, match=r"mcmc_kwargs\['mu'\] must be a finite number > 0"):
        small_cube.fit_map(SMALL_P0, params, mcmc="zeus", mcmc_kwargs={"mu": "big"})
    with pytest.raises(ValueError, match=r"mcmc_kwargs\['patience'\] must be an int"):
        small_cube.fit_map(SMALL_P0, params, mcmc="zeus", mcmc_kwargs={"patience": 0})
    with pytest.raises(ValueError, match="'moves'.*differential move"):
        small_cube.fit_map(SMALL_P0, params, mcmc="zeus", mcmc_kwargs={"moves": []})


def test_zeus_runs_the_tutorial_fit_to_the_truths(small_cube, example):
    # The nine-parameter tutorial fit, its verdict by the ensemble rules.
    result = small_cube.fit_map(P0, tutorial_params(small_cube), nwalkers=20,
                                nburnin=100, nsteps=300, mcmc="zeus",
                                mcmc_kwargs={"seed": 0, "progress": False},
                                plots="none", returns="result", verdict=False)
    p16, p50, p84 = result.percentiles()
    for i, name in enumerate(result.names):
        sd = 0.5 * (p84[i] - p16[i])
        assert abs(p50[i] - example.truths[name]) < 4 * sd, name
    assert any("tau" in w for w in result.warnings) or result.converged
