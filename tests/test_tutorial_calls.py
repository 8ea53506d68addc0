"""astro-eddy 3.2's tutorial calls on what ``fit_map`` returns
(tests/scripts/eddy_tutorial_returns.py) under emcee, numpyro and zeus,
checked against what astro-eddy 3.2 gives for the same script (issue 20:
the sampler object, the order of the returns, zeus, the dict, the NUTS
defaults in the compatibility document).

astro-eddy's facts used here, read in its source (``eddy/rotationmap.py``,
``eddy/helper_functions.py``, ``eddy/default_parameters.yml``) and measured
by running the same script with ``from eddy import rotationmap`` (the manual
check in docs/astro_eddy_compatibility.md).
"""

from __future__ import annotations

import math
from pathlib import Path
import runpy
from types import SimpleNamespace
import warnings

import numpy as np
import pytest

from eddy_widgets import rotationmap
from eddy_widgets.inference.backends import BACKENDS
from eddy_widgets.inference.spec import FitInputError, FitSpec, with_noise

from helpers import FREE, P0, tutorial_params

SCRIPT = Path(__file__).parent / "scripts" / "eddy_tutorial_returns.py"
DOC = Path(__file__).resolve().parents[1] / "docs" / "astro_eddy_compatibility.md"

#: The keys of astro-eddy 3.2's ``fit_map(returns='dict')`` for the
#: tutorial's params, in its order (its default_parameters.yml, then what
#: verify_params_dictionary adds).
ASTRO_EDDY_KEYS = [
    "x0", "y0", "inc", "PA", "vlsr", "dist", "z0", "psi", "r_cavity", "r_taper",
    "q_taper", "w_i", "w_r", "w_t", "mdisk", "r_in", "r_out", "gamma", "mstar",
    "r_pressure", "w_pressure", "vp_100", "vp_q", "vp_rtaper", "vp_qtaper", "vr_100",
    "vr_q", "vr_rtaper", "vr_qtaper", "r0_vortex", "p0_vortex", "chi_vortex",
    "r_vortex", "w_vortex", "v_vortex", "r_min", "r_max", "exclude_r", "phi_min",
    "phi_max", "exclude_phi", "abs_phi", "v_min", "v_max", "exclude_v", "beam",
    "vfunc", "vortex", "vradial", "z_func", "shadowed", "user_mask",
]

#: Its values for the tutorial, but for the free parameters (at their
#: medians), r_min (2 x bmaj), vfunc (a bound method) and user_mask (ones).
ASTRO_EDDY_VALUES = {
    "inc": 46.7, "dist": 101.0, "r_cavity": 0.0, "w_i": None, "w_r": None,
    "w_t": None, "mdisk": None, "r_in": None, "r_out": None, "gamma": None,
    "r_pressure": None, "w_pressure": None, "vp_100": None, "vp_q": None,
    "vp_rtaper": None, "vp_qtaper": None, "vr_100": None, "vr_q": None,
    "vr_rtaper": None, "vr_qtaper": None, "r0_vortex": None, "p0_vortex": None,
    "chi_vortex": 5.0, "r_vortex": 0.1, "w_vortex": 0.05, "v_vortex": 20.0,
    "r_max": 10.0, "exclude_r": False, "phi_min": -180.0, "phi_max": 180.0,
    "exclude_phi": False, "abs_phi": False, "v_min": -10000.0, "v_max": 30000.0,
    "exclude_v": False, "beam": False, "vortex": False, "vradial": False,
    "z_func": None, "shadowed": False,
}

#: The script's counts.
COUNTS = {"emcee": (20, 10, 15), "zeus": (20, 10, 15), "numpyro": (1, 20, 15)}


@pytest.fixture(scope="module", params=["emcee", "numpyro", "zeus"])
def tutorial(request):
    """The script's namespace after its run with ``MCMC``."""
    if request.param == "zeus":
        pytest.importorskip("zeus")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns = runpy.run_path(str(SCRIPT), init_globals={"MCMC": request.param})
    # A plain tutorial warns of nothing (emcee's own deprecation of .chain aside).
    assert [str(w.message) for w in caught if w.category is not DeprecationWarning] == []
    ns["counts"] = COUNTS[request.param]
    return SimpleNamespace(**ns)


# -- 3. The order of the returns ----------------------------------------------------


def test_the_returns_come_in_astro_eddys_order(tutorial):
    # The script asks for them in reverse: astro-eddy appends samples,
    # sampler, lnprob, percentiles, dict, model, residual in that order.
    t = tutorial
    nwalkers, nburnin, nsteps = t.counts
    assert t.samples.shape == (nwalkers * nsteps, 9)
    assert t.percentiles.shape == (3, 9)
    assert isinstance(t.medians, dict)
    assert t.model.shape == t.residual.shape == t.cube.data.shape
    np.testing.assert_allclose(t.residual, t.cube.data - t.model)
    other = [i for i in range(9) if FREE[i] != "PA"]
    np.testing.assert_allclose(t.percentiles[:, other],
                               np.percentile(t.samples[:, other], [16, 50, 84], axis=0))


