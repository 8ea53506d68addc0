"""The editor's noise model: the selector, its low-S/N clip and the "Noise" rows.

``params['noise']`` (``fit_map``'s ``noise=``) is chosen below the fitted
region. Under the default independent pixels (astro-eddy's) the noise rows
are disabled and unused; under correlated ``noise_scale`` can be free or
fixed, and the kernel's ``noise_nugget`` / ``noise_width`` are fixed to a
number or left empty (estimated from the residuals at the optimised start),
never free (:class:`~eddy_widgets.widgets.editor.ParameterRow` disables their
free box). The clip is ``session.extra_params['noise_clip']``: empty is the
default, ``off`` no clip.
"""

from __future__ import annotations

import html

import ipywidgets as W

from ..parameters import GROUPS, MASK_SETTINGS
from ..session import FitSession

__all__ = ["NoiseSection", "NOISE_OPTIONS"]

#: The noise models offered, as (label, ``params['noise']``).
NOISE_OPTIONS = (("independent (astro-eddy)", "independent"),
                 ("correlated (beam)", "correlated"))

#: One line under the noise selector, for each model.
NOISE_NOTES = {
    "independent": "Pixels independent (astro-eddy's likelihood): the noise rows "
                   "below are not used; choose correlated (beam) to fit a noise "
                   "scale.",
    "correlated": "Residuals correlated over the beam, with scatter noise_scale x "
                  "dv0; an empty noise_nugget / noise_width is estimated from the "
                  "residuals at the optimised start; pixels whose peak S/N (the map's "
                  "*_Fnu / *_dFnu) is below noise_clip are left out (empty: 15, "
                  "off: none).",
}


class NoiseSection(W.VBox):
    """The "Noise" block of the editor.

    Args:
        session: the :class:`FitSession` edited.
        rows: the editor's ``ParameterRow`` of each noise parameter, shown
            below the selector.
        text, number, display, dimmed: the editor's text-field factory,
            number parser, number display and dimmed CSS class (one look
            for every field of the editor).

    Attributes:
        noise: the selector (``session.noise``), independent by default.
        noise_clip: the clip field, used when correlated.
        noise_note: one line on what the chosen model does.
        noise_message: the session's issues about the noise set-up, in red.
        noise_rows: the rows, below the selector.
    """

    def __init__(self, session: FitSession, rows, *, text, number, display,
                 dimmed: str):
        self.session = session
        self._number, self._display, self._dimmed = number, display, dimmed
        self.noise = W.Dropdown(options=NOISE_OPTIONS, value="independent",
                                description="Noise",
                                tooltip="the likelihood's noise model: fit_map's "
                                        "noise= (params['noise'])",
                                style={"description_width": "initial"},
                                layout=W.Layout(width="300px"))
        self.noise_clip = text(width="150px", description="noise_clip")
        self.noise_clip.tooltip = ("with correlated noise, pixels whose peak S/N "
                                   "(Fnu / dFnu) is below noise_clip are left out "
                                   "(empty: 15; off: no clip)")
        self.noise_note = W.HTML(layout=W.Layout(margin="0 0 2px 0"))
        self.noise_message = W.HTML()
        self.noise_rows = list(rows)
        self._typed = ""        # clip text that is not a number
        self._showing = False
        super().__init__([W.HTML(f"<h4 style='margin:8px 0 2px 0'>{GROUPS['noise']}</h4>"),
                          W.HBox([self.noise, self.noise_clip],
                                 layout=W.Layout(align_items="center")),
                          self.noise_note, self.noise_message, *self.noise_rows])
        self.show()
        self.noise.observe(self._chosen, names="value")
        self.noise_clip.observe(self._clip_edited, names="value")
        session.observe(self.show, names="extra_params")

    @property
    def clip_setting(self):
        """The session's ``noise_clip`` (the default when not set)."""
        return self.session.extra_params.get("noise_clip", MASK_SETTINGS["noise_clip"])

    def show(self, change=None) -> None:
        """The session's noise model and clip in the fields."""
        model = self.session.noise
        extra = self.session.extra_params
        self._typed = ""
        self._showing = True
        try:
            if model in dict(NOISE_OPTIONS).values():
                self.noise.value = model
            if "noise_clip" in extra and extra["noise_clip"] is None:
                self.noise_clip.value = "off"
            else:
                self.noise_clip.value = self._display(
                    extra.get("noise_clip", MASK_SETTINGS["noise_clip"]))
        finally:
            self._showing = False
        correlated = model == "correlated"
        self.noise_clip.disabled = not correlated
        if correlated:
            self.noise_clip.remove_class(self._dimmed)
        else:
            self.noise_clip.add_class(self._dimmed)
        note = NOISE_NOTES.get(model, "")
        self.noise_note.value = (f"<div class='eddy-noise-note' style='color:#757575; "
                                 f"font-size:11px'>{html.escape(note)}</div>")
        self.show_checks()

    def _chosen(self, change) -> None:
        if not self._showing:
            self.session.set_noise(change.new)

    def _clip_edited(self, change) -> None:
        """A clip typed: a number sets it, empty goes back to the default,
        ``off`` (or ``none``) turns the clip off; other text is flagged and
        not passed on."""
        if self._showing:
            return
        text = str(change.new).strip()
        extra = dict(self.session.extra_params)
        if text == "":
            extra.pop("noise_clip", None)
        elif text.lower() in ("off", "none"):
            extra["noise_clip"] = None
        elif self._number(text) is not None:
            extra["noise_clip"] = self._number(text)
        else:
            self._typed = text
            self.show_checks()
            return
        self._typed = ""
        if extra != self.session.extra_params:
            self.session.extra_params = extra
        else:
            self.show()

    def show_checks(self, change=None) -> None:
        """The session's noise issues (and a clip that is not a number) in red."""
        issues = self.session.issues
        flagged = {k: issues[k] for k in ("noise", "noise_clip") if k in issues}
        if self._typed:
            clip = self.clip_setting
            flagged["noise_clip"] = (f"noise_clip is not a number ({self._typed!r}); "
                                     f"the fit uses "
                                     f"{'no clip' if clip is None else self._display(clip)}")
        self.noise_message.value = "".join(
            f"<div style='color:#c62828'>{html.escape(m)}</div>"
            for m in flagged.values())
        if "noise_clip" in flagged:
            self.noise_clip.add_class("eddy-invalid")
        else:
            self.noise_clip.remove_class("eddy-invalid")
