"""Posterior tables rounded to what the chains support, for the tutorials.

Digits below the posterior width are noise: a different seed, a longer run
or another CPU moves them. :func:`rounded_table` shows each median only to
the power of ten at or above its posterior standard deviation (so a width of
0.006 Msun shows the mass to 0.01 Msun), which is what the chains can back
up, and which is why these tables are checked by the notebook tests while the
timings are not. The table ends with the fit's verdict
(``result.verdict_text()``): rounded medians of chains that have not
converged are still not to be trusted.
"""

from __future__ import annotations

import math

from eddy_widgets.parameters import PARAMETERS

__all__ = ["precision", "rounded", "rounded_table"]


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


def rounded_table(result, truths: dict | None = None, verdict: bool = True) -> str:
    """One line per free parameter: median and the unit it is rounded to
    (sigma <= unit), and, with ``truths``, the true value and whether it lies
    within 3 sigma of the median; then, with ``verdict``, the fit's verdict."""
    p16, p50, p84 = result.percentiles()
    head = f"{'parameter':<10}{'unit':<8}{'median':>10}{'sigma <=':>10}"
    if truths:
        head += f"{'truth':>10}  within 3 sigma"
    lines = [head, "-" * len(head)]
    for i, name in enumerate(result.names):
        sd = 0.5 * (p84[i] - p16[i])
        unit = precision(sd)
        param_unit = PARAMETERS[name].unit if name in PARAMETERS else ""
        row = (f"{name:<10}{param_unit:<8}{rounded(p50[i], unit):>10}"
               f"{rounded(unit, unit):>10}")
        if truths and name in truths:
            close = abs(p50[i] - truths[name]) < 3 * sd
            row += f"{truths[name]:>10g}  {'yes' if close else 'NO'}"
        lines.append(row)
    if verdict:
        lines += ["", result.verdict_text()]
    return "\n".join(lines)
