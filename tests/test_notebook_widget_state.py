"""Stored notebooks carry their widgets' state, so a reader who has not run
them (GitHub, nbviewer, nbconvert's HTML, Binder before running) sees the
widgets, not ``FitDashboard(children=(HBox(...``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"

#: Notebooks built with their widget state (02_the_model is rebuilt by the
#: owner of its model explorer; add it here once it is).
WITH_STATE = ["01_quickstart.ipynb", "03_fitting_with_emcee.ipynb",
              "04_switching_to_numpyro.ipynb", "05_after_the_fit.ipynb",
              "exercises/exercise_1_inclination.ipynb",
              "solutions/exercise_1_inclination_solutions.ipynb",
              "exercises/exercise_2_stellar_mass.ipynb",
              "solutions/exercise_2_stellar_mass_solutions.ipynb",
              "exercises/exercise_3_find_the_kink.ipynb",
              "solutions/exercise_3_find_the_kink_solutions.ipynb"]


def _views(nb: dict) -> list[str]:
    return [out["data"][VIEW]["model_id"] for cell in nb["cells"]
            for out in cell.get("outputs", []) if VIEW in out.get("data", {})]


def _children(state: dict) -> set[str]:
    """Model ids a widget's state refers to ('IPY_MODEL_<id>')."""
    text = json.dumps(state)
    return {part.split('"')[0] for part in text.split("IPY_MODEL_")[1:]}


@pytest.mark.parametrize("rel", WITH_STATE)
def test_every_shown_widget_has_its_state_stored(rel):
    nb = json.loads((NOTEBOOKS / rel).read_text())
    views = _views(nb)
    if not views:
        pytest.skip(f"{rel} shows no widget")
    stored = nb["metadata"]["widgets"][STATE]["state"]
    for model_id in views:
        assert model_id in stored, (rel, model_id)
    # Every model a stored widget refers to (children, scales, layouts) is
    # stored too, so the whole view can be drawn.
    for model_id, widget in stored.items():
        missing = _children(widget["state"]) - set(stored)
        assert not missing, (rel, widget["model_name"], missing)


def test_the_quickstart_stores_the_dashboard():
    nb = json.loads((NOTEBOOKS / "01_quickstart.ipynb").read_text())
    names = {w["model_name"] for w in nb["metadata"]["widgets"][STATE]["state"].values()}
    assert {"VBoxModel", "ButtonModel", "FigureModel"} <= names
