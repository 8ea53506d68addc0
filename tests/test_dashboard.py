"""The dashboard's layout on state: what sits above the tabs, which tab a run
opens, and that a person's own choice of tab is kept."""

from __future__ import annotations

import pytest

from eddy_widgets.data import load_example
from eddy_widgets.rotationmap import rotationmap
from eddy_widgets.widgets import FitDashboard
from eddy_widgets.widgets.dashboard import TABS


@pytest.fixture(scope="module")
def cube():
    return rotationmap(load_example().v0, FOV=4.0, downsample=8)


def _open(dash) -> str:
    return dash.tabs.titles[dash.tabs.selected_index]


def test_status_and_progress_sit_above_the_tabs(cube):
    dash = FitDashboard(cube)
    header, tabs = dash.children
    assert tabs is dash.tabs and list(tabs.titles) == list(TABS)
    # Run, the status line and the progress line are in the header, so that
    # they show whichever tab is open; the chains tab holds the traces only.
    assert dash.controls in header.children and dash.chains.progress in header.children
    assert dash.chains.progress not in dash.chains.children
    assert dash.chains.grid in dash.chains.children
    assert tabs.children[TABS.index("Chains")] is dash.chains
    assert tabs.children[TABS.index("Results")] is dash.results
    assert tabs.children[TABS.index("Maps")] is dash.maps
    assert tabs.children[TABS.index("Export")] is dash.export
    for panel in (dash.maps, dash.export):
        assert panel.session is dash.session
    setup = tabs.children[TABS.index("Set-up")]
    assert dash.editor in setup.children and dash.backend in setup.children
    assert _open(dash) == "Set-up"


def test_run_opens_the_chains_and_its_end_the_results(cube):
    dash = FitDashboard(cube)
    s = dash.session
    s.status = "optimising"
    assert _open(dash) == "Chains"
    s.status = "running"
    assert _open(dash) == "Chains"
    s.status = "done"
    assert _open(dash) == "Results"
    # Continue from the results: the chains again, then the results.
    s.status = "running"
    assert _open(dash) == "Chains"
    s.status = "stopping"
    assert _open(dash) == "Chains"
    s.status = "stopped"
    assert _open(dash) == "Results"


def test_a_tab_chosen_during_the_run_is_kept(cube):
    dash = FitDashboard(cube)
    s = dash.session
    s.status = "optimising"
    dash.show("Set-up")
    s.status = "running"
    s.status = "done"
    assert _open(dash) == "Set-up"
    # A failed run leaves the tab alone (the error is in the header).
    dash.show("Chains")
    s.status = "optimising"
    s.status = "error"
    assert _open(dash) == "Chains"


def test_traces_keep_no_more_points_than_a_panel_has_pixels(cube):
    """Three columns at ~950 px: ~300 px a panel; 400 points per line are
    enough, and half of what the browser and a stored notebook carried."""
    dash = FitDashboard(cube)
    assert dash.chains.columns == 3 and dash.chains.max_points == 400


def test_a_correlated_run_shows_its_noise_in_the_results(cube, tmp_path, monkeypatch):
    import html

    from eddy_widgets.inference.noise import noise_sentence

    monkeypatch.chdir(tmp_path)
    dash = FitDashboard.from_fit_kwargs(
        cube, p0=[312.0, 2.0, 5763.0],
        params={"PA": 0, "mstar": 1, "vlsr": 2, "inc": 46.7, "dist": 101.0},
        optimize=False, nwalkers=8, nburnin=5, nsteps=15, mcmc="emcee",
        mcmc_kwargs={"seed": 3})
    results = dash.results
    assert results.noise.value == "" and results.noise.layout.display == "none"
    dash.editor.noise.value = "correlated"
    s = dash.session
    s.start()
    assert s.wait(60) and s.status == "done", s.error
    assert _open(dash) == "Results" and results.note.value == ""
    sentence = noise_sentence(s.result.settings["noise"])
    assert html.unescape(results.noise.value).count(sentence) == 1
    assert results.noise.layout.display is None
    assert "<b>noise_scale</b>" in results.table.value
    assert "against dv0; noise_scale takes up its level" in results.table.value
    # An independent run after it: no noise line, no noise_scale row.
    dash.editor.noise.value = "independent"
    s.start()
    assert s.wait(60) and s.status == "done", s.error
    assert "noise" not in s.result.settings and s.result.names == ("PA", "mstar", "vlsr")
    assert results.noise.value == "" and results.noise.layout.display == "none"
    assert "noise_scale" not in results.table.value
    assert "(want near 1)" in results.table.value


