"""Tests of the fit session: conversion to and from fit_map's arguments, the
exported script, validation, and the run thread's error handling (no map
needed except for the script test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eddy_widgets.inference.backends import BACKENDS
from eddy_widgets.inference.priors import Prior
from eddy_widgets.parameters import PARAMETERS
from eddy_widgets.session import (
    DEFAULT_FREE,
    FitSession,
    SetupError,
    emcee_moves,
    format_number,
    parse_number,
)

TUTORIAL_PARAMS = {"x0": 0, "y0": 1, "PA": 2, "mstar": 3, "vlsr": 4, "z0": 5, "psi": 6,
                   "r_taper": 7, "q_taper": 8, "inc": 46.7, "dist": 101.0,
                   "r_min": 0.2}
TUTORIAL_P0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]


def tutorial_kwargs(**changes):
    """astro-eddy's numpyro tutorial call, with every fit_map set-up key."""
    kwargs = dict(p0=list(TUTORIAL_P0), params=dict(TUTORIAL_PARAMS), r_min=None,
                  r_max=None, optimize=True, nwalkers=1, nburnin=500, nsteps=500,
                  mcmc="numpyro",
                  mcmc_kwargs={"seed": 0, "progress": True, "max_tree_depth": 6})
    kwargs.update(changes)
    return kwargs


# -- Numbers as typed ---------------------------------------------------------


def test_parse_and_format_numbers_keep_what_was_typed():
    assert parse_number("2.5") == 2.5
    assert parse_number(" 1e3 ") == 1000.0
    assert parse_number("inf") == math.inf
    assert parse_number("") is None and parse_number("None") is None
    assert parse_number("abc") == "abc"
    assert parse_number("nan") == "nan"  # kept as text, flagged later
    assert format_number(312.0) == "312"
    assert format_number(0.1) == "0.1"
    assert format_number(math.inf) == "inf"
    assert format_number(None) == ""
    assert format_number("2,5") == "2,5"
    for value in (0.0123456789012, 5763.0, -1e-7, 2.02):
        assert parse_number(format_number(value)) == value


def test_values_are_floats_or_text():
    session = FitSession()
    row = session.parameters["dist"]
    row.value = 101  # an int would mean "free" in params
    assert isinstance(row.value, float) and row.value == 101.0
    row.value = np.float32(2.5)
    assert type(row.value) is float
    row.value = float("nan")
    assert row.value == "nan"


# -- Defaults and round trips ------------------------------------------------


def test_defaults_are_generic_and_valid():
    session = FitSession()
    assert session.free_order == list(DEFAULT_FREE)
    assert session.valid and session.issues == {}
    kwargs = session.to_fit_kwargs()
    assert kwargs["params"] == {name: i for i, name in enumerate(DEFAULT_FREE)}
    assert kwargs["p0"] == [PARAMETERS[n].default for n in DEFAULT_FREE]
    assert kwargs["mcmc"] == "emcee" and kwargs["mcmc_kwargs"] == {}
    for arg, value in BACKENDS["emcee"].count_defaults.items():
        assert kwargs[arg] == value


def test_round_trip_of_the_numpyro_tutorial_is_exact():
    kwargs = tutorial_kwargs()
    priors = {"r_taper": Prior("flat", 0.0, 50.0)}
    session = FitSession.from_fit_kwargs(priors=priors, **kwargs)
    assert session.to_fit_kwargs() == kwargs
    assert session.free_order == ["x0", "y0", "PA", "mstar", "vlsr", "z0", "psi",
                                  "r_taper", "q_taper"]
    out = session.priors()
    assert set(out) == set(session.free_order)
    assert out["r_taper"] == Prior("flat", 0.0, 50.0)
    assert out["mstar"] == Prior.default("mstar")
    assert session.prior_warnings == {}


def test_round_trip_keeps_order_placement_and_extra_settings():
    params = {"mstar": 0, "PA": 2, "x0": 1, "inc": 46.7, "psi": 1.0, "z0": None,
              "phi_min": -90.0, "beam": False}
    kwargs = dict(p0=[2.0, 0.01, 312.0], params=params, r_min=0.3, r_max=3.5,
                  optimize=False, nwalkers=12, nburnin=40, nsteps=60, mcmc="emcee",
                  mcmc_kwargs={"seed": 3, "scatter": 0.01})
    session = FitSession.from_fit_kwargs(**kwargs)
    assert session.to_fit_kwargs() == kwargs
    assert session.free_order == ["mstar", "x0", "PA"]
    # psi equals the table default but was written out: it stays written out.
    assert session.to_fit_kwargs()["params"]["psi"] == 1.0


