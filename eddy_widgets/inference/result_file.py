"""The result file that :meth:`~eddy_widgets.inference.result.FitResult.save`
writes, read back safely for :meth:`~eddy_widgets.inference.result.FitResult.load`.

A result file is a ``.npz``: a zip of ``.npy`` arrays, one of them ``meta``
(JSON: names, backend, counts, settings). A damaged or tampered file must
give a :class:`ResultFileError` naming the file and the field, never a raw
error, an exhausted memory or a result that is silently wrong. So, in order:

1. Every entry's ``.npy`` header is read from the zip (a few hundred bytes)
   before any array is inflated: an entry holding Python objects is refused
   (nothing is ever unpickled), and the size its header claims must be the
   size the zip's directory gives and one that its compressed data can hold.
2. ``meta`` is read and its schema checked: types, the names, the settings
   that continuing a run needs.
3. The shapes from the headers are checked against it (``(nchains, n,
   ndim)`` chains, ``(nchains, n)`` log-probabilities and statistics, the
   sampler state each backend writes), and their total against the memory
   that is free.
4. Only then are the arrays read (entries of other names never are).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import re
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy

__all__ = ["FORMAT", "PHASES", "ResultFileError", "available_memory",
           "read_result_file"]

#: Version of the file layout written by :meth:`FitResult.save`.
FORMAT = 2

PHASES = ("warmup", "sampling")

#: A backend's sampler state is checked against its ``state_entries``
#: (``Backend.state_entries``: key -> shape); one without them (a backend
#: registered by a user) only for numbers or text. State written as numbered
#: parts (NUTS: numpyro's state as ``nuts_leaf_000``, ``nuts_leaf_001``, ...)
#: must have every part. ``tests/test_result_file.py`` checks the tables
#: against the samplers.
_LEAF = re.compile(r"nuts_leaf_(\d{3})")

#: Deflate cannot shrink data more than about 1032 times: an entry claiming
#: more is lying about its size.
_MAX_DEFLATE_RATIO = 1032
#: Limits no result file comes near.
_MAX_ENTRIES = 4096
_MAX_META_BYTES = 64 << 20

_ADVICE = "Use an earlier copy or a checkpoint."


class ResultFileError(ValueError):
    """A result file that cannot be read: corrupt, truncated, inconsistent
    or tampered with. ``path`` is the file and ``field`` the entry or
    metadata field at fault (``None`` when the file as a whole is)."""

    def __init__(self, message: str, path=None, field: str | None = None):
        super().__init__(message)
        self.path = path
        self.field = field


def _bad(path, field, problem) -> ResultFileError:
    return ResultFileError(f"{path}: inconsistent result file: {problem}. "
                           f"{_ADVICE}", path, field)


def _corrupt(path, err, field=None) -> ResultFileError:
    where = f" (entry '{field}')" if field else ""
    return ResultFileError(f"{path}: the file is corrupt or truncated and cannot "
                           f"be read{where} ({type(err).__name__}: {err}). {_ADVICE}",
                           path, field)


def _size(nbytes: int) -> str:
    if nbytes >= 1e9:
        return f"{nbytes / 1e9:.3g} GB"
    return f"{nbytes / 1e6:.3g} MB"


def available_memory() -> int | None:
    """Bytes of memory free for this process: the system's available memory,
    less where a container (cgroup v2) allows less; ``None`` if unknown."""
    free = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            free = min(free, max(int(limit) - int(used), 0))
    except (OSError, ValueError):
        pass
    return free


# -- Reading --------------------------------------------------------------------


class _Entry:
    """One ``.npy`` entry as its header and the zip's directory describe it."""

    def __init__(self, info: zipfile.ZipInfo, shape: tuple, dtype: np.dtype):
        self.info, self.shape, self.dtype = info, shape, dtype
        self.nbytes = math.prod(shape) * dtype.itemsize


