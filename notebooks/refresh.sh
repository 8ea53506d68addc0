#!/usr/bin/env bash
# Renew the pinned environment and the notebooks' stored outputs together:
#
#   notebooks/refresh.sh            # from the repository root or anywhere
#   notebooks/refresh.sh --lock-only  # step 1 only
#
# 1. resolves eddy_widgets[widgets,test] afresh (newest versions allowed by
#    pyproject.toml) in a throw-away virtual environment with the lock's
#    Python (3.11; PYTHON=... to name another interpreter of that version)
#    and writes `pip freeze` into requirements-lock.txt, keeping its header;
# 2. re-installs .venv from the new lock (scripts/setup.sh);
# 3. re-runs and stores every notebook (notebooks/build_notebooks.py).
#
# Then run scripts/test.sh, and commit requirements-lock.txt with the notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
lock="requirements-lock.txt"
version="$(sed -n 's/^# python: *//p' "$lock")"
python="${PYTHON:-python$version}"
have="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$have" != "$version" ]; then
    echo "refresh.sh: $python is Python $have; the lock is for $version" >&2
    exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check ".[widgets,test]"
{
    grep '^#' "$lock"
    "$tmp/venv/bin/python" -m pip freeze --exclude eddy_widgets --exclude eddy-widgets
} > "$tmp/lock.txt"
mv "$tmp/lock.txt" "$lock"
if [ "${1:-}" = "--lock-only" ]; then
    echo "refresh.sh: renewed $lock"
    exit 0
fi
scripts/setup.sh widgets,test
.venv/bin/python notebooks/build_notebooks.py
echo "refresh.sh: renewed $lock and the notebooks; now run scripts/test.sh"
