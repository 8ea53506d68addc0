"""Export a :class:`~eddy_widgets.session.FitSession`'s fit from the dashboard:
the figures (PNG or PDF), the model and residual maps as FITS, the result file
and the equivalent ``fit_map`` script.

The panel holds no output code of its own: the figures, FITS files and result
file are written by :func:`eddy_widgets.products.write_products` (what the
command line writes), the script by :meth:`FitSession.to_script`. Every export
goes into a new folder (by default ``eddy_widgets_export/<date>-<time>``); a
folder that exists and is not empty is refused, so nothing is overwritten.

While it writes (a few seconds: the figures are drawn anew) the Export button
is disabled and says so, and a progress bar names the step; the list of files
written names the run they hold, and gives way to a one-line note when a
later run (or Continue) starts, so that it never passes for the current
run's.
"""

from __future__ import annotations

import datetime
import errno
import html
from pathlib import Path

import ipywidgets as W

from ..atomic import write_atomic
from ..products import write_products
from ..session import FitSession
from ..session.runner import BUSY

__all__ = ["ExportPanel", "EXPORT_FOLDER", "new_export_folder"]

#: Where exports go by default, one sub-folder per export.
EXPORT_FOLDER = "eddy_widgets_export"

#: The figures of a fit written by the panel (names as ``fit_map``'s ``plots``).
FIGURES = ("walkers", "corner", "bestfit", "residual")

SCRIPT_NAME = "fit_script.py"

#: What each part of the export writes, for its progress bar.
PART_WORDS = {"result": "writing the result file",
              "figures": "writing the figures",
              "disk_frame": "the residual in the disk frame and the rotation curve",
              "fits": "writing the model and residual FITS"}

RED = "#c62828"


def new_export_folder(base=EXPORT_FOLDER) -> str:
    """``base/<date>-<time>`` (with ``-2``, ``-3``... if taken): a folder that
    does not exist yet."""
    stem = Path(base) / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder, n = stem, 1
    while folder.exists():
        n += 1
        folder = stem.with_name(f"{stem.name}-{n}")
    return str(folder)


def error_text(exc: BaseException, folder) -> str:
    """An export's failure in words (what happened and what to do)."""
    where = html.escape(str(folder))
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (f"The disk is full: could not write into {where}. Free some space "
                f"or choose a folder on another disk.")
    if isinstance(exc, OSError) and exc.errno == errno.ENOTDIR:
        return (f"Cannot write into {where}: part of that path is a file, not a "
                f"folder. Choose another folder.")
    if isinstance(exc, PermissionError) or (isinstance(exc, OSError)
                                            and exc.errno in (errno.EACCES, errno.EROFS)):
        return (f"Cannot write into {where}: permission denied. Choose a folder you "
                f"can write to.")
    if isinstance(exc, FileExistsError):
        return (f"{where} exists and is not empty: choose a new folder (nothing was "
                f"overwritten).")
    return f"Export failed ({type(exc).__name__}): {html.escape(str(exc))}"


