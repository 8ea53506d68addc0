#!/usr/bin/env bash
# Create .venv and install the package with its extras, once: re-run only
# when pyproject.toml or requirements-lock.txt change.
# Usage: scripts/setup.sh [extras], e.g. "widgets,test".
#
# Every package comes at the version in requirements-lock.txt (the full lock,
# test extras and their dependencies included; Binder installs the same file),
# so a fresh machine gets exactly the versions the notebooks' stored outputs
# were made with. The lock is for the Python it names (3.11): on another
# Python the package is installed with unpinned dependencies, with a warning.
# notebooks/refresh.sh renews the lock and the stored outputs together.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-widgets,test}"
lock="requirements-lock.txt"
locked_python="$(sed -n 's/^# python: *//p' "$lock")"     # e.g. 3.11
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if command -v "python$locked_python" >/dev/null 2>&1; then
        python="python$locked_python"
    else
        python=python3
    fi
fi
venv=".venv"
stamp="$venv/.installed-$(cat pyproject.toml "$lock" | sha256sum | cut -c1-16)-${extras//,/-}"
if [ ! -x "$venv/bin/python" ]; then
    echo "Creating $venv with $("$python" --version)"
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
    version="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
    "${pip[@]}" install --upgrade pip
    if [ "$version" = "$locked_python" ]; then
        echo "Installing eddy_widgets[$extras] into $venv from $lock (first run only)"
        "${pip[@]}" install -r "$lock"
        "${pip[@]}" install --no-deps -e ".[$extras]"
        "${pip[@]}" check
    else
        echo "WARNING: $venv has Python $version but $lock is for Python" \
             "$locked_python: installing unpinned dependencies; the notebooks'" \
             "stored outputs were made with the locked versions." >&2
        "${pip[@]}" install -e ".[$extras]"
    fi
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