def test_load_fit_kwargs_replaces_the_whole_set_up():
    session = FitSession.from_fit_kwargs(**tutorial_kwargs())
    session.load_fit_kwargs(p0=[1.5], params={"mstar": 0}, nwalkers=4, nsteps=10)
    kwargs = session.to_fit_kwargs()
    assert kwargs["params"] == {"mstar": 0} and kwargs["p0"] == [1.5]
    assert kwargs["mcmc"] == "emcee" and kwargs["mcmc_kwargs"] == {}
    assert kwargs["nburnin"] == 300 and kwargs["nwalkers"] == 4
    assert session.parameters["r_taper"].prior_b == math.inf


def test_loading_fills_missing_counts_from_the_backend_table():
    session = FitSession.from_fit_kwargs([2.0], {"mstar": 0}, mcmc="numpyro",
                                         nwalkers=None)
    assert session.nwalkers == BACKENDS["numpyro"].count_defaults["nwalkers"]


def test_loading_accepts_set_prior_arguments_and_rejects_unknown_ones():
    session = FitSession.from_fit_kwargs([2.0], {"mstar": 0},
                                         priors={"mstar": ([1.0, 0.5], "gaussian")})
    assert session.priors()["mstar"] == Prior("gaussian", 1.0, 0.5)
    with pytest.raises(TypeError, match="Unknown fit_map argument"):
        FitSession.from_fit_kwargs([2.0], {"mstar": 0}, nwalker=3)
    with pytest.raises(ValueError, match="both point at p0"):
        FitSession.from_fit_kwargs([2.0, 1.0], {"mstar": 0, "inc": 0})
    with pytest.raises(ValueError, match="not an option"):
        FitSession.from_fit_kwargs([2.0], {"mstar": 0}, mcmc="emcee",
                                   mcmc_kwargs={"max_tree_depth": 4})
    # fit_map-only arguments are accepted and ignored.
    FitSession.from_fit_kwargs([2.0], {"mstar": 0}, plots="none", returns="result")


def test_emcee_moves_by_name_and_object():
    import emcee

    session = FitSession()
    session.options["emcee"].moves = "de"
    moves = session.to_fit_kwargs()["mcmc_kwargs"]["moves"]
    assert isinstance(moves, emcee.moves.DEMove)
    both = emcee_moves("de+snooker")
    assert [type(m).__name__ for m, _ in both] == ["DEMove", "DESnookerMove"]
    loaded = FitSession.from_fit_kwargs([2.0, 0, 0, 0, 0, 0], {"mstar": 0, "x0": 1,
                                        "y0": 2, "PA": 3, "vlsr": 4, "psi": 5},
                                        mcmc_kwargs={"moves": emcee.moves.DEMove()})
    assert loaded.options["emcee"].moves == "de"
    custom = emcee.moves.GaussianMove(0.1)
    loaded.load_fit_kwargs([2.0], {"mstar": 0}, mcmc_kwargs={"moves": custom})
    assert loaded.to_fit_kwargs()["mcmc_kwargs"]["moves"] is custom


# -- The script ----------------------------------------------------------------


def test_script_of_the_tutorial_reads_like_the_tutorial():
    session = FitSession.from_fit_kwargs(priors={"r_taper": Prior("flat", 0, 50)},
                                         **tutorial_kwargs())
    script = session.to_script(path="HD163296_CO_v0.fits", FOV=8.0, downsample=4)
    assert "cube = rotationmap('HD163296_CO_v0.fits', uncertainty=None, FOV=8.0, " \
           "downsample=4)" in script
    assert "cube.set_prior('r_taper', [0.0, 50.0], 'flat')" in script
    assert script.count("set_prior") == 1  # only non-default priors
    assert "params['x0'] = 0\n" in script and "params['inc'] = 46.7\n" in script
    assert "p0 = [0.0, 0.0, 312.0, 2.0, 5700.0, 0.25, 1.0, 3.0, 2.0]" in script
    assert "nwalkers=1,  # numpyro: num_chains" in script
    assert "mcmc='numpyro'" in script and "'max_tree_depth': 6" in script
    compile(script, "<script>", "exec")


def test_script_runs(tmp_path):
    from eddy_widgets.data import load_example

    ex = load_example()
    session = FitSession.from_fit_kwargs(
        p0=[312.0, 2.0, 5763.0], params={"PA": 0, "mstar": 1, "vlsr": 2, "inc": 46.7,
                                         "dist": 101.0},
        priors={"mstar": Prior("flat", 0.5, 5.0), "r_taper": Prior("flat", 0, 50)},
        optimize=False, nwalkers=8, nburnin=3, nsteps=4, mcmc="emcee",
        mcmc_kwargs={"seed": 1, "moves": "de", "progress": False})
    script = session.to_script(path=ex.v0, FOV=4.0, downsample=8, plots="none",
                               returns=["result"])
    assert "import emcee" in script and "emcee.moves.DEMove()" in script
    path = tmp_path / "fit.py"
    path.write_text(script)
    namespace: dict = {}
    exec(compile(script, str(path), "exec"), namespace)
    result = namespace["samples"]
    assert result.names == ("PA", "mstar", "vlsr")
    assert result.chains["sampling"].shape == (8, 4, 3)
    assert namespace["cube"].priors["mstar"] == Prior("flat", 0.5, 5.0)


