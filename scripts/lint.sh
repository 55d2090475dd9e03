#!/usr/bin/env bash
# Static checks: ruff, pyright, and the one-way import contract (import-linter).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
ruff check .
pyright
# import-linter resolves packages on the filesystem, which cannot see the setuptools
# package-dir mapping of the editable install; a tree of links gives it the installed names.
mkdir -p build/layers/pilotfish
for pkg in lsp_server code_index training; do ln -sfn "../../../$pkg" "build/layers/pilotfish/$pkg"; done
PYTHONPATH=build/layers lint-imports
