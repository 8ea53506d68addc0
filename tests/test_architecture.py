"""The package's import graph: no cycles, and no arrow up a layer.

Every import in ``eddy_widgets`` (module level and inside functions, where a
cycle likes to hide) is read with ``ast``; an edge goes from a module to each
module of the package it imports. The layers, bottom up (docs/architecture.md):

- ``parameters``, ``atomic``, ``jax_cache``: the table and helpers;
- ``model``: the JAX model and pixel coordinates;
- ``data``: FITS in and out, the bundled examples; ``mock``: mock
  observations (the model through a line cube and bettermoments) beside it;
- ``inference`` and ``analysis``: side by side, neither imports the other;
- the facade (``facade/``), ``plots``, ``products``, ``exercises``;
- ``session``; then ``widgets``; the command line (``cli/``) and ``survey``
  beside them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "eddy_widgets"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str, modules: dict) -> str | None:
    """The module of the package that ``name`` (a dotted import target) is,
    or the module holding it (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
            for target in targets:
                found = _resolve(target, modules)
                # Importing a package's __init__ from inside it is how Python
                # reaches a submodule, not a design dependency.
                if found and found != name and not name.startswith(found + "."):
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycles():
    graph = import_graph()
    # Package __init__ files import their children; a child importing its
    # own package's __init__ is left out above. What remains must be acyclic.
    assert _cycles(graph) == []


#: Packages (or modules) and the ones they must never import.
FORBIDDEN = {
    "eddy_widgets.model": ("inference", "analysis", "session", "widgets", "data",
                           "facade", "cli", "products", "plots"),
    "eddy_widgets.analysis": ("inference", "session", "widgets", "facade", "cli",
                              "products"),
    "eddy_widgets.inference": ("analysis", "session", "widgets", "facade", "cli",
                               "products"),
    "eddy_widgets.facade": ("session", "widgets", "cli"),
    # Mock observations: the model and FITS out, beside the data layer.
    "eddy_widgets.mock": ("inference", "analysis", "session", "widgets", "facade",
                          "cli", "products", "plots"),
    "eddy_widgets.session": ("widgets", "cli"),
    "eddy_widgets.widgets": ("cli",),
    "eddy_widgets.products": ("widgets", "session", "cli"),
}


def test_the_top_level_is_grouped_by_job():
    # The facade and the command line are packages; their old module names
    # (eddy_widgets/_aliases.py) still import, as the same module objects.
    import importlib

    loose = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
    assert loose == ["atomic", "exercises", "formatting", "jax_cache", "mock",
                     "parameters", "plots", "products", "survey"]
    from eddy_widgets._aliases import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_arrow_goes_up_a_layer(layer):
    graph = import_graph()
    bad = []
    for module, targets in graph.items():
        if module != layer and not module.startswith(layer + "."):
            continue
        for target in targets:
            short = target.removeprefix("eddy_widgets.")
            if any(short == f or short.startswith(f + ".")
                   for f in FORBIDDEN[layer]):
                bad.append(f"{module} -> {target}")
    assert bad == []


def test_the_linter_passes_with_pyflakes_isort_and_bugbear():
    # scripts/test.sh runs it before the tests; here it runs under plain
    # pytest too.
    import subprocess
    import sys

    import tomllib

    root = PACKAGE.parent
    lint = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert {"F", "I", "B"} <= set(lint["select"])
    assert "ruff check" in (root / "scripts" / "test.sh").read_text()
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", "."],
                          cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
