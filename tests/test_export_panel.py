"""The export panel on state: disabled with its reason before a result; after
a short real fit on the bundled example it writes the figures, the model and
residual FITS (with BUNIT and the map's WCS), the result file and the script,
and lists the paths; failures show in words."""

from __future__ import annotations

import errno

from astropy.io import fits
from astropy.wcs import WCS
import numpy as np
import pytest

from eddy_widgets.analysis.export import map_header
from eddy_widgets.inference.priors import Prior
from eddy_widgets.inference.result import FitResult
from eddy_widgets.session import FitSession
from eddy_widgets.widgets.export import EXPORT_FOLDER, ExportPanel

WAIT = 120


# ``example`` and ``cube`` (FOV 4 arcsec, every 8th pixel) come from conftest.py.
pytestmark = pytest.mark.usefixtures("in_tmp_path")


def quick_session(cube, example) -> FitSession:
    t = example.truths
    return FitSession.from_fit_kwargs(
        cube=cube, p0=[t["PA"], 2.0, t["vlsr"]],
        params={"PA": 0, "mstar": 1, "vlsr": 2, "inc": t["inc"], "dist": t["dist"],
                "x0": t["x0"], "y0": t["y0"]},
        priors={"PA": Prior("flat", 300.0, 330.0)}, optimize=False, nwalkers=8,
        nburnin=10, nsteps=20, mcmc="emcee", mcmc_kwargs={"seed": 2})


@pytest.fixture(scope="module")
def finished(cube, example, tmp_path_factory):
    import os

    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("run"))
    try:
        session = quick_session(cube, example)
        session.start()
        assert session.wait(WAIT) and session.status == "done", session.error
    finally:
        os.chdir(here)
    return session


def test_disabled_with_a_reason_before_a_result(cube, example):
    panel = ExportPanel(quick_session(cube, example))
    assert panel.export.disabled
    assert "run a fit first" in panel.reason.value
    assert panel.write() == []
    assert "Nothing exported" in panel.error.value
    # The default folder is a new one under eddy_widgets_export/.
    assert panel.folder.value.startswith(EXPORT_FOLDER + "/")


def test_export_writes_every_product(finished, cube, tmp_path):
    panel = ExportPanel(finished)
    assert not panel.export.disabled and panel.reason.value == ""
    folder = panel.folder.value
    panel.figure_format.value = "PDF"
    panel.export.click()
    assert panel.error.value == ""
    names = {p.split("/")[-1] for p in panel.paths}
    assert {"result.npz", "walkers.pdf", "corner.pdf", "bestfit.pdf", "residual.pdf",
            "polar_residual.pdf", "rotation_curve.pdf", "v0_model.fits",
            "v0_residual.fits", "fit_script.py"} <= names
    assert not any(n.endswith(".png") for n in names)
    for path in panel.paths:
        assert (tmp_path / path).exists()
        assert path in panel.written.value
    # FITS: BUNIT and the map's WCS.
    # The map's WCS: its grid in memory (FOV 4", every 8th pixel of the file).
    map_wcs = WCS(map_header(cube.map)).celestial
    file_wcs = WCS(fits.getheader(cube.map.path)).celestial
    for name in ("v0_model.fits", "v0_residual.fits"):
        with fits.open(tmp_path / folder / name) as hdul:
            header, data = hdul[0].header, hdul[0].data
        assert header["BUNIT"] == "m/s"
        assert data.shape == cube.data.shape
        wcs = WCS(header).celestial
        assert wcs.has_celestial
        np.testing.assert_allclose(wcs.pixel_scale_matrix, map_wcs.pixel_scale_matrix)
        np.testing.assert_allclose(wcs.wcs.crval, map_wcs.wcs.crval)
        np.testing.assert_allclose(wcs.wcs.crpix, map_wcs.wcs.crpix)
        np.testing.assert_allclose(np.abs(np.diag(wcs.pixel_scale_matrix)),
                                   8 * np.abs(np.diag(file_wcs.pixel_scale_matrix)))
    # The result file loads; the script compiles and names the map as loaded.
    loaded = FitResult.load(tmp_path / folder / "result.npz")
    assert loaded.names == finished.result.names
    script = (tmp_path / folder / "fit_script.py").read_text()
    compile(script, "fit_script.py", "exec")
    assert "FOV=4.0, downsample=8" in script
    # The next export would go into a new folder: nothing is overwritten.
    assert panel.folder.value != folder


