"""The import paths of modules that moved into packages keep working.

``eddy_widgets.rotationmap`` (and its three mixin modules) moved into
:mod:`eddy_widgets.facade`, ``eddy_widgets.fit_cli`` and
``eddy_widgets.warm_cache`` into :mod:`eddy_widgets.cli`. A finder on
``sys.meta_path`` answers the old names with the modules themselves (the
same objects, so a monkeypatch of one is a monkeypatch of the other), and
``python -m eddy_widgets.warm_cache`` runs the moved module's code (the
command-line modules import with absolute names for that reason).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: Old module name -> where it lives now.
MOVED = {
    "eddy_widgets.rotationmap": "eddy_widgets.facade.rotationmap",
    "eddy_widgets.rotationmap_data": "eddy_widgets.facade.map_methods",
    "eddy_widgets.rotationmap_figures": "eddy_widgets.facade.figures",
    "eddy_widgets.rotationmap_after_fit": "eddy_widgets.facade.after_fit",
    "eddy_widgets.fit_cli": "eddy_widgets.cli.fit",
    "eddy_widgets.warm_cache": "eddy_widgets.cli.warm_cache",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finder and loader of the old names."""

    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        # The file's own origin: ``python -m <old name>`` puts it in sys.argv[0].
        origin = importlib.util.find_spec(MOVED[name]).origin
        return importlib.util.spec_from_loader(name, self, origin=origin)

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        # The module ran when it was imported under its new name; the import
        # system has just given it the old name's spec: give its own back
        # (relative imports inside it resolve from there).
        alias = module.__spec__
        if alias is not None and alias.loader_state is not None:
            module.__spec__ = alias.loader_state

    def get_code(self, name):
        """The moved module's code (for ``python -m <old name>``)."""
        spec = importlib.util.find_spec(MOVED[name])
        return spec.loader.get_code(MOVED[name])


def install() -> None:
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