def read_result_file(path) -> tuple[dict, dict]:
    """The metadata and arrays of a result file, checked (see the module's
    notes) before any array is inflated.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``(meta, arrays)``: the metadata as :meth:`FitResult.save` wrote it,
        and the arrays by entry name (``'chain_sampling'``, ...).

    Raises:
        ResultFileError: naming the file and the field at fault.
        OSError: the file cannot be opened (no permission, a folder).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            entries = _headers(zf, path)
            meta = _meta(zf, entries, path)
            wanted = _check(meta, entries, path)
            arrays = {}
            for name in wanted:
                try:
                    with zf.open(entries[name].info) as fh:
                        arrays[name] = npy.read_array(fh, allow_pickle=False)
                except (zipfile.BadZipFile, EOFError, zlib.error, ValueError,
                        OSError) as err:
                    raise _corrupt(path, err, name) from None
    except ResultFileError:
        raise
    except (PermissionError, IsADirectoryError, FileNotFoundError):
        raise
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError,
            NotImplementedError) as err:
        raise _corrupt(path, err) from None
    _check_values(meta, arrays, path)
    return meta, arrays


def _headers(zf: zipfile.ZipFile, path) -> dict[str, _Entry]:
    """Every ``.npy`` entry's header, each checked against the zip's directory."""
    infos = zf.infolist()
    if len(infos) > _MAX_ENTRIES:
        raise _bad(path, None, f"it has {len(infos)} entries; a result file has a "
                               f"few dozen")
    entries = {}
    for info in infos:
        if not info.filename.endswith(".npy"):
            continue
        name = info.filename[:-len(".npy")]
        if name in entries:
            raise _bad(path, name, f"the entry '{name}' appears twice")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad(path, name, f"the entry '{name}' is compressed with method "
                                   f"{info.compress_type}, which numpy never uses")
        try:
            with zf.open(info) as fh:
                version = npy.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = npy.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = npy.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"unknown .npy version {version}")
                offset = fh.tell()
        except (ValueError, EOFError, zlib.error, zipfile.BadZipFile,
                RuntimeError) as err:       # RuntimeError: an encrypted entry
            raise _corrupt(path, err, name) from None
        if dtype.hasobject:
            raise _bad(path, name, f"the entry '{name}' holds Python objects "
                                   f"(pickled data), which a result file never "
                                   f"does; it was not read")
        entry = _Entry(info, tuple(shape), dtype)
        if offset + entry.nbytes != info.file_size:
            raise _bad(path, name, f"the entry '{name}' claims shape {entry.shape} "
                                   f"of {dtype} ({entry.nbytes} bytes) but holds "
                                   f"{info.file_size - offset} bytes")
        if info.compress_type == zipfile.ZIP_STORED:
            plausible = info.file_size == info.compress_size
        else:
            plausible = info.file_size <= _MAX_DEFLATE_RATIO * info.compress_size + 1024
        if not plausible:
            raise _bad(path, name, f"the entry '{name}' claims {info.file_size} bytes "
                                   f"from {info.compress_size} compressed, more than "
                                   f"the compression can give")
        entries[name] = entry
    return entries


def _meta(zf: zipfile.ZipFile, entries: dict, path) -> dict:
    entry = entries.get("meta")
    if entry is None:
        raise ResultFileError(f"{path}: not a result file of eddy_widgets (no 'meta' "
                              f"entry).", path, "meta")
    if entry.dtype.kind != "U" or entry.shape != ():
        raise _bad(path, "meta", f"the entry 'meta' holds {entry.dtype} of shape "
                                 f"{entry.shape}, not one text")
    if entry.nbytes > _MAX_META_BYTES:
        raise _bad(path, "meta", f"the entry 'meta' claims {_size(entry.nbytes)}")
    try:
        with zf.open(entry.info) as fh:
            text = str(npy.read_array(fh, allow_pickle=False)[()])
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as err:
        raise _corrupt(path, err, "meta") from None
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _bad(path, "meta", f"the entry 'meta' is not JSON ({err})") from None
    if not isinstance(meta, dict):
        raise _bad(path, "meta", "the entry 'meta' is not a JSON object")
    return meta


# -- The schema --------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(meta: dict, entries: dict, path) -> list[str]:
    """Check the metadata and the entries' shapes; the entries to read."""
    from .backends import BACKENDS

    def need(key, ok, expected, where=meta, prefix=""):
        field = prefix + key
        if key not in where:
            raise _bad(path, field, f"'{field}' is missing from its metadata")
        if not ok(where[key]):
            raise _bad(path, field, f"'{field}' is {where[key]!r}, expected {expected}")
        return where[key]

    version = meta.get("format", FORMAT)
    if not _is_int(version) or version < 1:
        raise _bad(path, "format", f"'format' is {version!r}, expected a layout "
                                   f"version (1 to {FORMAT})")
    if version > FORMAT:
        raise _bad(path, "format", f"'format' {version} is a layout of a newer "
                                   f"eddy_widgets (this one reads up to {FORMAT}): "
                                   f"upgrade eddy_widgets to read it")
    names = need("names", lambda v: isinstance(v, list) and v and all(
        isinstance(n, str) and n for n in v), "a list of parameter names")
    if len(set(names)) != len(names):
        raise _bad(path, "names", f"'names' {names} repeats a name")
    backend = need("backend", lambda v: isinstance(v, str) and v in BACKENDS,
                   f"one of {', '.join(repr(b) for b in BACKENDS)}")
    nchains = need("nchains", lambda v: _is_int(v) and v >= 1,
                   "a whole number of chains >= 1")
    need("stopped", lambda v: isinstance(v, bool), "true or false")
    for key in ("n_warmup_target", "n_samples_target"):
        need(key, lambda v: _is_int(v) and v >= 0, "a whole number of draws >= 0")
    settings = need("settings", lambda v: isinstance(v, dict), "a JSON object")
    ndim = len(names)

    def shaped(name, shape, kinds, what):
        """The entry's shape, checked against ``shape`` (``None``: any)."""
        if name not in entries:
            raise _bad(path, name, f"'{name}' is missing")
        entry = entries[name]
        if entry.dtype.kind not in kinds:
            raise _bad(path, name, f"'{name}' holds {entry.dtype}, expected {what}")
        if len(entry.shape) != len(shape) or any(
                want is not None and have != want
                for have, want in zip(entry.shape, shape)):
            raise _bad(path, name, f"'{name}' has shape {entry.shape}, expected "
                                   f"{_shape_text(shape)}")
        return entry.shape

    wanted = []
    draws = 0
    for phase in PHASES:
        chain, logp = f"chain_{phase}", f"logp_{phase}"
        shape = shaped(chain, (None, None, None), "f", "floats")
        if shape[0] != nchains or shape[2] != ndim:
            raise _bad(path, chain, f"the {phase} chain ('{chain}') has shape "
                                    f"{shape}, expected ({nchains}, n, {ndim}) for "
                                    f"{nchains} chains and {ndim} free parameters")
        n = shape[1]
        if logp in entries and entries[logp].shape != (nchains, n):
            raise _bad(path, logp, f"{phase} log-probabilities ('{logp}') have shape "
                                   f"{entries[logp].shape} but the chain has "
                                   f"{(nchains, n)}")
        shaped(logp, (nchains, n), "f", "floats")
        stats = [k for k in entries if k.startswith(f"stat_{phase}_")]
        for key in stats:
            shaped(key, (nchains, n), "biuf", "numbers")
        wanted += [chain, logp, *stats]
        draws += n

    state = sorted(k for k in entries if k.startswith("state_"))
    for key in state:
        shaped(key, entries[key].shape, "biufU", "numbers or text")
    spec = BACKENDS[backend]
    if state or ("params" in settings and draws > 0):
        # A run's result: what continuing it needs (cube.resume,
        # session.continue_from), the sampler state included.
        _check_settings(settings, names, spec.unconstrained, path, need)
        sizes = {"n": nchains, "d": ndim}
        declared = getattr(spec, "state_entries", None)
        for key, shape in (declared or {}).items():
            shaped(f"state_{spec.state_prefix}{key}",
                   tuple(sizes.get(s, s) for s in shape), "biufU", "numbers or text")
        parts = f"state_{spec.state_prefix}leaf_"
        count = sum(k.startswith(parts) for k in state)
        for i in range(count):
            if f"{parts}{i:03d}" not in entries:
                raise _bad(path, f"{parts}{i:03d}", f"'{parts}{i:03d}' is missing (the "
                                                    f"sampler state has {count} parts)")
        if not state and (declared or spec.state_prefix):
            raise _bad(path, "state", "the sampler state ('state_...' entries) that "
                                      "continuing the run needs is missing")
    elif "params" in settings:
        _check_settings(settings, names, spec.unconstrained, path, need)
    wanted += state
    if "user_mask" in settings:
        raise _bad(path, "settings.user_mask", "'settings.user_mask' belongs in its "
                                               "own entry 'user_mask'")
    if "user_mask" in entries:
        shaped("user_mask", (None, None), "biuf", "booleans")
        wanted.append("user_mask")

    needed = sum(entries[k].nbytes for k in wanted)
    free = available_memory()
    if free is not None and needed > free:
        largest = max(wanted, key=lambda k: entries[k].nbytes)
        raise _bad(path, largest, f"loading it needs {_size(needed)} of memory (the "
                                  f"largest entry, '{largest}', "
                                  f"{_size(entries[largest].nbytes)}) but only "
                                  f"{_size(free)} is free")
    return wanted


