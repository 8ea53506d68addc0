"""Posterior numbers for the tutorials, in two kinds of output.

A seeded Markov chain gives other bits on another processor (and with
``EDDY_WIDGETS_SEED_OFFSET``, which the notebook tests set): its medians move
by their Monte Carlo error, a small fraction of the posterior width, and any
digit at or below that width, or a rounding edge near the value, can change.
So the tutorials show posterior numbers twice:

- :func:`posterior_table`, every digit (median, the 16th / 84th percentile
  offsets, the truth and the pull), in cells whose output the notebook tests
  do not compare (tagged ``nbval-ignore-output``, with the reason in the
  cell's first line);
- :func:`truth_check` and :func:`check`, statements whose answer does not
  change with the chains' bits ("within 3 sigma of the truth: yes"), in cells
  the tests compare. The notebooks' fits are set up so that each statement
  holds with a margin on every seed tried.
"""

from __future__ import annotations

import math

from eddy_widgets.parameters import PARAMETERS

__all__ = ["check", "posterior_table", "precision", "pulls", "rounded",
           "truth_check"]


def precision(sd: float) -> float:
    """The power of ten at or above ``sd`` (the rounding unit of a median)."""
    if not sd > 0 or not math.isfinite(sd):
        return math.nan
    return 10.0 ** math.ceil(math.log10(sd))


def rounded(value: float, unit: float) -> str:
    """``value`` rounded to ``unit`` (a power of ten), as text."""
    if not math.isfinite(unit):
        return f"{value:.4g}"
    decimals = max(0, -int(round(math.log10(unit))))
    text = f"{round(value / unit) * unit:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def check(statement: str, holds: bool) -> str:
    """``'statement: yes'`` (or ``NO``): a line whose text depends only on
    whether ``holds``, for the outputs the notebook tests compare."""
    return f"{statement}: {'yes' if holds else 'NO'}"


def pulls(result, truths: dict) -> dict:
    """``(median - truth) / sigma`` of each free parameter with a truth, sigma
    half the 16-84 range."""
    p16, p50, p84 = result.percentiles()
    return {name: (p50[i] - truths[name]) / (0.5 * (p84[i] - p16[i]))
            for i, name in enumerate(result.names) if name in truths}


def posterior_table(result, truths: dict | None = None) -> str:
    """Every digit: one line per free parameter with its unit, median, the
    offsets of the 16th and 84th percentiles, and, with ``truths``, the true
    value and the pull (median - truth) / sigma. Monte Carlo digits: show it
    in a cell whose output is not compared."""
    p16, p50, p84 = result.percentiles()
    head = f"{'parameter':<10}{'unit':<8}{'median':>12}{'-':>10}{'+':>10}"
    if truths:
        head += f"{'truth':>10}{'pull':>7}"
    lines = [head, "-" * len(head)]
    for i, name in enumerate(result.names):
        sd = 0.5 * (p84[i] - p16[i])
        unit = precision(sd) / 100     # two digits of the width, three of most medians
        param_unit = PARAMETERS[name].unit if name in PARAMETERS else ""
        row = (f"{name:<10}{param_unit:<8}{rounded(p50[i], unit):>12}"
               f"{rounded(p50[i] - p16[i], unit):>10}{rounded(p84[i] - p50[i], unit):>10}")
        if truths and name in truths:
            row += f"{truths[name]:>10g}{(p50[i] - truths[name]) / sd:>+7.1f}"
        lines.append(row)
    return "\n".join(lines)


def truth_check(result, truths: dict, sigmas: float = 3.0) -> str:
    """Whether every free parameter's median lies within ``sigmas`` posterior
    widths of its true value, naming any that do not."""
    pull = pulls(result, truths)
    far = [name for name, value in pull.items() if not abs(value) < sigmas]
    line = check(f"all {len(pull)} free parameters within {sigmas:g} sigma of "
                 f"their true values", not far)
    if far:
        line += f" ({', '.join(far)} beyond)"
    return line

