"""Numbers and words as a person reads them: one home for the posterior
tables of the results panel, the figures' titles, the exercises' checks and
the command line (no matplotlib here)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["decimals_for", "fixed", "plural", "round_posterior"]


def plural(n: int, word: str) -> str:
    """``'1 chain'``, ``'2 chains'``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def decimals_for(width: float, figures: int = 2) -> int:
    """Decimal places that show ``width`` to ``figures`` significant figures
    (negative: round to tens, hundreds...)."""
    if not (np.isfinite(width) and width > 0):
        return 3
    return figures - 1 - int(math.floor(math.log10(width)))


def round_posterior(p16: float, p50: float, p84: float) -> tuple[str, str, str]:
    """Median, lower and upper error as text, rounded together so that the
    smaller of the two errors has two significant figures, in fixed point:
    PA ``('312.065', '0.023', '0.022')``."""
    up, down = p84 - p50, p50 - p16
    nd = decimals_for(min(up, down) if min(up, down) > 0 else max(up, down))
    return tuple(fixed(v, nd) for v in (p50, down, up))


def fixed(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals`` places (negative: tens, hundreds) in
    fixed point, never in exponent form."""
    if not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{round(value, decimals):.{max(decimals, 0)}f}"