def test_script_needs_a_path():
    with pytest.raises(ValueError, match="path"):
        FitSession().to_script()


# -- Validation ----------------------------------------------------------------


@pytest.mark.parametrize("change, name, words", [
    (dict(prior=("flat", 1.0, 1.0)), "mstar", "smaller than high"),
    (dict(prior=("flat", 5.0, 1.0)), "mstar", "smaller than high"),
    (dict(prior=("gaussian", 2.0, 0.0)), "mstar", "sigma (0) must be > 0"),
    (dict(prior=("gaussian", 2.0, -1.0)), "mstar", "must be > 0"),
    (dict(value=20.0), "mstar", "outside the prior"),
    (dict(value="two"), "mstar", "not a number ('two')"),
    (dict(prior=("flat", "zero", 10.0)), "mstar", "prior low is not a number"),
    (dict(prior=("flat", 0.1, None)), "mstar", "prior high is not a number (empty)"),
    (dict(value=math.inf), "mstar", "must be finite"),
])
def test_validate_flags_each_invalid_row(change, name, words):
    session = FitSession()
    session.set_parameter(name, **change)
    issues = session.validate()
    assert list(issues) == [name]
    assert words in issues[name]
    assert session.issues == issues and not session.valid
    with pytest.raises(SetupError) as info:
        session.to_fit_kwargs()
    assert name in info.value.issues


def test_validate_fixed_rows_counts_and_mask():
    session = FitSession()
    session.parameters["inc"].value = "forty"
    session.parameters["dist"].value = None
    session.parameters["z0"].value = None  # optional component: off is fine
    session.r_min, session.r_max = 2.0, 1.0
    session.nwalkers = 6  # emcee needs 2 x 5
    session.nsteps = -1
    issues = session.validate()
    assert "not a number ('forty')" in issues["inc"]
    assert "needs a value" in issues["dist"]
    assert "z0" not in issues
    assert "must be smaller than r_max" in issues["r_max"]
    assert "at least 2 x 5 = 10 walkers" in issues["nwalkers"]
    assert "nsteps must be >= 0" in issues["nsteps"]
    session.mcmc = "numpyro"  # with numpyro's own counts
    assert "nsteps" not in session.issues
    session.nsteps = -1
    assert "num_samples must be >= 0" in session.issues["nsteps"]
    assert "nwalkers" not in session.issues


def test_validate_model_combinations_and_no_free_parameter():
    session = FitSession()
    session.parameters["vp_100"].value = 300.0
    assert "vp_q" in session.issues["model"]
    session.parameters["vp_q"].value = -0.5
    assert session.valid
    session = FitSession(free=())
    assert "no free parameter" in session.issues["free"]


def test_unbounded_flat_prior_is_a_warning_for_numpyro_only():
    session = FitSession()
    session.set_parameter("r_taper", free=True, value=3.0)
    assert session.valid and session.prior_warnings == {}
    session.mcmc = "numpyro"
    assert session.valid  # legal, so Run stays possible
    assert list(session.prior_warnings) == ["r_taper"]
    assert "[0, 50]" in session.prior_warnings["r_taper"]
    session.bound_prior("r_taper")
    assert session.priors()["r_taper"] == Prior("flat", 0.0, 50.0)
    assert session.prior_warnings == {}


def test_suggested_bounds_elsewhere_scale_with_the_start_value():
    session = FitSession()
    session.set_parameter("vlsr", prior=("flat", -math.inf, math.inf), value=5000.0)
    assert session.suggested_bounds("vlsr") == (-50000.0, 50000.0)
    session.set_parameter("mstar", prior=("flat", 0.1, math.inf), value=2.0)
    low, high = session.suggested_bounds("mstar")
    assert low == 0.1 and high == 20.0


def test_counts_are_kept_per_backend_across_switches():
    session = FitSession()
    session.nwalkers, session.nburnin, session.nsteps = 40, 123, 456
    session.mcmc = "numpyro"
    assert (session.nwalkers, session.nburnin, session.nsteps) == \
        tuple(BACKENDS["numpyro"].count_defaults.values())
    session.nwalkers, session.nburnin, session.nsteps = 2, 12, 34
    kwargs = session.to_fit_kwargs()
    assert (kwargs["nwalkers"], kwargs["nburnin"], kwargs["nsteps"]) == (2, 12, 34)
    session.options["numpyro"].max_tree_depth = 5
    session.mcmc = "emcee"
    assert (session.nwalkers, session.nburnin, session.nsteps) == (40, 123, 456)
    assert session.to_fit_kwargs()["mcmc_kwargs"] == {}
    session.mcmc = "numpyro"
    assert session.to_fit_kwargs()["mcmc_kwargs"] == {"max_tree_depth": 5}


