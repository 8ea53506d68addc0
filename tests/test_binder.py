"""The Binder environment: binder/ builds a working JupyterLab with the package.

repo2docker (what mybinder.org runs) cannot run here (no Docker), so this test
does what it does with a Python repository that has a ``binder/`` folder:

1. a fresh environment with the Python of ``binder/runtime.txt``;
2. ``pip install -r binder/requirements.txt``;
3. a copy of the repository, from whose root ``binder/postBuild`` runs
   (installing the package and filling the compilation cache);

then runs the quick-start notebook in that environment's kernel and checks that
JupyterLab there has the ipywidgets and bqplot front-end extensions enabled.

Steps 1-2 take a minute or two, so the environment is kept in
``.venv-binder/<hash of binder's pins>/`` and reused until ``requirements.txt``
or ``runtime.txt`` change. Steps 3 on run every time (postBuild installs the
package as it is now).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

from packaging.requirements import Requirement
import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CACHE = ROOT / ".venv-binder"
QUICKSTART = Path("notebooks") / "01_quickstart.ipynb"
#: What repo2docker's copy of the repository would not contain (or we don't need).
SKIP = shutil.ignore_patterns(".git", ".venv", ".venv-*", "__pycache__", ".pytest_cache",
                              ".ipynb_checkpoints", "build", "dist", "*.egg-info",
                              "output", "node_modules", "test-artifacts", ".jax_cache")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _run(args, env, cwd=ROOT, timeout=1800):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _runtime_python() -> str:
    """A Python of the version binder/runtime.txt asks for."""
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert match, f"binder/runtime.txt should read like 'python-3.11', not {runtime!r}"
    wanted = tuple(int(g) for g in match.groups())
    if sys.version_info[:2] == wanted:
        return sys.executable
    found = shutil.which(f"python{wanted[0]}.{wanted[1]}")
    assert found is not None, (
        f"binder/runtime.txt asks for Python {wanted[0]}.{wanted[1]}, which is not "
        f"installed here: install it, or run the tests with that Python")
    return found


def _environment(venv: Path) -> dict:
    """Environment variables of a shell with ``venv`` activated, as in the image,
    isolated from this user's Jupyter settings and kernels."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH",
                        "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _requirement_files(path: Path = BINDER / "requirements.txt") -> list[Path]:
    """``path`` and the files it reads with ``-r`` (relative to it, as pip does)."""
    files = [path]
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            files += _requirement_files((path.parent / line[2:].strip()).resolve())
    return files


def _key(python: str) -> str:
    digest = hashlib.sha256()
    for path in [*_requirement_files(), BINDER / "runtime.txt"]:
        digest.update(path.read_bytes())
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, check=True).stdout
    digest.update(version.encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    """``(venv, env, repo copy)`` after requirements.txt and postBuild."""
    python = _runtime_python()
    venv = CACHE / _key(python)
    env = _environment(venv)
    if not (venv / ".complete").is_file():
        if CACHE.is_dir():
            for old in CACHE.iterdir():    # environments of older pins
                shutil.rmtree(old, ignore_errors=True)
        _run([python, "-m", "venv", venv], env)
        _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-r",
              BINDER / "requirements.txt"], env)
        (venv / ".complete").write_text("requirements.txt installed\n")
    repo = tmp_path_factory.mktemp("binder") / "repo"
    shutil.copytree(ROOT, repo, ignore=SKIP)
    # postBuild fills the compilation cache the notebooks then use (on
    # Binder ~/.cache/eddy_widgets/jax; here a folder of the test's own).
    env["EDDY_WIDGETS_JAX_CACHE"] = str(tmp_path_factory.mktemp("jax-cache"))
    _run(["bash", repo / "binder" / "postBuild"], env, cwd=repo)
    env["JUPYTER_DATA_DIR"] = str(tmp_path_factory.mktemp("jupyter-data"))
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path_factory.mktemp("jupyter-config"))
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("jupyter-runtime"))
    return venv, env, repo


def _pins() -> dict:
    pins = {}
    for path in _requirement_files():
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-r"):
                name, _, version = line.partition("==")
                assert version, f"{path.name}: {line!r} is not pinned with =="
                pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_binder_and_setup_install_one_full_lock():
    # One lock for Binder and scripts/setup.sh, for the Python Binder runs.
    files = _requirement_files()
    lock = ROOT / "requirements-lock.txt"
    assert lock in files, "binder/requirements.txt should read requirements-lock.txt"
    assert "requirements-lock.txt" in (ROOT / "scripts" / "setup.sh").read_text()
    text = lock.read_text()
    runtime = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    assert f"# python: {runtime}" in text.splitlines()
    # Full: the test extras and their dependencies are pinned too.
    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["optional-dependencies"]["test"]:
        assert re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower() in pins
    for dependency in ("jaxlib", "distributed", "nbclient", "iniconfig"):
        assert dependency in pins, dependency


