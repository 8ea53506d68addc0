"""pytest settings for the notebooks (collected with ``--nbval``, see
``[tool.pytest.ini_options]`` in pyproject.toml).

- Uses ``nbval_sanitize.cfg`` next to this file unless
  ``--nbval-sanitize-with`` was given, so that the rules apply whatever the
  working directory.
- **Perturbed chains.** The stored outputs were made on one machine; another
  processor runs the same seeded chains with other bits (XLA's CPU code
  differs with the instruction set, the threads, the versions). So the
  notebooks' kernels run with other bits on purpose, and nbval must still
  find every compared output unchanged:

  - ``EDDY_WIDGETS_SEED_OFFSET=1`` (or the value already set, to try other
    seeds): every sampler seed moves (other chains altogether, a far larger
    change than another processor makes);
  - XLA's host device count one more than this machine's cores (the count
    the package would choose), so chains are laid out over other devices.

  ``--no-perturb-chains`` runs them as stored (both variables untouched).
  The variables are set only while a notebook's kernel starts, so the
  Python tests in the same run keep their seeds.
"""

import os
from pathlib import Path

import pytest

SANITIZE = Path(__file__).resolve().with_name("nbval_sanitize.cfg")


def perturbation() -> dict:
    """Environment of a perturbed notebook kernel."""
    flags = " ".join(flag for flag in os.environ.get("XLA_FLAGS", "").split()
                     if "xla_force_host_platform_device_count" not in flag)
    count = (os.cpu_count() or 1) + 1
    offset = os.environ.get("EDDY_WIDGETS_SEED_OFFSET", "").strip() or "1"
    return {"EDDY_WIDGETS_SEED_OFFSET": offset,
            "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={count}".strip()}


def pytest_addoption(parser):
    parser.addoption("--no-perturb-chains", action="store_true", default=False,
                     help="run the notebooks with the stored outputs' seeds and "
                          "device count (default: perturbed, see notebooks/conftest.py)")


def pytest_configure(config):
    option = config.option
    if getattr(option, "nbval", False) and not getattr(option, "nbval_sanitize_with",
                                                        None):
        option.nbval_sanitize_with = str(SANITIZE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel in the setup of its first cell, with
    this process's environment: perturb it for just that long."""
    if item.config.getoption("--no-perturb-chains") or not hasattr(item, "cell_num"):
        yield
        return
    changes = perturbation()
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
