"""Bad fit set-ups fail up front with a message that says what is wrong and
what to do, before the optimiser runs and before anything is compiled."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from eddy_widgets.inference.backends import get_backend, split_options
from eddy_widgets.inference.priors import PriorError

from helpers import FREE, P0, tutorial_params

# The module (the package's ``rotationmap`` attribute is the class).
rotationmap_module = importlib.import_module("eddy_widgets.rotationmap")


class WorkStarted(AssertionError):
    """The fit got past validation (the optimiser or the posterior was built)."""


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if a fit gets as far as building the posterior (which
    compiles) or running the optimiser."""
    def refuse(*args, **kwargs):
        raise WorkStarted("validation let the fit start")

    monkeypatch.setattr(rotationmap_module, "find_map", refuse)
    monkeypatch.setattr(rotationmap_module, "Posterior", refuse)


def _fit(cube, p0=P0, params=None, **kwargs):
    params = tutorial_params(cube) if params is None else params
    kwargs.setdefault("plots", "none")
    return cube.fit_map(p0, params, **kwargs)


def _words(message: str, *words: str) -> None:
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# 1. --------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["fit_map", "prepare_fit"])
def test_all_parameters_fixed_is_nothing_to_fit(small_cube, no_work, entry):
    params = dict(zip(FREE, (float(v) for v in P0)), inc=46.7, dist=101.0)
    with pytest.raises(ValueError) as err:
        if entry == "fit_map":
            _fit(small_cube, [], params)
        else:
            small_cube.prepare_fit([], params, verbose=False)
    _words(str(err.value), "Nothing to fit", "no free parameter",
           "evaluate_models(params=")


def test_p0_values_without_free_parameters(small_cube, no_work):
    params = {"mstar": 2.0, "inc": 46.7}
    with pytest.raises(ValueError) as err:
        _fit(small_cube, [2.0], params)
    _words(str(err.value), "no free parameter", "params['mstar'] = 0")


# 2. --------------------------------------------------------------------------


@pytest.mark.parametrize("niter", [0, -2, 1.5, "2", None, True])
def test_niter_must_be_a_positive_int(small_cube, no_work, niter):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, niter=niter)
    _words(str(err.value), "niter", "int >= 1", repr(niter))


# 3. --------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [0, -1, 2.5, "8", True])
def test_max_tree_depth_must_be_a_positive_int(small_cube, no_work, depth):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, mcmc="numpyro", nwalkers=1,
             mcmc_kwargs={"max_tree_depth": depth})
    _words(str(err.value), "max_tree_depth", "int >= 1", "1..15")


# 4. --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["DEMove", "StretchMove", "DESnookerMove", "KDEMove",
                                  "WalkMove"])
def test_emcee_moves_by_class_name(name):
    import emcee

    moves = split_options(get_backend("emcee"), {"moves": name})["moves"]
    assert type(moves) is getattr(emcee.moves, name)


def test_emcee_moves_lists_weights_and_objects():
    import emcee

    emcee_backend = get_backend("emcee")
    de = emcee.moves.DEMove()
    assert split_options(emcee_backend, {"moves": de})["moves"] is de
    moves = split_options(emcee_backend, {"moves": ["DEMove", de]})["moves"]
    assert [type(m) for m in moves] == [emcee.moves.DEMove] * 2 and moves[1] is de
    weighted = [("DEMove", 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    moves = split_options(emcee_backend, {"moves": weighted})["moves"]
    assert [(type(m).__name__, w) for m, w in moves] == [("DEMove", 0.8),
                                                          ("DESnookerMove", 0.2)]
    # What a saved result stores (JSON) brings the same moves back on resume.
    from eddy_widgets.inference.backends import moves_to_json

    stored = json.loads(json.dumps(moves_to_json(moves)))
    again = split_options(emcee_backend, {"moves": stored})["moves"]
    assert [(type(m).__name__, w) for m, w in again] == [("DEMove", 0.8),
                                                          ("DESnookerMove", 0.2)]
    tuned = json.loads(json.dumps(moves_to_json(emcee.moves.StretchMove(a=3.0))))
    (move, weight), = split_options(emcee_backend, {"moves": tuned})["moves"]
    assert type(move) is emcee.moves.StretchMove and move.a == 3.0 and weight == 1.0
    assert moves_to_json(None) is None


def test_emcee_moves_by_name_reach_the_sampler(small_cube):
    import emcee

    run = small_cube.prepare_fit(P0, tutorial_params(small_cube), optimize=False,
                                 nwalkers=18, nburnin=1, nsteps=1, verbose=False,
                                 mcmc_kwargs={"moves": [("DEMove", 0.8),
                                                        ("DESnookerMove", 0.2)]})
    moves = run.sampler.sampler._moves
    assert [type(m) for m in moves] == [emcee.moves.DEMove, emcee.moves.DESnookerMove]


@pytest.mark.parametrize("moves, words", [
    ("DEmove", ["'DEmove'", "DEMove", "StretchMove", "WalkMove",
                "Did you mean 'DEMove'"]),
    ("Move", ["'Move'", "DEMove"]),
    ("GaussianMove", ["GaussianMove", "needs arguments", "emcee.moves.GaussianMove("]),
    (3, ["moves", "DEMove", "emcee.moves"]),
    ([("DEMove", -1.0)], ["weight", "> 0"]),
    ([("DEMove", 0.5, 7)], ["DEMove", "(move, weight)"]),
    ([], ["empty"]),
])
def test_bad_emcee_moves(small_cube, no_work, moves, words):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, mcmc_kwargs={"moves": moves})
    _words(str(err.value), *words)


# 5. --------------------------------------------------------------------------


def test_p0_must_be_one_dimensional(small_cube, no_work):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, np.array([P0]))
    message = str(err.value)
    _words(message, "p0 must be 1-D", "(1, 9)", "9 free parameters")
    assert "has 9 values" not in message
    with pytest.raises(ValueError) as err:
        small_cube.prepare_fit(np.array([P0, P0]), tutorial_params(small_cube),
                               verbose=False)
    _words(str(err.value), "p0 must be 1-D", "(2, 9)")


