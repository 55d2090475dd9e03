#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, pull the real model, static checks, tests.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not model"` for a fast run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
pilotfish model pull            # idempotent; ~1.5 min the first time, instant after
bash scripts/lint.sh
python -m pytest "$@"
