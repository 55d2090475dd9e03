#!/usr/bin/env bash
# From a fresh clone to a real completion: install, pull the default model, index this
# repository, complete a half-written function. Then `pilotfish serve` is ready for editors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
pilotfish model pull
pilotfish index .
echo "--- completing examples/quickstart.py at line 12, column 16 (after 'return '):" >&2
pilotfish complete examples/quickstart.py:12:16
