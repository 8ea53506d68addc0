"""eddy_widgets: fit protoplanetary-disk rotation maps, from a script or live in
JupyterLab.

The model works in float64 (velocities of km/s fitted to m/s precision, sums
over thousands of pixels), so importing the package enables JAX's 64-bit mode.
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
