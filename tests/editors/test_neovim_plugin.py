"""The Neovim plugin's behaviour against a scripted fake server (fast; no model, no terminal).

Headless Neovim with `--listen`, typed into with `--remote-send` (real typeahead, so insert-mode
autocmds and keymaps run) and queried with `--remote-expr`. Covers ghost text, next/previous,
typing through, dismiss and accept (with the commands the server receives), accept-line, a
replacing range, the Tab fallback, the statusline, the user commands and the missing-server
message, on every Neovim found (0.11 from the dev extra; 0.12 when $PILOTFISH_NVIM012 is set).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO
from .fake_server import ANSWERS

pytestmark = pytest.mark.editor

FAKE_SERVER = Path(__file__).parent / "fake_server.py"
INIT = Path(__file__).parent / "nvim" / "init.lua"


def _nvims() -> list[Any]:
    found = []
    default = os.environ.get("PILOTFISH_NVIM") or shutil.which("nvim")
    if default is None:
        venv_nvim = Path(sys.executable).with_name("nvim")
        default = str(venv_nvim) if venv_nvim.exists() else None
    if default:
        found.append(pytest.param((default, "auto"), id="nvim-default"))
    nvim012 = os.environ.get("PILOTFISH_NVIM012")
    if nvim012 and Path(nvim012).exists():
        found.append(pytest.param((nvim012, "auto"), id="nvim012-native"))
        found.append(pytest.param((nvim012, "ghost"), id="nvim012-ghost"))
    return found or [pytest.param((None, "auto"), marks=pytest.mark.skip(reason="no nvim"))]


class Headless:
    """A headless Neovim remote-controlled over its socket."""

    def __init__(self, nvim: str, cwd: Path, env: dict[str, str], socket: Path, file: str) -> None:
        self.nvim, self.socket = nvim, socket
        self.proc = subprocess.Popen(
            [nvim, "--headless", "--clean", "-u", str(INIT), "--listen", str(socket), file],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert time.monotonic() < deadline, "nvim did not start"
            time.sleep(0.05)

    def _remote(self, *args: str) -> str:
        out = subprocess.run(
            [self.nvim, "--headless", "--clean", "--server", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return out.stdout

    def send(self, keys: str) -> None:
        """Types keys (Vim key notation) as typeahead."""
        self._remote("--remote-send", keys)
        time.sleep(0.1)

    def expr(self, expression: str) -> str:
        return self._remote("--remote-expr", expression)

    def state(self) -> dict[str, Any]:
        return json.loads(self.expr('luaeval("pf_test.state()")'))

    def wait(self, what: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state = self.state()
        while not what(state):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last state: {state}")
            time.sleep(0.05)
            state = self.state()
        return state

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._remote("--remote-send", "<C-\\><C-N>:qa!<CR>")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fake_env(workspace: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PILOTFISH_REPO": str(REPO),
        "PILOTFISH_SERVER_CMD": json.dumps([sys.executable, str(FAKE_SERVER)]),
        "FAKE_PILOTFISH_LOG": str(tmp_path / "commands.jsonl"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }


@pytest.fixture(params=_nvims())
def nvim(
    request: pytest.FixtureRequest, workspace: Path, fake_env: dict[str, str], tmp_path: Path
) -> Iterator[Headless]:
    binary, inline = request.param
    env = {**fake_env, "PILOTFISH_INLINE": inline}
    editor = Headless(binary, workspace, env, tmp_path / "nvim.sock", "report.py")
    try:
        editor.wait(lambda s: s["attached"] and s["loaded"])
        yield editor
    finally:
        editor.close()


def _commands(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "commands.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def _wait_command(tmp_path: Path, name: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for cmd in _commands(tmp_path):
            if cmd["command"] == name:
                return cmd
        time.sleep(0.05)
    raise AssertionError(f"{name} not received; got {_commands(tmp_path)}")


FIRST, SECOND = ANSWERS["return sum("]


def test_ghost_text_cycle_dismiss_accept(nvim: Headless, tmp_path: Path) -> None:
    assert nvim.state()["statusline"] == "pilotfish fake-model 42ms"
    native = nvim.state()["native"]
    nvim.send("Go    return sum(")
    nvim.wait(lambda s: s["ghost"] == FIRST)

    nvim.send("<M-]>")
    nvim.wait(lambda s: s["ghost"] == SECOND)
    nvim.send("<M-[>")
    nvim.wait(lambda s: s["ghost"] == FIRST)

    if not native:  # typing what it says keeps it, without asking the server again
        nvim.send("it")
        nvim.wait(lambda s: s["ghost"] == FIRST[2:])
        nvim.send("<BS><BS>")
        nvim.wait(lambda s: s["ghost"] == FIRST)

    nvim.send("<C-]>")
    nvim.wait(lambda s: s["ghost"] == "")
    dismissed = _wait_command(tmp_path, "pilotfish.completionDismissed")
    assert dismissed["arguments"] == [{"id": "c12-0"}]

    nvim.send("<BS>(")  # the same text again: a new request, the same suggestion
    nvim.wait(lambda s: s["ghost"] == FIRST)
    nvim.send("<Tab>")
    state = nvim.wait(lambda s: s["lines"][-1] == "    return sum(" + FIRST)
    assert state["ghost"] == ""
    accepted = _wait_command(tmp_path, "pilotfish.completionAccepted")
    assert accepted["arguments"] == [{"id": "c12-0"}]


def test_accept_line_then_rest(nvim: Headless, tmp_path: Path) -> None:
    native = nvim.state()["native"]
    nvim.send("Go    return [")
    nvim.wait(lambda s: s["ghost"].startswith("\n        item.name"))
    nvim.send("<M-l>")
    state = nvim.wait(lambda s: s["lines"][-2:] == ["    return [", "        item.name"])
    assert all(c["command"] != "pilotfish.completionAccepted" for c in _commands(tmp_path))
    if native:
        return  # Neovim 0.12 asks again at the new position (the fake server has nothing there)
    assert state["ghost"] == "\n        for item in items\n    ]"
    nvim.send("<Tab>")
    nvim.wait(
        lambda s: (
            s["lines"][-4:]
            == ["    return [", "        item.name", "        for item in items", "    ]"]
        )
    )
    assert _wait_command(tmp_path, "pilotfish.completionAccepted")["arguments"] == [{"id": "c12-0"}]


def test_replacing_range_and_tab_fallback(nvim: Headless) -> None:
    nvim.send("Go    total = su")
    nvim.wait(lambda s: s["ghost"] == "m(prices)")
    nvim.send("<Tab>")
    nvim.wait(lambda s: s["lines"][-1] == "    total = sum(prices)")
    nvim.send("<Esc>o<Tab>")  # nothing suggested: Tab is a Tab
    nvim.wait(lambda s: s["lines"][-1] in ("\t", "    "))  # python ftplugin: expandtab


def test_commands(nvim: Headless, tmp_path: Path) -> None:
    nvim.send("<Esc>:PilotfishStatus<CR>")
    messages = ""
    deadline = time.monotonic() + 5
    while "fake-model" not in messages and time.monotonic() < deadline:
        time.sleep(0.1)
        messages = nvim.expr("execute('messages')")
    assert "model      fake-model (fake on cpu)" in messages
    assert "index      ready, 3 files, 7 chunks" in messages

    nvim.send(":PilotfishReindex<CR>")
    _wait_command(tmp_path, "pilotfish.reindex")
    nvim.send(":PilotfishDisable<CR>")
    assert _wait_command(tmp_path, "pilotfish.setEnabled")["arguments"] == [False]

    nvim.send(":PilotfishTrain<CR>")
    _wait_command(tmp_path, "pilotfish.train")
    nvim.send(":PilotfishAdapter a1<CR>")
    assert _wait_command(tmp_path, "pilotfish.useAdapter")["arguments"] == [{"name": "a1"}]

    nvim.send(":PilotfishExplain<CR>")
    deadline = time.monotonic() + 5
    text = ""
    while "Context of completion" not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = nvim.expr("join(getline(1, '$'), \"\\n\")")
    assert "# Context of completion `c1`" in text
    assert "inventory.py:7-16 (symbol) Item is used near the cursor" in text
    assert nvim.expr("&filetype") == "markdown"


def test_hover_with_k(nvim: Headless) -> None:
    nvim.send("<Esc>:3<CR>$")  # `from inventory import Item`: the cursor on Item
    nvim.send("K")
    deadline = time.monotonic() + 5
    text = ""
    while "one line of stock" not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = nvim.expr('luaeval("pf_test.float_text()")')
    assert "one line of stock" in text
    assert "inventory.py:7" in text


NVIM_BINARIES = sorted({p.values[0][0] for p in _nvims() if p.values[0][0]})


@pytest.mark.parametrize("binary", NVIM_BINARIES)
def test_indexing_progress_in_statusline(
    binary: str, workspace: Path, fake_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**fake_env, "FAKE_PILOTFISH_INDEXING": "4"}
    editor = Headless(binary, workspace, env, tmp_path / "nvim.sock", "report.py")
    try:
        editor.wait(lambda s: s["statusline"] == "pilotfish: indexing 40%")
        editor.wait(lambda s: s["statusline"] == "pilotfish fake-model 42ms")
    finally:
        editor.close()


@pytest.mark.parametrize("binary", NVIM_BINARIES)
def test_missing_server_says_how_to_fix(
    binary: str, workspace: Path, fake_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**fake_env, "PILOTFISH_SERVER_CMD": json.dumps(["/nonexistent/pilotfish", "serve"])}
    editor = Headless(binary, workspace, env, tmp_path / "nvim.sock", "report.py")
    try:
        deadline = time.monotonic() + 5
        messages = ""
        while "not found" not in messages and time.monotonic() < deadline:
            time.sleep(0.1)
            messages = editor.expr("execute('messages')")
        assert "server command `/nonexistent/pilotfish` (from cmd option) was not found" in messages
        assert "pip install" in messages
        assert editor.state()["attached"] is False
    finally:
        editor.close()
