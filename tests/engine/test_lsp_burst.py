"""Over LSP: a burst of keystrokes costs one model run to completion; typing through costs none.

A real client (pytest-lsp) drives the real server, serving a tiny random model from a folder.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_fixture import server_client

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXT = "def area(radius):\n    return "


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lsp"))


@server_client
async def client(
    lsp_client: LanguageClient, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
):
    root = tmp_path_factory.mktemp("workspace")
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=root.as_uri(),
            initialization_options={
                "model": {"name": str(tiny_dir), "backend": "transformers", "device": "cpu"},
                "index": {"enable": False},
                "completion": {"debounceMs": 150, "debounceMaxMs": 150, "maxTokens": 12},
            },
        )
    )
    lsp_client.root = root  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while not (await status(lsp_client))["loaded"]:
        assert time.monotonic() < deadline, "tiny model did not load"
        await asyncio.sleep(0.2)
    yield
    await lsp_client.shutdown_session()


async def status(client: LanguageClient) -> dict[str, Any]:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="pilotfish.status")
    )


def edit(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def ask(client: LanguageClient, uri: str, text: str) -> asyncio.Future[Any]:
    lines = text.split("\n")
    return client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=len(lines) - 1, character=len(lines[-1])),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )


def open_doc(client: LanguageClient, name: str, text: str) -> str:
    uri = (client.root / name).as_uri()  # type: ignore[attr-defined]
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    return uri


async def test_burst_of_keystrokes_runs_the_model_once(client: LanguageClient) -> None:
    before = (await status(client))["completions"]
    uri = open_doc(client, "burst.py", TEXT)
    futures = []
    text = TEXT
    for i, ch in enumerate("radius ** 2"):
        text += ch
        edit(client, uri, i + 2, text)
        futures.append(ask(client, uri, text))
        await asyncio.sleep(0.02)  # 50 keystrokes a second: well inside the debounce
    results = await asyncio.gather(*futures)
    after = (await status(client))["completions"]
    assert after["modelRuns"] - before["modelRuns"] == 1
    assert after["model"] - before["model"] == 1
    # Every superseded request was answered (empty), none was left hanging.
    assert all(r is None or not r.items for r in results[:-1])


async def test_typing_through_over_lsp_makes_no_model_call(client: LanguageClient) -> None:
    uri = open_doc(client, "through.py", "import os\nprint(")
    text = "import os\nprint("
    shown = await ask(client, uri, text)
    assert shown is not None and shown.items and len(shown.items[0].insert_text) >= 2
    suggestion = shown.items[0].insert_text
    before = (await status(client))["completions"]
    text += suggestion[0]
    edit(client, uri, 2, text)
    served = await ask(client, uri, text)
    after = (await status(client))["completions"]
    assert served.items[0].insert_text == suggestion[1:]
    assert after["modelRuns"] == before["modelRuns"]
    assert after["typing-through"] == before["typing-through"] + 1