def test_free_order_follows_the_order_of_ticking():
    session = FitSession(free=())
    for name in ("mstar", "inc", "x0"):
        session.parameters[name].free = True
    session.parameters["inc"].free = False
    session.parameters["inc"].free = True
    assert session.free_order == ["mstar", "x0", "inc"]
    assert session.to_fit_kwargs()["params"] == {"mstar": 0, "x0": 1, "inc": 2}


# -- Running without a usable map ----------------------------------------------


def test_start_needs_a_map_and_a_valid_set_up():
    session = FitSession()
    with pytest.raises(RuntimeError, match="No map"):
        session.start()
    session.cube = object()
    session.parameters["mstar"].value = "x"
    with pytest.raises(SetupError):
        session.start()
    assert session.status == "idle"


def test_exceptions_in_the_thread_become_the_error():
    class BrokenCube:
        priors: dict = {}

        def set_prior(self, *args):
            pass

        def prepare_fit(self, **kwargs):
            raise ValueError("No pixel is left to fit")

    session = FitSession(cube=BrokenCube())
    session.start()
    assert session.wait(10)
    assert session.status == "error"
    assert session.error == "ValueError: No pixel is left to fit"
    assert not session.can_resume


# -- Checkpoints, the verdict and continuing a saved run -------------------------


@pytest.fixture(scope="module")
def tiny_cube():
    from eddy_widgets.data import load_example
    from eddy_widgets.rotationmap import rotationmap

    return rotationmap(load_example().v0, FOV=4.0, downsample=8)


def tiny_session(cube, **changes) -> FitSession:
    """PA, mstar and vlsr free, the rest at the example's values; 8 walkers,
    5 + 15 steps."""
    from eddy_widgets.data import load_example

    t = load_example().truths
    kwargs = dict(p0=[t["PA"], 2.0, t["vlsr"]],
                  params={"PA": 0, "mstar": 1, "vlsr": 2, "inc": t["inc"],
                          "dist": t["dist"], "x0": t["x0"], "y0": t["y0"]},
                  priors={"PA": Prior("flat", 300.0, 330.0)}, optimize=False,
                  nwalkers=8, nburnin=5, nsteps=15, mcmc="emcee",
                  mcmc_kwargs={"seed": 3})
    kwargs.update(changes)
    return FitSession.from_fit_kwargs(cube=cube, **kwargs)


def test_runs_write_a_checkpoint_by_default(tiny_cube, tmp_path, monkeypatch):
    import re

    from eddy_widgets.inference.result import FitResult
    from eddy_widgets.session import CHECKPOINT_FOLDER

    monkeypatch.chdir(tmp_path)
    session = tiny_session(tiny_cube)
    assert session.checkpoint_interval == 60.0
    assert re.fullmatch(rf"{CHECKPOINT_FOLDER}/\d{{8}}-\d{{6}}(-\d+)?\.npz",
                        session.checkpoint)
    session.start()
    assert session.wait(60) and session.status == "done", session.error
    written = list((tmp_path / CHECKPOINT_FOLDER).glob("*.npz"))
    assert [str(p) for p in written] == [session.checkpoint_file]
    saved = FitResult.load(session.checkpoint_file)
    assert saved == session.result and not saved.stopped
    assert saved.chains["sampling"].shape == (8, 15, 3)
    np.testing.assert_array_equal(saved.chains["sampling"],
                                  session.result.chains["sampling"])
    # The result carries the verdict.
    assert session.result.converged is False
    assert session.result.verdict_text().startswith("Verdict: NOT converged")
    # Every new run gets its own file; None turns checkpoints off.
    first = session.checkpoint_file
    session.start()
    assert session.wait(60) and session.status == "done"
    assert session.checkpoint_file != first
    assert len(list((tmp_path / CHECKPOINT_FOLDER).glob("*.npz"))) == 2
    session.checkpoint = None
    session.start()
    assert session.wait(60) and session.status == "done"
    assert session.checkpoint_file == ""
    assert len(list((tmp_path / CHECKPOINT_FOLDER).glob("*.npz"))) == 2