def test_any_order_and_single_items(tutorial):
    # fit_map's last step, on the script's run.
    cube, run = tutorial.cube, tutorial.cube.last_run
    samples, pct = cube._returns(run, ["percentiles", "samples"])
    assert samples.shape[1] == 9 and pct.shape == (3, 9)
    residual, result = cube._returns(run, ["result", "residuals"])
    assert result is run.result and residual.shape == cube.data.shape
    assert cube._returns(run, ["samples", "none"]) is None
    lnprob = cube._returns(run, ["lnprob"])
    nwalkers, nburnin, nsteps = tutorial.counts
    assert lnprob.shape == (nsteps, nwalkers)     # emcee's get_log_prob layout


# -- 1. The sampler ---------------------------------------------------------------------


def test_the_sampler_is_astro_eddys(tutorial):
    t = tutorial
    mcmc = t.MCMC
    nwalkers, nburnin, nsteps = t.counts
    result = t.cube.last_run.result
    total = nburnin + nsteps
    samples = t.samples.copy()
    flat = t.flat.copy()
    samples[:, 2] %= 360.0
    flat[:, 2] %= 360.0
    np.testing.assert_allclose(flat, samples)     # get_chain(discard, flat)
    if mcmc == "emcee":
        import emcee

        assert isinstance(t.sampler, emcee.EnsembleSampler)
        assert t.chain.shape == (nwalkers, total, 9)                 # emcee's own
        assert t.lnprobability.shape == (nwalkers, total)           # walkers first
        assert t.sampler.get_chain().shape == (total, nwalkers, 9)
        assert t.sampler.get_log_prob().shape == (total, nwalkers)
        assert t.tau.shape == (9,) and np.all(t.tau > 0)
        assert t.sampler.acceptance_fraction.shape == (nwalkers,)
        assert 0 < t.acceptance < 1
        accepted = sum(result.stats[p]["accepted"].sum() for p in ("warmup", "sampling"))
        assert t.acceptance == pytest.approx(accepted / (nwalkers * total))
        np.testing.assert_allclose(t.log_prob, result.log_prob["sampling"].T.ravel())
        # It goes on as emcee's own sampler does.
        t.sampler.run_mcmc(None, 2, progress=False)
        assert t.sampler.iteration == total + 2
    elif mcmc == "zeus":
        import zeus

        assert isinstance(t.sampler, zeus.EnsembleSampler)
        assert t.chain.shape == (total, nwalkers, 9)
        assert t.sampler.get_log_prob().shape == (total, nwalkers)
        assert t.tau.shape == (9,)
        assert t.sampler.ncall == int(round(
            sum(result.stats[p]["evaluations"][0].sum() for p in ("warmup", "sampling"))
            * nwalkers))
        assert t.sampler.scale_factor[0] == 1.0
        # zeus has neither (astro-eddy's zeus sampler neither).
        assert not hasattr(t.sampler, "lnprobability")
        assert not hasattr(t.sampler, "acceptance_fraction")
        # zeus flattens walker-major: the first walker's steps come first.
        first = result.chains["sampling"][0].copy()
        first[:, 2] %= 360.0
        np.testing.assert_allclose(t.samples[:nsteps], first)
    else:
        from eddy_widgets.inference.backends.nuts import NumpyroSampler

        assert isinstance(t.sampler, NumpyroSampler)
        assert t.chain.shape == (nwalkers, total, 9)
        assert t.lnprobability.shape == (total, nwalkers)          # steps first
        assert np.isnan(t.chain[:, :nburnin]).all()                 # as astro-eddy's
        assert np.isnan(t.lnprobability[:nburnin]).all()
        np.testing.assert_allclose(t.log_prob, result.log_prob["sampling"].T)
        assert t.sampler.result is result
        assert not hasattr(t.sampler, "acceptance_fraction")        # nor astro-eddy's


# -- 6. The dict ----------------------------------------------------------------------------


