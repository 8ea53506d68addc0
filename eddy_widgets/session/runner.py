"""The run half of :class:`~eddy_widgets.session.FitSession`: start, stop,
continue and wait for a fit in a background thread, with its checkpoints.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from pathlib import Path
import threading

from traitlets import Any, Enum, Float, HasTraits, Instance, Int, List, Unicode, default
from traitlets import validate as validate_trait

from ..inference.backends import BACKENDS
from ..inference.priors import Prior
from ..inference.result import FitResult, result_path
from ..inference.samplers import RunInfo, StopRequested

#: Run states, in the order a run goes through them.
#: ``stopping``: Stop was pressed and the chunk in progress is being finished.
STATUSES = ("idle", "optimising", "running", "stopping", "stopped", "done", "error")
#: The statuses while a fit's thread works.
BUSY = ("optimising", "running", "stopping")

#: Folder of the checkpoints of runs started from a session (relative to the
#: working directory when the run starts).
CHECKPOINT_FOLDER = "eddy_widgets_checkpoints"

#: Checkpoint paths handed out in this process without a file on disk (a
#: folder that cannot be written: the run reports that when it starts).
_HANDED_OUT: set[str] = set()
_HANDED_OUT_LOCK = threading.Lock()


def new_checkpoint_path(folder=None, reserve: bool = True) -> str:
    """A checkpoint file for a new run, ``<folder>/<YYYYmmdd-HHMMSS>.npz``
    (default folder :data:`CHECKPOINT_FOLDER`), with ``-2``, ``-3``, ... added
    when that name is taken; ``reserve=False`` only shows what the name
    would be.

    The name is reserved on disk: the folder is made and the file created
    empty, exclusively (``open(path, 'x')``), so two runs started in the same
    second, in this process or in two (two kernels in one folder, even on a
    shared file system), never get the same file. The run writes its
    checkpoint over the empty file; an empty file is a run that has written
    none yet."""
    folder = Path(CHECKPOINT_FOLDER if folder is None else folder)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with _HANDED_OUT_LOCK:
        on_disk = reserve
        if reserve:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:  # the run says why when it makes the folder
                on_disk = False
        n = 1
        while True:
            name = stamp if n == 1 else f"{stamp}-{n}"
            path = str(folder / f"{name}.npz")
            n += 1
            if path in _HANDED_OUT or os.path.exists(path):
                continue
            if on_disk:
                try:
                    with open(path, "x"):
                        pass
                except FileExistsError:  # another process took it just now
                    continue
                except OSError:  # not writable: the run will say so
                    on_disk = False
            if reserve and not on_disk:
                _HANDED_OUT.add(path)
            return path


class FitThread(HasTraits):
    """The state of the session's run and the thread that makes it; see
    :class:`~eddy_widgets.session.FitSession`.

    A new run takes its arguments from ``to_fit_kwargs`` and ``priors`` and
    its map from ``cube`` (the set-up halves of the session).
    """

    status = Enum(STATUSES, default_value="idle")
    error = Unicode("")
    messages = List(Unicode())
    result = Any(None, allow_none=True)
    info = Instance(RunInfo, allow_none=True)
    run_id = Int(0)
    run_script = Unicode("", help="the fit_map script of the last run's set-up, "
                         "made when it started ('' for a run continued from a "
                         "file, or a map without a file)")
    extend_steps = Int(BACKENDS["emcee"].count_defaults["nsteps"])
    checkpoint = Any(help="checkpoint file of new runs (str), or None: off")
    checkpoint_interval = Float(60.0, help="seconds between checkpoint writes")
    checkpoint_file = Unicode("", help="the current run's checkpoint, absolute")

    def _init_thread(self) -> None:
        """No run yet (before the traits are set)."""
        self._chunk_observers: list = []
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()
        self._lock = threading.RLock()
        self._auto_checkpoint: str | None = None
        #: The checkpoint file reserved (created empty) for the current run.
        self._reserved_checkpoint: Path | None = None
        self.fit_run = None
        #: The last run (run, result), kept while a new one starts.
        self._earlier = None
        #: Whether the last start failed before it had a run of its own (the
        #: session's run is then the earlier one, if any).
        self.start_failed = False
        #: When each run began ({run_id: datetime}), for :meth:`run_label`.
        self._run_started: dict[int, datetime.datetime] = {}

    @property
    def busy(self) -> bool:
        """Whether a fit is being prepared, run or stopped."""
        return self.status in BUSY

    @property
    def can_resume(self) -> bool:
        """Whether :meth:`resume` can continue the last run."""
        run = self.fit_run
        if self.busy or run is None:
            return False
        if self.status in ("stopped", "done"):
            return True
        # A failed run that kept draws (or a failed start that left the
        # earlier run in place) can go on from the last kept draw.
        return self.status == "error" and run.result.n_draws("warmup") \
            + run.result.n_draws("sampling") > 0

    def continue_label(self) -> str:
        """What Continue continues, in words, e.g. ``'Continue emcee run (32
        walkers, 4000 draws per walker so far)'`` (``''`` when there is no run). It is
        the last run, whatever backend and counts are selected since."""
        run = self.fit_run
        if run is None:
            return ""
        info = run.info
        n = info.nchains
        unit = BACKENDS[info.backend].unit
        return (f"Continue {info.backend} run ({n} {unit}{'s' if n != 1 else ''}, "
                f"{info.done} draws per {unit} so far)")

    def run_label(self) -> str:
        """The session's run in a few words, to name it where its results
        are shown, e.g. ``'run 2 (emcee, 32 walkers, 500 warm-up + 3000
        draws per walker, started 14:02:11)'``; ``''`` when there is none.
        After a start that failed before it had a run, it names the earlier
        run, which the session then holds again."""
        run = self.fit_run
        if run is None:
            return ""
        info = run.info
        n = info.nchains
        unit = BACKENDS[info.backend].unit
        started = self._run_started.get(self.run_id)
        when = f", started {started:%H:%M:%S}" if started is not None else ""
        return (f"run {self.run_id} ({info.backend}, {n} {unit}{'s' if n != 1 else ''}, "
                f"{info.n_warmup} warm-up + {info.n_samples} draws per {unit}{when})")

    def continue_plan(self) -> str:
        """What Continue will add to the last run, in words (``''`` if none)."""
        run = self.fit_run
        if run is None:
            return ""
        info = run.info
        if info.done < info.total:
            return f"goes on to its planned {info.total} draws per chain"
        return f"adds {self.extend_steps} draws per chain"

    def observe_chunks(self, callback) -> None:
        """Call ``callback(chunk, info)`` with every chunk of draws (in the
        fit's thread, after the result has the chunk)."""
        if callback not in self._chunk_observers:
            self._chunk_observers.append(callback)

    def unobserve_chunks(self, callback) -> None:
        if callback in self._chunk_observers:
            self._chunk_observers.remove(callback)

    def start(self) -> None:
        """Start a new fit in a background thread and return at once.

        Raises :class:`SetupError` if the set-up has issues, ``RuntimeError``
        if no cube is set or a fit is running.
        """
        with self._lock:
            if self.cube is None:
                raise RuntimeError("No map to fit: set session.cube = rotationmap(...).")
            self._claim_thread()
            kwargs = self.to_fit_kwargs()
            priors = self.priors()
            checkpoint = self._next_checkpoint()
            self._begin(checkpoint)
            # The set-up as run: the editor may change before an export.
            try:
                self.run_script = self.to_script()
            except Exception:  # noqa: BLE001 - e.g. a map given as an array
                self.run_script = ""
            self._launch(self._work_new, kwargs, priors, checkpoint)

    def continue_from(self, result, nsteps: int | None = None) -> None:
        """Continue a saved run on this session's map, in a background thread.

        Args:
            result: a :class:`~eddy_widgets.inference.result.FitResult` or
                the path of one (e.g. a checkpoint of a run whose kernel died).
            nsteps: post-warmup draws to add once the run has reached its
                planned end (default: none for a stopped run, else
                ``extend_steps``).

        The run goes on with the priors stored in the result (the cube's are
        neither used nor changed). The map and the fitted pixels must be those
        the result was made with; otherwise the run fails with a
        ``SetupMismatchError`` naming every difference, shown in ``error``.
        The run writes a new checkpoint (``checkpoint_file``), never over the
        file it was loaded from. The editor's set-up is left as it is.
        """
        source = result
        if not isinstance(result, FitResult):
            # Read here, before anything changes: a mistyped path raises in
            # the cell (with the working directory and the result files
            # nearby) and the last run stays continuable and exportable.
            result = FitResult.load(source)
        with self._lock:
            if self.cube is None:
                raise RuntimeError("No map to fit: set session.cube = rotationmap(...).")
            self._claim_thread()
            checkpoint = self._next_checkpoint()
            if checkpoint is not None and not isinstance(source, FitResult):
                if Path(os.path.abspath(result_path(source))) == checkpoint:
                    checkpoint = Path(os.path.abspath(new_checkpoint_path(
                        checkpoint.parent)))
                    self._reserved_checkpoint = checkpoint
            self._begin(checkpoint)
            self.run_script = ""
            self._launch(self._work_continue, result, nsteps, checkpoint)

    def _begin(self, checkpoint) -> None:
        """Clear the last run's state for a new one (under the lock); the
        last run is kept aside, restored if the new one fails before it has
        a run of its own."""
        self._stop_flag.clear()
        if self.fit_run is not None:
            self._earlier = (self.fit_run, self.result)
        self.start_failed = False
        self.fit_run = None
        self.error = ""
        self.messages = []
        self.checkpoint_file = "" if checkpoint is None else str(checkpoint)
        self.status = "optimising"

    def stop(self) -> None:
        """Stop the fit after the chunk in progress; every draw is kept (in
        ``result``, and in the checkpoint file when the run writes one).
        A stop while optimising keeps the prepared run with no draws.
        ``status`` is ``'stopping'`` at once, ``'stopped'`` once the chunk
        in progress has been kept."""
        with self._lock:
            self._stop_flag.set()
            run = self.fit_run
            if run is not None:
                run.request_stop()
            if self.status in ("optimising", "running"):
                self.status = "stopping"

    def _set_running(self) -> bool:
        """Status 'running', unless a stop came first (then False)."""
        with self._lock:
            if self._stop_flag.is_set():
                return False
            self.status = "running"
            return True

    def resume(self, nsteps: int | None = None) -> None:
        """Continue the last run (with its own backend and counts, whatever is
        selected since: see :meth:`continue_label`): a stopped run goes on to
        its planned end; a finished one gets ``nsteps`` (default
        ``extend_steps``) more draws."""
        with self._lock:
            if not self.can_resume:
                raise RuntimeError("Nothing to continue: start a fit first, and wait "
                                   "until it has stopped or finished.")
            self._claim_thread()
            run = self.fit_run
            if nsteps is None:
                nsteps = 0 if not run.complete else self.extend_steps
            self._stop_flag.clear()
            self.error = ""
            self.status = "running"
            self._launch(self._work_extend, run, int(nsteps))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the fit's thread has finished (views included);
        returns False on timeout.

        Ctrl-C (a kernel interrupt) while waiting stops the run as Stop does,
        so every draw is kept (and written to the checkpoint), waits for
        that, and raises ``KeyboardInterrupt``; a second Ctrl-C stops waiting
        at once (the run still stops after its chunk)."""
        thread = self._thread
        if thread is None:
            return True
        try:
            thread.join(timeout)
        except KeyboardInterrupt:
            self.stop()
            thread.join()
            raise
        return not thread.is_alive()

    def _claim_thread(self) -> None:
        if self.busy:
            raise RuntimeError("A fit is running: stop it first.")
        # The last thread may still be refreshing views after its status
        # changed; let it finish so that no one reads the result while a new
        # run appends to it.
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(30.0)
            if self._thread.is_alive():
                raise RuntimeError("The last fit's thread is still busy.")

    def _launch(self, target, *args) -> None:
        self._thread = threading.Thread(target=self._guarded, args=(target, *args),
                                        name="eddy-widgets-fit", daemon=True)
        self._thread.start()

    def _guarded(self, target, *args) -> None:
        """Run ``target`` and turn any exception into ``error`` / 'error'.
        Nothing in the thread prints: messages go to traits."""
        try:
            target(*args)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            earlier = self._earlier
            self.start_failed = self.fit_run is None
            if self.fit_run is None and earlier is not None:
                # Failed before it had a run: the earlier run stays the
                # session's, continuable and exportable (the progress line
                # shows this run's failure, not the earlier run's count).
                self.fit_run, self.result = earlier
                self.messages = [*self.messages, "This run failed before it started; "
                                 "Continue and Export still use the earlier run."]
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = "error"
            self._release_checkpoint()

    def _release_checkpoint(self, replaced: bool = False) -> None:
        """Remove the empty file reserved for a run that never wrote there:
        one that failed before it had a run to continue, or (``replaced``)
        the last run, as a new one starts."""
        path = self._reserved_checkpoint
        if path is None or (self.fit_run is not None and not replaced):
            return
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:
                path.unlink()

    def _next_checkpoint(self) -> Path | None:
        """The absolute checkpoint path of a new run (``None``: off). The
        default gives every run a new file; a path set by hand is kept."""
        self._release_checkpoint(replaced=True)
        self._reserved_checkpoint = None
        if self.checkpoint is None:
            return None
        if self.checkpoint == self._auto_checkpoint:
            self._auto_checkpoint = new_checkpoint_path()
            self.checkpoint = self._auto_checkpoint
            path = Path(os.path.abspath(self.checkpoint))
            self._reserved_checkpoint = path
            return path
        return Path(os.path.abspath(result_path(self.checkpoint)))

    @default("checkpoint")
    def _default_checkpoint(self):
        self._auto_checkpoint = new_checkpoint_path(reserve=False)
        return self._auto_checkpoint

    @validate_trait("checkpoint")
    def _valid_checkpoint(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"checkpoint must be a file path or None, not {value!r}")
        return value

    def _prepare_checkpoint(self, checkpoint: Path | None) -> None:
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)

    def _work_new(self, kwargs: dict, priors: dict, checkpoint: Path | None) -> None:
        # The session's priors go to this fit only: the user's cube keeps its
        # own (two sessions on one cube never see each other's).
        cube = self.cube
        self._prepare_checkpoint(checkpoint)
        run = cube.prepare_fit(**kwargs, verbose=False, warn=False,
                               checkpoint=checkpoint,
                               checkpoint_interval=self.checkpoint_interval,
                               priors=priors)
        self._adopt(run, cube)
        warm_up = getattr(run, "warm_up", None)
        if warm_up is not None and not self._stop_flag.is_set():
            warm_up()  # compile before the first chunk, still 'optimising'
        if not self._set_running():
            run.result.stopped = True
            self.status = "stopped"
            return
        try:
            result = run.run([self._forward])
        finally:
            self._sync_messages()
        self.status = "stopped" if result.stopped else "done"

    def _work_continue(self, source, nsteps: int | None,
                       checkpoint: Path | None) -> None:
        cube = self.cube
        result = source if isinstance(source, FitResult) else FitResult.load(source)
        self._prepare_checkpoint(checkpoint)
        # The run goes on with the priors it was made with (stored in the
        # result), whatever the cube's are now; the cube is not changed.
        priors = {name: Prior.from_args(args, kind, name) for name, (args, kind)
                  in (result.settings.get("priors") or {}).items()}
        run = cube.resume(result, checkpoint, self.checkpoint_interval, priors=priors)
        self._adopt(run, cube)
        if nsteps is None:
            nsteps = 0 if not run.complete else self.extend_steps
        warm_up = getattr(run, "warm_up", None)
        if warm_up is not None and not self._stop_flag.is_set():
            warm_up()
        if not self._set_running():
            self.status = "stopped"
            return
        self._work_extend(run, int(nsteps))

    def _adopt(self, run, cube) -> None:
        """Make ``run`` (on ``cube``) the session's run (views start afresh)."""
        self.messages = list(run.messages)
        self.fit_run = run
        if hasattr(cube, "last_run"):
            cube.last_run = run
        self.info = run.info
        self.result = run.result
        self._run_started[self.run_id + 1] = datetime.datetime.now()
        self.run_id += 1

    def _sync_messages(self) -> None:
        """Add what the run said while running (e.g. a failed checkpoint
        write) to ``messages``."""
        run = self.fit_run
        new = [m for m in getattr(run, "messages", []) if m not in self.messages]
        if new:
            self.messages = [*self.messages, *new]

    def _work_extend(self, run, nsteps: int) -> None:
        try:
            result = run.extend(nsteps, [self._forward])
        finally:
            self._sync_messages()
        self.status = "stopped" if result.stopped else "done"

    def _forward(self, chunk, info) -> None:
        for callback in list(self._chunk_observers):
            try:
                callback(chunk, info)
            except StopRequested:
                raise
            except Exception as exc:  # noqa: BLE001 - a view must not kill the run
                note = f"view {callback!r} failed: {type(exc).__name__}: {exc}"
                if note not in self.messages:
                    self.messages = [*self.messages, note]
        if self._stop_flag.is_set():
            raise StopRequested
