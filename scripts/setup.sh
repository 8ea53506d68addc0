#!/usr/bin/env bash
# Create .venv and install the package with its extras, once: re-run only
# when pyproject.toml changes. Usage: scripts/setup.sh [extras], e.g. "widgets,test".
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-widgets,test}"
python="${PYTHON:-python3}"
venv=".venv"
stamp="$venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/-}"
if [ ! -x "$venv/bin/python" ]; then
    echo "Creating $venv with $("$python" --version)"
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
    echo "Installing eddy_widgets[$extras] into $venv (first run only)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