def test_checkpoint_path_and_interval_reach_prepare_fit(tmp_path):
    seen = {}

    class RecordingCube:
        priors: dict = {}

        def set_prior(self, *args):
            pass

        def prepare_fit(self, **kwargs):
            seen.update(kwargs)
            raise ValueError("stop here")

    session = FitSession(cube=RecordingCube())
    session.checkpoint = tmp_path / "sub" / "mine"
    session.checkpoint_interval = 5.0
    session.start()
    assert session.wait(10) and session.status == "error"
    assert seen["checkpoint"] == tmp_path / "sub" / "mine.npz"
    assert seen["checkpoint_interval"] == 5.0
    assert (tmp_path / "sub").is_dir()
    assert session.checkpoint == str(tmp_path / "sub" / "mine")  # kept as set


def test_continue_from_a_checkpoint_and_a_mismatch_lands_in_error(
        tiny_cube, tmp_path, monkeypatch):
    from eddy_widgets.data import load_example
    from eddy_widgets.inference.result import FitResult
    from eddy_widgets.rotationmap import rotationmap

    monkeypatch.chdir(tmp_path)
    session = tiny_session(tiny_cube)
    session.start()
    assert session.wait(60) and session.status == "done", session.error
    path = session.checkpoint_file
    # The same map: the run goes on, into a new checkpoint.
    again = tiny_session(tiny_cube, nsteps=15)
    again.continue_from(path, nsteps=10)
    assert again.wait(60) and again.status == "done", again.error
    assert again.result.n_draws("sampling") == 25
    assert again.checkpoint_file != path
    assert FitResult.load(again.checkpoint_file) == again.result
    assert FitResult.load(path).n_draws("sampling") == 15   # left as it was
    # Another field of view: the engine's SetupMismatchError, in error.
    other = rotationmap(load_example().v0, FOV=3.0, downsample=8)
    wrong = tiny_session(other)
    wrong.continue_from(FitResult.load(path))
    assert wrong.wait(60) and wrong.status == "error"
    assert wrong.error.startswith("SetupMismatchError: Cannot continue this result")
    assert "FOV: 4.0 in the result, 3.0 now" in wrong.error
    assert not wrong.can_resume


def test_ctrl_c_while_waiting_stops_the_run_and_keeps_every_draw(
        tiny_cube, tmp_path, monkeypatch):
    from eddy_widgets.inference.result import FitResult

    monkeypatch.chdir(tmp_path)
    session = tiny_session(tiny_cube, nsteps=1_000_000)
    session.start()
    thread = session._thread
    join = thread.join
    calls = []

    def interrupted_join(timeout=None):
        calls.append(timeout)
        if len(calls) == 1:          # the first wait: Ctrl-C after some draws
            while session.result is None or session.result.n_draws("sampling") < 5:
                join(0.05)
            raise KeyboardInterrupt
        return join(timeout)

    monkeypatch.setattr(thread, "join", interrupted_join)
    with pytest.raises(KeyboardInterrupt):
        session.wait()
    assert not thread.is_alive() and session.status == "stopped"
    result = session.result
    assert result.stopped and 5 <= result.n_draws("sampling") < 1_000_000
    assert FitResult.load(session.checkpoint_file) == result
    assert session.can_resume


def test_script_reads_the_same_pixels_as_the_cube():
    """Without FOV / downsample given, the script loads the map as the
    session's cube was loaded (the map records both), not the whole file."""
    from eddy_widgets.data import load_example
    from eddy_widgets.rotationmap import rotationmap

    ex = load_example()
    cube = rotationmap(ex.v0, FOV=4.0, downsample=8)
    session = FitSession(cube=cube)
    script = session.to_script()
    assert "FOV=4.0, downsample=8)" in script
    line = next(ln for ln in script.splitlines() if ln.startswith("cube = rotationmap("))
    namespace: dict = {}
    exec("from eddy_widgets.rotationmap import rotationmap\n" + line, namespace)
    assert namespace["cube"].data.shape == cube.data.shape


def test_two_sessions_on_one_cube_fit_with_their_own_priors(tiny_cube, tmp_path,
                                                            monkeypatch):
    # A session's fit uses its own priors and never changes the user's cube:
    # two sessions started together on one cube, with mstar priors that do not
    # overlap, each keep their draws inside their own prior.
    monkeypatch.chdir(tmp_path)
    before = {name: prior.as_args() for name, prior in tiny_cube.priors.items()}
    low = tiny_session(tiny_cube, priors={"PA": Prior("flat", 300.0, 330.0),
                                          "mstar": Prior("flat", 0.5, 1.9)},
                       p0=[312.0, 1.5, 5763.0])
    high = tiny_session(tiny_cube, priors={"PA": Prior("flat", 300.0, 330.0),
                                           "mstar": Prior("flat", 2.5, 5.0)},
                        p0=[312.0, 3.0, 5763.0])
    low.checkpoint = high.checkpoint = None
    low.start()
    high.start()
    assert low.wait(120) and low.status == "done", low.error
    assert high.wait(120) and high.status == "done", high.error
    i = low.result.names.index("mstar")
    assert np.all(low.result.samples[:, i] <= 1.9)
    assert np.all(high.result.samples[:, i] >= 2.5)
    assert low.result.settings["priors"]["mstar"] == [[0.5, 1.9], "flat"]
    assert high.result.settings["priors"]["mstar"] == [[2.5, 5.0], "flat"]
    assert {n: p.as_args() for n, p in tiny_cube.priors.items()} == before
    # Continuing a saved run goes on with its own priors, the cube untouched.
    low.continue_from(low.result, nsteps=5)
    assert low.wait(120) and low.status == "done", low.error
    assert np.all(low.result.samples[:, i] <= 1.9)
    assert {n: p.as_args() for n, p in tiny_cube.priors.items()} == before


