"""The fit engine: the astro-eddy tutorial as users run it, bad input, stop,
save, load and continue."""

from __future__ import annotations

from pathlib import Path
import runpy
import warnings

import numpy as np
import pytest

from eddy_widgets import FitResult, rotationmap
from eddy_widgets.inference.samplers import StopRequested

from helpers import FREE, P0, tutorial_params

TUTORIAL = Path(__file__).parent / "scripts" / "eddy_tutorial_numpyro.py"


def test_astro_eddy_tutorial_runs_unchanged(capsys, example):
    # The tutorial's code runs as written; a normal fit prints the parameter
    # order, the optimised start and a progress bar, and warns about nothing.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace = runpy.run_path(str(TUTORIAL))
    assert [str(w.message) for w in caught] == []
    out = capsys.readouterr()
    assert "p0 = [x0, y0, PA, mstar, vlsr, z0, psi, r_taper, q_taper]" in out.out
    assert "Optimized starting positions" in out.out
    assert "400/400" in out.err  # tqdm's bar: 200 warmup + 200 draws
    samples, percentiles = namespace["samples"]
    assert samples.shape == (200, 9)
    assert percentiles.shape == (3, 9)
    cube = namespace["cube"]
    assert list(cube.figures) == [*(f"walkers_{n}" for n in FREE), "corner",
                                  "bestfit", "residual"]
    # Even 200 draws land on the truths.
    truth = np.array([example.truths[n] for n in FREE])
    width = 0.5 * (percentiles[2] - percentiles[0])
    assert np.all(np.abs(percentiles[1] - truth) < 4 * width)


# -- Bad input --------------------------------------------------------------


def test_p0_outside_prior(small_cube):
    p0 = list(P0)
    p0[FREE.index("r_taper")] = 60.0
    with pytest.raises(ValueError, match=r"r_taper.*outside its prior.*set_prior"):
        small_cube.fit_map(p0, tutorial_params(small_cube), plots="none")


def test_unbounded_prior_under_nuts_warns_before_the_run(example):
    cube = rotationmap(example.v0, FOV=8.0, downsample=8)  # default r_taper prior
    with pytest.warns(UserWarning, match=r"unbounded flat prior on r_taper.*"
                                          r"set_prior\('r_taper', \[0"):
        cube.prepare_fit(P0, tutorial_params(cube), optimize=False, mcmc="numpyro",
                         nwalkers=1, nburnin=1, nsteps=1, verbose=False)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(mstr=3), "Did you mean 'mstar'"),
    (lambda p: p.update(x0=1), "both point at p0"),
    (lambda p: p.update(q_taper=9), "indices must be 0..8"),
    (lambda p: p.update(inc="46.7"), "use an int"),
    (lambda p: p.update(r_min=5.0, r_max=1.0), "r_min .* smaller than r_max"),
])
def test_bad_params(small_cube, change, message):
    params = tutorial_params(small_cube)
    change(params)
    with pytest.raises(ValueError, match=message):
        small_cube.fit_map(P0, params, plots="none")


def test_bad_p0_length_backend_and_options(small_cube):
    params = tutorial_params(small_cube)
    with pytest.raises(ValueError, match="p0 has 8 values but params has 9"):
        small_cube.fit_map(P0[:-1], params)
    with pytest.raises(ValueError, match="Unknown mcmc backend 'stan'"):
        small_cube.fit_map(P0, params, mcmc="stan")
    with pytest.raises(ValueError, match="not an option of the numpyro backend"):
        small_cube.fit_map(P0, params, mcmc="numpyro", mcmc_kwargs={"moves": None})
    with pytest.raises(ValueError, match="at least 2 x 9 = 18 walkers"):
        small_cube.fit_map(P0, params, nwalkers=10, optimize=False)
    with pytest.raises(ValueError, match="Unknown plots"):
        small_cube.fit_map(P0, params, plots=["walker"])


def test_bad_priors(small_cube):
    from eddy_widgets.inference.priors import PriorError

    with pytest.raises(PriorError, match="low < high"):
        small_cube.set_prior("mstar", [2.0, 2.0], "flat")
    with pytest.raises(PriorError, match="sigma > 0"):
        small_cube.set_prior("mstar", [2.0, -1.0], "gaussian")
    with pytest.raises(PriorError, match="'flat' or 'gaussian'"):
        small_cube.set_prior("mstar", [1.0, 3.0], "uniform")
    # Nothing set before is lost by a rejected prior.
    assert small_cube.priors["r_taper"].b == 50.0


