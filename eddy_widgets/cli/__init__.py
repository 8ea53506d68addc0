"""The command line: the main job on the bundled example
(``eddy-widgets-example``, ``python -m eddy_widgets.cli``: :mod:`.example`),
the fit of your own map from flags or a TOML file (``eddy-widgets-fit``:
:mod:`.fit`) and the compilation-cache warmer Binder's build runs
(``python -m eddy_widgets.cli.warm_cache``: :mod:`.warm_cache`).

(``eddy_widgets.fit_cli`` and ``eddy_widgets.warm_cache``, their names before
this package, still import and run.)
"""

from eddy_widgets.cli.example import (
                                      DEFAULT_COUNTS,
                                      EMCEE_MOVES,
                                      TUTORIAL_P0,
                                      TUTORIAL_PARAMS,
                                      build_parser,
                                      main,
)

__all__ = ["DEFAULT_COUNTS", "EMCEE_MOVES", "TUTORIAL_P0", "TUTORIAL_PARAMS",
           "build_parser", "main"]
