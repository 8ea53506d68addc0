"""pytest settings for the notebooks (collected with ``--nbval``, see
``[tool.pytest.ini_options]`` in pyproject.toml).

Uses ``nbval_sanitize.cfg`` next to this file unless
``--nbval-sanitize-with`` was given, so that the rules apply whatever the
working directory.
"""

from pathlib import Path

SANITIZE = Path(__file__).resolve().with_name("nbval_sanitize.cfg")


def pytest_configure(config):
    option = config.option
    if getattr(option, "nbval", False) and not getattr(option, "nbval_sanitize_with",
                                                        None):
        option.nbval_sanitize_with = str(SANITIZE)
