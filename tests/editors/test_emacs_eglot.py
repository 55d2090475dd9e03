"""Emacs with eglot, a generic LSP client, against the real server and model.

eglot has no inline completions, so it gets the server's ``textDocument/completion`` fallback,
and it asks for hovers in plain text unless markdown-mode is installed. ``emacs --batch`` runs
tests/editors/emacs/driver.el once: it starts eglot with ``pilotfish serve``, waits for the model,
runs `completion-at-point` (what C-M-i does) and a hover as eldoc asks it, shuts down with
`eglot-shutdown`, and writes what it saw as JSON; the tests below read that report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, TYPED, committed_workspace, requires_editors, server_command

pytestmark = [
    requires_editors,
    pytest.mark.editor,
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("emacs") is None, reason="no emacs (setup-test-tools.sh)"),
]

COMPLETION_TIMEOUT = float(os.environ.get("PILOTFISH_COMPLETION_TIMEOUT", "180"))
DRIVER = REPO / "tests/editors/emacs/driver.el"

# (a) after a prefix of a name defined in inventory.py (Item.value).
CROSS_FILE = TYPED + "item.val"
# (b) a call of a function defined in inventory.py, to hover on.
HOVER_FUNCTION = (
    "\n\n\ndef cheapest_name(items: list[Item]) -> str:\n"
    '    """The name of the cheapest item."""\n'
    "    return cheapest(items).name\n"
)
# (c) non-ASCII before the cursor: "û" is one UTF-16 unit, "💶" two (one Python character).
NON_ASCII_HEADER = (
    "\n\n\ndef describe(item: Item) -> str:\n"
    '    """One line about an item, for the shop window."""\n'
)
NON_ASCII = '    return f"{item.name} coûte 💶 {item.pri'
# (c) after an identifier with a non-ASCII letter (the server once took only its ASCII tail).
IDENTIFIER_HEADER = (
    "\n\n\ndef prix_total(item: Item) -> float:\n"
    '    """The price of all units."""\n'
    "    prix_unité = item.price\n"
)
IDENTIFIER = "    return prix_unité"


def _utf16_index(line: str, units: int) -> int:
    """The Python index of the character at ``units`` UTF-16 code units into ``line``."""
    return len(line.encode("utf-16-le")[: 2 * units].decode("utf-16-le"))


@pytest.fixture(scope="module")
def eglot_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Emacs session through every step; its JSON report plus the workspace path."""
    root = tmp_path_factory.mktemp("eglot")
    ws = committed_workspace(root, "from inventory import Item, cheapest\n")
    steps = [
        {"kind": "wait", "timeout": 180},
        {"kind": "complete", "text": CROSS_FILE, "timeout": COMPLETION_TIMEOUT},
        {"kind": "append", "text": HOVER_FUNCTION},
        {"kind": "hover", "needle": "cheapest(items)", "offset": 3},
        {"kind": "append", "text": NON_ASCII_HEADER},
        {"kind": "complete", "text": NON_ASCII, "timeout": COMPLETION_TIMEOUT},
        {"kind": "append", "text": IDENTIFIER_HEADER},
        {"kind": "complete", "text": IDENTIFIER, "timeout": COMPLETION_TIMEOUT},
    ]
    result = root / "report.json"
    env = {
        **os.environ,
        "PILOTFISH_SERVER_CMD": json.dumps(server_command()),
        "PILOTFISH_INIT_OPTIONS": json.dumps(
            {"dataDir": str(root / "data"), "completion": {"debounceMs": 0, "maxLines": 4}}
        ),
        "PILOTFISH_WORKSPACE": str(ws),
        "PILOTFISH_STEPS": json.dumps(steps),
        "PILOTFISH_RESULT": str(result),
    }
    proc = subprocess.run(
        ["emacs", "--batch", "-l", str(DRIVER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180 + 3 * COMPLETION_TIMEOUT + 120,
    )
    assert result.exists(), f"the driver wrote no report (rc {proc.returncode}):\n{proc.stderr}"
    report = json.loads(result.read_text(encoding="utf-8"))
    assert not report.get("fatal"), f"{report['fatal']}\n{proc.stderr}"
    status = report["steps"][0].get("status") or {}
    assert status.get("loaded") is True, f"the model did not load: {status.get('error')}"
    print(f"\nEmacs {report['emacs']}, eglot {report['eglot']}, model {status['model']}")
    return {**report, "workspace": ws, "stderr": proc.stderr}


def _step(run: dict[str, Any], index: int) -> dict[str, Any]:
    step = run["steps"][index]
    assert not step.get("error"), f"step {index}: {step['error']}\n{run['stderr'][-3000:]}"
    return step


def _check_completion(step: dict[str, Any], word: str) -> dict[str, Any]:
    """The item eglot got replaces ``word`` and the buffer holds exactly that edit, cursor after it.

    Returns the item.
    """
    typed: str = step["typed"]
    items = (step["answer"] or {}).get("items") or []
    assert items, f"no candidate after {typed!r}: {step['answer']}"
    item = items[0]
    edit = item["textEdit"]
    new_text: str = edit["newText"]
    assert new_text.startswith(word), new_text
    assert item["label"].startswith(word), item["label"]  # what eglot matches the symbol against
    # eglot sent the cursor in UTF-16 units (it offers no other encoding), and the range replaces
    # exactly the typed word, counted the same way.
    units = len(typed.encode("utf-16-le")) // 2
    assert step["sent"]["position"] == {"line": step["line"], "character": units}
    start, end = edit["range"]["start"], edit["range"]["end"]
    assert start == {"line": step["line"], "character": units - len(word.encode("utf-16-le")) // 2}
    assert end == {"line": step["line"], "character": units}
    # The buffer after completion-at-point: the typed line with its word replaced, nothing else.
    before: str = step["before"]
    line_start = before.rindex("\n") + 1
    head = typed[: _utf16_index(typed, start["character"])]
    assert step["after"] == before[:line_start] + head + new_text, step["after"]
    assert step["lineAfter"] == (head + new_text).split("\n")[-1]
    if "\n" not in new_text:
        assert step["pointChar"] == len(head + new_text)
    assert (head + new_text).count(word) == typed.count(word)  # the typed word is not doubled
    return item


def test_completion_menu_after_a_cross_file_prefix(eglot_run: dict[str, Any]) -> None:
    item = _check_completion(_step(eglot_run, 1), "val")
    assert item["detail"].startswith("pilotfish")
    print(f"eglot completion after {CROSS_FILE!r}: {item['textEdit']['newText']!r}")


def test_hover_cites_the_definition_in_the_other_file(eglot_run: dict[str, Any]) -> None:
    step = _step(eglot_run, 3)
    ws: Path = eglot_run["workspace"]
    inventory = (ws / "inventory.py").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(inventory, 1) if text.startswith("def cheapest"))
    assert step["answer"], "no hover"
    contents = step["answer"]["contents"]
    # Without markdown-mode eglot lists only plain text, and gets it.
    assert eglot_run["capabilities"].get("hoverProvider")
    assert contents["kind"] == "plaintext"
    shown: str = step["shown"]
    assert f"{ws / 'inventory.py'}:{line}" in shown, shown
    assert "```" not in shown and "](" not in shown


def test_completion_on_a_non_ascii_line(eglot_run: dict[str, Any]) -> None:
    assert eglot_run["capabilities"]["positionEncoding"] == "utf-16"
    _check_completion(_step(eglot_run, 5), "pri")


def test_completion_after_a_non_ascii_identifier(eglot_run: dict[str, Any]) -> None:
    _check_completion(_step(eglot_run, 7), "prix_unité")


def test_eglot_accepts_the_file_watcher(eglot_run: dict[str, Any]) -> None:
    # The server registers workspace/didChangeWatchedFiles; eglot 1.9 takes it (a refusal or a
    # glob it cannot compile leaves no registration).
    assert eglot_run["fileWatches"] == 1


def test_shutdown_leaves_no_server_process(eglot_run: dict[str, Any]) -> None:
    shutdown = eglot_run["shutdown"]
    assert shutdown["error"] is None, shutdown  # the shutdown request answered within eglot's 1.5 s
    assert shutdown["live"] is None, shutdown
    for pid in [shutdown["pid"], *shutdown["children"]]:
        assert not Path(f"/proc/{pid}").exists() or "pilotfish" not in Path(
            f"/proc/{pid}/cmdline"
        ).read_bytes().decode(errors="replace"), f"process {pid} outlived eglot-shutdown"