def test_the_dict_has_astro_eddys_keys_and_defaults(tutorial):
    d = tutorial.medians
    assert list(d) == ASTRO_EDDY_KEYS
    for key, value in ASTRO_EDDY_VALUES.items():
        assert d[key] == value or (value is None and d[key] is None), key
    assert d["r_min"] == pytest.approx(2.0 * tutorial.cube.bmaj)
    np.testing.assert_array_equal(d["user_mask"], np.ones(tutorial.cube.data.shape))
    np.testing.assert_allclose([d[name] for name in FREE], tutorial.percentiles[1])
    assert callable(d["vfunc"])
    # astro-eddy's vfunc(rvals, tvals, zvals, params): Keplerian v_phi [m/s].
    v = d["vfunc"](np.array([1.0]), None, np.array([0.0]), d)
    vkep = math.sqrt(6.674e-11 * d["mstar"] * 1.98847e30 / (101.0 * 1.495978707e11))
    assert float(v[0]) == pytest.approx(vkep, rel=1e-3)
    # The dict goes back into the model, as astro-eddy's does.
    np.testing.assert_allclose(tutorial.best, tutorial.model, atol=1e-6)


def test_the_fit_used_astro_eddys_mask_defaults(tutorial):
    mask = tutorial.cube.last_run.posterior.spec.mask
    assert (mask["r_max"], mask["v_min"], mask["v_max"]) == (10.0, -10000.0, 30000.0)
    from eddy_widgets.facade.returns import with_fit_map_defaults

    assert with_fit_map_defaults({"r_max": 3.0})["r_max"] == 3.0
    assert with_fit_map_defaults({}, r_max=2.0).get("r_max") is None   # the argument's
    assert with_fit_map_defaults({"v_max": None})["v_max"] is None


def test_a_pixel_outside_astro_eddys_velocity_range_is_not_fitted(example):
    cube = rotationmap(example.v0, FOV=8.0, downsample=8)
    cube.set_prior("r_taper", [0.0, 50.0], "flat")
    params = tutorial_params(cube)
    j, i = np.argwhere(cube.fit_mask(params, P0))[0]
    data = cube.data.copy()
    data[j, i] = 31000.0                         # m/s: above astro-eddy's v_max
    cube.data = data
    for extra, fitted in (({}, False), ({"v_max": None}, True)):
        cube.fit_map(P0, {**params, **extra}, optimize=False, nwalkers=20, nburnin=0,
                     nsteps=1, plots="none", returns="none", verdict=False,
                     mcmc_kwargs={"progress": False})
        assert (cube.ivar[j, i] > 0) == fitted


def test_astro_eddys_dict_goes_back_in_and_other_values_of_its_keys_are_refused():
    d = {"mstar": 0, "inc": 46.7, "vfunc": print, "vortex": False, "vradial": False,
         "chi_vortex": 5.0, "r0_vortex": None, "w_pressure": None, "vp_qtaper": None}
    assert FitSpec.parse(d, [2.0]).free == ("mstar",)
    for key, value, why in [("r0_vortex", 1.0, "vortex"), ("chi_vortex", 3.0, "vortex"),
                            ("w_pressure", 0.1, "pressure"), ("vp_qtaper", 1.0, "taper"),
                            ("vortex", True, "vortex"), ("w_i", 1, "warp")]:
        with pytest.raises(FitInputError, match=why):
            FitSpec.parse({**d, key: value}, [2.0])
    with pytest.warns(UserWarning, match="warps are not modelled"):
        FitSpec.parse({**d, "w_i": 5.0}, [2.0])


def test_the_noise_keys_appear_only_with_noise_given(standard_cube):
    """A fit with noise='correlated' gives the noise model's settings and its
    scale at the end of the dict; the tutorial's (without noise=) has none
    (test_the_dict_has_astro_eddys_keys_and_defaults)."""
    from eddy_widgets.facade.returns import astro_eddy_dict

    params, p0 = with_noise(tutorial_params(standard_cube), P0, "correlated")
    spec = FitSpec.parse(params, p0)
    theta = np.asarray(p0, dtype=float)
    run = SimpleNamespace(
        posterior=SimpleNamespace(spec=spec),
        result=SimpleNamespace(percentiles=lambda q: theta[None, :]))
    d = astro_eddy_dict(standard_cube, run)
    assert list(d)[:len(ASTRO_EDDY_KEYS)] == ASTRO_EDDY_KEYS
    extra = list(d)[len(ASTRO_EDDY_KEYS):]
    assert "noise_scale" in extra and d["noise"] == "correlated"
    assert d["noise_scale"] == 1.0


# -- 8. The NUTS defaults ------------------------------------------------------------------


def test_the_nuts_defaults_and_astro_eddys_are_in_the_compatibility_document():
    options = BACKENDS["numpyro"].options
    text = DOC.read_text()
    start = text.index("**NUTS defaults**")
    bullet = text[start:text.index("\n- **", start)]
    assert f"dense_mass={options['dense_mass']}" in bullet
    assert f"max_tree_depth={options['max_tree_depth']}" in bullet
    assert f"target_accept_prob={options['target_accept_prob']}" in bullet
    # astro-eddy's: numpyro's NUTS defaults (a diagonal metric, depth 10).
    assert "dense_mass=False" in bullet and "max_tree_depth=10" in bullet
