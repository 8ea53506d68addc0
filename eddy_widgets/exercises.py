"""Answer checks for the classroom exercises (``notebooks/exercises``).

The exercise notebooks import them with ``from eddy_widgets.exercises import
...``: the set-up lives here, not in the notebooks. Each ``check_*`` function
prints one verdict and returns nothing:

- ``Not answered yet: ...`` while the answer is still ``None``;
- ``Correct: ...`` when it is within tolerance;
- ``Close: ...`` when it is right to the digits given but the question asks
  for more;
- ``Not quite: ...`` with a hint otherwise (also for unit slips: radians for
  degrees, kilograms or Jupiter masses for solar masses, per cent for a
  fraction), naming every wrong part of the answer at once (a median with
  too few digits and a wrong uncertainty are both said).

In a notebook the verdict shows as a coloured box (:func:`feedback_html`:
green "Correct", amber "Close", red "Not quite", grey "Not answered yet")
with normal word wrapping; elsewhere (a terminal, a test) it is printed as
text. Parameter names are matched whatever their case, and a misspelt one
gets a "did you mean".

Answers about a fit are compared with *that* fit's own posterior (passed in
as ``result``), so they stay right whatever the seed or chain length; answers
about the disk are compared with the true values the bundled example map was
made with. A median counts as right when it is within half a sigma of the
posterior median, or equal to it at the precision the questions ask (two
significant figures of the uncertainty, see :func:`asked_decimals`). No check
ever raises: an exercise notebook runs top to bottom before and after the
student fills it in.

:func:`answers_so_far` lists every check run in this session with its verdict
(``Correct``, ``Close``, ``Not quite``, ``Not answered yet``), without the
numbers: the last cell of each exercise, for the student and the teacher.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import html
import io
import math
import re

import numpy as np

from .formatting import decimals_for

__all__ = [
    "TRUE_INCLINATION", "check_inclination_by_eye", "check_fitted_inclination",
    "check_correlated_parameter", "check_stellar_mass", "check_total_uncertainty",
    "check_dominant_term", "KINK_RADIUS", "KINK_AZIMUTH", "KINK_SKY_DISTANCE",
    "KINK_SKY_PA", "KINK_DIST", "KINK_DISK_PA", "check_kink_radius",
    "check_kink_azimuth", "asked_decimals", "answers_so_far", "feedback_html",
    "Feedback",
]

#: The verdict of each check run in this session, in the order first run.
_VERDICTS: dict[str, str] = {}
_VERDICT_WORDS = ("Correct", "Close", "Not quite", "Not answered yet")


#: The look of each verdict word: (colour, mark); the box's background is
#: the colour at 10% over the page (it reads on a light and a dark theme).
_LOOK = {"Correct": ("#2e7d32", "&#10004;"), "Close": ("#b26a00", "&#8776;"),
         "Not quite": ("#c62828", "&#10008;"), "Not answered yet": ("#757575", "&#8230;")}


def _inline(text: str) -> str:
    """Plain text as HTML: escaped, with `code` in backticks as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def feedback_html(text: str) -> str:
    """A check's verdict ``text`` as a coloured HTML box: the verdict word
    in bold and colour with a mark, the rest in the notebook's own font with
    normal word wrapping (never broken inside a word); the parts of a
    several-part answer ("(1) ...; (2) ...") as a list."""
    word = next((w for w in _VERDICT_WORDS if text.startswith(w)), "")
    colour, mark = _LOOK.get(word, ("#757575", ""))
    rest = text[len(word):].lstrip(":").strip() if word else text.strip()
    head, sep, tail = rest.partition(" (1) ")
    if sep:
        items = re.split(r";? \(\d\) ", " (1) " + tail)[1:]
        body = (_inline(head) + "<ul style='margin:4px 0 0 0; padding-left:20px'>"
                + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
    else:
        body = _inline(rest)
    title = f"<b style='color:{colour}'>{mark} {word}</b>: " if word else ""
    return (f"<div class='eddy-feedback' data-verdict='{html.escape(word)}' "
            f"style='border:1px solid {colour}; border-left:6px solid {colour}; "
            f"background:{colour}1a; border-radius:4px; padding:6px 10px; "
            f"margin:4px 0; font-family:var(--jp-content-font-family, sans-serif); "
            f"font-size:var(--jp-content-font-size1, 14px); line-height:1.45; "
            f"white-space:normal; word-break:normal; overflow-wrap:normal; "
            f"max-width:60em'>{title}{body}</div>")


class Feedback:
    """A check's verdict as IPython shows it: the HTML box
    (:func:`feedback_html`) in a notebook, the text elsewhere."""

    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return feedback_html(self.text)

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _in_notebook() -> bool:
    """Whether output goes to a Jupyter kernel's front-end (which draws HTML)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _show(text: str) -> None:
    """A verdict: the coloured box in a notebook, the text elsewhere."""
    if _in_notebook():
        from IPython.display import display

        display(Feedback(text.rstrip("\n")))
    else:
        print(text, end="")


def _recorded(check):
    """Show what ``check`` prints (:func:`_show`) and record its verdict for
    :func:`answers_so_far`."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                check(*args, **kwargs)
        finally:
            text = buffer.getvalue()
            _show(text)
            word = next((w for w in _VERDICT_WORDS if text.startswith(w)), "?")
            _VERDICTS[check.__name__] = word

    return wrapper


def answers_so_far() -> None:
    """One line per question checked in this session: its verdict word."""
    if not _VERDICTS:
        print("No answer checked yet.")
        return
    print("Your answers so far:")
    for name, word in _VERDICTS.items():
        print(f"  {name.removeprefix('check_').replace('_', ' '):<26}{word}")

#: Solar mass in kg, in Jupiter masses and in Earth masses.
MSUN_KG = 1.98847e30
MSUN_MJUP = 1047.57
MSUN_MEARTH = 332946.0

#: Inclination of the bundled example map [deg] (its truths.json).
TRUE_INCLINATION = 46.7
#: By-eye answers within this many degrees count as correct.
BY_EYE_TOLERANCE = 5.0


def _number(value, name: str, unit: str = ""):
    """``(float, None)`` or ``(None, message)`` for a student's answer."""
    if value is None:
        return None, (f"Not answered yet: replace None in `{name}` with your answer"
                      f"{' in ' + unit if unit else ''}.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None, (f"Not quite: `{name}` should be a number{' in ' + unit if unit else ''}, "
                      f"not {value!r}.")
    if not math.isfinite(out):
        return None, f"Not quite: `{name}` is {out}; it should be a finite number."
    return out, None


def _posterior(result, name: str):
    """Median and standard deviation (half the 16-84 range) of ``name``."""
    i = list(result.names).index(name)
    p16, p50, p84 = np.percentile(result.samples[:, i], [16, 50, 84])
    return float(p50), float(0.5 * (p84 - p16))


def asked_decimals(sd: float) -> int:
    """Decimal places the questions ask a median to: those that show the
    1-sigma width ``sd`` to two significant figures (0.0039 -> 4)."""
    return max(decimals_for(sd, 2), 0)


def _decimals_given(value: float) -> int:
    """Decimal places written in ``value`` (2.02 -> 2, 2.0 -> 0, 2.5e-3 -> 4)."""
    text = f"{value:.12g}"
    mantissa, _, exponent = text.partition("e")
    digits = mantissa.partition(".")[2].rstrip("0")
    return max(len(digits) - int(exponent or 0), 0)


def _median_verdict(value: float, median: float, sd: float) -> str:
    """``'right'``, ``'more digits'`` (right to the digits given, but the
    question asks for more) or ``'wrong'``."""
    asked = asked_decimals(sd)
    if abs(value - median) <= 0.5 * sd + 0.5 * 10.0 ** -asked + 1e-12:
        return "right"
    given = _decimals_given(value)
    if given < asked and abs(value - median) <= 0.5 * 10.0 ** -given + 1e-12:
        return "more digits"
    return "wrong"


def _more_digits(value: float, median: float, sd: float, name: str, unit: str) -> str:
    """The "more digits" sentence (without its verdict word)."""
    asked = asked_decimals(sd)
    return (f"{value:g} {unit} is the median rounded to "
            f"{_decimals_given(value)} decimals, but the posterior is narrower than "
            f"that (1 sigma = {sd:.2g} {unit}). Give more digits: {asked} decimals, "
            f"e.g. {name} = round(np.median(...), {asked})")


def _say(problems: list[tuple[str, str]]) -> bool:
    """Print the verdict of an answer with several parts: every problem at
    once, as ``(kind, sentence)`` with kind ``'close'`` (right to the digits
    given) or ``'wrong'``. "Close" when every problem is close, else "Not
    quite"; several problems are numbered. Returns whether anything was
    said (``False``: no problem, the caller says "Correct")."""
    if not problems:
        return False
    word = "Close" if all(kind == "close" for kind, _ in problems) else "Not quite"
    sentences = [text.rstrip(".") for _, text in problems]
    if len(sentences) == 1:
        print(f"{word}: {sentences[0]}.")
    else:
        parts = "; ".join(f"({i}) {t}" for i, t in enumerate(sentences, 1))
        print(f"{word}: {len(sentences)} things to fix: {parts}.")
    return True


def _read_median_and_error(my_median, my_error, result, parameter: str, name: str,
                           unit_words: str, unit: str):
    """The student's median ``my_median`` and 1-sigma error ``my_error`` of
    ``parameter`` (answered in variables ``name`` and ``name + '_err'``, in
    ``unit``) against the posterior of ``result``.

    Returns ``(value, error, median, sd, verdict)`` with ``verdict`` ``'right'``,
    ``'more digits'`` or ``'wrong'`` (see :func:`_median_verdict`), or ``None``
    once it has printed the verdict itself: not answered yet, not a number,
    or ``parameter`` not free in the fit.
    """
    value, message = _number(my_median, name, unit_words)
    if message:
        print(message)
        return None
    error, message = _number(my_error, f"{name}_err", unit_words)
    if message:
        print(message)
        return None
    if parameter not in result.names:
        print(f"Not quite: `{parameter}` is not a free parameter of this fit. Make it "
              "free (an integer index in params) and run the fit again.")
        return None
    median, sd = _posterior(result, parameter)
    return value, error, median, sd, _median_verdict(value, median, sd)


def _is_one_sigma(error: float, sd: float) -> bool:
    """``error`` is the posterior's 1-sigma width ``sd`` to within 30 per cent."""
    return 0.7 * sd <= error <= 1.3 * sd


def _looks_like_radians(value: float, degrees: float, tolerance: float) -> bool:
    """``value`` reads as the angle ``degrees`` given in radians."""
    return (abs(value) <= 2.0 * math.pi + 0.01
            and abs(math.degrees(value) - degrees) <= tolerance)


# ----------------------------------------------------------------------------
# Exercise 1: the inclination
# ----------------------------------------------------------------------------


@_recorded
def check_inclination_by_eye(my_inclination) -> None:
    """By-eye inclination from the sliders, in degrees."""
    value, message = _number(my_inclination, "my_inclination", "degrees")
    if message:
        print(message)
        return
    if 0.0 < value < 2.0 and _looks_like_radians(value, TRUE_INCLINATION,
                                                  2 * BY_EYE_TOLERANCE):
        print(f"Not quite: {value:g} looks like radians ({math.degrees(value):.0f} "
              "deg). Give the inclination in degrees, as the slider shows it "
              "(np.degrees converts).")
        return
    if value >= 90.0:
        print("Not quite: inclinations of 90 deg and more mean the same disk seen from "
              "the other side (the model uses inc - 180). Keep the slider between 0 "
              "and 90 deg.")
        return
    if value < 0.0:
        print("Not quite: a negative inclination turns the disk around (the sign sets "
              "the rotation sense), so the red and blue halves swap places. Look at "
              "the residual map: this map rotates with a positive inclination.")
        return
    error = value - TRUE_INCLINATION
    if abs(error) <= BY_EYE_TOLERANCE:
        print(f"Correct: {value:g} deg is within {BY_EYE_TOLERANCE:g} deg of the "
              f"inclination the map was made with. Well spotted!")
    elif error < 0:
        print(f"Not quite: {value:g} deg is too small. The projected speed grows as "
              "sin(i): with too small an inclination the model rotates too slowly, so "
              "the residual (data - model) is red on the red-shifted side and blue on "
              "the blue-shifted side. Move the slider up until both sides fade.")
    else:
        print(f"Not quite: {value:g} deg is too large. With too large an inclination the "
              "model rotates too fast along the major axis and its iso-velocity "
              "contours are squeezed: the residual shows the opposite colours to the "
              "data on each side. Move the slider down until both sides fade.")


@_recorded
def check_fitted_inclination(my_fit_inclination, my_fit_inclination_err, result) -> None:
    """Median and 1-sigma uncertainty of ``inc`` read from the fit ``result``."""
    answer = _read_median_and_error(my_fit_inclination, my_fit_inclination_err, result,
                                    "inc", "my_fit_inclination", "degrees", "deg")
    if answer is None:
        return
    value, err, median, sd, verdict = answer
    problems = []
    if verdict == "more digits":
        problems.append(("close", _more_digits(value, median, sd, "my_fit_inclination",
                                               "deg")))
    elif verdict == "wrong":
        if _looks_like_radians(value, median, max(3 * sd, 0.5)):
            problems.append(("wrong", f"{value:g} looks like radians "
                             f"({math.degrees(value):.2f} deg). Give the inclination "
                             f"in degrees, as the fit does (np.degrees converts)"))
        else:
            problems.append(("wrong", f"your inclination {value:g} deg is not the "
                             f"posterior median. Hint: i = result.names.index('inc'); "
                             f"np.median(samples[:, i])"))
    if not _is_one_sigma(err, sd):
        if abs(math.degrees(err) - sd) < 0.3 * sd:
            hint = (f"{err:g} looks like radians ({math.degrees(err):.2g} deg); "
                    "give it in degrees (np.degrees converts)")
        elif abs(err - sd ** 2) < 0.3 * sd ** 2:
            hint = "it looks like a variance (the square of what we want)"
        else:
            hint = ("use half the distance between the 16th and 84th percentiles: "
                    "np.percentile(samples[:, i], [16, 84])")
        problems.append(("wrong", f"the uncertainty {err:g} deg does not match the "
                         f"posterior's 1-sigma width; {hint}"))
    if _say(problems):
        return
    z = (value - TRUE_INCLINATION) / sd
    asked = asked_decimals(sd)
    print(f"Correct: i = {value:.{asked}f} +/- {err:.{asked}f} deg. The map was made "
          f"with {TRUE_INCLINATION:g} deg, "
          + ("within 3 sigma of your median: a good fit." if abs(z) < 3 else
             "more than 3 sigma from your median, so something in the set-up (fixed "
             "values, mask) biases it."))


@_recorded
def check_correlated_parameter(my_correlated_parameter, result) -> None:
    """Name of the free parameter most correlated with ``inc`` in ``result``."""
    if my_correlated_parameter is None:
        print("Not answered yet: set `my_correlated_parameter` to a parameter name, "
              "e.g. 'PA'.")
        return
    typed = str(my_correlated_parameter).strip()
    names = list(result.names)
    others = [n for n in names if n != "inc"]
    name = _parameter_name(typed, names)
    if name == "inc":
        print(f"Not quite: inc is the parameter the question is about; choose one of "
              f"the other free parameters: {', '.join(others)}.")
        return
    if name is None:
        guess = _did_you_mean(typed, others)
        print(f"Not quite: {typed!r} is not a free parameter of this fit"
              + (f" (did you mean {guess!r}?)" if guess else "")
              + f"; choose one of the other free parameters: {', '.join(others)}.")
        return
    # Matched whatever the case ('Mstar'); code wants the name as it is.
    spelling = (f" (In code it is written {name!r}: names are case-sensitive "
                f"there.)" if typed != name else "")
    corr = np.corrcoef(result.samples.T)
    i = names.index("inc")
    ranked = [(abs(corr[i, j]), n) for j, n in enumerate(names) if n != "inc"]
    best = max(ranked)[1]
    r = corr[i, names.index(name)]
    if name == best:
        print(f"Correct: {name} (correlation coefficient {r:+.1f}). The rotation speed "
              "on the sky is v_kep sin(i) with v_kep ~ sqrt(M): a larger inclination and "
              "a smaller mass give almost the same map. Only the shape of the "
              "iso-velocity contours (set by cos i) tells them apart." + spelling)
    else:
        print(f"Not quite: {name} has correlation {r:+.1f} with inc. Look at the corner "
              "plot for the panel whose contours are the most tilted ellipse." + spelling)


# ----------------------------------------------------------------------------
# Exercise 2: the stellar mass
# ----------------------------------------------------------------------------


@_recorded
def check_stellar_mass(my_mstar, my_mstar_err, result) -> None:
    """Median and 1-sigma uncertainty of ``mstar`` [Msun] from ``result``."""
    answer = _read_median_and_error(my_mstar, my_mstar_err, result, "mstar", "my_mstar",
                                    "solar masses", "Msun")
    if answer is None:
        return
    value, err, median, sd, verdict = answer
    problems = []
    if verdict == "more digits":
        problems.append(("close", _more_digits(value, median, sd, "my_mstar", "Msun")))
    elif verdict == "wrong":
        slip = _mass_unit_slip(value, median, sd)
        if slip:
            # The unit is the whole story: "is not the posterior median" of a
            # number in kilograms says nothing more.
            problems.append(("wrong", slip))
        elif abs(value - median) <= 3 * sd:
            problems.append(("wrong", f"{value:g} Msun is not the posterior median; it "
                             f"is {abs(value - median) / sd:.1f} sigma from it: take "
                             f"the median (np.median), not the mean or the maximum, "
                             f"of the mstar column, from all of samples"))
        else:
            problems.append(("wrong", f"{value:g} Msun is not the posterior median; "
                             f"take the median of the mstar column: "
                             f"np.median(samples[:, result.names.index('mstar')])"))
    slip = _mass_unit_slip(err, sd, 0.3 * sd)
    if not _is_one_sigma(err, sd) and abs(err - 100 * sd / median) < 30 * sd / median:
        # A unit slip is the whole story (as for the median).
        problems.append(("wrong", f"the uncertainty {err:g} looks like per cent of "
                         f"the mass; give it in solar masses"))
    elif not _is_one_sigma(err, sd) and slip:
        problems.append(("wrong", f"the uncertainty {slip}"))
    elif not _is_one_sigma(err, sd):
        if abs(err - 2 * sd) < 0.3 * sd:
            hint = ("that is the full 16-84 range; the 1-sigma uncertainty is half "
                    "of it")
        elif err < 0.2 * sd:
            hint = ("that is far too small: the standard error of the mean shrinks "
                    "with the number of samples, the posterior width does not")
        else:
            hint = ("use half the distance between the 16th and 84th percentiles of "
                    "the mstar samples")
        problems.append(("wrong", f"{err:g} Msun is not the 1-sigma width of the "
                         f"posterior; {hint}"))
    if _say(problems):
        return
    asked = asked_decimals(sd)
    print(f"Correct: M* = {value:.{asked}f} +/- {err:.{asked}f} Msun, the posterior's "
          f"median and 1-sigma width. The fit alone pins the mass down to "
          f"{100 * err / value:.1f} per cent (its statistical uncertainty).")


def _parameter_name(typed: str, names) -> str | None:
    """The parameter of ``names`` that ``typed`` names, whatever its case
    ('Mstar', 'MSTAR' -> 'mstar'); ``None`` if none."""
    folded = {n.casefold(): n for n in names}
    return folded.get(typed.casefold())


def _did_you_mean(typed: str, names) -> str | None:
    """The name of ``names`` closest to a misspelt ``typed``, if one is close."""
    folded = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(typed.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def _mass_unit_slip(value: float, msun: float, sd: float) -> str:
    """A hint if ``value`` is the mass ``msun`` [Msun] in another unit, else ''."""
    units = (("kilograms", MSUN_KG), ("grams", 1e3 * MSUN_KG),
             ("Jupiter masses", MSUN_MJUP), ("Earth masses", MSUN_MEARTH))
    for unit, factor in units:
        if abs(value - msun * factor) <= max(3 * sd, 0.01 * msun) * factor:
            return (f"{value:g} looks like {unit}; give it in solar masses, as the "
                    f"fit does ({value:g} / {factor:g} = {value / factor:.4g})")
    if value > 1e20:
        return f"{value:g} is not in solar masses: give it in solar masses, as the fit does"
    return ""


def _total(result, dist, dist_err):
    median, sd = _posterior(result, "mstar")
    from_distance = median * dist_err / dist
    return median, sd, from_distance, math.hypot(sd, from_distance)


@_recorded
def check_total_uncertainty(my_mstar_total_err, result, dist, dist_err) -> None:
    """Uncertainty of ``mstar`` including a distance uncertainty ``dist_err``
    [pc] on the fixed ``dist`` [pc]."""
    err, message = _number(my_mstar_total_err, "my_mstar_total_err", "solar masses")
    if message:
        print(message)
        return
    median, sd, from_distance, total = _total(result, dist, dist_err)
    if abs(err - total) <= 0.05 * total:
        print(f"Correct: the distance alone contributes {100 * from_distance / median:.1f} "
              f"per cent of the mass, the fit {100 * sd / median:.1f} per cent; added in "
              f"quadrature they give {100 * total / median:.1f} per cent.")
        return
    if abs(err - (sd + from_distance)) <= 0.05 * total:
        hint = ("independent errors add in quadrature: sqrt(a**2 + b**2), not a + b")
    elif abs(err - sd) <= 0.2 * sd:
        hint = ("that is the statistical part only. The distance was fixed in the fit, "
                "but M* scales with it")
    elif abs(err - median * (dist_err / dist) ** 2) < 0.2 * from_distance or err < sd:
        hint = ("M* is proportional to the distance: v^2 = G M / r, and r in au is "
                "the distance in pc times r in arcsec. So sigma_M / M = sigma_d / d")
    else:
        hint = ("the distance's share is M* x sigma_d / d (M* is proportional to d); "
                "add it in quadrature to the fit's uncertainty")
    print(f"Not quite: {err:g} Msun. Hint: {hint}.")


@_recorded
def check_dominant_term(my_dominant_term, result, dist, dist_err) -> None:
    """``'statistical'`` or ``'distance'``: which dominates the mass uncertainty."""
    if my_dominant_term is None:
        print("Not answered yet: set `my_dominant_term` to 'statistical' or 'distance'.")
        return
    answer = str(my_dominant_term).strip().lower()
    if answer not in ("statistical", "distance"):
        print("Not quite: answer 'statistical' or 'distance'.")
        return
    median, sd, from_distance, _ = _total(result, dist, dist_err)
    right = "distance" if from_distance > sd else "statistical"
    if answer == right:
        print(f"Correct: the {right} term dominates ({100 * from_distance / median:.1f} "
              f"per cent from the distance against {100 * sd / median:.1f} per cent from "
              f"the fit). "
              + ("Dynamical masses of disks are usually limited by the distance, not "
                 "by the velocity map." if right == "distance" else ""))
    else:
        print(f"Not quite: compare the two terms: the fit gives {sd:.2g} Msun, the "
              f"distance M* x sigma_d / d = {from_distance:.2g} Msun.")


# ----------------------------------------------------------------------------
# Exercise 3: the kink
# ----------------------------------------------------------------------------

#: Where the perturbation of the 'kink' example was put (its kink_truths.json):
#: radius [arcsec] and azimuth [deg] in the disk frame, phi = 0 on the
#: red-shifted major axis.
KINK_RADIUS = 1.6
KINK_AZIMUTH = 40.0
#: Answers within these count as correct [arcsec, deg]; the bump is
#: 0.15 arcsec wide (one sigma), 5 deg of azimuth at its radius.
KINK_RADIUS_TOLERANCE = 0.15
KINK_AZIMUTH_TOLERANCE = 15.0
#: The same point seen on the sky, from the disk centre: its projected distance
#: [arcsec] and position angle east of north [deg] (foreshortened by the
#: inclination and shifted by the height of the emission surface).
KINK_SKY_DISTANCE = 1.29
KINK_SKY_PA = 330.0
#: The example's distance [pc] and disk position angle [deg].
KINK_DIST = 101.0
KINK_DISK_PA = 312.0


def _angle_offset(a: float, b: float) -> float:
    """``a - b`` wrapped into [-180, 180) deg: 40, 400 and -320 are the same."""
    return (a - b + 180.0) % 360.0 - 180.0


@_recorded
def check_kink_radius(my_kink_radius) -> None:
    """Disk-frame radius of the perturbation in the kink map, in arcsec."""
    value, message = _number(my_kink_radius, "my_kink_radius", "arcsec")
    if message:
        print(message)
        return
    error = value - KINK_RADIUS
    if abs(error) <= KINK_RADIUS_TOLERANCE:
        print(f"Correct: {value:.2f} arcsec is within {KINK_RADIUS_TOLERANCE:g} "
              f"arcsec of the radius where the perturbation was put "
              f"({KINK_RADIUS:g} arcsec, {KINK_RADIUS * KINK_DIST:.0f} au at "
              f"{KINK_DIST:g} pc).")
    elif value <= 0.0:
        print("Not quite: a radius is a distance from the star, so it is positive. "
              "Read it off the horizontal axis of the (r, phi) map.")
    elif abs(value - KINK_RADIUS * KINK_DIST) <= 0.1 * KINK_RADIUS * KINK_DIST:
        print(f"Not quite: {value:g} looks like au. Give the radius in arcsec: "
              f"r [arcsec] = r [au] / distance [pc], with the distance "
              f"{KINK_DIST:g} pc.")
    elif abs(value - KINK_SKY_DISTANCE) <= 0.1:
        print(f"Not quite: {value:g} arcsec is how far from the star the spot looks "
              "on the sky. The disk is inclined, so distances across the minor axis "
              "are foreshortened, and the emission comes from above the midplane: "
              "use the radius in the disk frame, from the (r, phi) map.")
    elif value > 4.5:
        print(f"Not quite: {value:g} arcsec is outside the map, which ends at "
              "4.5 arcsec. If that is an index of the radial grid, the radius is "
              "rgrid[index].")
    else:
        print(f"Not quite: {value:g} arcsec is not where the perturbation is. The "
              "noise grows outwards, so the largest single pixels are noise at large "
              "radii: smooth the (r, phi) map over about a beam "
              "(scipy.ndimage.gaussian_filter) and look for one compact spot.")


#: Wrong azimuths that come from a particular slip, with what to say about it.
_AZIMUTH_SLIPS = (
    (-KINK_AZIMUTH,
     "that is the mirror image about the major axis: phi runs the other way. In "
     "the (r, phi) map phi is the vertical axis; a face-on map needs "
     "imshow(gridded.T, origin='lower')"),
    (KINK_AZIMUTH + 180.0,
     "that is the opposite side of the disk: phi = 0 is the red-shifted end of the "
     "major axis (where v0 > vlsr), not the blue-shifted one"),
    (180.0 - KINK_AZIMUTH,
     "that is the mirror image about the minor axis: phi is measured from the "
     "red-shifted end of the major axis"),
    (KINK_SKY_PA,
     "that looks like a position angle on the sky (east of north). The question "
     "asks for the azimuth in the disk frame, from the red-shifted major axis"),
    (KINK_DISK_PA,
     "that is the disk's position angle PA, the direction of phi = 0 on the sky. "
     "The azimuth of the spot is measured from there, in the disk frame"),
)


@_recorded
def check_kink_azimuth(my_kink_azimuth) -> None:
    """Disk-frame azimuth of the perturbation in the kink map, in degrees
    (any turn: 40, 400 and -320 are the same)."""
    value, message = _number(my_kink_azimuth, "my_kink_azimuth", "degrees")
    if message:
        print(message)
        return
    offset = _angle_offset(value, KINK_AZIMUTH)
    if abs(offset) <= KINK_AZIMUTH_TOLERANCE:
        same = KINK_AZIMUTH + offset
        print(f"Correct: {value:g} deg"
              + (f" (that is {same:.0f} deg)" if abs(value - same) > 1e-9 else "")
              + f" is within {KINK_AZIMUTH_TOLERANCE:g} deg of the azimuth where the "
              f"perturbation was put ({KINK_AZIMUTH:g} deg from the red-shifted major "
              "axis).")
        return
    if abs(value) <= 2.0 * math.pi + 0.01 and abs(_angle_offset(
            math.degrees(value), KINK_AZIMUTH)) <= KINK_AZIMUTH_TOLERANCE:
        print(f"Not quite: {value:g} looks like radians. Give the azimuth in degrees "
              "(np.degrees).")
        return
    slips = [(abs(_angle_offset(value, angle)), text) for angle, text in _AZIMUTH_SLIPS]
    distance, text = min(slips, key=lambda slip: slip[0])
    if distance <= 10.0:
        print(f"Not quite: {value:g} deg; {text}.")
    else:
        print(f"Not quite: {value:g} deg is not where the perturbation is. Look for "
              "one compact spot in the (r, phi) map of the residual, smoothed over "
              "about a beam, and read phi off its vertical axis.")
