"""The exercises' answer checks (eddy_widgets.exercises): a median is right
at the precision the questions ask, fewer digits get "Close: more digits",
and unit slips are named."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eddy_widgets import exercises as X

from helpers import fake_fit, say


@pytest.fixture(scope="module")
def mass_fit():
    """Draws like exercise 2's fit: mstar 2.0247 +/- 0.0039 Msun."""
    rng = np.random.default_rng(1)
    mstar = 2.0247 + 0.0039 * rng.standard_normal(20000)
    inc = 46.83 + 0.11 * rng.standard_normal(20000)
    return fake_fit(inc=inc, mstar=mstar)


def _posterior(fit, i):
    p16, p50, p84 = np.percentile(fit.samples[:, i], [16, 50, 84])
    return p50, 0.5 * (p84 - p16)


def test_the_median_at_the_asked_precision_is_right(mass_fit):
    median, sd = _posterior(mass_fit, 1)
    asked = X.asked_decimals(sd)
    assert asked == 4            # 0.0039: two significant figures
    for value in (median, round(median, asked), round(median, asked) + 10 ** -asked):
        assert say(X.check_stellar_mass, value, sd, mass_fit).startswith("Correct:")
    assert say(X.check_stellar_mass, round(median, asked), round(sd, asked),
                mass_fit).startswith("Correct:")


def test_fewer_digits_are_close_not_wrong(mass_fit):
    median, sd = _posterior(mass_fit, 1)
    said = say(X.check_stellar_mass, round(median, 2), sd, mass_fit)
    assert said.startswith("Close:") and "more digits" in said and "4 decimals" in said
    # A median that is wrong at the digits given is still wrong.
    said = say(X.check_stellar_mass, round(median, 2) + 0.01, sd, mass_fit)
    assert said.startswith("Not quite")
    # 2 sigma off with every digit: not the median, and how far.
    said = say(X.check_stellar_mass, median + 2 * sd, sd, mass_fit)
    assert said.startswith("Not quite") and "2.0 sigma" in said


@pytest.mark.parametrize("factor, unit", [(1.98847e30, "kilograms"),
                                          (1047.57, "Jupiter masses"),
                                          (332946.0, "Earth masses")])
def test_mass_unit_slips_are_named(mass_fit, factor, unit):
    median, sd = _posterior(mass_fit, 1)
    said = say(X.check_stellar_mass, median * factor, sd, mass_fit)
    assert said.startswith("Not quite") and unit in said and "solar masses" in said


def test_uncertainty_in_per_cent_is_named(mass_fit):
    median, sd = _posterior(mass_fit, 1)
    said = say(X.check_stellar_mass, median, 100 * sd / median, mass_fit)
    assert said.startswith("Not quite") and "per cent" in said


def test_radians_for_degrees_are_named(mass_fit):
    said = say(X.check_inclination_by_eye, math.radians(46.0))
    assert said.startswith("Not quite") and "radians" in said
    median, sd = _posterior(mass_fit, 0)
    said = say(X.check_fitted_inclination, math.radians(median), sd, mass_fit)
    assert said.startswith("Not quite") and "radians" in said
    said = say(X.check_fitted_inclination, median, math.radians(sd), mass_fit)
    assert said.startswith("Not quite") and "radians" in said
    said = say(X.check_fitted_inclination, round(median), sd, mass_fit)
    assert said.startswith("Close:") and "more digits" in said


def test_correct_prints_the_answer_at_the_decimals_asked(mass_fit):
    """Two significant figures of the uncertainty: 0.11 deg -> 2 decimals,
    0.0039 Msun -> 4, also when the answer was given with every digit."""
    median, sd = _posterior(mass_fit, 0)
    assert X.asked_decimals(sd) == 2
    said = say(X.check_fitted_inclination, median, sd, mass_fit)
    assert said.startswith(f"Correct: i = {median:.2f} +/- {sd:.2f} deg."), said
    median, sd = _posterior(mass_fit, 1)
    said = say(X.check_stellar_mass, median, sd, mass_fit)
    assert said.startswith(f"Correct: M* = {median:.4f} +/- {sd:.4f} Msun"), said
    assert f"{median:.4f}" == "2.0247"


def test_a_parameter_the_fit_held_fixed_is_named_not_raised(mass_fit):
    inc_only = fake_fit(inc=mass_fit.samples[:, 0])
    said = say(X.check_stellar_mass, 2.0247, 0.0039, inc_only)
    assert said.startswith("Not quite") and "`mstar` is not a free parameter" in said
    mass_only = fake_fit(mstar=mass_fit.samples[:, 1])
    said = say(X.check_fitted_inclination, 46.83, 0.11, mass_only)
    assert said.startswith("Not quite") and "`inc` is not a free parameter" in said
