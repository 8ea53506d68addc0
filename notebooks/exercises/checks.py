"""The answer checks of the exercises live in the package:
:mod:`eddy_widgets.exercises` (``from eddy_widgets.exercises import ...``).
This module re-exports them for code that imported ``checks``."""

from eddy_widgets.exercises import *  # noqa: F401,F403
from eddy_widgets.exercises import __all__  # noqa: F401