def test_requirements_are_pinned_and_cover_the_package():
    pins = _pins()

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = project["dependencies"] + project["optional-dependencies"]["widgets"]
    runtime = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    for requirement in needed:
        parsed = Requirement(requirement)
        if parsed.marker and not parsed.marker.evaluate({"python_version": runtime}):
            continue           # not installed on Binder's Python
        name = parsed.name
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, (
            f"{name} (a dependency of eddy_widgets[widgets]) is not pinned in "
            f"requirements-lock.txt")
    assert (BINDER / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_postbuild_keeps_the_pins_and_dependencies_are_consistent(binder_env):
    venv, env, _ = binder_env
    _run([venv / "bin" / "python", "-m", "pip", "check"], env)
    frozen = _run([venv / "bin" / "python", "-m", "pip", "list", "--format=json"], env)
    installed = {re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"]
                 for p in json.loads(frozen.stdout)}
    moved = {name: (version, installed.get(name)) for name, version in _pins().items()
             if installed.get(name) != version}
    assert not moved, f"pinned -> installed after postBuild: {moved}"
    assert "eddy-widgets" in installed


def test_widget_extensions_are_enabled_in_jupyterlab(binder_env):
    venv, env, _ = binder_env
    proc = _run([venv / "bin" / "jupyter", "labextension", "list"], env)
    listing = ANSI.sub("", proc.stdout + proc.stderr)
    for extension in ("@jupyter-widgets/jupyterlab-manager", "bqplot"):
        lines = [ln for ln in listing.splitlines() if ln.split()[:1] == [extension]]
        assert lines, f"{extension} is not installed:\n{listing}"
        assert "enabled" in lines[0] and "OK" in lines[0], lines[0]


def test_quickstart_runs_in_the_binder_kernel(binder_env, tmp_path):
    venv, env, repo = binder_env
    # The kernel JupyterLab starts there is that environment's Python.
    probe = tmp_path / "probe.ipynb"
    probe.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "probe",
                   "metadata": {}, "outputs": [],
                   "source": "import sys, eddy_widgets\n"
                             "print(sys.prefix)\nprint(eddy_widgets.__file__)"}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))
    _run([venv / "bin" / "jupyter", "nbconvert", "--to", "notebook", "--execute",
          "--inplace", probe], env, cwd=tmp_path)
    text = json.loads(probe.read_text())["cells"][0]["outputs"][0]["text"]
    prefix, package = (t.strip() for t in "".join(text).splitlines()[:2])
    assert Path(prefix).resolve() == venv.resolve()
    assert Path(package).resolve().is_relative_to(venv.resolve()), package

    # The quick start, top to bottom, from the notebooks folder as on Binder.
    notebook = repo / QUICKSTART
    _run([venv / "bin" / "jupyter", "nbconvert", "--to", "notebook", "--execute",
          "--ExecutePreprocessor.timeout=900", "--output-dir", tmp_path,
          "--output", "executed", notebook], env, cwd=notebook.parent)
    executed = json.loads((tmp_path / "executed.ipynb").read_text())
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code"
               for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    printed = "".join("".join(o.get("text", "")) for o in outputs
                      if o["output_type"] == "stream")
    assert "status: done" in printed
    assert "within 3 sigma" in printed


def _cache_fill_command() -> list[str]:
    """The line of postBuild that fills the compilation cache, as arguments."""
    lines = [ln.strip() for ln in (BINDER / "postBuild").read_text().splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    install = next(i for i, ln in enumerate(lines) if "pip install" in ln)
    fills = [i for i, ln in enumerate(lines) if "eddy_widgets.warm_cache" in ln]
    assert fills, ("binder/postBuild should fill the cache: "
                   "python -m eddy_widgets.warm_cache")
    assert fills[0] > install, "postBuild fills the cache after installing the package"
    return lines[fills[0]].split()


def test_postbuild_fills_the_cache_the_first_fit_then_loads(tmp_path):
    # postBuild's fill (its quick form here, to keep the test short) into a
    # cache folder; then the main job with emcee, as a reader's first fit,
    # loads its programs from there instead of compiling them.
    command = _cache_fill_command()
    assert command[:3] == ["python", "-m", "eddy_widgets.warm_cache"]
    cache = tmp_path / "jax"
    env = {**os.environ, "EDDY_WIDGETS_JAX_CACHE": str(cache)}
    _run([sys.executable, *command[1:], "--quick"], env, cwd=tmp_path, timeout=600)
    names = sorted(p.name.rsplit("-", 2)[0] for p in cache.iterdir())
    for program in ("jit_chunk", "jit_init", "jit_log_prob"):
        assert program in names, names
    before = {p.name for p in cache.iterdir()}
    proc = _run([sys.executable, "-m", "eddy_widgets.cli", "--mcmc", "emcee",
                 "--nburnin", "2", "--nsteps", "2", "--no-progress", "--out",
                 tmp_path / "out"], {**env, "JAX_LOG_COMPILES": "1"}, cwd=tmp_path,
                timeout=600)
    for program in ("jit_log_prob", "jit_value"):
        assert f"Persistent compilation cache hit for '{program}'" in proc.stderr
    # The gradient program (the optimiser's) was found, not compiled again.
    added = sorted({p.name for p in cache.iterdir()} - before)
    assert not [n for n in added if n.startswith("jit_log_prob")], added