# -- The noise model ------------------------------------------------------------

#: A set-up as the session wrote it before the noise model (HEAD's script):
#: under noise='independent' it must stay exactly this.
ASTRO_EDDY_KWARGS = {
    "p0": [312.0, 2.0, 5763.0],
    "params": {"PA": 0, "mstar": 1, "vlsr": 2, "inc": 46.7, "phi_min": -90.0},
    "r_min": None, "r_max": 2.5, "optimize": True, "nwalkers": 8, "nburnin": 3,
    "nsteps": 4, "mcmc": "emcee", "mcmc_kwargs": {}}
ASTRO_EDDY_SCRIPT = '''\
"""Fit set-up exported by eddy_widgets (FitSession.to_script)."""

import numpy as np

from eddy_widgets.rotationmap import rotationmap

cube = rotationmap('v0.fits', uncertainty=None, FOV=4.0, downsample=8)

cube.set_prior('mstar', [0.5, 5.0], 'flat')

params = {}
params['PA'] = 0
params['mstar'] = 1
params['vlsr'] = 2
params['inc'] = 46.7
params['phi_min'] = -90.0
p0 = [312.0, 2.0, 5763.0]

samples = cube.fit_map(
    p0=p0,
    params=params,
    r_max=2.5,
    optimize=True,
    nwalkers=8,
    nburnin=3,
    nsteps=4,
    mcmc='emcee',
    mcmc_kwargs={},
)
'''


def _astro_eddy_session() -> FitSession:
    return FitSession.from_fit_kwargs(
        priors={"mstar": Prior("flat", 0.5, 5.0)},
        **{k: v for k, v in ASTRO_EDDY_KWARGS.items() if k != "mcmc_kwargs"})


def test_independent_noise_leaves_params_and_script_as_astro_eddys():
    session = _astro_eddy_session()
    assert session.noise == "independent"
    assert session.to_fit_kwargs() == ASTRO_EDDY_KWARGS
    assert session.to_script(path="v0.fits", FOV=4.0, downsample=8) == ASTRO_EDDY_SCRIPT
    # Correlated, edited, and back: nothing of it is left in the call.
    session.set_noise("correlated")
    session.set_mask_setting("noise_clip", 5.0)
    session.set_parameter("noise_nugget", value=0.3)
    session.set_parameter("noise_scale", free=False, value=2.0)
    assert session.to_fit_kwargs() != ASTRO_EDDY_KWARGS
    session.set_mask_setting("noise", "independent")
    assert session.noise == "independent" and "noise" not in session.extra_params
    assert not any(session.parameters[n].free for n in
                   ("noise_scale", "noise_nugget", "noise_width"))
    assert session.valid, session.issues
    assert session.to_fit_kwargs() == ASTRO_EDDY_KWARGS
    assert session.to_script(path="v0.fits", FOV=4.0, downsample=8) == ASTRO_EDDY_SCRIPT
    # The fixed values and the clip wait for the next switch.
    session.set_noise("correlated")
    params = session.to_fit_kwargs()["params"]
    assert (params["noise_scale"], params["noise_nugget"], params["noise_clip"]) == \
        (2.0, 0.3, 5.0)