# 6. --------------------------------------------------------------------------


@pytest.mark.parametrize("mcmc, options, words", [
    ("numpyro", {"target_accept_prob": 1.5},
     ["target_accept_prob", "0 <", "< 1", "1.5"]),
    ("numpyro", {"target_accept_prob": 0.0}, ["target_accept_prob", "0 <", "< 1"]),
    ("numpyro", {"target_accept_prob": "0.9"}, ["target_accept_prob", "number"]),
    ("numpyro", {"seed": 1.5}, ["seed", "int"]),
    ("emcee", {"seed": -1}, ["seed", "int", ">= 0"]),
    ("numpyro", {"dense_mass": "yes"}, ["dense_mass", "True or False"]),
    ("numpyro", {"chain_method": "paralel"}, ["chain_method", "'sequential'",
                                             "'parallel'", "'vectorized'"]),
    ("emcee", {"scatter": 0.0}, ["scatter", "> 0"]),
    ("emcee", {"scatter": float("nan")}, ["scatter", "finite"]),
    ("emcee", {"progress": "no"}, ["progress", "True or False"]),
    ("numpyro", {"progress": 1}, ["progress", "True or False"]),
])
def test_bad_option_values(small_cube, no_work, mcmc, options, words):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, mcmc=mcmc, nwalkers=None if mcmc == "emcee" else 1,
             mcmc_kwargs=options)
    _words(str(err.value), *words)


def test_bad_scatter_argument(small_cube, no_work):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, scatter=-1e-3)
    _words(str(err.value), "scatter", "> 0")


# 7. --------------------------------------------------------------------------


def test_inverted_flat_prior(small_cube):
    before = small_cube.priors["mstar"]
    with pytest.raises(PriorError) as err:
        small_cube.set_prior("mstar", [5, 0.1], "flat")
    _words(str(err.value), "low", "below", "high",
           "set_prior('mstar', [0.1, 5], 'flat')")
    assert small_cube.priors["mstar"] == before
    with pytest.raises(PriorError) as err:
        small_cube.set_prior("r_taper", [np.inf, 0.0], "flat")
    _words(str(err.value), "set_prior('r_taper', [0, np.inf], 'flat')")


# 8. --------------------------------------------------------------------------


@pytest.mark.parametrize("mcmc, key, valid", [
    ("emcee", "max_tree_depth", "moves, progress, scatter, seed"),
    ("numpyro", "num_chains", "chain_method, dense_mass, max_tree_depth, progress, "
                              "seed, target_accept_prob"),
])
def test_unknown_option_before_the_optimiser(small_cube, no_work, mcmc, key, valid):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, mcmc=mcmc, nwalkers=None if mcmc == "emcee" else 1,
             mcmc_kwargs={key: 4})
    _words(str(err.value), f"mcmc_kwargs[{key!r}]", f"{mcmc} backend", valid)


# Counts ------------------------------------------------------------------------


