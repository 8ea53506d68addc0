"""Constants and small helpers shared by the test modules."""

from __future__ import annotations

import contextlib
import io
from types import SimpleNamespace

import numpy as np

#: The tutorial's 9 free parameters, with inc and dist fixed.
FREE = ["x0", "y0", "PA", "mstar", "vlsr", "z0", "psi", "r_taper", "q_taper"]
P0 = [0.0, 0.0, 312.0, 2.0, 5.7e3, 0.25, 1.0, 3.0, 2.0]


def tutorial_params(cube) -> dict:
    params = {name: i for i, name in enumerate(FREE)}
    params.update(inc=46.7, dist=101.0, r_min=2.0 * cube.bmaj)
    return params


def sd(result) -> np.ndarray:
    """Posterior standard deviation from the 16/84 percentiles."""
    p16, _, p84 = result.percentiles()
    return 0.5 * (p84 - p16)


def feed(view, result, info, chunks, flush=False):
    """Hand ``chunks`` to a chain ``view`` as a run would: the result keeps
    each chunk first, ``info`` counts it, then the view sees it."""
    for chunk in chunks:
        if chunk.phase == "warmup":
            info.done_warmup += chunk.size
        else:
            info.done_samples += chunk.size
        info.draws_this_call += chunk.size
        result.append(chunk)
        view._on_chunk(chunk, info)
    if flush:
        view.flush()


def say(check, *answers) -> str:
    """What an exercise ``check`` prints for ``answers`` (it returns nothing)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert check(*answers) is None
    return out.getvalue()


def fake_fit(**draws) -> SimpleNamespace:
    """A fit result as the exercise checks read it: ``names`` and ``samples``
    (one column of posterior draws per name, in the order given)."""
    return SimpleNamespace(names=tuple(draws),
                           samples=np.column_stack([np.asarray(d, float)
                                                    for d in draws.values()]))
