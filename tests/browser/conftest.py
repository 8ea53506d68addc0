"""Fixtures of the browser tests: a JupyterLab server on localhost with its own
config, data and runtime folders, and Debian's Chromium driven by Playwright.

The server sees the lab extensions installed in this environment
(``<sys.prefix>/share/jupyter/labextensions``: the ipywidgets and bqplot
front-ends) unless it is started with ``extensions=False``, which points
JupyterLab's lab-extension path at an empty folder, as on a machine where
only the Python packages were installed. Chromium comes from
``scripts/browser-deps.sh`` (never from ``playwright install``).
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "dashboard.ipynb"
CHROMIUM = os.environ.get("EDDY_CHROMIUM", "/usr/bin/chromium")
#: Chromium flags: headless as root needs --no-sandbox; the rest keep it off
#: the (closed) network and quiet.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
#: Screenshots go here (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

# The notebook is opened by the browser tests, not re-run by nbval.
collect_ignore_glob = ["*.ipynb"]


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen

    def notebook_url(self, name: str = "dashboard.ipynb") -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}?token={self.token}",
                                    timeout=10) as response:
            return json.load(response)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(config: Path) -> None:
    """No news or update pop-ups (they would ask over the screenshots)."""
    folder = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def start_lab(base: Path, extensions: bool = True, env: dict | None = None,
              timeout: float = 60.0) -> Lab:
    """Start ``jupyter lab`` on a free localhost port serving a copy of the
    test notebook; return when its API answers."""
    root, config = base / "root", base / "config"
    root.mkdir(parents=True)
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    _lab_settings(config)
    port, token = _free_port(), secrets.token_hex(16)
    environ = dict(os.environ)
    environ.update({
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(config / "lab" / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(config / "lab" / "workspaces"),
        "IPYTHONDIR": str(base / "ipython"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                 environ.get("PATH", "")]),
        "PYTHONUNBUFFERED": "1",
    })
    environ.update(env or {})
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}",
           "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    if not extensions:
        empty = base / "no-labextensions"
        empty.mkdir()
        cmd.append(f"--LabApp.labextensions_path={empty}")
    log = base / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=environ, cwd=root, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n"
                               f"{lab.log_tail()}")
        try:
            # Ready when it lists the notebook's kernel: a page opened before
            # that asks which kernel to start.
            if "python3" in lab.api("/api/kernelspecs")["kernelspecs"]:
                return lab
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                stop_lab(lab)
                raise RuntimeError(f"jupyter lab did not answer in {timeout:.0f} s:\n"
                                   f"{lab.log_tail()}") from None
            time.sleep(0.25)


def stop_lab(lab: Lab) -> None:
    """Stop the server (it shuts its kernels down), then anything left in
    its process group (the server and its kernels, started here)."""
    process = lab.process
    if process.poll() is None:
        process.terminate()  # jupyter server: clean shutdown, kernels included
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory):
    """``start(name, extensions=True, env=None) -> Lab``; every server is
    stopped at the end of the session."""
    started: list[Lab] = []

    def start(name: str, extensions: bool = True, env: dict | None = None) -> Lab:
        lab = start_lab(tmp_path_factory.mktemp(name), extensions=extensions, env=env)
        started.append(lab)
        return lab

    yield start
    for lab in started:
        stop_lab(lab)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright (a fresh profile per launch)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser-deps.sh "
                    f"(scripts/test.sh does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[widgets,test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
