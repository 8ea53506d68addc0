"""eddy-widgets-fit's set-up: every TOML key and value checked, every mistake
one ``eddy-widgets-fit: ...`` line naming the file, section, key and value,
and nothing created before the set-up is known to work."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from test_fit_cli import CONFIG

from eddy_widgets import FitResult, fit_cli, load_example


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """The kink example as ``disk_v0.fits`` with the TOML set-up of
    test_fit_cli, in a folder of its own; runs in an empty working
    directory so that a default output folder would show."""
    data = tmp_path / "data"
    data.mkdir()
    example = load_example("kink")
    shutil.copy(example.v0, data / "disk_v0.fits")
    shutil.copy(example.dv0, data / "disk_dv0.fits")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return data


def fails(setup, capsys, toml: str, *argv) -> str:
    """Run with ``toml`` as the set-up; assert the one-line refusal with
    exit code 2 and that nothing was created. Returns the line."""
    (setup / "fit.toml").write_text(toml)
    before = sorted(os.listdir(setup))
    code = fit_cli.main(["--config", str(setup / "fit.toml"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("eddy-widgets-fit: ") and err.count("\n") == 1, err
    assert os.listdir(".") == [], "an output folder was created"
    assert sorted(os.listdir(setup)) == before
    return err


def edited(old: str, new: str) -> str:
    assert old in CONFIG
    return CONFIG.replace(old, new, 1)


# -- Unknown keys, with a did-you-mean (issue 19, item 7) ---------------------------


@pytest.mark.parametrize("old, new, words", [
    ("FOV = 6.0", "fov = 6.0",
     ["fit.toml", "[map]", "'fov'", "did you mean 'FOV'?",
      "path, uncertainty, FOV, downsample"]),
    ("downsample = 2", "down_sample = 8",
     ["[map]", "'down_sample'", "did you mean 'downsample'?"]),
    ("r_min = 0.3", "rmin = 0.3", ["[mask]", "'rmin'", "did you mean 'r_min'?"]),
    ("nsteps = 40", "nstep = 40",
     ["[fit]", "'nstep'", "did you mean 'nsteps'?", "checkpoint_interval"]),
    ("mstar = 2.0", "mstr = 2.0", ["[free]", "'mstr'", "did you mean 'mstar'?"]),
    ("inc = 46.7", "incl = 46.7", ["[fixed]", "'incl'", "did you mean 'inc'?"]),
    ('mstar = ["gaussian"', 'Mstar = ["gaussian"',
     ["[priors]", "'Mstar'", "did you mean 'mstar'?"]),
    ("[mask]", "[masks]", ["unknown section 'masks'", "did you mean 'mask'?"]),
])
def test_unknown_keys_are_refused_with_a_suggestion(setup, capsys, old, new, words):
    err = fails(setup, capsys, edited(old, new))
    for word in words:
        assert word in err


def test_unknown_parameter_on_the_command_line(setup, capsys):
    err = fails(setup, capsys, CONFIG, "--free", "mstr=2")
    assert "--free mstr=2" in err and "did you mean 'mstar'?" in err


# -- Values of the wrong type (item 12) ---------------------------------------------


@pytest.mark.parametrize("old, new, words", [
    ("mstar = 2.0", 'mstar = "two"', ['[free] mstar = "two"', "a number"]),
    ("r_min = 0.3", 'r_min = "0.2"', ['[mask] r_min = "0.2"', "a number"]),
    ("inc = 46.7", "inc = [46.7]", ["[fixed] inc = [46.7]", "a number"]),
    ('path = "disk_v0.fits"', "path = 5", ["[map] path = 5", "file name"]),
    ("downsample = 2", 'downsample = "two"', ['[map] downsample = "two"', "beam"]),
    ("FOV = 6.0", "FOV = -6.0", ["[map] FOV = -6.0", "positive"]),
    ("nsteps = 40", "nsteps = 40.5", ["[fit] nsteps = 40.5", "integer"]),
    ("seed = 3", 'seed = "x"', ['[fit] seed = "x"', "integer"]),
    ('mcmc = "emcee"', 'mcmc = "emce"', ['[fit] mcmc = "emce"', "did you mean 'emcee'?"]),
    ("seed = 3", 'seed = 3\ncheckpoint_interval = "x"',
     ['[fit] checkpoint_interval = "x"', "seconds"]),
    ('["gaussian", 2.0, 0.5]', '["gauss", 2.0, 0.5]',
     ['[priors] mstar = ["gauss", 2.0, 0.5]', '["flat", low, high]']),
    ('["gaussian", 2.0, 0.5]', '["gaussian", "2.0", 0.5]',
     ['[priors] mstar = ["gaussian", "2.0", 0.5]', '["gaussian", mean, sigma]']),
    ("r_max = 2.5", 'r_max = 2.5\nbeam = "yes"', ['[mask] beam = "yes"', "true or false"]),
    ("r_max = 2.5", 'r_max = 2.5\nnoise = "white"', ['[mask] noise = "white"',
                                                     '"correlated"']),
    ("[fixed]\n", "[fixed]\nmstar = 2.5\n", ["mstar", "[free]", "[fixed]"]),
    ("[priors]\n", "[priors]\nx0 = 5\n", ["[priors] x0 = 5"]),
    ("x0 = 0.0", "x0 = 5.0", ["x0 = 5", "outside its prior", "--prior x0="]),
    ("r_min = 0.3", "r_min = 30.0", ["r_min (30)", "r_max (2.5)"]),
    ("r_min = 0.3\nr_max = 2.5", "r_min = 8.0\nr_max = 9.0", ["No pixel is left"]),
    ('path = "disk_v0.fits"', 'path = "nothing_v0.fits"', ["not found",
                                                            "nothing_v0.fits"]),
])
def test_wrong_values_are_one_line_and_create_nothing(setup, capsys, old, new, words):
    err = fails(setup, capsys, edited(old, new))
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("argv, words", [
    (["--downsample", "abc"], ["--downsample abc", "beam"]),
    (["--fov", "0"], ["--fov 0", "positive"]),
    (["--free", "mstar=nan"], ["--free mstar=nan", "a number"]),
    (["--nsteps", "-3"], ["nsteps", "-3"]),
    (["--checkpoint-interval", "-1"], ["--checkpoint-interval -1", "seconds"]),
    (["--prior", "mstar=normal:2:1"], ["--prior mstar=normal:2:1", "flat:LOW:HIGH"]),
])
def test_wrong_options_are_one_line_and_create_nothing(setup, capsys, argv, words):
    err = fails(setup, capsys, CONFIG, *argv)
    for word in words:
        assert word in err, err


def test_a_folder_named_like_a_map_is_called_a_folder(setup, capsys):
    (setup / "x_v0.fits").mkdir()
    err = fails(setup, capsys, edited('path = "disk_v0.fits"', 'path = "x_v0.fits"'))
    assert "x_v0.fits" in err and "is a folder" in err and "not found" not in err


# -- The inclination (item 10, the command line's part) -------------------------------


def test_the_inclination_is_required(setup, capsys):
    err = fails(setup, capsys, edited("inc = 46.7\n", ""))
    assert "inc" in err and "--fixed inc=" in err and "face-on" in err
    err = fails(setup, capsys, CONFIG, "--fixed", "inc=0")
    assert "inc = 0" in err and "face-on" in err


# -- [fit] checkpoint_interval (item 2) ----------------------------------------------


def test_toml_checkpoint_interval_wins_unless_the_option_is_given(tmp_path):
    (tmp_path / "fit.toml").write_text(edited("seed = 3", "seed = 3\n"
                                                          "checkpoint_interval = 1.5"))
    parser = fit_cli.build_parser()
    config = fit_cli.merge(parser.parse_args(["--config", str(tmp_path / "fit.toml")]))
    assert config["fit"]["checkpoint_interval"] == 1.5
    config = fit_cli.merge(parser.parse_args(["--config", str(tmp_path / "fit.toml"),
                                              "--checkpoint-interval", "30"]))
    assert config["fit"]["checkpoint_interval"] == 30.0


def test_toml_checkpoint_interval_survives_kill_9(setup, tmp_path):
    """A real process killed with SIGKILL soon after sampling starts has
    written its checkpoint at the TOML's interval (0.2 s), not the
    command line's default (30 s)."""
    toml = edited("nsteps = 40", "nsteps = 1000000").replace(
        "seed = 3", "seed = 3\ncheckpoint_interval = 0.2")
    (setup / "fit.toml").write_text(toml)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "eddy_widgets.cli.fit", "--config",
         str(setup / "fit.toml"), "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "MPLBACKEND": "Agg"})
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(b) for b in
                                              iter(lambda: proc.stderr.read1(256), b"")],
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while b"draw" not in err:            # the progress bar: sampling started
            assert proc.poll() is None, bytes(err).decode()[-2000:]
            assert time.monotonic() < deadline, "sampling never started"
            time.sleep(0.05)
        started = time.monotonic()
        while not (out / "result.npz").exists():
            assert time.monotonic() - started < 10, "no checkpoint 10 s into sampling"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    result = FitResult.load(out / "result.npz")
    assert result.stopped and result.n_draws("warmup") > 0
