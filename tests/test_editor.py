"""The parameter editor's display and proposals, on state (no browser)."""

from __future__ import annotations

import html
import math

from eddy_widgets.inference.priors import Prior
from eddy_widgets.parameters import PARAMETERS
from eddy_widgets.session import FitSession
from eddy_widgets.widgets import ParameterEditor
from eddy_widgets.widgets.editor import display_number, proposed_prior


def prior_fields(row):
    return (row.kind, row.prior_a, row.prior_b)


def test_fixed_rows_dim_their_prior_fields_and_free_rows_undim():
    session = FitSession()
    editor = ParameterEditor(session)
    row = editor.rows["inc"]
    assert not session.parameters["inc"].free
    assert row.dimmed
    for field in prior_fields(row):
        assert field.disabled and "eddy-dimmed" in field._dom_classes
    assert not row.value.disabled and not row.free.disabled  # still editable
    row.free.value = True
    assert not row.dimmed
    for field in prior_fields(row):
        assert not field.disabled and "eddy-dimmed" not in field._dom_classes
    session.parameters["inc"].free = False  # the session drives it too
    assert all(field.disabled for field in prior_fields(row))
    # A row free from the start is not dimmed.
    assert not editor.rows["mstar"].dimmed and session.parameters["mstar"].free


def test_flat_to_gaussian_proposes_mean_at_the_value_and_sigma_from_the_width():
    session = FitSession()
    editor = ParameterEditor(session)
    row = editor.rows["vlsr"]
    row.value.value = "5764"
    row.kind.value = "gaussian"
    assert session.priors()["vlsr"] == Prior("gaussian", 5764.0, 5000.0)
    assert (row.prior_a.value, row.prior_b.value) == ("5764", "5000")
    # The row's own bounds, not the table's, set the width.
    row = editor.rows["mstar"]
    row.value.value = "1.2"
    row.prior_a.value, row.prior_b.value = "0.5", "2.5"
    row.kind.value = "gaussian"
    assert session.priors()["mstar"] == Prior("gaussian", 1.2, 0.5)
    # Fixed row: the fixed value is the mean.
    editor.rows["dist"].kind.value = "gaussian"
    setting = session.parameters["dist"]
    assert (setting.prior_a, setting.prior_b) == (100.0, 250.0)
    # Unbounded flat prior and no finite value: the session's suggested bounds.
    editor.rows["r_taper"].kind.value = "gaussian"
    setting = session.parameters["r_taper"]
    assert setting.prior_kind == "gaussian"
    assert math.isfinite(setting.prior_a) and 0 < setting.prior_b < math.inf


def test_gaussian_to_flat_proposes_three_sigma_clipped_to_the_table_bounds():
    session = FitSession()
    editor = ParameterEditor(session)
    session.set_parameter("inc", free=True, value=30.0, prior=("gaussian", 30.0, 5.0))
    editor.rows["inc"].kind.value = "flat"
    assert session.priors()["inc"] == Prior("flat", 15.0, 45.0)
    session.set_parameter("mstar", prior=("gaussian", 1.0, 0.5))
    editor.rows["mstar"].kind.value = "flat"
    assert session.priors()["mstar"] == Prior("flat", 0.01, 2.5)  # clipped at 0.01
    # An unusable gaussian falls back to the table's bounds.
    session.set_parameter("PA", free=True, prior=("gaussian", 10.0, "oops"))
    editor.rows["PA"].kind.value = "flat"
    assert session.priors()["PA"] == Prior("flat", -360.0, 360.0)
    # No float noise in the proposal.
    assert proposed_prior("x0", "flat", 0.0, 0.1, 0.1) == (-0.2, 0.4)


def test_a_prior_kind_set_on_the_session_is_shown_not_replaced():
    session = FitSession.from_fit_kwargs(
        p0=[30.0, 1.1], params={"inc": 0, "mstar": 1, "PA": 12.0},
        priors={"mstar": Prior("gaussian", 1.1, 0.1)})
    editor = ParameterEditor(session)
    row = editor.rows["mstar"]
    assert row.kind.value == "gaussian"
    assert (row.prior_a.value, row.prior_b.value) == ("1.1", "0.1")
    session.set_parameter("inc", prior=("gaussian", 40.0, 3.0))
    assert editor.rows["inc"].kind.value == "gaussian"
    assert session.priors()["inc"] == Prior("gaussian", 40.0, 3.0)


