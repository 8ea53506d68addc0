#!/usr/bin/env bash
# The whole test suite, set-up included: the virtual environment, the
# package, and the system packages the browser tests need.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh widgets,test
if [ -f scripts/browser-deps.sh ]; then
    scripts/browser-deps.sh
fi
# The linter first (pyflakes, isort, bugbear: [tool.ruff] in pyproject.toml).
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
