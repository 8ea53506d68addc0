#!/usr/bin/env bash
# The main job: fit the bundled example map. Extra arguments go to the fit,
# e.g. scripts/example.sh --mcmc numpyro --nsteps 1000 --out output/nuts
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh widgets,test >&2
exec .venv/bin/python -m eddy_widgets.cli "$@"