def test_numbers_show_without_float_noise_and_the_session_keeps_them():
    session = FitSession()
    editor = ParameterEditor(session)
    session.r_min = 0.20799999999999935
    assert editor.r_min.value == "0.208"
    assert session.r_min == 0.20799999999999935  # only the display is rounded
    session.parameters["inc"].value = 46.70000000000001
    session.parameters["inc"].prior_b = 1.0e6
    row = editor.rows["inc"]
    assert (row.value.value, row.prior_b.value) == ("46.7", "1e6")
    session.parameters["inc"].prior_a = -math.inf
    assert row.prior_a.value == "-inf"
    # Typed text stays as typed.
    row.value.value = "46.712345678"
    assert row.value.value == "46.712345678"
    assert session.parameters["inc"].value == 46.712345678
    assert [display_number(v) for v in (None, 0.0, 1.5e-05, 123456.7, "2,5")] == \
        ["", "0", "1.5e-5", "123457", "2,5"]


def test_each_row_shows_its_description_without_hovering():
    editor = ParameterEditor(FitSession())
    for name, row in editor.rows.items():
        short = PARAMETERS[name].short
        assert short and len(short) <= 26, name  # one line under the name
        assert f">{html.escape(short)}</div>" in row.label.value
        assert row.label.tooltip == PARAMETERS[name].description


def test_rare_rows_are_folded_until_used():
    session = FitSession()
    editor = ParameterEditor(session)
    rare = editor.rare_rows
    assert set(rare) == {"vp_100", "vp_q", "vr_100", "vr_q", "mdisk", "gamma",
                         "r_in", "r_out"}
    folded = editor.more.children[0].children
    assert all(editor.rows[name] in folded for name in rare)
    assert not any(editor.rows[name] in editor.children for name in rare)
    assert all(editor.rows[name] in editor.children
               or editor.rows[name] in editor.noise_section.children
               for name in PARAMETERS if name not in rare)
    assert editor.more.selected_index is None
    session.parameters["vr_100"].value = 20.0
    assert editor.more.selected_index == 0
    # Folded by hand again, it opens when another rare row is freed.
    editor.more.selected_index = None
    session.parameters["vr_100"].value = None
    assert editor.more.selected_index is None
    editor.rows["mdisk"].free.value = True
    assert editor.more.selected_index == 0


def test_a_script_using_a_rare_parameter_opens_the_fold():
    session = FitSession.from_fit_kwargs(p0=[30.0, 1.1, 300.0],
                                         params={"inc": 0, "mstar": 1, "vp_100": 2,
                                                 "vp_q": -0.5})
    assert ParameterEditor(session).more.selected_index == 0
    assert ParameterEditor(FitSession()).more.selected_index is None


def test_phi_fields_show_the_defaults_and_follow_the_session():
    session = FitSession()
    editor = ParameterEditor(session)
    assert (editor.phi_min.value, editor.phi_max.value) == ("-180", "180")
    assert not editor.exclude_phi.value
    session.extra_params = {"phi_min": -45.5, "phi_max": 90.0, "exclude_phi": True}
    assert (editor.phi_min.value, editor.phi_max.value) == ("-45.5", "90")
    assert editor.exclude_phi.value
    session.set_mask_setting("phi_max", 120.0)      # e.g. a drag on the map
    assert editor.phi_max.value == "120"
    session.extra_params = {}
    assert (editor.phi_min.value, editor.phi_max.value) == ("-180", "180")


def test_typing_phi_sets_the_session_and_bad_input_is_flagged():
    session = FitSession()
    editor = ParameterEditor(session)
    editor.phi_max.value = "60"
    assert session.extra_params == {"phi_max": 60.0}
    editor.exclude_phi.value = True
    assert session.extra_params == {"phi_max": 60.0, "exclude_phi": True}
    assert session.to_fit_kwargs(check=False)["params"]["phi_max"] == 60.0
    # not a number: flagged in red, the session keeps its value
    editor.phi_min.value = "abc"
    assert editor.mask_flagged == ["phi_min"]
    assert "phi_min is not a number" in html.unescape(editor.mask_message.value)
    assert "phi_min" not in session.extra_params
    editor.phi_min.value = "-30"
    assert session.extra_params["phi_min"] == -30.0
    assert editor.mask_flagged == [] and editor.mask_message.value == ""
    # an empty range is flagged too
    editor.phi_min.value = "75"
    assert "phi_min (75) must be smaller than phi_max (60)" in \
        html.unescape(editor.mask_message.value)
    assert "phi_max" in editor.mask_flagged
    # an empty field goes back to the default
    editor.phi_min.value = ""
    assert "phi_min" not in session.extra_params and editor.phi_min.value == "-180"
    assert editor.mask_message.value == ""


