"""Stored notebooks carry their widgets' state, so a reader who has not run
them (GitHub, nbviewer, nbconvert's HTML, Binder before running) sees the
widgets, not ``FitDashboard(children=(HBox(...``."""

from __future__ import annotations

import json
from pathlib import Path
import re

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"

#: Every stored notebook (the tutorials, the exercises and their solutions).
NOTEBOOK_FILES = sorted(str(p.relative_to(NOTEBOOKS)) for p in NOTEBOOKS.rglob("*.ipynb")
                        if ".ipynb_checkpoints" not in p.parts)
#: Those that show widgets: the dashboard, the model explorer, the samplers'
#: progress bars (tqdm's widget in 03 and 04).
SHOWS_WIDGETS = ["01_quickstart.ipynb", "02_the_model.ipynb",
                 "03_fitting_with_emcee.ipynb", "04_switching_to_numpyro.ipynb",
                 "exercises/exercise_1_inclination.ipynb",
                 "solutions/exercise_1_inclination_solutions.ipynb"]
#: ipywidgets' text stand-in for a widget, e.g. "FitDashboard(children=(...".
WIDGET_REPR = re.compile(r"^[A-Z]\w*\((children|layout|value|description)=")


def _views(nb: dict) -> list[str]:
    return [out["data"][VIEW]["model_id"] for cell in nb["cells"]
            for out in cell.get("outputs", []) if VIEW in out.get("data", {})]


def _children(state: dict) -> set[str]:
    """Model ids a widget's state refers to ('IPY_MODEL_<id>')."""
    text = json.dumps(state)
    return {part.split('"')[0] for part in text.split("IPY_MODEL_")[1:]}


@pytest.mark.parametrize("rel", NOTEBOOK_FILES)
def test_every_shown_widget_has_its_state_stored(rel):
    nb = json.loads((NOTEBOOKS / rel).read_text())
    views = _views(nb)
    assert bool(views) == (rel in SHOWS_WIDGETS), (rel, len(views))
    # What a reader without a kernel would see instead of a widget: its text
    # stand-in alone, with no view to draw.
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/plain", ""))
            assert not (WIDGET_REPR.match(text) and VIEW not in out.get("data", {})), \
                (rel, text[:80])
    if not views:
        return
    stored = nb["metadata"]["widgets"][STATE]["state"]
    for model_id in views:
        assert model_id in stored, (rel, model_id)
    # Every model a stored widget refers to (children, scales, layouts) is
    # stored too, so the whole view can be drawn.
    for widget in stored.values():
        missing = _children(widget["state"]) - set(stored)
        assert not missing, (rel, widget["model_name"], missing)


def test_the_quickstart_stores_the_dashboard():
    nb = json.loads((NOTEBOOKS / "01_quickstart.ipynb").read_text())
    names = {w["model_name"] for w in nb["metadata"]["widgets"][STATE]["state"].values()}
    assert {"VBoxModel", "ButtonModel", "FigureModel"} <= names
