"""The parameter editor: one row per parameter of the table, linked to a
:class:`~eddy_widgets.session.FitSession`.

Numbers are typed into text fields, so whatever is typed stays on screen and
in the session; a row that cannot be used is flagged in red on the row (and
blocks Run), an unbounded flat prior under NUTS in orange with a one-click fix.
"""

from __future__ import annotations

import html

import ipywidgets as W
from traitlets import link

from ..inference.priors import PRIOR_KINDS
from ..parameters import PARAMETERS
from ..session import FitSession, format_number, parse_number

__all__ = ["ParameterEditor", "ParameterRow"]

#: Group titles, in display order.
GROUPS = {"geometry": "Geometry", "star": "Star", "surface": "Emission surface",
          "velocity": "Velocity profiles"}

#: Labels of the two prior numbers for each prior kind.
PRIOR_WORDS = {"flat": ("low", "high"), "gaussian": ("mean", "sigma")}

_NUMBER = (format_number, parse_number)  # session -> text, text -> session


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
        self.label = W.HTML(f"<b>{html.escape(name)}</b>{html.escape(unit)}",
                            tooltip=p.description, layout=W.Layout(width="130px"))
        self.free = W.Checkbox(description="free", indent=False,
                               layout=W.Layout(width="60px"))
        self.value = _text("off" if p.default is None else "", width="125px")
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
            link((setting, "prior_kind"), (self.kind, "value")),
            link((setting, "prior_a"), (self.prior_a, "value"), transform=_NUMBER),
            link((setting, "prior_b"), (self.prior_b, "value"), transform=_NUMBER),
        ]
        fields = W.HBox([self.label, self.free, self.value, self.kind, self.prior_a,
                         self.prior_b], layout=W.Layout(align_items="center"))
        self.message_line = W.HBox([self.message, self.fix],
                                   layout=W.Layout(display="none",
                                                   margin="0 0 4px 130px"))
        super().__init__([fields, self.message_line])
        setting.observe(self._relabel, names=["prior_kind", "free"])
        session.observe(self._show_checks, names=["issues", "prior_warnings"])
        self._relabel()
        self._show_checks()

    def _relabel(self, change=None) -> None:
        setting = self.session.parameters[self.name]
        low, high = PRIOR_WORDS[setting.prior_kind]
        self.prior_a.description, self.prior_b.description = low, high
        self.value.description = "p0" if setting.free else "fixed"
        self.value.tooltip = ("start value (p0)" if setting.free else
                              "fixed value (empty = off for optional components)")

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
                self.fix.description = f"set upper bound to {format_number(high)}"
            else:
                self.fix.description = (f"set bounds to [{format_number(low)}, "
                                        f"{format_number(high)}]")
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
    surface, velocity profiles), plus the fitted radial range.

    Args:
        session: the :class:`FitSession` to edit.

    Attributes:
        rows: ``{name: ParameterRow}``.
        r_min, r_max: the mask fields [arcsec].
    """

    def __init__(self, session: FitSession, **kwargs):
        self.session = session
        self.rows = {name: ParameterRow(session, name) for name in PARAMETERS}
        sections = []
        for group, title in GROUPS.items():
            rows = [row for name, row in self.rows.items()
                    if PARAMETERS[name].group == group]
            if rows:
                sections.append(W.HTML(f"<h4 style='margin:8px 0 2px 0'>{title}</h4>"))
                sections.extend(rows)
        self.r_min = _text("0", width="150px", description="r_min [arcsec]")
        self.r_max = _text("no limit", width="150px", description="r_max [arcsec]")
        self.mask_message = W.HTML()
        self.links = [link((session, "r_min"), (self.r_min, "value"), transform=_NUMBER),
                      link((session, "r_max"), (self.r_max, "value"), transform=_NUMBER)]
        self.summary = W.HTML()
        mask = [W.HTML("<h4 style='margin:8px 0 2px 0'>Fitted region</h4>"),
                W.HBox([self.r_min, self.r_max]), self.mask_message]
        super().__init__([self.summary, *sections, *mask], **kwargs)
        session.observe(self._show_checks, names=["issues", "prior_warnings"])
        self._show_checks()

    def _show_checks(self, change=None) -> None:
        issues = self.session.issues
        mask = [issues[k] for k in ("r_min", "r_max") if k in issues]
        self.mask_message.value = "".join(
            f"<div style='color:#c62828'>{html.escape(m)}</div>" for m in mask)
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