# -- Stop, save, load, continue ------------------------------------------------


def _stopper(after_draws):
    seen = []

    def callback(chunk, info):
        seen.append(chunk.draws.copy())
        if info.done >= after_draws:
            raise StopRequested

    return callback, seen


@pytest.mark.parametrize("mcmc, nwalkers", [("emcee", 20), ("numpyro", 2)])
def test_stopped_run_keeps_every_draw_and_continues_exactly(small_cube, tmp_path, mcmc,
                                                            nwalkers):
    # A run stopped part way keeps every draw handed out; after saving and
    # loading, continuing it gives exactly the draws of an uninterrupted run.
    params = tutorial_params(small_cube)
    kwargs = dict(nwalkers=nwalkers, nburnin=10, nsteps=30, mcmc=mcmc,
                  mcmc_kwargs={"seed": 7})
    full = small_cube.prepare_fit(P0, params, verbose=False, **kwargs)
    reference = full.run()
    assert not reference.stopped

    run = small_cube.prepare_fit(P0, params, verbose=False, **kwargs)
    stopper, seen = _stopper(after_draws=15)
    stopped = run.run([stopper])
    assert stopped.stopped
    kept = np.concatenate([stopped.chains["warmup"], stopped.chains["sampling"]], axis=1)
    assert kept.shape[1] == sum(s.shape[1] for s in seen) >= 15
    np.testing.assert_array_equal(kept, np.concatenate(seen, axis=1))

    path = tmp_path / "run.npz"
    stopped.save(path)
    loaded = FitResult.load(path)
    assert loaded == stopped
    np.testing.assert_array_equal(loaded.percentiles(), stopped.percentiles())

    resumed = small_cube.continue_fit(result=loaded, progress=False)
    assert not resumed.stopped
    for phase in ("warmup", "sampling"):
        np.testing.assert_allclose(resumed.chains[phase], reference.chains[phase],
                                   rtol=1e-10, atol=1e-12)


def test_continue_adds_draws(small_cube):
    small_cube.fit_map(P0, tutorial_params(small_cube), nwalkers=20, nburnin=5,
                       nsteps=10, mcmc_kwargs={"progress": False, "seed": 2},
                       plots="none", returns="none")
    result = small_cube.continue_fit(nsteps=15, progress=False)
    assert result.chains["sampling"].shape == (20, 25, 9)
    assert result.n_samples_target == 25


def test_keyboard_interrupt_keeps_draws(small_cube):
    def interrupt(chunk, info):
        if info.done >= 8:
            raise KeyboardInterrupt

    run = small_cube.prepare_fit(P0, tutorial_params(small_cube), nwalkers=20,
                                 nburnin=5, nsteps=50, verbose=False)
    result = run.run([interrupt])
    assert result.stopped and result.n_draws("warmup") == 5
    assert result.n_draws("sampling") >= 3


@pytest.mark.parametrize("mcmc", ["emcee", "numpyro"])
def test_seed_offset_gives_other_chains_the_same_as_another_seed(small_cube, mcmc,
                                                                 monkeypatch):
    # EDDY_WIDGETS_SEED_OFFSET (the notebooks' perturbed test run) moves every
    # sampler seed: seed 0 with offset 1 runs the chains of seed 1.
    def draws(seed):
        result = small_cube.fit_map(
            P0, tutorial_params(small_cube), nwalkers=20 if mcmc == "emcee" else 1,
            nburnin=10, nsteps=10, mcmc=mcmc,
            mcmc_kwargs={"seed": seed, "progress": False}, plots="none",
            returns="result")
        return result.samples

    monkeypatch.delenv("EDDY_WIDGETS_SEED_OFFSET", raising=False)
    plain, other = draws(0), draws(1)
    assert not np.array_equal(plain, other)
    monkeypatch.setenv("EDDY_WIDGETS_SEED_OFFSET", "1")
    np.testing.assert_array_equal(draws(0), other)
    monkeypatch.setenv("EDDY_WIDGETS_SEED_OFFSET", "one")
    with pytest.raises(ValueError, match="EDDY_WIDGETS_SEED_OFFSET must be an integer"):
        draws(0)
