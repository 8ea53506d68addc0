"""Run / Stop / Continue for a :class:`~eddy_widgets.session.FitSession`, with
the run's status and where its checkpoint is, the reason when Run is disabled
and the error of a failed run."""

from __future__ import annotations

import datetime
import html
import os

import ipywidgets as W
from traitlets import link

from ..session import FitSession

__all__ = ["RunControls"]

STATUS_TEXT = {
    "idle": "ready",
    "optimising": "preparing (mask, optimiser, compilation)&hellip;",
    "running": "sampling&hellip;",
    "stopping": "stopping&hellip; (keeping the chunk in progress)",
    "stopped": "stopped &ndash; every draw is kept; Continue resumes",
    "done": "done &ndash; the verdict is at the top of the Results tab",
    "error": "failed",
}


def checkpoint_text(session) -> str:
    """Where the session's run writes its checkpoint, in words (HTML)."""
    every = f"{session.checkpoint_interval:g} s"
    path = session.checkpoint_file
    if session.status == "idle":
        if session.checkpoint is None:
            return "checkpoints are off (session.checkpoint = None)"
        return (f"each run writes a checkpoint to <code>{html.escape(str(session.checkpoint))}"
                f"</code> every {every} and when it stops or ends")
    if not path:
        return "no checkpoint (session.checkpoint = None): the draws are in memory only"
    where = f"<code>{html.escape(path)}</code>"
    if session.busy:
        return (f"checkpoint: {where}, written every {every} and when the run stops "
                f"or ends")
    if os.path.exists(path):
        when = datetime.datetime.fromtimestamp(os.path.getmtime(path))
        return (f"checkpoint: {where} (last written {when:%H:%M:%S}); continue it later "
                f"with session.continue_from(path) or "
                f"cube.continue_fit(result=FitResult.load(path))")
    return f"checkpoint: {where} (not written: the run made no draws)"


class RunControls(W.VBox):
    """Buttons that start, stop and continue the session's fit.

    Attributes:
        run, stop, resume: the Run, Stop and Continue buttons; Continue says
            which run it continues (backend, chains, draws so far), Run
            starts a new run with the selected backend.
        note: when the selected backend is not the last run's, that Continue
            goes on with the last run and Run starts a new one.
        extend_steps: draws Continue adds once a run has reached its end.
        reason: why Run is disabled (invalid rows, no map, running).
        status: the run's state in words, and where its checkpoint is.
        error: the message of an exception in the run (red), and warnings the
            engine gave while preparing (orange).
    """

    def __init__(self, session: FitSession, **kwargs):
        self.session = session
        self.run = W.Button(description="Run", icon="play", button_style="success",
                            tooltip="start a new fit with this set-up")
        self.stop = W.Button(description="Stop", icon="stop", button_style="danger",
                             tooltip="stop after the current chunk; keeps every draw "
                                     "(and writes the checkpoint)")
        self.resume = W.Button(description="Continue", icon="forward",
                               tooltip="resume a stopped run, or add draws to a "
                                       "finished one",
                               layout=W.Layout(width="auto"))
        self.note = W.HTML()
        self.extend_steps = W.IntText(description="Continue adds", style={
            "description_width": "initial"}, layout=W.Layout(width="160px"))
        self.links = [link((session, "extend_steps"), (self.extend_steps, "value"))]
        self.status = W.HTML()
        self.reason = W.HTML()
        self.error = W.HTML()
        self.run.on_click(lambda _: self._call(self.session.start))
        self.stop.on_click(lambda _: self.session.stop())
        self.resume.on_click(lambda _: self._call(self.session.resume))
        # Continue's label names the run it continues: as wide as its words,
        # and the row wraps on a narrow screen rather than cutting it.
        self.resume.layout.width = "auto"
        super().__init__([W.HBox([self.run, self.stop, self.resume, self.extend_steps,
                                  W.HTML("draws")],
                                 layout=W.Layout(flex_flow="row wrap")),
                          self.note, self.status, self.reason, self.error],
                         **kwargs)
        self.status.add_class("eddy-status")
        session.observe(self._update, names=["status", "issues", "valid", "cube",
                                             "error", "messages", "checkpoint",
                                             "checkpoint_file", "checkpoint_interval",
                                             "mcmc", "run_id", "extend_steps"])
        self._update()

    def _call(self, action) -> None:
        """Run a session action; a refusal shows in the error area."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.session.error = f"{type(exc).__name__}: {exc}"

    def _update(self, change=None) -> None:
        s = self.session
        busy = s.busy
        reasons = []
        if s.cube is None:
            reasons.append("no map: give the session a cube")
        if s.issues:
            reasons += [f"{html.escape(k)}: {html.escape(v)}" for k, v in s.issues.items()]
        self.run.disabled = busy or bool(reasons)
        self.stop.disabled = not busy or s.status == "stopping"
        self.resume.disabled = not s.can_resume
        self.run.tooltip = f"start a new {s.mcmc} fit with this set-up"
        self._label_continue()
        self.extend_steps.disabled = busy
        if reasons and not busy:
            self.reason.value = ("<div style='color:#c62828'><b>Run is disabled</b> "
                                 "until these are fixed:<ul style='margin:2px 0'>"
                                 + "".join(f"<li>{r}</li>" for r in reasons)
                                 + "</ul></div>")
        else:
            self.reason.value = ""
        self.status.value = (f"<div style='line-height:1.4'><b>Status</b>: "
                             f"{STATUS_TEXT[s.status]}<br><span style='font-size:90%'>"
                             f"{checkpoint_text(s)}</span></div>")
        parts = []
        if s.error:
            parts.append(f"<div style='color:#c62828; white-space:pre-wrap'>"
                         f"<b>Error</b>: {html.escape(s.error)}</div>")
        parts += [f"<div style='color:#b26a00'>{html.escape(m)}</div>"
                  for m in s.messages]
        self.error.value = "".join(parts)

    def _label_continue(self) -> None:
        """Continue names the run it continues; a note when the selector now
        shows another backend than that run's."""
        s = self.session
        label = s.continue_label() if s.can_resume else ""
        self.resume.description = label or "Continue"
        self.resume.tooltip = (f"{label}: {s.continue_plan()}" if label else
                               "resume a stopped run, or add draws to a finished one")
        run = s.fit_run
        if label and run.info.backend != s.mcmc:
            self.note.value = (f"<span style='color:#b26a00'>Continue goes on with the "
                               f"last {html.escape(run.info.backend)} run as it was "
                               f"set up; Run starts a new {html.escape(s.mcmc)} run "
                               f"with the counts above.</span>")
        else:
            self.note.value = ""