def test_correlated_noise_reaches_params_p0_and_the_script():
    session = _astro_eddy_session()
    session.set_noise("correlated")
    # As fit_map(..., noise='correlated'): noise_scale free, last, from 1.
    kwargs = session.to_fit_kwargs()
    assert kwargs["params"] == {**ASTRO_EDDY_KWARGS["params"], "noise_scale": 3,
                                "noise": "correlated"}
    assert kwargs["p0"] == [312.0, 2.0, 5763.0, 1.0]
    assert session.priors()["noise_scale"] == Prior.default("noise_scale")
    session.set_parameter("noise_width", value=1.2)
    script = session.to_script(path="v0.fits", FOV=4.0, downsample=8)
    assert "    noise='correlated',\n" in script and "params['noise']" not in script
    assert "params['noise_scale'] = 3\n" in script
    assert "params['noise_width'] = 1.2\n" in script
    assert "noise_nugget" not in script             # empty: estimated
    assert "p0 = [312.0, 2.0, 5763.0, 1.0]" in script
    compile(script, "<script>", "exec")
    # The call loads back as it was (fit_map's noise= or params['noise']).
    again = FitSession.from_fit_kwargs(ASTRO_EDDY_KWARGS["p0"],
                                       dict(ASTRO_EDDY_KWARGS["params"],
                                            noise_width=1.2),
                                       r_max=2.5, nwalkers=8, nburnin=3, nsteps=4,
                                       noise="correlated")
    assert again.noise == "correlated"
    assert again.to_fit_kwargs()["params"] == session.to_fit_kwargs()["params"] | {
        "noise": "correlated"}
    assert again.to_fit_kwargs()["p0"] == kwargs["p0"]
    # A fixed noise scale stays fixed, even at its default (left out of
    # params, fit_map would free it).
    session.set_parameter("noise_scale", free=False, value=1.0)
    assert session.to_fit_kwargs()["params"]["noise_scale"] == 1.0
    assert "params['noise_scale'] = 1.0\n" in session.to_script(path="v0.fits")


def test_noise_rules_are_inline_issues_not_exceptions():
    session = _astro_eddy_session()
    # Under independent a free noise row is named, not raised.
    session.set_parameter("noise_scale", free=True)
    assert "correlated noise model" in session.issues["noise_scale"]
    session.set_parameter("noise_scale", free=False)
    assert session.valid
    session.set_noise("correlated")
    session.set_parameter("noise_nugget", free=True)
    assert "never free" in session.issues["noise_nugget"]
    assert "model" not in session.issues
    session.set_parameter("noise_nugget", free=False, value=1.5)
    assert "(0, 1]" in session.issues["noise_nugget"]
    session.parameters["noise_nugget"].value = None       # estimated
    session.set_mask_setting("noise_clip", 0.5)
    assert "above 1" in session.issues["noise_clip"]
    session.set_mask_setting("noise_clip", None)          # the default, 3
    assert session.valid, session.issues
    session.set_noise("corelated")
    assert "not a noise model" in session.issues["noise"]
    with pytest.raises(SetupError):
        session.to_fit_kwargs()


def test_a_correlated_session_runs_saves_and_continues(tiny_cube, tmp_path,
                                                       monkeypatch):
    from eddy_widgets.inference.noise import noise_sentence
    from eddy_widgets.inference.result import FitResult
    from eddy_widgets.inference.run import setup_fingerprint

    monkeypatch.chdir(tmp_path)
    session = tiny_session(tiny_cube, noise="correlated")
    assert session.free_order[-1] == "noise_scale"
    session.start()
    assert session.wait(60) and session.status == "done", session.error
    result = session.result
    assert result.names == ("PA", "mstar", "vlsr", "noise_scale")
    info = result.settings["noise"]
    assert info["model"] == "correlated" and noise_sentence(info).startswith(
        "Noise correlated over the beam")
    assert "    noise='correlated',\n" in session.run_script
    fingerprint = setup_fingerprint(session.fit_run.posterior)
    assert fingerprint["noise"].startswith("correlated (nugget")
    # Its checkpoint continues with the same noise set-up (the kernel stored
    # in the result, not estimated again), whatever the editor holds now.
    saved = FitResult.load(session.checkpoint_file)
    assert saved.settings["noise"]["nugget"] == info["nugget"]
    other = tiny_session(tiny_cube)
    other.continue_from(session.checkpoint_file, nsteps=5)
    assert other.wait(60) and other.status == "done", other.error
    assert other.result.n_draws("sampling") == 20
    post = other.fit_run.posterior
    assert post.correlated and post.kernel.nugget == pytest.approx(info["nugget"])
    assert setup_fingerprint(post)["noise"] == fingerprint["noise"]


# -- Default checkpoint names (issue 19, item 3) --------------------------------

#: A child process: waits at a file barrier until the parent says go, then
#: asks for a default checkpoint name and, once both have one, writes its own
#: pid into that file, as its run would write its checkpoint.
NAME_CHILD = """
import os, sys, time
from pathlib import Path
from eddy_widgets.session import new_checkpoint_path
folder, barrier, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
(barrier / f"ready-{me}").touch()
go = barrier / "go"
while not go.exists():
    time.sleep(0.001)
start = float(go.read_text())       # a whole second, so both ask in the same one
while time.time() < start:
    pass
path = new_checkpoint_path(folder)
# A run writes its first checkpoint much later (after an interval or at its
# end): write only once the other process has its name too.
(barrier / f"named-{me}").touch()
while len(list(barrier.glob("named-*"))) < 2:
    time.sleep(0.001)
os.makedirs(os.path.dirname(path), exist_ok=True)   # as the run does
with open(path, "w") as fh:
    fh.write(str(os.getpid()))
print(path)
"""


