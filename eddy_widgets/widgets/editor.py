"""The parameter editor: one row per parameter of the table, linked to a
:class:`~eddy_widgets.session.FitSession`.

Numbers are typed into text fields, so whatever is typed stays on screen and
in the session; a row that cannot be used is flagged in red on the row (and
blocks Run), an unbounded flat prior under NUTS in orange with a one-click fix.

What the editor shows, not what the session holds: numbers to 6 significant
figures (:func:`display_number`), each parameter's few words from the table
under its name, a fixed row's prior fields disabled and dimmed, and the table's
``rare`` rows folded under "more parameters" until one of them is used.
Choosing another prior kind proposes numbers for it (:func:`proposed_prior`).

The noise model (``params['noise']``, ``fit_map``'s ``noise=``) is chosen
below the fitted region, with its ``noise_clip`` and the "Noise" rows: under
the default independent pixels (astro-eddy's) those rows are disabled and
unused; under correlated ``noise_scale`` can be free or fixed, and the
kernel's ``noise_nugget`` / ``noise_width`` are fixed to a number or left
empty (estimated from the residuals at the optimised start), never free.
"""

from __future__ import annotations

import html
import math

import ipywidgets as W
from traitlets import dlink, link

from ..inference.priors import PRIOR_KINDS
from ..parameters import GROUPS, MASK_SETTINGS, NOISE_PARAMETERS, PARAMETERS
from ..session import FitSession, parse_number
from ..session.state import ESTIMATED_NOISE
from .noise_section import NoiseSection

__all__ = ["ParameterEditor", "ParameterRow", "display_number", "proposed_prior"]

#: The azimuth-range fields of the mask, in session.extra_params [deg].
PHI_FIELDS = ("phi_min", "phi_max")


#: Labels of the two prior numbers for each prior kind.
PRIOR_WORDS = {"flat": ("low", "high"), "gaussian": ("mean", "sigma")}

#: Title of the folded section holding the table's ``rare`` rows.
MORE_TITLE = "More parameters (velocity profiles, self-gravity)"

#: Fixed rows' prior fields are disabled (greyed by the front-end) and carry
#: this class for themes to dim further. Styles are inline (no <style>
#: widget), so the editor adds no widget of its own for them.
DIMMED_CLASS = "eddy-dimmed"

#: The free box's tooltip of the noise kernel's rows.
ESTIMATED_TIP = ("estimated from the residuals at the optimised start and fixed "
                 "for the run: never free (give a number to fix it, leave it "
                 "empty to estimate it)")


