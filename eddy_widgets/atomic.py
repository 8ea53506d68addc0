"""Files written whole or not at all: the one home of the package's atomic write.

:func:`write_atomic` writes into a hidden temporary file next to the target
(``.<name>.<pid>.<thread>.tmp``), flushes it to disk, then gives it the
target's name in one step: ``os.replace`` (an existing file is replaced), or,
with ``overwrite=False``, a hard link that never replaces a file that appeared
meanwhile. A reader sees the old file or the new one, never half of one; on
any failure (an exception, Ctrl-C) the temporary file is removed.

Every writer of results, FITS maps, figures and scripts uses it: the fit
result (:meth:`~eddy_widgets.inference.result.FitResult.save`), the FITS
products (:mod:`eddy_widgets.analysis.export`), the command line's figures
and the dashboard's export.
"""

from __future__ import annotations

import os
from pathlib import Path
import threading
from typing import IO, Callable

__all__ = ["temporary_name", "write_atomic"]


def temporary_name(path: Path) -> Path:
    """The hidden temporary file next to ``path`` that this process and thread
    write before renaming it."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


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
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
