"""eddy-widgets-fit: your own map, options or a TOML file, a new folder per run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from eddy_widgets import FitResult, fit_cli, load_example

CONFIG = """
[map]
path = "disk_v0.fits"
uncertainty = "disk_dv0.fits"
FOV = 6.0
downsample = 2

[free]
x0 = 0.0
y0 = 0.0
PA = 312.0
mstar = 2.0
vlsr = 5700.0

[fixed]
inc = 46.7
dist = 101.0
z0 = 0.26
psi = 1.7
r_taper = 3.0
q_taper = 2.0

[priors]
mstar = ["gaussian", 2.0, 0.5]

[mask]
r_min = 0.3
r_max = 2.5

[fit]
mcmc = "emcee"
nwalkers = 12
nburnin = 20
nsteps = 40
seed = 3
"""


@pytest.fixture
def own_map(tmp_path):
    """The kink example copied under other names, with a TOML set-up."""
    example = load_example("kink")
    shutil.copy(example.v0, tmp_path / "disk_v0.fits")
    shutil.copy(example.dv0, tmp_path / "disk_dv0.fits")
    (tmp_path / "fit.toml").write_text(CONFIG)
    return tmp_path


def test_fit_your_own_map_from_a_toml_file(own_map, tmp_path, capsys):
    out = tmp_path / "run"
    code = fit_cli.main(["--config", str(own_map / "fit.toml"), "--out", str(out),
                         "--nsteps", "30", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "disk_v0.fits" in printed and "Verdict:" in printed
    result = FitResult.load(out / "result.npz")
    assert result.names == ("x0", "y0", "PA", "mstar", "vlsr")
    assert result.n_draws("sampling") == 30               # the option won
    assert result.settings["priors"]["mstar"] == [[2.0, 0.5], "gaussian"]
    assert result.settings["params"]["mask"]["r_max"] == 2.5
    assert result.settings["setup"]["FOV"] == 6.0
    assert abs(result.medians()["mstar"] - 2.02) < 0.05
    for name in ("walkers", "corner", "bestfit", "residual", "polar_residual",
                 "rotation_curve"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    # The science products: model and residual on the map's grid, the polar
    # residual (where the kink is), the rotation curve (Keplerian here).
    from astropy.io import fits

    from eddy_widgets import rotationmap

    model = rotationmap(str(out / "v0_model.fits"))
    cube = rotationmap(str(own_map / "disk_v0.fits"), FOV=6.0, downsample=2)
    assert model.data.shape == cube.data.shape
    assert fits.getheader(out / "v0_residual.fits")["BUNIT"] == "m/s"
    polar = np.load(out / "polar_residual.npz")
    kink = load_example("kink").perturbation
    near = (np.abs(polar["r"] - kink["r"]) < 0.1)[None, :] & (
        np.abs(polar["phi"] - kink["phi"]) < 10)[:, None]
    assert np.nanmean(polar["residual"][near]) > 40.0            # m/s, of 100
    curve = np.genfromtxt(out / "rotation_curve.csv", delimiter=",", names=True)
    ring = (curve["r_arcsec"] > 0.8) & (curve["r_arcsec"] < 1.2)
    assert np.nanmedian(curve["v_phi_m_s"][ring]) == pytest.approx(4000, rel=0.1)


def test_an_earlier_run_is_never_overwritten(own_map, tmp_path, capsys, monkeypatch):
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "result.npz").write_bytes(b"keep me")
    code = fit_cli.main(["--config", str(own_map / "fit.toml"), "--out", str(out)])
    assert code == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (out / "result.npz").read_bytes() == b"keep me"
    monkeypatch.chdir(tmp_path)
    first = fit_cli.new_folder(None, "disk_v0.fits")
    second = fit_cli.new_folder(None, "disk_v0.fits")
    assert (first.name, second.name) == ("fit-disk-1", "fit-disk-2")


@pytest.mark.parametrize("argv, words", [
    (["--free", "mstar"], "write NAME=VALUE"),
    (["--free", "mass=2"], "unknown parameter 'mass'"),
    (["--prior", "mstar=flat:1"], "flat:LOW:HIGH"),
    (["--fixed", "inc=steep"], "is not a number"),
])
def test_bad_options_say_what_to_write(own_map, argv, words, capsys):
    code = fit_cli.main(["--config", str(own_map / "fit.toml"), *argv])
    assert code == 2
    assert words in capsys.readouterr().err


def test_bad_toml_names_the_file_and_section(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[maps]\npath = 'x.fits'\n")
    assert fit_cli.main(["--config", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "unknown section 'maps'" in err


BLOCK_WIDGETS = """
import sys
# As if they were not installed: imports fail, find_spec finds nothing.
for name in ('ipywidgets', 'bqplot', 'jupyterlab', 'ipykernel', 'notebook',
             'IPython', 'traitlets', 'jupyter_client'):
    sys.modules[name] = None
from eddy_widgets import fit_cli
sys.exit(fit_cli.main(sys.argv[1:]))
"""


def test_the_cli_needs_no_jupyter(own_map, tmp_path):
    out = tmp_path / "nojupyter"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BLOCK_WIDGETS), "--config",
         str(own_map / "fit.toml"), "--out", str(out), "--nsteps", "10",
         "--no-progress"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "result.npz").exists()


def test_noise_correlated_from_the_command_line(own_map, tmp_path, capsys):
    out = tmp_path / "run"
    code = fit_cli.main(["--config", str(own_map / "fit.toml"), "--out", str(out),
                         "--nsteps", "30", "--no-progress", "--noise", "correlated"])
    assert code == 0
    assert "Noise correlated over the beam" in capsys.readouterr().out
    result = FitResult.load(out / "result.npz")
    assert result.names[-1] == "noise_scale"
    assert result.settings["params"]["mask"]["noise"] == "correlated"
    # The kink example's noise is white: the kernel is the identity.
    assert result.settings["noise"]["correlated_pixels"] < 1.2
