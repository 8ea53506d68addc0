"""Files written whole or not at all (:mod:`eddy_widgets.atomic`): the
temporary files of killed saves are cleaned up, errors name the file being
written, and a pair of files is written both or neither (issue 19, item 5)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from eddy_widgets import FitResult, atomic
from eddy_widgets.atomic import temporary_name, write_atomic, write_group
from eddy_widgets.inference.samplers import Chunk


@pytest.fixture
def result():
    """A small result made by hand (no fit)."""
    made = FitResult(("mstar", "vlsr"), "emcee", 4)
    rng = np.random.default_rng(0)
    made.append(Chunk("sampling", 0, rng.normal(size=(4, 50, 2)), np.zeros((4, 50))))
    return made


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- kill -9 during a save ----------------------------------------------------------


def test_a_save_killed_with_sigkill_leaves_a_temporary_the_next_save_removes(
        result, tmp_path):
    source = result.save(tmp_path / "source.npz")
    folder = tmp_path / "out"
    folder.mkdir()
    flag = tmp_path / "paused"
    # The writer stops at the test-only pause point, after its temporary file
    # is written and before the rename, until the flag file is removed.
    script = (f"from eddy_widgets import FitResult\n"
              f"FitResult.load({str(source)!r}).save({str(folder / 'fit.npz')!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE,
                            env={**os.environ, atomic.PAUSE_VARIABLE: str(flag)})
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the save never reached the pause"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stale = _temporaries(folder)
    assert len(stale) == 1 and stale[0].startswith(f".fit.npz.{proc.pid}.")
    assert (folder / stale[0]).stat().st_size > 0
    assert not (folder / "fit.npz").exists()

    # A temporary of a live process (this one, another thread) is kept.
    live = temporary_name(folder / "other.npz", os.getpid(), thread=1)
    live.write_bytes(b"being written")
    (folder / ".notes.1.2.txt").write_text("not ours")
    result.save(folder / "next.npz")
    assert sorted(os.listdir(folder)) == sorted(
        [".notes.1.2.txt", live.name, "next.npz"])


def test_temporaries_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    stale = [temporary_name(tmp_path / "a.fits", pid),
             temporary_name(tmp_path / "b.npz", pid, thread=7),
             tmp_path / f".c.npz.{pid}.140000.tmp"]       # the old naming
    # Another machine's (a shared folder): its process may be alive there.
    elsewhere = tmp_path / f".e.npz.{pid}.9@another-machine.tmp"
    for path in [*stale, elsewhere]:
        path.write_bytes(b"x" * 1000)
    write_atomic(tmp_path / "d.txt", lambda fh: fh.write(b"d"))
    assert sorted(os.listdir(tmp_path)) == [elsewhere.name, "d.txt"]


# -- Errors name the file being written ---------------------------------------------------


@contextlib.contextmanager
def _read_only_folder():
    """A real read-only folder (mode 0o555), and whether this process writes
    through it. Run as root (which writes anywhere), the writes in the block
    are made with the effective user id of ``nobody``, for whom the folder is
    read-only; the folder lies outside pytest's root-only temporary folder so
    that ``nobody`` can reach it."""
    base = Path(tempfile.mkdtemp(prefix="eddy_widgets_read_only_"))
    folder = base / "read_only"
    folder.mkdir()
    try:
        os.chmod(base, 0o755)
        os.chmod(folder, 0o555)
        if os.geteuid() != 0:
            if os.access(folder, os.W_OK):
                pytest.skip("chmod 0o555 does not make a folder read-only here")
            yield folder
            return
        try:
            os.seteuid(65534)
        except OSError:
            pytest.skip("run as root, and unable to act as another user")
        try:
            writable = os.access(folder, os.W_OK, effective_ids=True)
            if not writable:
                yield folder
        finally:
            os.seteuid(0)
        if writable:
            pytest.skip("the read-only folder is writable as nobody")
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(base)


def test_a_save_into_a_read_only_folder_names_the_result_file(result):
    with _read_only_folder() as folder:
        target = folder / "fit.npz"
        with pytest.raises(PermissionError) as err:
            result.save(target)
        assert not target.exists() and os.listdir(folder) == []
    assert err.value.filename == str(target)
    assert str(target) in str(err.value) and ".tmp" not in str(err.value)


def test_a_save_where_a_file_stands_for_the_folder_names_the_result_file(result,
                                                                       tmp_path):
    (tmp_path / "out").write_text("a file, not a folder")
    target = tmp_path / "out" / "fit.npz"
    with pytest.raises(NotADirectoryError) as err:
        result.save(target)
    assert err.value.filename == str(target) and ".tmp" not in str(err.value)


def test_a_full_disk_names_the_file_being_written(tmp_path):
    def full_disk(fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"No space left on device: '.*model.fits'") as err:
        write_atomic(tmp_path / "model.fits", full_disk)
    assert err.value.errno == errno.ENOSPC and ".tmp" not in str(err.value)
    assert os.listdir(tmp_path) == []


# -- Pairs: both or neither ------------------------------------------------------------


def test_a_group_whose_second_file_fails_writes_neither(tmp_path):
    def full_disk(fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    first, second = tmp_path / "model.fits", tmp_path / "residual.fits"
    with pytest.raises(OSError, match="residual.fits"):
        write_group([(first, lambda fh: fh.write(b"model")), (second, full_disk)])
    assert os.listdir(tmp_path) == []
    # An earlier pair is left as it was.
    write_group([(first, lambda fh: fh.write(b"old model")),
                 (second, lambda fh: fh.write(b"old residual"))])
    with pytest.raises(OSError, match="residual.fits"):
        write_group([(first, lambda fh: fh.write(b"model")), (second, full_disk)])
    assert first.read_bytes() == b"old model"
    assert second.read_bytes() == b"old residual"
    assert sorted(os.listdir(tmp_path)) == ["model.fits", "residual.fits"]


def test_save_model_writes_the_model_and_the_residual_or_neither(cube, tmp_path):
    model = np.zeros(cube.map.shape)
    model_path = tmp_path / "disk_model.fits"
    residual_path = tmp_path / "disk_residual.fits"
    # The residual cannot be written: a folder holds its name. Its temporary
    # file is written, the rename fails.
    residual_path.mkdir()
    with pytest.raises(IsADirectoryError) as err:
        cube.save_model(model=model, filename=model_path)
    assert err.value.filename == str(residual_path)
    assert not model_path.exists() and residual_path.is_dir()
    assert sorted(os.listdir(tmp_path)) == ["disk_residual.fits"]
    # An earlier model is kept as it was.
    model_path.write_bytes(b"earlier model")
    with pytest.raises(IsADirectoryError):
        cube.save_model(model=model, filename=model_path)
    assert model_path.read_bytes() == b"earlier model"
    assert sorted(os.listdir(tmp_path)) == ["disk_model.fits", "disk_residual.fits"]
    residual_path.rmdir()
    assert cube.save_model(model=model, filename=model_path) == (model_path,
                                                                 residual_path)