NOISE_ROWS = ("noise_scale", "noise_nugget", "noise_width")


def test_noise_selector_defaults_to_independent_with_the_noise_rows_disabled():
    session = FitSession()
    editor = ParameterEditor(session)
    assert editor.noise.value == "independent"
    assert [label for label, _ in editor.noise.options] == \
        ["independent (astro-eddy)", "correlated (beam)"]
    assert editor.noise_clip.value == "15" and editor.noise_clip.disabled
    assert "not used" in html.unescape(editor.noise_note.value)
    for name in NOISE_ROWS:
        row = editor.rows[name]
        assert row.free.disabled and row.value.disabled and row.dimmed, name
        assert not session.parameters[name].free
    # The selector and the rows sit with the mask settings, below the fitted
    # region; not in the folded "more parameters".
    children = list(editor.children)
    assert children.index(editor.mask_message) < children.index(editor.noise_section)
    inner = list(editor.noise_section.children)
    assert all(inner.index(editor.rows[n]) > inner.index(editor.noise_note)
               for n in NOISE_ROWS)
    assert not set(NOISE_ROWS) & set(editor.rare_rows)
    assert session.valid and "noise" not in session.to_fit_kwargs()["params"]


def test_correlated_noise_frees_the_scale_and_never_the_kernel():
    session = FitSession()
    editor = ParameterEditor(session)
    editor.noise.value = "correlated"
    assert session.noise == "correlated" and not editor.noise_clip.disabled
    scale = editor.rows["noise_scale"]
    assert session.parameters["noise_scale"].free and scale.free.value
    assert not (scale.free.disabled or scale.value.disabled or scale.dimmed)
    assert session.to_fit_kwargs()["params"]["noise"] == "correlated"
    for name in ("noise_nugget", "noise_width"):
        row = editor.rows[name]
        assert row.free.disabled and not row.value.disabled, name
        assert "estimated from the residuals at the optimised start" in row.free.tooltip
        assert row.value.placeholder == "estimated"
    editor.rows["noise_width"].value.value = "1.5"
    assert session.to_fit_kwargs()["params"]["noise_width"] == 1.5
    # The clip: typed, flagged inline when wrong, off, back to the default.
    editor.noise_clip.value = "5"
    assert session.extra_params["noise_clip"] == 5.0
    editor.noise_clip.value = "0.5"
    assert "above 1" in html.unescape(editor.noise_message.value)
    assert "eddy-invalid" in editor.noise_clip._dom_classes
    editor.noise_clip.value = "off"
    assert session.extra_params["noise_clip"] is None and editor.noise_message.value == ""
    editor.noise_clip.value = ""
    assert "noise_clip" not in session.extra_params and editor.noise_clip.value == "15"
    # The engine's rules show on the row, as any invalid row: a kernel
    # parameter freed from code, a nugget out of range.
    session.set_parameter("noise_nugget", free=True)
    row = editor.rows["noise_nugget"]
    assert row.flagged and "never free" in html.unescape(row.message.value)
    assert not row.free.disabled        # ticked from code: it can be unticked
    assert "1 parameter row to fix" in editor.summary.value
    row.free.value = False
    row.value.value = "2"
    assert "(0, 1]" in html.unescape(row.message.value)
    row.value.value = ""
    assert not row.flagged and session.valid
    # Back to independent: the rows are disabled and unticked again.
    editor.noise.value = "independent"
    assert not session.parameters["noise_scale"].free and scale.free.disabled
    assert "noise" not in session.to_fit_kwargs()["params"]
    session.set_noise("correlated")                 # the session drives it too
    assert editor.noise.value == "correlated" and not scale.free.disabled
