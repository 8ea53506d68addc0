"""The package's import graph: no cycles, and no arrow up a layer.

Every import in ``eddy_widgets`` (module level and inside functions, where a
cycle likes to hide) is read with ``ast``; an edge goes from a module to each
module of the package it imports. The layers, bottom up (docs/architecture.md):

- ``parameters``, ``atomic``, ``jax_cache``: the table and helpers;
- ``model``: the JAX model and pixel coordinates;
- ``data``: FITS in and out, the bundled examples;
- ``inference`` and ``analysis``: side by side, neither imports the other;
- the facade (``rotationmap*``), ``plots``, ``products``, ``exercises``;
- ``session``; then ``widgets``; the command line (``cli``, ``fit_cli``,
  ``warm_cache``) and ``survey`` beside them.
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
                           "rotationmap", "cli", "fit_cli", "products", "plots"),
    "eddy_widgets.analysis": ("inference", "session", "widgets", "rotationmap",
                              "cli", "fit_cli", "products"),
    "eddy_widgets.inference": ("analysis", "session", "widgets", "rotationmap",
                               "cli", "fit_cli", "products"),
    "eddy_widgets.session": ("widgets", "cli", "fit_cli"),
    "eddy_widgets.widgets": ("cli", "fit_cli", "warm_cache"),
    "eddy_widgets.products": ("widgets", "session", "cli", "fit_cli"),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_arrow_goes_up_a_layer(layer):
    graph = import_graph()
    bad = []
    for module, targets in graph.items():
        if module != layer and not module.startswith(layer + "."):
            continue
        for target in targets:
            short = target.removeprefix("eddy_widgets.")
            if any(short == f or short.startswith(f + ".") or
                   short.startswith(f + "_") for f in FORBIDDEN[layer]):
                bad.append(f"{module} -> {target}")
    assert bad == []