def test_two_processes_asking_at_once_get_different_checkpoints(tmp_path):
    import os
    import subprocess
    import sys
    import time

    folder, barrier = tmp_path / "eddy_widgets_checkpoints", tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": "off"}
    children = [subprocess.Popen([sys.executable, "-c", NAME_CHILD, str(folder),
                                  str(barrier), str(i)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env,
                                 cwd=tmp_path)
                for i in range(2)]
    try:
        deadline = time.monotonic() + 120
        while not all((barrier / f"ready-{i}").exists() for i in range(2)):
            assert time.monotonic() < deadline, "the children did not start"
            assert all(c.poll() is None for c in children), children[0].stderr.read()
            time.sleep(0.01)
        # Both are waiting: release them together at a whole second at least
        # 0.3 s away, so that both ask within the same second.
        (barrier / "go.tmp").write_text(str(float(int(time.time() + 1.3))))
        (barrier / "go.tmp").rename(barrier / "go")
        outs = [c.communicate(timeout=60) for c in children]
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
    assert [c.returncode for c in children] == [0, 0], [err for _, err in outs]
    paths = [out.strip() for out, _ in outs]
    stamps = {os.path.basename(p)[:15] for p in paths}
    assert len(stamps) == 1, paths            # the same second ...
    assert paths[0] != paths[1]               # ... and yet two files
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in paths)
    # Neither overwrote the other's checkpoint.
    assert {open(p).read() for p in paths} == {str(c.pid) for c in children}


def test_checkpoint_names_in_one_process_are_reserved_on_disk(tmp_path, monkeypatch):
    import os
    import re
    import threading

    from eddy_widgets.session import CHECKPOINT_FOLDER, new_checkpoint_path

    folder = tmp_path / "ckpt"
    barrier = threading.Barrier(6)
    names = []

    def ask():
        barrier.wait()
        names.append(new_checkpoint_path(folder))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(names)) == 6
    for name in names:
        assert re.fullmatch(r"\d{8}-\d{6}(-\d+)?\.npz", os.path.basename(name))
        assert os.path.isfile(name)           # on disk, for other processes to see
    # A preview reserves nothing.
    preview = new_checkpoint_path(folder, reserve=False)
    assert preview not in names and not os.path.exists(preview)
    # A run that fails before it has a run to continue leaves no empty file.

    class FailingCube:
        priors: dict = {}

        def prepare_fit(self, **kwargs):
            raise ValueError("stop here")

    monkeypatch.chdir(tmp_path)
    session = FitSession(cube=FailingCube())
    session.start()
    assert session.wait(10) and session.status == "error"
    assert session.checkpoint_file.startswith(str(tmp_path / CHECKPOINT_FOLDER))
    assert not os.path.exists(session.checkpoint_file)


def test_a_mistyped_path_or_a_failed_start_keeps_the_good_run(tiny_cube, tmp_path,
                                                              monkeypatch):
    """continue_from('nope.npz') raises in the cell, saying where it looked,
    before anything changes; a continuation that fails in its thread gives
    the earlier run back: Continue and Export still work on it."""
    from eddy_widgets import rotationmap
    from eddy_widgets.data import load_example
    from eddy_widgets.inference.result import FitResult

    monkeypatch.chdir(tmp_path)
    session = tiny_session(tiny_cube, nsteps=10)
    session.start()
    assert session.wait(60) and session.status == "done", session.error
    good = session.result
    session.result.save(tmp_path / "kept.npz")
    with pytest.raises(FileNotFoundError) as err:
        session.continue_from("eddy_widgets_checkpoints/nope.npz")
    message = str(err.value)
    assert str(tmp_path / "eddy_widgets_checkpoints" / "nope.npz") in message
    assert f"working directory is {tmp_path}" in message
    assert session.status == "done" and session.error == "" and session.can_resume
    assert session.result is good
    # A saved run of another field of view fails in the thread (set-up
    # mismatch); the earlier run is the session's again.
    other = rotationmap(load_example().v0, FOV=3.0, downsample=8)
    elsewhere = tiny_session(other, nsteps=5)
    elsewhere.start()
    assert elsewhere.wait(60)
    session.continue_from(elsewhere.result)
    assert session.wait(60) and session.status == "error"
    assert session.error.startswith("SetupMismatchError")
    assert session.result is good and session.can_resume
    assert any("earlier run" in m for m in session.messages)
    session.resume(5)
    assert session.wait(60) and session.status == "done", session.error
    assert session.result.n_draws("sampling") == 15
    assert FitResult.load(tmp_path / "kept.npz").n_draws("sampling") == 10