def _shape_text(shape) -> str:
    """A shape as the messages write it, ``n`` for any length."""
    parts = ["n" if s is None else str(s) for s in shape]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


def _check_settings(settings: dict, names: list, unconstrained: bool, path,
                    need) -> None:
    """The settings a run's result holds and continuing it reads."""
    ndim = len(names)

    def numbers(length):
        return lambda v: isinstance(v, list) and len(v) == length and all(
            _is_number(x) for x in v)

    params = need("params", lambda v: isinstance(v, dict), "a JSON object",
                  settings, "settings.")
    free = need("free", lambda v: isinstance(v, list), "a list of names", params,
                "settings.params.")
    if free != names:
        raise _bad(path, "names", f"'names' {names} are not the free parameters of "
                                  f"its set-up, 'settings.params.free' {free}")
    for key in ("fixed", "mask"):
        need(key, lambda v: isinstance(v, dict), "a JSON object", params,
             "settings.params.")
    need("start", numbers(ndim), f"a list of {ndim} numbers (one per free "
                                 f"parameter)", settings, "settings.")
    need("options", lambda v: isinstance(v, dict), "a JSON object", settings,
         "settings.")
    if unconstrained:
        for key in ("standardizer_centre", "standardizer_scale"):
            need(key, numbers(ndim), f"a list of {ndim} numbers", settings,
                 "settings.")
    for key in ("optimizer", "fit_quality"):
        if key in settings:
            need(key, lambda v: v is None or isinstance(v, dict),
                 "a JSON object or null", settings, "settings.")
    quality = settings.get("fit_quality") or {}
    if "reduced_chi2" in quality:
        need("reduced_chi2", lambda v: v is None or _is_number(v), "a number",
             quality, "settings.fit_quality.")
    priors = settings.get("priors", {})
    if not isinstance(priors, dict):
        raise _bad(path, "settings.priors", f"'settings.priors' is {priors!r}, "
                                            f"expected a JSON object")
    for name, prior in priors.items():
        if not (isinstance(prior, list) and len(prior) == 2
                and isinstance(prior[1], str) and isinstance(prior[0], list)
                and all(_is_number(x) for x in prior[0])):
            raise _bad(path, f"settings.priors.{name}",
                       f"'settings.priors.{name}' is {prior!r}, expected "
                       f"[[arguments], kind]")


def _check_values(meta: dict, arrays: dict, path) -> None:
    """What only the values show."""
    for phase in PHASES:
        if not np.all(np.isfinite(arrays[f"chain_{phase}"])):
            raise _bad(path, f"chain_{phase}",
                       f"the {phase} chain ('chain_{phase}') holds non-finite values")
