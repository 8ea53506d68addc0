"""Ctrl-C (SIGINT) during a fit, in one place.

A fit never relies on ``KeyboardInterrupt`` reaching our code: JAX runs
Python callbacks (e.g. its garbage-collection hook) that catch and print it
("Exception ignored in ... KeyboardInterrupt"), so an exception raised there
is lost. Instead, :func:`deferred_interrupt` installs a SIGINT handler that
*records* the request, and the run checks the record between chunks (and
before the first chunk, i.e. after the optimiser and the set-up):

- The first Ctrl-C asks the run to stop (:attr:`CtrlC.requested`); the chunk
  in progress is finished and kept, the result saved.
- A later Ctrl-C interrupts at once (``KeyboardInterrupt``) where that loses
  nothing: inside a chunk (:meth:`CtrlC.interruptible`; the sampler is then
  rolled back to the last kept draw), or outside a run (the optimiser, the
  products). Between chunks the run simply stops there. While the result is
  written (:meth:`CtrlC.holding`) it waits, and is raised once the result is
  on disk.

The command line (:mod:`eddy_widgets.cli.fit`) holds one for the whole fit,
from the optimiser to the saved result; :meth:`FitRun.run
<eddy_widgets.inference.run.FitRun.run>` joins it (or holds its own when
called from Python). Only in the main thread and only over Python's default
handler; elsewhere (e.g. a widget's run thread) it records nothing.

:func:`pause_point` is a test-only hook: with ``EDDY_WIDGETS_TEST_PAUSE``
set it stops the program at a named point so that a test can send a real
SIGINT into a window that is otherwise a fraction of a second wide.
"""

from __future__ import annotations

from contextlib import contextmanager
import os
from pathlib import Path
import signal
import sys
import threading
import time

#: ``<name>:<flag file>`` (several separated by ``;``): :func:`pause_point`
#: ``name`` creates ``<flag file>.reached`` and waits until ``<flag file>``
#: exists. Tests only.
PAUSE_VARIABLE = "EDDY_WIDGETS_TEST_PAUSE"

#: Seconds a pause point waits for its flag file before it goes on.
PAUSE_TIMEOUT = 120.0

STOPPING = ("\nStopping after the chunk in progress (every draw is kept); "
            "press Ctrl-C again to interrupt at once.")
STOPPING_NOW = "\nStopping here; every draw so far is kept."
WAITING = ("\nWriting the result first: the run is interrupted as soon as it is "
           "on disk.")


class CtrlC:
    """What Ctrl-C has asked of a run (see the module's help).

    Attributes:
        requested: set by the first Ctrl-C: stop at the next chunk boundary.
        stoppable: whether a stop request still means something (the sampler
            has not returned); otherwise every Ctrl-C interrupts.
    """

    def __init__(self):
        self.requested = threading.Event()
        self.stoppable = True
        self._held = 0
        self._interruptible = 0
        self._pending = False

    def _on_sigint(self, signum, frame) -> None:
        if self.stoppable and not self.requested.is_set():
            self.requested.set()
            _say(STOPPING)
        elif self._interruptible or not self._held:
            raise KeyboardInterrupt
        elif self.stoppable:
            # Between chunks: the run stops at this boundary anyway.
            _say(STOPPING_NOW)
        elif not self._pending:
            self._pending = True
            _say(WAITING)

    @contextmanager
    def holding(self):
        """A section whose writes must not be cut short: a Ctrl-C that would
        interrupt is raised when the section ends (unless an exception is
        already on its way out)."""
        if not self._held:
            self._pending = False
        self._held += 1
        try:
            yield self
        except BaseException:
            self._held -= 1
            self._pending = self._pending and self._held > 0
            raise
        self._held -= 1
        if self._pending and not self._held:
            self._pending = False
            raise KeyboardInterrupt

    @contextmanager
    def interruptible(self):
        """A section a later Ctrl-C may interrupt at once, even inside
        :meth:`holding` (a chunk: the driver rolls the sampler back)."""
        self._interruptible += 1
        try:
            yield self
        finally:
            self._interruptible -= 1


def _say(text: str) -> None:
    """Print from the handler; never raise there (a print the handler cut
    into makes a second one fail with "reentrant call")."""
    try:
        print(text, flush=True)
    except (RuntimeError, OSError, ValueError):
        pass


def _active() -> CtrlC | None:
    handler = signal.getsignal(signal.SIGINT)
    owner = getattr(handler, "__self__", None)
    return owner if isinstance(owner, CtrlC) else None


@contextmanager
def deferred_interrupt():
    """Hold a :class:`CtrlC` for the block: the one already installed (an
    outer block's, e.g. the command line's), else a new one whose handler
    replaces Python's default for the block. In another thread, or over a
    handler of someone else's, a :class:`CtrlC` that nothing sets."""
    if threading.current_thread() is not threading.main_thread():
        yield CtrlC()
        return
    outer = _active()
    if outer is not None:
        yield outer
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield CtrlC()
        return
    state = CtrlC()
    signal.signal(signal.SIGINT, state._on_sigint)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _pause_flag(name: str) -> Path | None:
    for entry in os.environ.get(PAUSE_VARIABLE, "").split(";"):
        wanted, sep, flag = entry.partition(":")
        if sep and flag and wanted.strip() == name:
            return Path(flag)
    return None


def pause_requested(name: str) -> bool:
    """Whether ``EDDY_WIDGETS_TEST_PAUSE`` names the pause point ``name``."""
    return _pause_flag(name) is not None


def pause_point(name: str, swallow: bool = False) -> None:
    """Test-only: if ``EDDY_WIDGETS_TEST_PAUSE`` holds ``<name>:<flag file>``,
    create ``<flag file>.reached`` and wait until ``<flag file>`` exists (at
    most :data:`PAUSE_TIMEOUT` s). Does nothing otherwise.

    ``swallow``: a ``KeyboardInterrupt`` raised while waiting is printed and
    ignored, as JAX's callbacks do, so a test can check that a Ctrl-C counts
    without the exception reaching our code."""
    flag = _pause_flag(name)
    if flag is None:
        return
    Path(f"{flag}.reached").touch()
    deadline = time.monotonic() + PAUSE_TIMEOUT
    while not flag.exists() and time.monotonic() < deadline:
        try:
            time.sleep(0.01)
        except KeyboardInterrupt:
            if not swallow:
                raise
            print(f"Exception ignored in pause_point({name!r}): KeyboardInterrupt",
                  file=sys.stderr, flush=True)
