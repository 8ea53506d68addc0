"""docs/astro_eddy_compatibility.md lists every public method and attribute of
astro-eddy 3.2's rotationmap; what it says is here, is here."""

from __future__ import annotations

from pathlib import Path
import re

import pytest

from eddy_widgets import load_example, rotationmap

DOC = Path(__file__).resolve().parents[1] / "docs" / "astro_eddy_compatibility.md"

#: astro-eddy 3.2.0's public rotationmap methods (inspect.getmembers of
#: eddy.rotationmap, callables without a leading underscore).
ASTRO_EDDY_METHODS = """
Tb_to_jybeam Tb_to_jybeam_RJ backend background_residual calculate_structure_function
calculate_structure_function_stack cartesian_deprojection clip_cube_spatial cmap
compute_structure_function compute_structure_function_stack deproject_model_residuals
disk_coords disk_to_sky downsample_cube evaluate_models evaluate_models_vortex
extent_au find_maxima find_minima fit_annuli fit_map force_relative_offset_axes
get_annulus get_mask jybeam_to_Tb jybeam_to_Tb_RJ mirror_residual noise_realization
plot_beam plot_data plot_disk_axes plot_maxima plot_model plot_model_residual
plot_model_surface plot_model_surface_2D plot_surface plot_velocity_profiles
polar_deprojection print_beam print_default_prior radial_profile radial_sampling
remove_hot_pixels restframe_frequency_to_velocity save_model set_SHO_prior set_prior
sky_to_disk spectral_resolution to_fits velocity_to_restframe_frequency
verify_params_dictionary
""".split()

HERE = ("this module", "after-fit mixin", "figures mixin")


def _rows():
    rows = []
    for line in DOC.read_text().splitlines():
        line = line.replace("\\|", "/")          # escaped pipes inside a cell
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            names = re.findall(r"`([A-Za-z_0-9]+)`", cells[0])
            rows += [(name, cells[2], cells[3]) for name in names]
    return rows


def test_every_astro_eddy_method_is_in_the_table():
    listed = {name for name, _, _ in _rows()}
    missing = sorted(set(ASTRO_EDDY_METHODS) - listed)
    assert not missing, f"not in {DOC.name}: {missing}"


@pytest.fixture(scope="module")
def cube():
    return rotationmap(load_example().v0, 8.0, None, 4)


def test_what_the_table_says_is_here_is_here(cube):
    rows = _rows()
    here = [name for name, where, _ in rows if where in HERE]
    assert len(here) > 50
    absent = [name for name in here if not hasattr(cube, name)]
    assert not absent, f"listed as implemented but missing: {absent}"
    for name, where, why in rows:
        if where not in HERE:
            assert where in ("not implemented", "not applicable"), (name, where)
            assert len(why) > 10, f"{name}: say why it is {where}"
