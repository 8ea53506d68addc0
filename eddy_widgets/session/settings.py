"""The pieces of a fit set-up: one parameter's row, one backend's options,
and the numbers a person types into them.

:class:`ParameterSetting` and :class:`BackendOptions` are small observable
objects held by :class:`~eddy_widgets.session.FitSession`; text that is not a
number is kept as typed (:class:`NumberOrText`) so that it can be flagged.
"""

from __future__ import annotations

import math

from traitlets import Any, Bool, Enum, Float, HasTraits, Int, TraitType, Unicode

from ..inference.backends import BACKENDS, CHAIN_METHODS
from ..inference.priors import PRIOR_KINDS, Prior, PriorError
from ..parameters import PARAMETERS


class SetupError(ValueError):
    """The set-up has invalid entries; ``issues`` maps names to messages."""

    def __init__(self, issues: dict):
        self.issues = dict(issues)
        lines = "; ".join(f"{k}: {v}" for k, v in self.issues.items())
        super().__init__(f"The fit set-up is not valid: {lines}")


# ----------------------------------------------------------------------------
# Numbers typed by a person
# ----------------------------------------------------------------------------


def parse_number(text):
    """What a text field holds: ``None`` for an empty field (or 'none' /
    'off'), a float when the text is a number (``'inf'`` included), else the
    text itself, kept so that nothing typed is lost and it can be flagged."""
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    s = text.strip()
    if s == "" or s.lower() in ("none", "off"):
        return None
    try:
        value = float(s)
    except ValueError:
        return text
    return text if math.isnan(value) else value


def format_number(value) -> str:
    """The text shown for a value: shortest exact repr, ``''`` for ``None``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    s = repr(float(value))
    return s[:-2] if s.endswith(".0") else s


def as_float(value) -> float | None:
    """``value`` as a finite-or-infinite float, or ``None`` if it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = parse_number(value)
        if not isinstance(value, float):
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


class NumberOrText(TraitType):
    """A float, ``None``, or the text a person typed that is not a number.

    Ints and numpy scalars become floats (in ``params`` an int would mean a
    free parameter); NaN is kept as the text ``'nan'`` so that it is flagged.
    """

    default_value = None
    info_text = "a number, None, or text"

    def validate(self, obj, value):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            self.error(obj, value)
        try:
            out = float(value)
        except (TypeError, ValueError):
            self.error(obj, value)
        return "nan" if math.isnan(out) else out


# ----------------------------------------------------------------------------
# Pieces of the set-up
# ----------------------------------------------------------------------------


class ParameterSetting(HasTraits):
    """One row of the parameter table as the user set it.

    Attributes:
        name: parameter name (a key of :data:`~eddy_widgets.parameters.PARAMETERS`).
        free: whether it is fitted.
        value: start value (``p0``) if free, the fixed value otherwise, in the
            table's unit; ``None`` switches an optional component off.
        prior_kind: ``'flat'`` or ``'gaussian'``.
        prior_a, prior_b: low and high (flat) or mean and sigma (gaussian).
    """

    name = Unicode(read_only=True)
    free = Bool(False)
    value = NumberOrText()
    prior_kind = Enum(PRIOR_KINDS, default_value="flat")
    prior_a = NumberOrText()
    prior_b = NumberOrText()

    def __init__(self, name: str, **kwargs):
        super().__init__(**kwargs)
        self.set_trait("name", name)
        self.reset()

    @property
    def parameter(self):
        return PARAMETERS[self.name]

    def reset(self) -> None:
        """Fixed at the table's default value, with the table's default prior."""
        p = self.parameter
        kind, (a, b) = p.prior
        with self.hold_trait_notifications():
            self.free = False
            self.value = p.default
            self.prior_kind = kind
            self.prior_a, self.prior_b = a, b

    def set_prior(self, prior: Prior) -> None:
        with self.hold_trait_notifications():
            self.prior_kind = prior.kind
            self.prior_a, self.prior_b = prior.a, prior.b

    def prior(self) -> Prior:
        """The :class:`Prior` of this row (raises :class:`PriorError` if invalid)."""
        return _row_prior(self)


class BackendOptions(HasTraits):
    """The ``mcmc_kwargs`` options of one backend, one trait per option of the
    backend table (defaults from the table). Made by :func:`make_options`."""

    backend = Unicode(read_only=True)

    def values(self) -> dict:
        return {k: getattr(self, k) for k in BACKENDS[self.backend].options}

    def defaults(self) -> dict:
        options = dict(BACKENDS[self.backend].options)
        if "moves" in options:
            options["moves"] = "stretch"
        return options


def _option_trait(name, default):
    if name == "moves":
        # A name of EMCEE_MOVES, or a move object loaded from a script.
        return Any("stretch")
    if name == "chain_method":
        return Enum(CHAIN_METHODS, default_value=default)
    if isinstance(default, bool):
        return Bool(default)
    if isinstance(default, int):
        return Int(default)
    if isinstance(default, float):
        return Float(default)
    return Any(default)


_OPTION_CLASSES: dict = {}


def make_options(backend: str) -> BackendOptions:
    """A fresh :class:`BackendOptions` for ``backend`` with the table defaults."""
    if backend not in _OPTION_CLASSES:
        traits = {k: _option_trait(k, v) for k, v in BACKENDS[backend].options.items()}
        _OPTION_CLASSES[backend] = type(f"{backend.capitalize()}Options",
                                        (BackendOptions,), traits)
    opts = _OPTION_CLASSES[backend]()
    opts.set_trait("backend", backend)
    return opts


def _row_prior(row: ParameterSetting) -> Prior:
    a, b = as_float(row.prior_a), as_float(row.prior_b)
    words = ("low", "high") if row.prior_kind == "flat" else ("mean", "sigma")
    for word, raw, val in ((words[0], row.prior_a, a), (words[1], row.prior_b, b)):
        if val is None:
            shown = "empty" if raw is None else repr(raw)
            raise PriorError(f"prior {word} is not a number ({shown})")
    if row.prior_kind == "flat" and not a < b:
        raise PriorError(f"prior low ({format_number(a)}) must be smaller than "
                         f"high ({format_number(b)})")
    if row.prior_kind == "gaussian" and not b > 0:
        raise PriorError(f"prior sigma ({format_number(b)}) must be > 0")
    return Prior.from_args([a, b], row.prior_kind, row.name)
