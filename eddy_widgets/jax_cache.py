"""The persistent JAX compilation cache: where it lives and how big it may grow.

Importing :mod:`eddy_widgets` calls :func:`configure`, which

- points JAX's persistent compilation cache at ``~/.cache/eddy_widgets/jax``
  (``EDDY_WIDGETS_JAX_CACHE`` names another folder, or ``off``), unless JAX
  was given a cache folder already;
- keeps every program, however quick to compile (JAX's default leaves out
  those under 1 s: a fresh process then still compiles dozens of small ones,
  a few seconds in all), and keeps entries independent of the folder's path,
  so a folder filled elsewhere (Binder's image build runs
  :mod:`eddy_widgets.cli.warm_cache`) is used as it is;
- bounds the folder to 1 GB (``EDDY_WIDGETS_JAX_CACHE_MAX_SIZE``: bytes, or a
  number with ``KB``, ``MB`` or ``GB``; ``-1`` for no bound). At import the
  least recently used entries are deleted until the folder is within the
  bound. JAX's own eviction while a session runs
  (``jax_compilation_cache_max_size``, active when ``filelock`` is installed)
  is not used: it needs an access-time file beside every entry and fails to
  write any new entry (a warning each time) when one lacks it, as entries
  written without eviction (by an earlier version, or another process) do.

Entries do not depend on a map's values (the data are arguments of the
compiled programs, see :mod:`eddy_widgets.inference.posterior`), so one set-up
on maps of one shape needs one set of entries, of a few hundred kB each (the
main job: ~70 entries, under 1 MB). An entry written on one kind of CPU and
loaded on another is refused by XLA and compiled anew.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import re

#: Default bound of the cache folder [bytes].
DEFAULT_MAX_SIZE = 1024 ** 3

#: Programs quicker to compile than this [s] are not written to the cache
#: (none: the many small ones add up to seconds in a fresh process).
MIN_COMPILE_TIME = 0.0

_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3,
          "TB": 1024 ** 4}


def default_folder() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "eddy_widgets", "jax")


def parse_size(text: str) -> int:
    """``'1GB'``, ``'500 MB'``, ``'123456'`` -> bytes; ``'-1'`` -> -1 (no bound).

    Raises:
        ValueError: anything else, naming the accepted forms.
    """
    match = re.fullmatch(r"\s*(-1|\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", str(text),
                         flags=re.IGNORECASE)
    if match is None or (match.group(1) == "-1" and match.group(2)):
        raise ValueError(f"EDDY_WIDGETS_JAX_CACHE_MAX_SIZE={text!r}: give bytes or a "
                         f"number with KB, MB or GB (e.g. 1GB), or -1 for no bound.")
    if match.group(1) == "-1":
        return -1
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def max_size(environ=None) -> int:
    """The bound of the cache folder [bytes] from the environment (-1: none)."""
    environ = os.environ if environ is None else environ
    text = environ.get("EDDY_WIDGETS_JAX_CACHE_MAX_SIZE")
    return DEFAULT_MAX_SIZE if text in (None, "") else parse_size(text)


def folder_size(folder) -> int:
    """Bytes held by the cache entries in ``folder``."""
    return sum(path.stat().st_size for path in _entries(folder))


def prune(folder, limit: int) -> list[Path]:
    """Delete the least recently used entries of ``folder`` (by access time
    where the file system records it, else by age) until the entries hold at
    most ``limit`` bytes. Returns the deleted files. ``limit < 0``: nothing."""
    if limit < 0:
        return []
    entries = []
    for path in _entries(folder):
        try:
            st = path.stat()
        except OSError:  # deleted by another process meanwhile
            continue
        entries.append((max(st.st_atime, st.st_mtime), st.st_size, path))
    total = sum(size for _, size, _ in entries)
    deleted = []
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        for victim in (path, path.with_name(path.name[:-len("-cache")] + "-atime")):
            try:
                victim.unlink()
            except OSError:
                pass
        total -= size
        deleted.append(path)
    return deleted


def _entries(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.endswith("-cache") and p.is_file()]


def _gpu_plugin_installed() -> bool:
    return any(importlib.util.find_spec(name) is not None
               for name in ("jax_cuda12_plugin", "jax_cuda13_plugin",
                            "jax_rocm60_plugin", "jax_rocm7_plugin"))


def configure(jax_config, environ=None) -> str | None:
    """Set up the persistent cache on ``jax.config`` from the environment
    (see the module doc). Returns the folder in use, or ``None`` (off, or a
    folder set before, which is left as it is)."""
    environ = os.environ if environ is None else environ
    folder = environ.get("EDDY_WIDGETS_JAX_CACHE", default_folder())
    if folder.lower() == "off" or jax_config.jax_compilation_cache_dir:
        return None
    limit = max_size(environ)
    jax_config.update("jax_compilation_cache_dir", folder)
    jax_config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME)
    if not _gpu_plugin_installed():
        # JAX puts the folder of XLA's GPU autotuning cache, a path inside
        # the cache folder, into every key: entries would only be found in
        # the folder they were written to. Off without a GPU (it has no use
        # there), the folder can be moved or copied (e.g. into an image).
        jax_config.update("jax_persistent_cache_enable_xla_caches", "none")
    if limit >= 0:
        try:
            prune(folder, limit)
        except OSError:  # an unreadable folder: JAX reports it when it writes
            pass
    return folder