def test_only_the_chosen_products_and_png(finished, tmp_path):
    panel = ExportPanel(finished)
    panel.fits.value = panel.script.value = panel.result_file.value = False
    panel.figures.value = False
    assert panel.export.disabled and "at least one" in panel.reason.value
    panel.result_file.value = True
    panel.export.click()
    assert [p.split("/")[-1] for p in panel.paths] == ["result.npz"]


def test_existing_folder_and_unwritable_folder_in_words(finished, tmp_path):
    panel = ExportPanel(finished)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "old.txt").write_text("keep me")
    panel.folder.value = "taken"
    panel.export.click()
    assert "exists and is not empty" in panel.error.value
    assert "#c62828" in panel.error.value and panel.paths == []
    (tmp_path / "a_file").write_text("")
    panel.folder.value = "a_file/export"
    panel.export.click()
    assert "Cannot write into a_file/export" in panel.error.value


@pytest.mark.parametrize("code, strerror, said", [
    (errno.EACCES, "Permission denied", "permission denied"),
    (errno.ENOSPC, "No space left on device", "The disk is full")])
def test_permission_and_full_disk_in_words(finished, monkeypatch, code, strerror,
                                           said):
    panel = ExportPanel(finished)
    panel.figures.value = panel.fits.value = panel.script.value = False

    def fail(self, path):
        raise OSError(code, strerror, str(path))

    monkeypatch.setattr(FitResult, "save", fail)
    panel.folder.value = "out"
    panel.export.click()
    assert said in panel.error.value
    assert panel.written.value == ""


# -- Issue 21: a sign of work while exporting (11), a list that names its run
# -- and gives way to a later run (2) ----------------------------------------------

def test_export_is_disabled_and_shows_its_progress_while_it_writes(finished,
                                                                   monkeypatch):
    import eddy_widgets.widgets.export as export_module

    panel = ExportPanel(finished)
    seen = []
    real = export_module.write_products

    def watched(*args, **kwargs):
        seen.append((panel.export.disabled, panel.exporting,
                     panel.progress.layout.display, panel.progress.description,
                     panel.progress.value, panel.export.description))
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "write_products", watched)
    panel.figures.value = False          # quick: result, FITS and script
    panel.export.click()
    assert seen, "write_products was not called"
    for disabled, exporting, display, words, _, label in seen:
        assert disabled and exporting and display is None
        assert words.startswith("Exporting: ") and label == "Exporting..."
    assert [value for *_, value, _ in seen] == sorted(value for *_, value, _ in seen)
    assert "writing the result file (1 of 3)" in seen[0][3]
    # Done: enabled again, no progress, the files listed with their run.
    assert not panel.export.disabled and not panel.exporting
    assert panel.progress.layout.display == "none" and panel.export.description == "Export"
    assert "Wrote 4 files of run 1 (emcee, 8 walkers" in panel.written.value


def test_the_list_of_files_gives_way_when_a_later_run_starts(cube, example, tmp_path,
                                                            monkeypatch):
    import threading

    session = quick_session(cube, example)
    session.start()
    assert session.wait(WAIT) and session.status == "done", session.error
    panel = ExportPanel(session)
    panel.figures.value = False
    panel.write()
    assert "Wrote 4 files of run 1" in panel.written.value
    go = threading.Event()

    def held(*args, **kwargs):
        go.wait(30)
        raise RuntimeError("the map went away")

    monkeypatch.setattr(type(session), "_work_new", held)
    session.start()
    try:
        text = panel.written.value
        assert "Wrote" not in text and "<li>" not in text
        assert "eddy-export-earlier" in text and "of run 1 (emcee" in text
    finally:
        go.set()
    assert session.wait(30) and session.status == "error"
    assert "Wrote" not in panel.written.value
