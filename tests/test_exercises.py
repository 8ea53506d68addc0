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


# -- Issue 21 (10): feedback that reads well, every wrong part at once ----------

def test_feedback_is_a_coloured_box_with_normal_wrapping():
    boxes = {word: X.feedback_html(f"{word}: the model rotates too slowly.")
             for word in ("Correct", "Close", "Not quite", "Not answered yet")}
    colours = set()
    for word, box in boxes.items():
        assert box.startswith("<div class='eddy-feedback'") and f">{word}</b>" in \
            box.replace("&#10004; ", "").replace("&#8776; ", "").replace(
                "&#10008; ", "").replace("&#8230; ", "")
        assert "white-space:normal" in box and "word-break:normal" in box
        assert "monospace" not in box and "<pre" not in box
        colours.add(box.split("border-left:6px solid ")[1][:7])
    assert len(colours) == 4                      # each verdict its own colour
    # Several problems: a list; `code` as code.
    box = X.feedback_html("Not quite: 2 things to fix: (1) give `my_x` more digits; "
                          "(2) the uncertainty is a variance.")
    assert box.count("<li>") == 2 and "<code>my_x</code>" in box


def test_in_a_notebook_the_check_shows_the_box(mass_fit, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(X, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    median, sd = _posterior(mass_fit, 1)
    assert say(X.check_stellar_mass, median, sd, mass_fit) == ""
    (feedback,) = shown
    assert feedback.text.startswith("Correct: M* = ")
    assert feedback._repr_html_() == X.feedback_html(feedback.text)
    assert repr(feedback) == feedback.text


def test_a_kilogram_answer_is_told_only_that_it_is_in_kilograms(mass_fit):
    median, sd = _posterior(mass_fit, 1)
    value = median * 1.98847e30
    said = say(X.check_stellar_mass, value, sd, mass_fit)
    assert said.startswith("Not quite: ") and "looks like kilograms" in said
    # Said once, with its conversion: not "... is not the posterior median" too.
    assert "not the posterior median" not in said and said.count(f"{value:g}") == 2


def test_digits_and_a_wrong_error_are_both_reported(mass_fit):
    said = say(X.check_fitted_inclination, 47.0, 0.3, mass_fit)     # true 46.83 +- 0.11
    assert said.startswith("Not quite: 2 things to fix: (1) ")
    assert "more digits" in said and "2 decimals" in said
    assert "(2) the uncertainty 0.3 deg does not match" in said
    median, sd = _posterior(mass_fit, 1)
    said = say(X.check_stellar_mass, round(median, 2), 3 * sd, mass_fit)
    assert "(1) " in said and "more digits" in said and "(2) " in said
    assert "1-sigma width" in said
    # Fewer digits alone is still "Close".
    said = say(X.check_fitted_inclination, 47.0, 0.11, mass_fit)
    assert said.startswith("Close: ") and "(2)" not in said


def test_parameter_names_are_matched_whatever_the_case(mass_fit):
    fit = fake_fit(inc=mass_fit.samples[:, 0],
                   mstar=2.0 - 0.04 * (mass_fit.samples[:, 0] - 46.83)
                   + 0.001 * np.random.default_rng(2).standard_normal(20000),
                   PA=312.0 + 0.05 * np.random.default_rng(3).standard_normal(20000))
    said = say(X.check_correlated_parameter, "Mstar", fit)
    assert said.startswith("Correct: mstar") and "written 'mstar'" in said
    said = say(X.check_correlated_parameter, "msatr", fit)
    assert said.startswith("Not quite") and "did you mean 'mstar'?" in said
    assert say(X.check_correlated_parameter, "PA", fit).startswith("Not quite")
