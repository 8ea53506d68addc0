"""eddy_widgets: fit protoplanetary-disk rotation maps, from a script or live in
JupyterLab.

Importing the package configures JAX (unless you configured it first):

- 64-bit floats (velocities of km/s fitted to m/s precision, sums over
  thousands of pixels);
- one host device per CPU core, so NUTS chains can run in parallel
  (``chain_method='parallel'``); this only applies if JAX was not imported yet;
- a persistent compilation cache in ``~/.cache/eddy_widgets/jax`` (set
  ``EDDY_WIDGETS_JAX_CACHE`` to another folder, or to ``off``), so a second
  session skips most of the compilation; it is bounded to 1 GB
  (``EDDY_WIDGETS_JAX_CACHE_MAX_SIZE``, see :mod:`eddy_widgets.jax_cache`).
"""

import os
import sys

if "jax" not in sys.modules:
    _flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in _flags:
        os.environ["XLA_FLAGS"] = (
            f"{_flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}"
        ).strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from . import jax_cache  # noqa: E402

jax_cache.configure(jax.config)

__version__ = "0.1.0"

from . import _aliases  # noqa: E402

_aliases.install()   # the old module names of moved modules keep importing

from .data import example_paths, load_example, read_rotation_map  # noqa: E402
from .inference.result import FitResult  # noqa: E402
from .rotationmap import rotationmap  # noqa: E402

__all__ = ["FitResult", "example_paths", "fit_many", "load_example",
           "read_rotation_map", "rotationmap"]


def __getattr__(name):
    # fit_many is imported on first use, so that importing the package never
    # imports Dask (an optional extra).
    if name == "fit_many":
        from .survey import fit_many

        return fit_many
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