def display_number(value) -> str:
    """The text a field shows for a session value: 6 significant figures
    (``0.20799999999999935`` shows as ``0.208``), ``''`` for ``None``, text
    kept as typed. Only the display is rounded; the session keeps the value."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    value = float(value)
    if not math.isfinite(value):
        return repr(value)
    text = f"{value:.6g}"
    if "e" in text:  # 1e+06 -> 1e6, 1.5e-05 -> 1.5e-5
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


_NUMBER = (display_number, parse_number)  # session -> text, text -> session


def _finite(value) -> float | None:
    value = parse_number(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value):
        return float(value)
    return None


def _tidy(x: float, digits: int = 10) -> float:
    """``x`` without float noise (``1 - 3 * 0.1`` -> ``0.7``)."""
    return float(f"{x:.{digits}g}")


def proposed_prior(name: str, kind: str, value, a, b,
                   fallback_bounds: tuple[float, float] | None = None
                   ) -> tuple[float, float]:
    """The numbers proposed when a row's prior is switched to ``kind``.

    Args:
        name: parameter name (its table entry gives the default prior).
        kind: the new kind, ``'flat'`` or ``'gaussian'``.
        value: the row's start or fixed value.
        a, b: the row's prior numbers before the switch (of the other kind).
        fallback_bounds: finite ``(low, high)`` to use when neither the row's
            nor the table's flat bounds are finite (e.g. the session's
            suggested bounds).

    Returns:
        ``(mean, sigma)`` for ``'gaussian'``: the mean at the row's value (else
        the middle of the bounds), sigma a quarter of the flat bounds' width
        (the row's, else the table's), to two significant figures.
        ``(low, high)`` for ``'flat'``: mean -+ 3 sigma, clipped to the table's
        default flat bounds; the table's bounds if the gaussian is unusable.
    """
    p = PARAMETERS[name]
    default_kind, (da, db) = p.prior
    default_bounds = ((_finite(da), _finite(db)) if default_kind == "flat"
                      else (None, None))
    a, b, value = _finite(a), _finite(b), _finite(value)
    if kind == "gaussian":
        candidates = [(a, b), default_bounds, fallback_bounds or (None, None)]
        low = high = None
        for lo, hi in candidates:
            if lo is not None and hi is not None and lo < hi:
                low, high = lo, hi
                break
        mean = value
        if mean is None and low is not None:
            mean = 0.5 * (low + high)
        if mean is None:
            mean = _finite(p.default) or 0.0
        sigma = (high - low) / 4.0 if low is not None else max(abs(mean), 1.0)
        return _tidy(mean), float(f"{sigma:.2g}")
    # gaussian -> flat
    if a is not None and b is not None and b > 0:
        low, high = a - 3.0 * b, a + 3.0 * b
        dlow, dhigh = default_bounds
        clipped = (max(low, dlow) if dlow is not None else low,
                   min(high, dhigh) if dhigh is not None else high)
        if clipped[0] < clipped[1]:
            low, high = clipped
        return _tidy(low), _tidy(high)
    dlow, dhigh = default_bounds
    if dlow is not None and dhigh is not None:
        return dlow, dhigh
    if fallback_bounds is not None:
        return fallback_bounds
    return (da, db) if default_kind == "flat" else (-math.inf, math.inf)


def _text(placeholder="", width="92px", description=""):
    return W.Text(placeholder=placeholder, description=description,
                  continuous_update=False, style={"description_width": "initial"},
                  layout=W.Layout(width=width))


class ParameterRow(W.VBox):
    """The widgets of one parameter: label, free, value, prior kind and numbers,
    and a message line (red: invalid, orange: NUTS warning with a fix button)."""

    def __init__(self, session: FitSession, name: str):
        self.session = session
        self.name = name
        setting = session.parameters[name]
        p = PARAMETERS[name]
        unit = f" [{p.unit}]" if p.unit else ""
        self.label = W.HTML(f"<b>{html.escape(name)}</b>{html.escape(unit)}"
                            f"<div style='color:#757575; font-size:11px; line-height:13px; "
                            f"white-space:nowrap; overflow:hidden; "
                            f"text-overflow:ellipsis'>{html.escape(p.short)}</div>",
                            tooltip=p.description,
                            layout=W.Layout(width="160px", overflow="hidden"))
        self.free = W.Checkbox(description="free", indent=False,
                               layout=W.Layout(width="60px"))
        #: A row of the noise model (used with noise='correlated' only).
        self.noise_row = name in NOISE_PARAMETERS
        empty = "estimated" if name in ESTIMATED_NOISE else \
            "off" if p.default is None else ""
        self.value = _text(empty, width="125px")
        self.kind = W.Dropdown(options=list(PRIOR_KINDS), layout=W.Layout(width="95px"))
        self.prior_a = _text(width="130px")
        self.prior_b = _text(width="130px")
        self.message = W.HTML()
        self.fix = W.Button(layout=W.Layout(width="auto", display="none"),
                            button_style="warning")
        self.fix.on_click(lambda _: self.session.bound_prior(self.name))
        self.links = [
            link((setting, "free"), (self.free, "value")),
            link((setting, "value"), (self.value, "value"), transform=_NUMBER),
            dlink((setting, "prior_kind"), (self.kind, "value")),
            link((setting, "prior_a"), (self.prior_a, "value"), transform=_NUMBER),
            link((setting, "prior_b"), (self.prior_b, "value"), transform=_NUMBER),
        ]
        fields = W.HBox([self.label, self.free, self.value, self.kind, self.prior_a,
                         self.prior_b], layout=W.Layout(align_items="center"))
        self.message_line = W.HBox([self.message, self.fix],
                                   layout=W.Layout(display="none",
                                                   margin="0 0 4px 130px"))
        super().__init__([fields, self.message_line])
        self.kind.observe(self._kind_chosen, names="value")
        setting.observe(self._relabel, names=["prior_kind", "free"])
        if self.noise_row:
            session.observe(self._relabel, names="extra_params")
        session.observe(self._show_checks, names=["issues", "prior_warnings"])
        self._relabel()
        self._show_checks()

    def _kind_chosen(self, change) -> None:
        """A prior kind chosen in the dropdown: switch the session's row to it
        with proposed numbers (a kind set on the session is only shown)."""
        setting = self.session.parameters[self.name]
        if change.new == setting.prior_kind:
            return
        fallback = None
        if setting.prior_kind == "flat":
            try:
                fallback = self.session.suggested_bounds(self.name)
            except Exception:  # noqa: BLE001 - a proposal, not a check
                fallback = None
        a, b = proposed_prior(self.name, change.new, setting.value, setting.prior_a,
                              setting.prior_b, fallback_bounds=fallback)
        self.session.set_parameter(self.name, prior=(change.new, a, b))

    @property
    def dimmed(self) -> bool:
        """Whether the prior fields are disabled and dimmed (a fixed row)."""
        return self.prior_a.disabled

    @property
    def active(self) -> bool:
        """Whether the row is used: every row but the noise model's, which
        are used with ``noise='correlated'`` only (disabled otherwise)."""
        return not self.noise_row or self.session.noise == "correlated"

    def _relabel(self, change=None) -> None:
        setting = self.session.parameters[self.name]
        low, high = PRIOR_WORDS[setting.prior_kind]
        active = self.active
        self.prior_a.description, self.prior_b.description = low, high
        self.value.description = "p0" if setting.free else "fixed"
        if self.name in ESTIMATED_NOISE:
            self.value.tooltip = ("fixed value (empty = estimated from the residuals "
                                  "at the optimised start)")
        else:
            self.value.tooltip = ("start value (p0)" if setting.free else
                                  "fixed value (empty = off for optional components)")
        if self.noise_row:
            # Free only where the noise model has it free: never the kernel's
            # (a row made free from code can still be unticked).
            can_free = active and self.name not in ESTIMATED_NOISE
            self.free.disabled = not (can_free or setting.free)
            self.value.disabled = not (active or setting.free)
            self.free.tooltip = (ESTIMATED_TIP if self.name in ESTIMATED_NOISE
                                 else "fit the noise scale" if active else
                                 "used with Noise: correlated (beam) only")
            if not active:
                self.value.tooltip = "used with Noise: correlated (beam) only"
            for field in (self.free, self.value):
                if active:
                    field.remove_class(DIMMED_CLASS)
                else:
                    field.add_class(DIMMED_CLASS)
        for field in (self.kind, self.prior_a, self.prior_b):
            field.disabled = not (setting.free and active)
            if setting.free and active:
                field.remove_class(DIMMED_CLASS)
            else:
                field.add_class(DIMMED_CLASS)

    def _show_checks(self, change=None) -> None:
        error = self.session.issues.get(self.name, "")
        warning = self.session.prior_warnings.get(self.name, "")
        parts = []
        if error:
            parts.append(f"<span style='color:#c62828'>{html.escape(error)}</span>")
        if warning:
            parts.append(f"<span style='color:#b26a00'>{html.escape(warning)}</span>")
        self.message.value = "<br>".join(parts)
        if warning:
            low, high = self.session.suggested_bounds(self.name)
            setting = self.session.parameters[self.name]
            if parse_number(setting.prior_b) == float("inf") and \
                    parse_number(setting.prior_a) != float("-inf"):
                self.fix.description = f"set upper bound to {display_number(high)}"
            else:
                self.fix.description = (f"set bounds to [{display_number(low)}, "
                                        f"{display_number(high)}]")
            self.fix.layout.display = None
        else:
            self.fix.layout.display = "none"
        self.message_line.layout.display = None if (error or warning) else "none"
        if error:
            self.add_class("eddy-invalid")
        else:
            self.remove_class("eddy-invalid")

    @property
    def flagged(self) -> bool:
        """Whether the row shows an error."""
        return bool(self.session.issues.get(self.name))


class ParameterEditor(W.VBox):
    """Every parameter of the table, grouped (geometry, star, emission
    surface, velocity profiles), plus the fitted region (radii and azimuth
    range). The table's ``rare`` rows sit in a folded "more parameters"
    section that opens by itself when one of them is free, set away from its
    default, or flagged.

    Args:
        session: the :class:`FitSession` to edit.

    Attributes:
        rows: ``{name: ParameterRow}``.
        more: the Accordion folding the rare rows.
        r_min, r_max: the mask fields [arcsec].
        phi_min, phi_max, exclude_phi: the azimuth range [deg] of the mask
            (``session.extra_params``; -180 / 180 when not set).
        noise: the noise model's selector (``session.noise``, i.e.
            ``params['noise']``), independent by default.
        noise_clip: its low-S/N clip (``session.extra_params['noise_clip']``;
            empty: the default 3, ``off``: no clip), used when correlated.
        noise_note: one line on what the chosen model does.
        noise_rows: the "Noise" rows, below the selector.
    """

    def __init__(self, session: FitSession, **kwargs):
        self.session = session
        self.rows = {name: ParameterRow(session, name) for name in PARAMETERS}
        sections, rare = [], []
        for group, title in GROUPS.items():
            if group == "noise":        # with its selector, below the mask
                continue
            for target, is_rare in ((sections, False), (rare, True)):
                rows = [row for name, row in self.rows.items()
                        if PARAMETERS[name].group == group
                        and PARAMETERS[name].rare == is_rare]
                if rows:
                    target.append(W.HTML(f"<h4 style='margin:8px 0 2px 0'>{title}</h4>"))
                    target.extend(rows)
        self.more = W.Accordion([W.VBox(rare)], titles=(MORE_TITLE,),
                                selected_index=None)
        if rare:
            sections.append(self.more)
        # 210 px: the label takes ~95, and the field shows "0.208" and
        # "no limit" whole (at 150 px they read "0.20" and "no li").
        self.r_min = _text("0", width="210px", description="r_min [arcsec]")
        self.r_max = _text("no limit", width="210px", description="r_max [arcsec]")
        self.phi_min = _text(width="210px", description="phi_min [deg]")
        self.phi_max = _text(width="210px", description="phi_max [deg]")
        self.exclude_phi = W.Checkbox(description="exclude phi range", indent=False,
                                      layout=W.Layout(width="150px"))
        for field in (self.phi_min, self.phi_max):
            field.tooltip = ("azimuth in the disk frame (astro-eddy's phi); the fit "
                             "uses phi_min <= phi <= phi_max")
        self.mask_message = W.HTML()
        self.links = [link((session, "r_min"), (self.r_min, "value"), transform=_NUMBER),
                      link((session, "r_max"), (self.r_max, "value"), transform=_NUMBER)]
        self.summary = W.HTML()
        mask = [W.HTML("<h4 style='margin:8px 0 2px 0'>Fitted region</h4>"),
                W.HBox([self.r_min, self.r_max]),
                W.HBox([self.phi_min, self.phi_max, self.exclude_phi],
                       layout=W.Layout(align_items="center")),
                self.mask_message]
        #: The noise model's block (:mod:`.noise_section`), below the mask.
        self.noise_section = NoiseSection(
            session, [self.rows[name] for name in NOISE_PARAMETERS], text=_text,
            number=_finite, display=display_number, dimmed=DIMMED_CLASS)
        section = self.noise_section
        self.noise, self.noise_clip = section.noise, section.noise_clip
        self.noise_note, self.noise_message = section.noise_note, section.noise_message
        self.noise_rows = section.noise_rows
        super().__init__([self.summary, *sections, *mask, section], **kwargs)
        # The dashboard's style sheet flows this class into two columns
        # where the notebook is wide enough.
        self.add_class("eddy-editor")
        self._phi_typed: dict[str, str] = {}   # field text that is not a number
        self._show_phi()
        for name in PHI_FIELDS:
            getattr(self, name).observe(self._phi_edited, names="value")
        self.exclude_phi.observe(self._phi_edited, names="value")
        session.observe(self._show_phi, names="extra_params")
        session.observe(self._show_checks, names=["issues", "prior_warnings"])
        for name in self.rare_rows:
            session.parameters[name].observe(self._unfold_if_used,
                                             names=["free", "value", "prior_kind",
                                                    "prior_a", "prior_b"])
        self._show_checks()
        self._unfold_if_used()

    @property
    def rare_rows(self) -> list[str]:
        """Names of the rows folded under "more parameters" (the noise rows,
        rare or not, sit with the noise selector)."""
        return [name for name, p in PARAMETERS.items()
                if p.rare and name not in NOISE_PARAMETERS]

    def _used(self, name: str) -> bool:
        """A rare row in use: free, or value / prior not the table's default,
        or flagged."""
        setting, p = self.session.parameters[name], PARAMETERS[name]
        kind, (a, b) = p.prior
        return (setting.free or setting.value != p.default
                or (setting.prior_kind, setting.prior_a, setting.prior_b) != (kind, a, b)
                or name in self.session.issues)

    def _unfold_if_used(self, change=None) -> None:
        """Open "more parameters" when one of its rows is used (it is never
        folded again by itself, so a row being edited stays in view)."""
        if self.more.selected_index is None and any(map(self._used, self.rare_rows)):
            self.more.selected_index = 0

    # -- the azimuth range (session.extra_params) --------------------------------

    def phi_setting(self, name: str):
        """The session's ``phi_min`` / ``phi_max`` [deg] or ``exclude_phi``
        (the table's default when ``extra_params`` does not set it)."""
        return self.session.extra_params.get(name, MASK_SETTINGS[name])

    def _show_phi(self, change=None) -> None:
        """The session's azimuth settings in the fields (a number typed but
        not yet valid is replaced by the session's)."""
        self._phi_typed = {}
        self._showing = True
        try:
            for name in PHI_FIELDS:
                getattr(self, name).value = display_number(self.phi_setting(name))
            self.exclude_phi.value = bool(self.phi_setting("exclude_phi"))
        finally:
            self._showing = False
        self._show_mask_checks()

    def _phi_edited(self, change) -> None:
        """A value typed in a phi field (or the box ticked): set the session;
        text that is not a finite number is flagged and not passed on."""
        if getattr(self, "_showing", False):
            return
        if change.owner is self.exclude_phi:
            self.session.set_mask_setting("exclude_phi", bool(change.new) or None)
            return
        name = "phi_min" if change.owner is self.phi_min else "phi_max"
        text = str(change.new).strip()
        value = None if text == "" else _finite(text)
        if text and value is None:
            self._phi_typed[name] = text
            self._show_mask_checks()
            return
        self._phi_typed.pop(name, None)
        before = self.session.extra_params
        self.session.set_mask_setting(name, value)
        if self.session.extra_params is before:     # unchanged: tidy the field
            self._show_phi()

    @property
    def mask_flagged(self) -> list[str]:
        """Names of the mask fields flagged in red."""
        return [name for name in ("r_min", "r_max", *PHI_FIELDS)
                if "eddy-invalid" in getattr(self, name)._dom_classes]

    def _show_mask_checks(self) -> None:
        issues = self.session.issues
        flagged = {k: issues[k] for k in ("r_min", "r_max") if k in issues}
        for name, text in self._phi_typed.items():
            flagged[name] = (f"{name} is not a number ({text!r}); the fit uses "
                             f"{display_number(self.phi_setting(name))}")
        low, high = (_finite(self.phi_setting(k)) for k in PHI_FIELDS)
        if low is not None and high is not None and not low < high:
            flagged["phi_max"] = (f"phi_min ({display_number(low)}) must be smaller "
                                  f"than phi_max ({display_number(high)})")
        self.mask_message.value = "".join(
            f"<div style='color:#c62828'>{html.escape(m)}</div>"
            for m in flagged.values())
        for name in ("r_min", "r_max", *PHI_FIELDS):
            field = getattr(self, name)
            if name in flagged:
                field.add_class("eddy-invalid")
            else:
                field.remove_class("eddy-invalid")

    def _show_checks(self, change=None) -> None:
        issues = self.session.issues
        if change is not None:
            self._unfold_if_used()
        self._show_mask_checks()
        self.noise_section.show_checks()
        others = {k: v for k, v in issues.items() if k in ("free", "model")}
        nrows = sum(1 for k in issues if k in self.rows)
        parts = []
        if nrows:
            parts.append(f"{nrows} parameter row{'s' if nrows > 1 else ''} to fix "
                         f"(in red below)")
        parts += [html.escape(v) for v in others.values()]
        self.summary.value = ("<div style='color:#c62828'>" + "<br>".join(parts)
                              + "</div>") if parts else ""

    @property
    def invalid_rows(self) -> list[str]:
        """Names of the rows flagged in red."""
        return [name for name, row in self.rows.items() if row.flagged]
