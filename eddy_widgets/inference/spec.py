"""Parse astro-eddy's ``params`` dictionary into free, fixed and mask settings.

In ``params``, an ``int`` is the index of a free parameter in ``p0``, a float
(or ``None``) is a fixed value, booleans are flags. Missing model parameters
take the default of the parameter table; missing mask settings take
astro-eddy's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import difflib
import math

import numpy as np

from ..parameters import MASK_SETTINGS, MODEL_PARAMETERS, PARAMETERS


def is_index(value) -> bool:
    """Whether a ``params`` value marks a free parameter (an int, not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class FitSpec:
    """What is free, what is fixed and how the map is masked."""

    free: tuple[str, ...]
    fixed: dict = field(default_factory=dict)
    mask: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return len(self.free)

    @classmethod
    def parse(cls, params: dict, p0=None) -> "FitSpec":
        """Validate ``params`` (and ``p0`` if given) and split them.

        Raises ``ValueError`` with a message that names the offending key.
        """
        if not isinstance(params, dict):
            raise TypeError("params must be a dict such as {'mstar': 0, 'inc': 46.7}.")
        known = set(MODEL_PARAMETERS) | set(MASK_SETTINGS)
        free: dict[int, str] = {}
        fixed: dict = {}
        mask = dict(MASK_SETTINGS)
        for key, value in params.items():
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ValueError(f"Unknown parameter '{key}' in params.{hint} Known "
                                 f"model parameters: {', '.join(MODEL_PARAMETERS)}.")
            if key in MASK_SETTINGS:
                mask[key] = value
                continue
            if is_index(value):
                index = int(value)
                if index in free:
                    raise ValueError(f"params['{key}'] and params['{free[index]}'] both "
                                     f"point at p0[{index}]: give each free parameter "
                                     f"its own index.")
                free[index] = key
            elif value is None or isinstance(value, (float, np.floating)):
                fixed[key] = None if value is None else float(value)
            else:
                raise ValueError(f"params['{key}'] = {value!r}: use an int (index into "
                                 f"p0) for a free parameter or a float for a fixed one.")
        n = len(free)
        if sorted(free) != list(range(n)):
            raise ValueError(f"The free-parameter indices must be 0..{n - 1} with none "
                             f"missing; got {sorted(free)} for "
                             f"{[free[i] for i in sorted(free)]}.")
        order = tuple(free[i] for i in range(n))
        for name in MODEL_PARAMETERS:
            if name not in order and name not in fixed:
                fixed[name] = PARAMETERS[name].default
        if p0 is not None:
            p0 = np.atleast_1d(np.asarray(p0, dtype=float))
            if p0.ndim != 1 or p0.size != n:
                raise ValueError(f"p0 has {p0.size} values but params has {n} free "
                                 f"parameters ({', '.join(order)}).")
            bad = [name for name, v in zip(order, p0) if not math.isfinite(v)]
            if bad:
                raise ValueError(f"p0 is not finite for {', '.join(bad)}.")
        spec = cls(order, fixed, mask)
        spec.check_model()
        return spec

    def check_model(self) -> None:
        """Raise ``ValueError`` for combinations the model cannot evaluate."""
        def given(name):
            return name in self.free or self.fixed.get(name) is not None
        if given("vp_100") and not given("vp_q"):
            raise ValueError("A power-law rotation needs both 'vp_100' and 'vp_q'.")
        if given("mdisk") and given("vp_100"):
            raise ValueError("'mdisk' adds self-gravity to Keplerian rotation; it "
                             "cannot be used with a power-law rotation ('vp_100').")
        r_min, r_max = self.mask["r_min"], self.mask["r_max"]
        if r_min is not None and r_max is not None and r_min >= r_max:
            raise ValueError(f"r_min ({r_min}) must be smaller than r_max ({r_max}).")

    def model_params(self, theta) -> dict:
        """Model parameters with the free ones taken from ``theta``."""
        params = dict(self.fixed)
        for i, name in enumerate(self.free):
            params[name] = theta[i]
        return params

    def to_params(self, theta=None) -> dict:
        """An astro-eddy ``params`` dict (fixed values, mask settings and, if
        ``theta`` is given, free values filled in) for e.g. ``evaluate_models``."""
        out = {k: v for k, v in self.fixed.items()}
        for i, name in enumerate(self.free):
            out[name] = float(theta[i]) if theta is not None else i
        out.update({k: v for k, v in self.mask.items() if k != "user_mask"})
        return out

    def to_json(self) -> dict:
        """A JSON-able description (the user mask is stored separately)."""
        mask = {k: v for k, v in self.mask.items() if k != "user_mask"}
        fixed = {k: v for k, v in self.fixed.items()}
        return {"free": list(self.free), "fixed": fixed, "mask": mask}

    @classmethod
    def from_json(cls, payload: dict, user_mask=None) -> "FitSpec":
        mask = dict(MASK_SETTINGS)
        mask.update(payload["mask"])
        mask["user_mask"] = user_mask
        return cls(tuple(payload["free"]), dict(payload["fixed"]), mask)