@pytest.mark.parametrize("mcmc, counts, words", [
    ("emcee", {"nsteps": -5}, ["nsteps", "int >= 0", "-5"]),
    ("emcee", {"nburnin": 2.5}, ["nburnin", "int", "2.5"]),
    ("emcee", {"nwalkers": 0}, ["nwalkers", "int >= 1", "0"]),
    ("emcee", {"nwalkers": "32"}, ["nwalkers", "int", "'32'"]),
    ("emcee", {"nwalkers": 10}, ["at least 2 x 9 = 18 walkers", "nwalkers=10"]),
    ("emcee", {"nsteps": [100, -1]}, ["nsteps", "int >= 0", "-1"]),
    ("emcee", {"nsteps": []}, ["nsteps", "empty"]),
    ("numpyro", {"nwalkers": 0}, ["nwalkers", "num_chains", "int >= 1"]),
    ("numpyro", {"nburnin": -1}, ["nburnin", "num_warmup", "int >= 0"]),
    ("numpyro", {"nsteps": True}, ["nsteps", "num_samples", "int"]),
])
def test_bad_counts(small_cube, no_work, mcmc, counts, words):
    with pytest.raises(ValueError) as err:
        _fit(small_cube, mcmc=mcmc, **counts)
    _words(str(err.value), *words)


def test_counts_checked_in_prepare_fit(small_cube, no_work):
    with pytest.raises(ValueError) as err:
        small_cube.prepare_fit(P0, tutorial_params(small_cube), nwalkers=10,
                               verbose=False)
    _words(str(err.value), "at least 2 x 9 = 18 walkers")
    with pytest.raises(ValueError) as err:
        small_cube.prepare_fit(P0, tutorial_params(small_cube), nsteps=-5,
                               verbose=False)
    _words(str(err.value), "nsteps", "int >= 0")
    # Whole floats, numpy ints and valid options get through to the work.
    with pytest.raises(WorkStarted):
        _fit(small_cube, nwalkers=18, nburnin=10.0, nsteps=np.int64(5),
             mcmc_kwargs={"moves": "DEMove", "seed": np.int32(3), "progress": False})
    with pytest.raises(WorkStarted):
        _fit(small_cube, mcmc="numpyro", nwalkers=1,
             mcmc_kwargs={"max_tree_depth": 10, "target_accept_prob": 0.9,
                          "dense_mass": False, "chain_method": "vectorized"})


# Values that make the model undefined (issue 19, 10). -------------------------


@pytest.mark.parametrize("name, value, words", [
    ("mstar", -1.0, "stellar mass [Msun] must be positive"),
    ("dist", 0.0, "distance [pc] must be positive"),
    ("dist", -101.0, "fixed value -101"),
    ("vlsr", float("nan"), "params['vlsr'] is NaN"),
])
def test_fixed_values_that_make_the_model_undefined(small_cube, no_work, name, value,
                                                    words):
    params = {**tutorial_params(small_cube), name: value}
    free = [n for n in FREE if n != name]
    params.update({n: i for i, n in enumerate(free)})
    p0 = [v for n, v in zip(FREE, P0) if n != name]
    with pytest.raises(ValueError) as err:
        _fit(small_cube, p0, params)
    _words(str(err.value), f"params['{name}']", words)


def test_a_start_where_the_model_is_undefined_is_named(small_cube):
    """A start inside the prior where the model is NaN (here mstar < 0, its
    prior widened by the user) stops before any run, naming the value."""
    params = tutorial_params(small_cube)
    p0 = list(P0)
    p0[FREE.index("mstar")] = -1.0
    with pytest.raises(ValueError) as err:
        _fit(small_cube, p0, params)
    _words(str(err.value), "params['mstar']", "p0 value -1")
    # A value with no rule of its own (a negative disk mass for the
    # self-gravity term): the model is NaN on every pixel; the message lists
    # the values to check, and nothing runs.
    with pytest.raises(ValueError) as err:
        small_cube.prepare_fit(P0, {**params, "mdisk": -5.0}, verbose=False)
    _words(str(err.value), "The model is not defined at p0", "NaN", "'mdisk': -5.0",
           "Nothing was run")


def test_a_start_on_a_wide_priors_bound_moves_by_its_own_scale(small_cube):
    """r_cavity free at its default p0 = 0 on its default prior [0, 1000]:
    the start moves inward by a step small against r_cavity's own width
    there (it was 1 arcsec, a quarter of this disk), and says so."""
    params = {**tutorial_params(small_cube), "r_cavity": len(FREE)}
    p0 = [*P0, 0.0]
    with pytest.warns(UserWarning, match=r"edge of the prior for r_cavity 0 -> "):
        run = small_cube.prepare_fit(p0, params, optimize=False, verbose=False)
    moved = run.theta0[-1]
    assert 0.0 < moved < 1e-2
    assert np.allclose(run.theta0[:-1], P0)
