"""Neovim with the pilotfish plugin, in its real terminal UI, against the real server and model.

Types into a file of a git workspace, waits for the ghost text, accepts it with <Tab> and checks
the buffer; also the status command, the statusline and `:checkhealth pilotfish`. Runs Neovim
0.11 (the plugin's extmark ghost text) and, when found, 0.12 (its native inline completion).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from .conftest import REPO, SCREENSHOTS, TYPED, requires_editors

pytestmark = [requires_editors, pytest.mark.editor, pytest.mark.model]

COMPLETION_TIMEOUT = float(os.environ.get("PILOTFISH_COMPLETION_TIMEOUT", "180"))


def _nvims() -> list[tuple[str, str, str]]:
    """(id, nvim binary, inline mode) for each Neovim found."""
    found = []
    nvim011 = os.environ.get("PILOTFISH_NVIM") or shutil.which("nvim")
    if nvim011:
        found.append(("nvim-default-ghost", nvim011, "auto"))
    nvim012 = os.environ.get("PILOTFISH_NVIM012")
    if nvim012 and Path(nvim012).exists():
        found.append(("nvim012-native", nvim012, "auto"))
        found.append(("nvim012-ghost", nvim012, "ghost"))
    return found


@pytest.mark.parametrize(
    ("nvim", "inline"), [(n, m) for _, n, m in _nvims()], ids=[i for i, _, _ in _nvims()]
)
def test_ghost_text_accept_status_health(
    nvim: str, inline: str, workspace: Path, server_cmd: list[str], tmp_path: Path
) -> None:
    from .terminal import NeovimTerminal

    env = {
        **os.environ,
        "PILOTFISH_REPO": str(REPO),
        "PILOTFISH_SERVER_CMD": json.dumps(server_cmd),
        "PILOTFISH_INLINE": inline,
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    term = NeovimTerminal(
        nvim,
        ["--clean", "-u", str(REPO / "tests/editors/nvim/init.lua"), "report.py"],
        cwd=workspace,
        env=env,
        socket=tmp_path / "nvim.sock",
    )
    try:
        term.wait_socket()
        state = term.wait_for(
            lambda: (s := term.lua("pf_test.state()")) and s["attached"] and s, 60
        )
        assert state and state["attached"], f"the pilotfish client did not attach:\n{term.text()}"
        # Wait for the model (requests made while it loads get no items) and the index.
        ready = term.wait_for(
            lambda: (s := term.lua("pf_test.state()")) and s["loaded"] and s["index"] != "indexing",
            120,
        )
        assert ready, f"the model did not load: {term.lua('pf_test.state()')}"
        version = state["version"]
        native = state["native"]

        started = time.monotonic()
        term.type("Go")  # a new line after the docstring
        term.type(TYPED)
        state = term.wait_for(
            lambda: (s := term.lua("pf_test.state()")) and s["ghost"].strip() and s,
            COMPLETION_TIMEOUT,
        )
        elapsed = time.monotonic() - started
        assert state and state["ghost"].strip(), (
            f"no ghost text after {elapsed:.0f}s:\n{term.text()}"
        )
        ghost = state["ghost"]
        line_before = state["lines"][state["cursor"][0] - 1]
        assert line_before == TYPED
        time.sleep(0.3)  # let the TUI draw it
        name = f"neovim-{version.split('-')[0].split('+')[0]}-{'native' if native else 'ghost'}.png"
        if os.environ.get("PILOTFISH_SCREENSHOTS", "1") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            term.screenshot(SCREENSHOTS / name, f"Neovim {version} with pilotfish ghost text")
        screen = term.text()
        first_line = ghost.split("\n")[0].strip()
        if first_line:
            assert first_line[:20] in screen, f"ghost text not drawn on the screen:\n{screen}"

        term.type("\t")  # accept, with the real keymap
        expected_tail = (TYPED + ghost).split("\n")
        row = state["cursor"][0] - 1

        def accepted() -> dict | None:
            s = term.lua("pf_test.state()")
            got = s["lines"][row : row + len(expected_tail)]
            return s if got == expected_tail else None

        state_after = term.wait_for(accepted, 10)
        assert state_after, (
            f"buffer after <Tab> does not hold the suggestion {ghost!r}:\n"
            f"{term.lua('pf_test.state()')['lines'][row:]}"
        )

        term.type("\x1b")  # leave insert mode
        status = term.lua("pf_test.command('pilotfish.status')")
        assert status.get("result"), status
        assert status["result"].get("model"), status
        assert term.lua("pf_test.state()")["statusline"].startswith("pilotfish")

        # The plugin (or Neovim 0.12) ran the item's command after inserting it.
        lsp_log = (tmp_path / "state/nvim/lsp.log").read_text(errors="replace")
        sent = [
            line
            for line in lsp_log.splitlines()
            if "rpc.send" in line and "workspace/executeCommand" in line
        ]
        assert any("pilotfish.completionAccepted" in line for line in sent), sent or lsp_log[-2000:]

        health = term.expr("luaeval('pf_test.health()')", timeout=120)
        assert "server command" in health, health
        assert "ERROR" not in health, health
        kind = "native" if native else "ghost"
        print(f"\n{nvim} ({version}, {kind}): ghost text after {elapsed:.1f}s: {ghost!r}")
    finally:
        term.close()