class ExportPanel(W.VBox):
    """Buttons that write a session's fit to files.

    Attributes:
        folder: the folder to write into (a new one by default).
        figure_format: ``'PNG'`` or ``'PDF'``.
        figures, fits, result_file, script: which products to write.
        export: the button; disabled, with ``reason`` saying why, until the
            session holds a finished (stopped or done) run with draws.
        reason: why Export is disabled.
        progress: while exporting, the step (``value`` of ``max``) and what
            it writes (``description``); hidden otherwise.
        exporting: whether an export is being written.
        written: after an export, the run it holds and the list of paths
            written; once a later run or Continue starts, a one-line note
            naming that run and the folder.
        error: a failed export in words (red).
        paths: the paths of the last export.

    The script is the run's own set-up (``session.run_script``, made when the
    run started: the editor may have changed since), reading the map as the
    cube did (its FOV and downsample).

    Args:
        session: the session whose fit to export.
    """

    def __init__(self, session: FitSession, **kwargs):
        self.session = session
        self.paths: list[str] = []
        style = {"description_width": "initial"}
        self.folder = W.Text(value=new_export_folder(), description="Folder",
                             style=style, layout=W.Layout(width="420px"))
        self.figure_format = W.ToggleButtons(options=["PNG", "PDF"], value="PNG",
                                             description="Figures as", style=style)
        self.figures = W.Checkbox(value=True, description="figures (walkers, corner, "
                                  "maps, polar residual, rotation curve)", indent=False)
        self.fits = W.Checkbox(value=True, description="model and residual FITS",
                               indent=False)
        self.result_file = W.Checkbox(value=True, description="result file (result.npz)",
                                      indent=False)
        self.script = W.Checkbox(value=True, description=f"equivalent script "
                                 f"({SCRIPT_NAME})", indent=False)
        self.export = W.Button(description="Export", icon="download",
                               tooltip="write the chosen products into the folder")
        self.reason = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, description="",
                                      style={"description_width": "initial"},
                                      layout=W.Layout(display="none", width="420px"))
        self.progress.add_class("eddy-export-progress")
        self.exporting = False
        self.written = W.HTML()
        self.error = W.HTML()
        self._written_of: tuple[int, str, str, int] | None = None
        self.export.on_click(lambda _: self.write())
        for box in (self.figures, self.fits, self.result_file, self.script):
            box.observe(self._update, names="value")
        # One product a line: side by side the long labels were cut
        # ("polar res...", "m...").
        boxes = W.VBox([self.figures, self.fits, self.result_file, self.script],
                       layout=W.Layout(margin="2px 0"))
        for box in (self.figures, self.fits, self.result_file, self.script):
            box.layout.width = "auto"
        super().__init__([self.folder, self.figure_format, boxes,
                          W.HBox([self.export, self.reason],
                                 layout=W.Layout(align_items="center",
                                                 flex_flow="row wrap")),
                          self.progress, self.error, self.written],
                         **kwargs)
        self.add_class("eddy-export")
        self.export.add_class("eddy-export-button")
        session.observe(self._update, names=["status", "result", "cube"])
        session.observe(self._on_status, names=["status"])
        self._update()

    # -- state ----------------------------------------------------------------

    def disabled_reason(self) -> str:
        """Why nothing can be exported now (``''`` if it can)."""
        s = self.session
        if self.exporting:
            return "exporting: wait until the files are written"
        if s.busy:
            return "the fit is running: export when it stops or ends"
        if s.status == "error":
            return ("the last run failed (its error is at the top): run a fit again; "
                    "an earlier run's draws are in its checkpoint file")
        if s.result is None or s.fit_run is None:
            return "nothing to export yet: run a fit first"
        if s.result.n_draws("sampling") == 0:
            return "the run has no draws after warmup yet: continue it first"
        if not any(b.value for b in (self.figures, self.fits, self.result_file,
                                     self.script)):
            return "choose at least one thing to export"
        return ""

    def _update(self, change=None) -> None:
        reason = self.disabled_reason()
        self.export.disabled = bool(reason)
        if self.exporting:
            self.reason.value = ""          # the progress bar says it
        else:
            self.reason.value = (f"<span style='color:#666'>Export is disabled: "
                                 f"{html.escape(reason)}.</span>" if reason else "")

    def _on_status(self, change) -> None:
        """A later run, or Continue, starts: the list of the last export's
        files gives way to a note naming the run they hold."""
        if change.new in BUSY and change.old not in BUSY and self._written_of:
            run_id, label, folder, n = self._written_of
            self.written.value = (
                f"<div class='eddy-export-earlier' style='color:#666; line-height:1.4'>"
                f"The last export, {n} file{'s' if n != 1 else ''} of "
                f"{html.escape(label)}, is in <code>{html.escape(folder)}</code>: it "
                f"holds that run as it was then, not the run started since.</div>")
            self._written_of = None

    def _step(self, n: int, words: str) -> None:
        """Show step ``n`` of the export's progress."""
        self.progress.value = n
        self.progress.description = f"Exporting: {words} ({n + 1} of {self.progress.max})…"

    # -- writing --------------------------------------------------------------

    def write(self) -> list[str]:
        """Write the chosen products into :attr:`folder`; returns the paths
        (also shown in :attr:`written`). A failure shows in :attr:`error`."""
        self.error.value = ""
        reason = self.disabled_reason()
        if reason:
            self.error.value = self._red(f"Nothing exported: {html.escape(reason)}.")
            return []
        folder = Path(self.folder.value.strip() or new_export_folder()).expanduser()
        s = self.session
        label = s.run_label() or f"run {s.run_id}"
        self.exporting = True
        self.written.value = ""
        self.export.description = "Exporting..."
        self.export.icon = "spinner"
        self.progress.value, self.progress.max = 0, max(self._n_steps(), 1)
        self.progress.layout.display = None
        self._update()
        try:
            names = self._write_into(folder)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.error.value = self._red(error_text(exc, folder))
            return []
        finally:
            self.exporting = False
            self.export.description = "Export"
            self.export.icon = "download"
            self.progress.layout.display = "none"
            self.progress.description = ""
            self._update()
        self.paths = [str(folder / name) for name in names]
        self._written_of = (s.run_id, label, str(folder), len(names))
        self.written.value = (f"<div style='line-height:1.4'>Wrote {len(names)} "
                              f"file{'s' if len(names) != 1 else ''} of "
                              f"{html.escape(label)} into "
                              f"<code>{html.escape(str(folder))}</code>:<ul style='margin:2px 0'>"
                              + "".join(f"<li><code>{html.escape(p)}</code></li>"
                                        for p in self.paths) + "</ul></div>")
        # The next export goes into a new folder unless the user chose one.
        if self.folder.value.strip() == str(folder) and Path(folder).parent.name == EXPORT_FOLDER:
            self.folder.value = new_export_folder(Path(folder).parent)
        return self.paths

    def _parts(self) -> list[str]:
        """The parts of :func:`~eddy_widgets.products.write_products` chosen."""
        return [part for part, box in (("result", self.result_file),
                                       ("figures", self.figures),
                                       ("disk_frame", self.figures),
                                       ("fits", self.fits)) if box.value]

    def _n_steps(self) -> int:
        """The export's steps: drawing the figures, each part, the script."""
        return (int(self.figures.value) + len(self._parts())
                + int(self.script.value))

    def _write_into(self, folder: Path) -> list[str]:
        import matplotlib
        import matplotlib.pyplot as plt

        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise FileExistsError(errno.EEXIST, "not empty", str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        s = self.session
        parts = self._parts()
        names: list[str] = []
        step = 0
        if parts:
            before = set(plt.get_fignums())
            try:
                with matplotlib.rc_context({"backend": "Agg"}):
                    figures = {}
                    if self.figures.value:
                        self._step(step, "drawing the figures")
                        step += 1
                        figures = s.cube.make_plots(s.fit_run, FIGURES)
                    # One part at a time, so that the progress names each.
                    for part in parts:
                        self._step(step, PART_WORDS[part])
                        step += 1
                        names += write_products(
                            s.cube, s.result, folder, parts=[part],
                            figure_format=self.figure_format.value.lower(),
                            figures=figures)
            finally:
                for num in set(plt.get_fignums()) - before:
                    plt.close(num)
        if self.script.value:
            self._step(step, "writing the script")
        if self.script.value and not s.run_script:
            self.error.value = ("<div style='color:#b26a00'>No script written: this "
                                "run was continued from a file or its map has no file, "
                                "so its set-up cannot be written as a script.</div>")
        elif self.script.value:
            text = s.run_script
            write_atomic(folder / SCRIPT_NAME, lambda fh: fh.write(text.encode()))
            names.append(SCRIPT_NAME)
        return names

    @staticmethod
    def _red(text: str) -> str:
        return f"<div style='color:{RED}; white-space:pre-wrap'><b>Error</b>: {text}</div>"
