"""Write the tutorial and exercise notebooks from ``sources/`` and run them.

Every notebook is stored with its outputs, and ``pytest --nbval`` (part of
the test suite) re-runs it and compares. So after editing a source, or after
a change to the package that moves any printed number, run from the
repository root::

    .venv/bin/python notebooks/build_notebooks.py            # write + execute all
    .venv/bin/python notebooks/build_notebooks.py 03 exercise_2  # only some
    .venv/bin/python notebooks/build_notebooks.py --no-execute   # write only

Sources are Python files in the "percent" format (as jupytext writes them):

- ``# %% [markdown]`` starts a markdown cell (its lines start with ``# ``);
- ``# %%`` starts a code cell;
- after the marker, ``student`` or ``solution`` keeps the cell in that
  version of an exercise only, ``tags=a,b`` sets cell tags (e.g.
  ``nbval-ignore-output`` for output that truly varies, such as timings or a
  Monte Carlo digit; its first line then says why, as a comment starting
  ``# Output not compared:``), and ``solution-tags=a,b`` sets tags in the
  solution version only (a check cell that echoes a solution's fitted digits).

The notebook tests run every notebook with other chains than the stored
outputs were made with (``notebooks/conftest.py``), so a compared output may
not depend on a chain's bits: see ``posterior_tables.py``.
To renew the pinned environment and the outputs together:
``notebooks/refresh.sh``.

An exercise source gives two notebooks: the hand-out in ``exercises/`` and
its worked solution in ``solutions/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import re
import sys
import time

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"

#: source stem -> {variant: notebook path relative to notebooks/}
NOTEBOOKS = {
    "01_quickstart": {"all": "01_quickstart.ipynb"},
    "02_the_model": {"all": "02_the_model.ipynb"},
    "03_fitting_with_emcee": {"all": "03_fitting_with_emcee.ipynb"},
    "04_switching_to_numpyro": {"all": "04_switching_to_numpyro.ipynb"},
    "05_after_the_fit": {"all": "05_after_the_fit.ipynb"},
    "exercise_1_inclination": {
        "student": "exercises/exercise_1_inclination.ipynb",
        "solution": "solutions/exercise_1_inclination_solutions.ipynb"},
    "exercise_2_stellar_mass": {
        "student": "exercises/exercise_2_stellar_mass.ipynb",
        "solution": "solutions/exercise_2_stellar_mass_solutions.ipynb"},
    "exercise_3_find_the_kink": {
        "student": "exercises/exercise_3_find_the_kink.ipynb",
        "solution": "solutions/exercise_3_find_the_kink_solutions.ipynb"},
}

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)",
              "language": "python"}
HEADER = re.compile(r"^# %%(?P<rest>.*)$")


def parse(path: Path) -> list[dict]:
    """Cells of a percent-format source: ``{'kind', 'variant', 'tags', 'source'}``."""
    cells: list[dict] = []
    current = None
    for line in path.read_text().splitlines():
        match = HEADER.match(line)
        if match:
            rest = match["rest"].strip()
            kind = "markdown" if rest.startswith("[markdown]") else "code"
            rest = rest.replace("[markdown]", "").split()
            variant = next((w for w in rest if w in ("student", "solution")), None)
            tags = next((w[5:].split(",") for w in rest if w.startswith("tags=")), [])
            solution_tags = next((w[14:].split(",") for w in rest
                                  if w.startswith("solution-tags=")), [])
            current = {"kind": kind, "variant": variant, "tags": tags,
                       "solution_tags": solution_tags, "lines": []}
            cells.append(current)
        elif current is not None:
            current["lines"].append(line)
    for cell in cells:
        lines = cell.pop("lines")
        if cell["kind"] == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        cell["source"] = "\n".join(lines)
    return cells


def build(stem: str, variant: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for cell in parse(SOURCES / f"{stem}.py"):
        if cell["variant"] not in (None, variant) and variant != "all":
            continue
        if cell["kind"] == "markdown":
            new = nbformat.v4.new_markdown_cell(cell["source"])
        else:
            new = nbformat.v4.new_code_cell(cell["source"])
        tags = cell["tags"] + (cell["solution_tags"] if variant == "solution" else [])
        if tags:
            new.metadata["tags"] = tags
        nb.cells.append(new)
    # Stable cell ids: diffs of re-built notebooks show only real changes.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{stem[:40]}-{variant[:3]}-{i:02d}"
    return nb


#: Run in the kernel after the last cell (not stored): sends the full state
#: of every live widget, so that changes made outside a cell's execution (a
#: fit's thread) are in the stored state, and prints the live widgets' ids.
SYNC_WIDGETS = """\
import json as _json
try:
    from ipywidgets.widgets.widget import _instances as _live
except ImportError:
    _live = {}
for _widget in list(_live.values()):
    # All but an Output widget's msg_id (which routes a running cell's output).
    _widget.send_state(key=[k for k in _widget.keys if k != "msg_id"])
print(_json.dumps(sorted(_live)))
"""


def execute(nb: nbformat.NotebookNode, path: Path, timeout: int = 1800) -> None:
    """Run ``nb`` in a fresh kernel with the notebook's folder as working
    directory, storing outputs as ``pytest --nbval`` will see them, and the
    state of its widgets in the notebook's metadata (``widgets`` ->
    ``application/vnd.jupyter.widget-state+json``, as JupyterLab's "Save
    Widget State Automatically" does), so that a reader who has not run it
    (GitHub, nbviewer, ``jupyter nbconvert --to html``, Binder before running)
    sees the widgets instead of their text stand-in. nbval compares the
    text outputs and never the widget views (their model ids vary)."""
    import json

    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            store_widget_state=True)
    client.reset_execution_trackers()
    with client.setup_kernel():
        info = client.wait_for_reply(client.kc.kernel_info())
        nb.metadata["language_info"] = info["content"]["language_info"]
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index,
                                execution_count=client.code_cells_executed + 1)
        sync = nbformat.v4.new_code_cell(SYNC_WIDGETS)
        nb.cells.append(sync)
        try:
            client.execute_cell(sync, len(nb.cells) - 1, store_history=False)
        finally:
            nb.cells.pop()
        text = "".join(o.get("text", "") for o in sync.outputs
                       if o.get("name") == "stdout").strip()
        live = set(json.loads(text.splitlines()[-1])) if text else set()
        # Widgets closed on the way (replaced views) are not shown anywhere.
        client.widget_state = {k: v for k, v in client.widget_state.items()
                               if k in live}
        client.set_widgets_metadata()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="sources whose name contains one of these")
    parser.add_argument("--no-execute", action="store_true",
                        help="write the notebooks without running them")
    args = parser.parse_args(argv)
    for stem, variants in NOTEBOOKS.items():
        if args.only and not any(s in stem for s in args.only):
            continue
        for variant, rel in variants.items():
            path = HERE / rel
            nb = build(stem, variant)
            t0 = time.perf_counter()
            if not args.no_execute:
                execute(nb, path)
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(path))
            print(f"wrote {path.relative_to(HERE.parent)}"
                  + ("" if args.no_execute else f" (ran in {time.perf_counter() - t0:.0f} s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
