"""Files written whole or not at all: the one home of the package's atomic write.

:func:`write_atomic` writes into a hidden temporary file next to the target
(``.<name>.<pid>.<thread>@<host>.tmp``), flushes it to disk, then gives it
the target's name in one step: ``os.replace`` (an existing file is replaced),
or, with ``overwrite=False``, a hard link that never replaces a file that
appeared meanwhile. A reader sees the old file or the new one, never half of
one; on any failure (an exception, Ctrl-C) the temporary file is removed, and
the error names the target, not the temporary file.

A process killed while writing (kill -9, a crash, a power cut) cannot remove
its temporary file: the next write into that folder removes the temporary
files of processes of this machine that no longer run (:func:`remove_stale`).

:func:`write_group` writes several files both or neither (the model and
residual maps of ``save_model``): every temporary file first, then the
renames; if anything fails, the temporary files are removed and the files
already renamed are put back as they were. (A kill between two renames can
still leave the first new and the second old.)

Every writer of results, FITS maps, figures and scripts uses it: the fit
result (:meth:`~eddy_widgets.inference.result.FitResult.save`), the FITS
products (:mod:`eddy_widgets.analysis.export`), the command line's figures
and the dashboard's export.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import socket
import threading
import time
from typing import IO, Callable, Iterable

__all__ = ["PAUSE_VARIABLE", "remove_stale", "temporary_name", "write_atomic",
           "write_group"]

#: Test-only pause point: when this environment variable names a file, a
#: writer that has written and flushed its temporary file writes that file's
#: path into the named file, then waits while the named file exists, before
#: renaming. Tests use it to kill a process in the middle of a save.
PAUSE_VARIABLE = "EDDY_WIDGETS_TEST_PAUSE_AFTER_TEMPORARY"

#: ``.<name>.<pid>.<thread>@<host>.tmp``; files of earlier versions have no
#: ``@<host>``.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<thread>\d+)"
                        r"(?:@(?P<host>[A-Za-z0-9-]*))?\.tmp")


def _host() -> str:
    """This machine's name as it appears in temporary file names."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def temporary_name(path: Path, pid: int | None = None,
                   thread: int | None = None) -> Path:
    """The hidden temporary file next to ``path`` that process ``pid``'s
    ``thread`` (default: this process and thread) writes before renaming it."""
    pid = os.getpid() if pid is None else pid
    thread = threading.get_ident() if thread is None else thread
    return path.with_name(f".{path.name}.{pid}.{thread}@{_host()}.tmp")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (or may: when in doubt,
    yes)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True         # another user's process, or a pid we cannot ask about
    return True


def remove_stale(folder) -> list[Path]:
    """Remove the temporary files in ``folder`` left by processes of this
    machine that no longer run (a save killed half way).

    Temporary files of running processes (this one included: another thread
    may be writing) and of other machines (a folder shared over the network)
    are kept. Never fails: a file that cannot be removed is left.

    Returns:
        The files removed.
    """
    if os.name == "nt":     # os.kill(pid, 0) would end the process there.
        return []
    removed = []
    host = _host()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or match["host"] not in (None, host):
            continue
        if _alive(int(match["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _pause_point(tmp: Path) -> None:
    """The test-only pause after the temporary file is written (see
    :data:`PAUSE_VARIABLE`)."""
    flag = os.environ.get(PAUSE_VARIABLE)
    if not flag:
        return
    Path(flag).write_text(str(tmp))
    while os.path.exists(flag):
        time.sleep(0.01)


def _naming(err: OSError, path: Path, tmp: Path) -> OSError:
    """``err`` as raised for ``path`` where it was raised for its temporary
    file ``tmp`` (or for no file: a full disk)."""
    if err.errno is None or (err.filename is not None
                             and os.fsdecode(err.filename) != str(tmp)):
        return err
    return OSError(err.errno, err.strerror, str(path))


def _write_temporary(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _rename(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
    else:
        _link_new(tmp, path)


def write_atomic(path, write: Callable[[IO[bytes]], object],
                 overwrite: bool = True) -> Path:
    """Write ``path`` whole or not at all.

    Args:
        path: the file to write.
        write: called with the temporary file open for binary writing (e.g.
            ``lambda fh: np.savez_compressed(fh, **arrays)``).
        overwrite: replace an existing ``path``; if ``False`` an existing
            ``path`` (even one that appears while writing) is a
            ``FileExistsError`` and is left untouched.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the write failed (a full disk, a read-only folder); its
            ``filename`` is ``path``. Nothing is left behind.
    """
    return write_group([(path, write)], overwrite)[0]


def write_group(files: Iterable[tuple[object, Callable[[IO[bytes]], object]]],
                overwrite: bool = True) -> list[Path]:
    """Write several files all or none (e.g. a model map and its residual).

    Each file's temporary is written first; only when all are written are
    they renamed. If a write or a rename fails, every temporary file is
    removed and the files already renamed are put back as they were (an
    earlier file restored, a new one removed).

    Args:
        files: ``(path, write)`` pairs, as :func:`write_atomic` takes them.
        overwrite: as for :func:`write_atomic`.

    Returns:
        The paths, in order.

    Raises:
        OSError: a write or rename failed, naming its target.
    """
    files = [(Path(path), write) for path, write in files]
    if not files:
        return []
    for folder in {path.parent for path, _ in files}:
        remove_stale(folder)
    written: list[tuple[Path, Path]] = []           # (temporary, target)
    renamed: list[tuple[Path, Path | None, bool]] = []   # (target, kept, existed)
    current = (None, None)
    try:
        for path, write in files:
            current = (path, temporary_name(path))
            written.append((_write_temporary(path, write), path))
        _pause_point(written[-1][0])
        for i, (tmp, path) in enumerate(written):
            current = (path, tmp)
            existed = os.path.lexists(path)
            # Only a file that a later rename may fail after needs keeping.
            kept = _keep(path) if overwrite and i < len(written) - 1 else None
            try:
                _rename(tmp, path, overwrite)
            except BaseException:
                if kept is not None:
                    kept.unlink(missing_ok=True)
                raise
            renamed.append((path, kept, existed))
    except BaseException as err:
        _undo(renamed)
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and current[0] is not None:
            raise _naming(err, *current) from None
        raise
    for tmp, _ in written:
        tmp.unlink(missing_ok=True)      # still there after a hard link
    for _, kept, _ in renamed:
        if kept is not None:
            kept.unlink(missing_ok=True)
    return [path for path, _ in files]


def _keep(path: Path) -> Path | None:
    """A second name (a hard link) for an existing file at ``path``, so that
    it can be put back if a later file of its group fails; ``None`` if there
    is none (or the file system has no hard links)."""
    if not path.is_file():
        return None
    kept = temporary_name(path.with_name(path.name + ".kept"))
    try:
        kept.unlink(missing_ok=True)
        os.link(path, kept)
    except OSError:
        return None
    return kept


def _undo(renamed: list[tuple[Path, Path | None, bool]]) -> None:
    """Put the files of a failed group back as they were: an earlier file
    from its kept copy, a new one removed. (An earlier file that could not be
    kept stays replaced.)"""
    for path, kept, existed in reversed(renamed):
        try:
            if kept is not None:
                os.replace(kept, path)
            elif not existed:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def _link_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if no such file exists, even if
    one appears meanwhile (a hard link does not replace)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} appeared while it was written and "
                              "overwrite=False: it was left untouched.") from None
    except OSError:
        # A file system without hard links: check, then rename.
        if path.exists():
            raise FileExistsError(f"{path} exists and overwrite=False: it was left "
                                  "untouched.") from None
        os.replace(tmp, path)
