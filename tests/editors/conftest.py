"""Shared fixtures of the editor tests: a real git workspace and the server command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "workspace"
SCREENSHOTS = REPO / "docs" / "screenshots"

# What the editor tests type at the end of report.py, and the line they type it on.
TYPED_HEADER = (
    "def total_value(items: list[Item]) -> float:\n"
    '    """Sum of price times quantity over all items."""\n'
)
TYPED = "    return sum("


def editor_tests_enabled() -> bool:
    return os.environ.get("PILOTFISH_EDITOR_TESTS") == "1"


requires_editors = pytest.mark.skipif(
    not editor_tests_enabled(),
    reason="real-editor tests run with editors/run-tests.sh (PILOTFISH_EDITOR_TESTS=1)",
)


def committed_workspace(dest: Path, imports: str = "") -> Path:
    """A copy of the fixture repository under ``dest``, report.py ready for typing (with
    ``imports`` replacing its ``from inventory import Item`` line), committed to git."""
    ws = dest / "workspace"
    shutil.copytree(FIXTURE, ws)
    report = ws / "report.py"
    text = report.read_text(encoding="utf-8")
    if imports:
        text = text.replace("from inventory import Item\n", imports)
    report.write_text(text + "\n\n" + TYPED_HEADER, encoding="utf-8")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "fixture"]):
        subprocess.run(cmd, cwd=ws, env=env, check=True)
    return ws


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the fixture repository, committed to git, with report.py ready for typing."""
    return committed_workspace(tmp_path)


def server_command() -> list[str]:
    """The command that starts the server: $PILOTFISH_SERVER_CMD (JSON list) or this venv's."""
    if "PILOTFISH_SERVER_CMD" in os.environ:
        return json.loads(os.environ["PILOTFISH_SERVER_CMD"])
    exe = Path(sys.executable).with_name("pilotfish")
    return (
        [str(exe), "serve"]
        if exe.exists()
        else [sys.executable, "-m", "pilotfish.lsp_server", "serve"]
    )


@pytest.fixture
def server_cmd() -> list[str]:
    """``server_command()`` as a fixture."""
    return server_command()