# -- Issue 21: one table of NUTS defaults (7), a header that stays in view (8),
# -- a sentence where the widget cannot be drawn (12) ---------------------------

def test_the_dashboard_and_the_command_line_take_nuts_counts_from_one_table(cube):
    from eddy_widgets.cli import fit as cli_fit
    from eddy_widgets.data.example import DEFAULT_COUNTS, RUN_DEFAULTS
    from eddy_widgets.inference.backends import BACKENDS

    nuts = RUN_DEFAULTS["numpyro"]
    assert tuple(nuts.values()) == DEFAULT_COUNTS["numpyro"]
    # Converges on the bundled example (measured): more than one chain, so
    # that R-hat compares chains, and far more than fit_map's 1 x (300 + 100).
    assert nuts["nwalkers"] >= 2 and nuts["nsteps"] >= 500
    assert BACKENDS["numpyro"].count_defaults == {"nwalkers": 1, "nburnin": 300,
                                                  "nsteps": 100}   # fit_map's own
    dash = FitDashboard(cube)
    assert dash.session.counts_of("numpyro") == nuts
    dash.backend.backend.value = "numpyro"
    assert [w.value for w in dash.backend.counts.values()] == list(nuts.values())
    # A dashboard made from an emcee call: its NUTS counts from the table too;
    # a NUTS call keeps its own counts, as fit_map would run them.
    emcee = FitDashboard.from_fit_kwargs(cube, p0=[2.0], params={"mstar": 0, "inc": 46.7},
                                         mcmc="emcee", nwalkers=8)
    assert emcee.session.counts_of("numpyro") == nuts
    assert emcee.session.counts_of("emcee")["nwalkers"] == 8
    call = FitDashboard.from_fit_kwargs(cube, p0=[2.0], params={"mstar": 0, "inc": 46.7},
                                        mcmc="numpyro", nwalkers=3, nburnin=40, nsteps=50)
    assert call.session.counts_of("numpyro") == {"nwalkers": 3, "nburnin": 40,
                                                 "nsteps": 50}
    # The command line: the example with --mcmc numpyro, and any map with NUTS
    # and no counts given.
    config = cli_fit.example_config("numpyro")
    assert config["fit"]["mcmc"] == "numpyro" and "moves" not in config["fit"]
    assert {k: config["fit"][k] for k in nuts} == nuts
    setup = cli_fit.prepare(config | {"fit": {"mcmc": "numpyro"}})
    assert setup.counts == nuts


def test_the_header_stays_in_view_and_the_editor_flows_into_columns(cube):
    dash = FitDashboard(cube)
    header = dash.children[0]
    assert header is dash.header and "eddy-header" in header._dom_classes
    assert dash.controls in header.children and dash.chains.progress in header.children
    style = dash.stylesheet.value
    assert style.startswith("<style>") and dash.stylesheet.layout.display == "none"
    assert "position: sticky" in style and ".eddy-header" in style
    assert "overflow: visible" in style          # nothing between clips it
    assert "eddy-editor" in dash.editor._dom_classes and "columns: 720px 2" in style
    # The mask fields show "0.208" and "no limit" whole (cut at 150 px).
    assert all(int(getattr(dash.editor, name).layout.width.rstrip("px")) >= 200
               for name in ("r_min", "r_max", "phi_min", "phi_max"))


def test_where_the_widget_cannot_be_drawn_it_reads_as_a_sentence(cube):
    dash = FitDashboard(cube)
    text = dash._repr_mimebundle_()["text/plain"]
    assert text == repr(dash) == ("FitDashboard: run this cell in JupyterLab (with "
                                  "ipywidgets) to see the dashboard")
    assert "children" not in text and len(text) < 110
