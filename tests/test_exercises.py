"""The exercises' answer checks (eddy_widgets.exercises): a median is right
at the precision the questions ask, fewer digits get "Close: more digits",
and unit slips are named."""

from __future__ import annotations

import contextlib
import io
import math
from types import SimpleNamespace

import numpy as np
import pytest

from eddy_widgets import exercises as X


def _say(function, *args) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert function(*args) is None
    return out.getvalue()


@pytest.fixture(scope="module")
def mass_fit():
    """Draws like exercise 2's fit: mstar 2.0247 +/- 0.0039 Msun."""
    rng = np.random.default_rng(1)
    mstar = 2.0247 + 0.0039 * rng.standard_normal(20000)
    inc = 46.83 + 0.11 * rng.standard_normal(20000)
    return SimpleNamespace(names=("inc", "mstar"), samples=np.column_stack([inc, mstar]))


def _posterior(fit, i):
    p16, p50, p84 = np.percentile(fit.samples[:, i], [16, 50, 84])
    return p50, 0.5 * (p84 - p16)


def test_the_median_at_the_asked_precision_is_right(mass_fit):
    median, sd = _posterior(mass_fit, 1)
    asked = X.asked_decimals(sd)
    assert asked == 4            # 0.0039: two significant figures
    for value in (median, round(median, asked), round(median, asked) + 10 ** -asked):
        assert _say(X.check_stellar_mass, value, sd, mass_fit).startswith("Correct:")
    assert _say(X.check_stellar_mass, round(median, asked), round(sd, asked),
                mass_fit).startswith("Correct:")


def test_fewer_digits_are_close_not_wrong(mass_fit):
    median, sd = _posterior(mass_fit, 1)
    said = _say(X.check_stellar_mass, round(median, 2), sd, mass_fit)
    assert said.startswith("Close:") and "more digits" in said and "4 decimals" in said
    # A median that is wrong at the digits given is still wrong.
    said = _say(X.check_stellar_mass, round(median, 2) + 0.01, sd, mass_fit)
    assert said.startswith("Not quite")
    # 2 sigma off with every digit: not the median, and how far.
    said = _say(X.check_stellar_mass, median + 2 * sd, sd, mass_fit)
    assert said.startswith("Not quite") and "2.0 sigma" in said


@pytest.mark.parametrize("factor, unit", [(1.98847e30, "kilograms"),
                                          (1047.57, "Jupiter masses"),
                                          (332946.0, "Earth masses")])
def test_mass_unit_slips_are_named(mass_fit, factor, unit):
    median, sd = _posterior(mass_fit, 1)
    said = _say(X.check_stellar_mass, median * factor, sd, mass_fit)
    assert said.startswith("Not quite") and unit in said and "solar masses" in said


def test_uncertainty_in_per_cent_is_named(mass_fit):
    median, sd = _posterior(mass_fit, 1)
    said = _say(X.check_stellar_mass, median, 100 * sd / median, mass_fit)
    assert said.startswith("Not quite") and "per cent" in said


def test_radians_for_degrees_are_named(mass_fit):
    said = _say(X.check_inclination_by_eye, math.radians(46.0))
    assert said.startswith("Not quite") and "radians" in said
    median, sd = _posterior(mass_fit, 0)
    said = _say(X.check_fitted_inclination, math.radians(median), sd, mass_fit)
    assert said.startswith("Not quite") and "radians" in said
    said = _say(X.check_fitted_inclination, median, math.radians(sd), mass_fit)
    assert said.startswith("Not quite") and "radians" in said
    said = _say(X.check_fitted_inclination, round(median), sd, mass_fit)
    assert said.startswith("Close:") and "more digits" in said


def test_the_notebook_module_reexports_the_package_checks():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "notebooks" / "exercises" / "checks.py"
    spec = importlib.util.spec_from_file_location("exercise_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.check_stellar_mass is X.check_stellar_mass
    assert set(X.__all__) <= set(dir(module))
