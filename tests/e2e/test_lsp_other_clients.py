"""Clients unlike VS Code: UTF-8 positions (Neovim), plain-text hovers, file watchers.

pygls takes the client's first supported position encoding; every position pilotfish reads or
writes must then be in UTF-8 code units, or completions and hovers land in the wrong column on
any non-ASCII line. A client that lists only plain text for hovers gets no Markdown syntax. A
client that can register file watchers is asked to, and the index follows the disk.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.test_lsp_inline import wait_until_loaded
from tests.lsp_fixture import server_client

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

SOURCE = (
    "def shout(text):\n"
    '    """Return text in upper case."""\n'
    "    return text.upper()\n"
    "\n\n"
    "def greet(greeting):\n"
    '    return "héllo → wörld" + shout(greeting) + gree\n'
)
# "héllo → wörld" has two 2-byte and one 3-byte characters: UTF-8 offsets run 4 ahead.
LINE_NO = 6
LINE = SOURCE.splitlines()[LINE_NO]


@server_client
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("workspace")
    (root / "greet.py").write_text(SOURCE)
    registrations: list[types.Registration] = []

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        registrations.extend(params.registrations)

    lsp_client.registrations = registrations  # type: ignore[attr-defined]
    lsp_client.init_result = await lsp_client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                general=types.GeneralClientCapabilities(
                    position_encodings=[
                        types.PositionEncodingKind.Utf8,
                        types.PositionEncodingKind.Utf16,
                    ]
                ),
                workspace=types.WorkspaceClientCapabilities(
                    did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
                        dynamic_registration=True
                    )
                ),
                text_document=types.TextDocumentClientCapabilities(
                    hover=types.HoverClientCapabilities(
                        content_format=[types.MarkupKind.PlainText]
                    )
                ),
            ),
            root_uri=root.as_uri(),
            initialization_options={
                "dataDir": str(root / ".pilotfish-data"),
                "completion": {"debounceMs": 0, "maxTokens": 16},
                "index": {"embeddings": False},
            },
        )
    )
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_utf8_positions_in_and_out(client: LanguageClient) -> None:
    result: types.InitializeResult = client.init_result  # type: ignore[attr-defined]
    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    await wait_until_loaded(client)
    uri = (client.root / "greet.py").as_uri()  # type: ignore[attr-defined]
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=SOURCE
            )
        )
    )
    end_bytes = len(LINE.encode("utf-8"))
    assert end_bytes > len(LINE) + 3  # the line really is non-ASCII
    answer = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=LINE_NO, character=end_bytes),
        )
    )
    assert isinstance(answer, types.CompletionList) and answer.items
    edit = answer.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    # The range replaces exactly the typed word `gree`, counted in bytes.
    assert edit.range.start == types.Position(line=LINE_NO, character=end_bytes - len("gree"))
    assert edit.range.end == types.Position(line=LINE_NO, character=end_bytes)
    assert edit.new_text.startswith("gree")
    # The engine saw the cursor after `gree` (not 4 characters further left, mid-string).
    explained = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="pilotfish.explainCompletion")
    )
    assert edit.new_text == "gree" + explained["completion"]


async def test_utf8_hover_in_plain_text(client: LanguageClient) -> None:
    uri = (client.root / "greet.py").as_uri()  # type: ignore[attr-defined]
    column = LINE.index("shout(") + 2
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=LINE_NO, character=len(LINE[:column].encode("utf-8"))),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.kind == types.MarkupKind.PlainText
    text = hover.contents.value
    # The byte offset resolved to `shout` (read as UTF-16 it would be 4 characters on, in
    # `greeting`), and the citation is a plain path:line.
    assert "shout(text)" in text and f"{client.root / 'greet.py'}:1" in text  # type: ignore[attr-defined]
    assert "```" not in text and "](" not in text


async def test_file_watcher_registered_and_followed(client: LanguageClient) -> None:
    """A file written on disk (a branch switch, a generator) reaches the index via the watcher."""
    registrations: list[types.Registration] = client.registrations  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30  # registered from `initialized`, asynchronously
    while not registrations and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    watchers = [r for r in registrations if r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    assert len(watchers) == 1
    globs = [w["globPattern"] for w in watchers[0].register_options["watchers"]]  # type: ignore[index]
    assert len(globs) == 1 and globs[0].startswith("**/*.{") and "py," in globs[0]

    async def indexed_files() -> int:
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="pilotfish.status")
        )
        return status["index"]["files"] if status["index"].get("ready") else -1

    while await indexed_files() < 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # the first build is done: from now on only events add files
    before = await indexed_files()
    root = client.root  # type: ignore[attr-defined]
    tools = root / "tools.py"
    tools.write_text("def watched_helper(n):\n    return 3 * n\n")
    await asyncio.sleep(1.5)
    assert await indexed_files() == before  # nothing watches the disk but the client
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=tools.as_uri(), type=types.FileChangeType.Created)]
        )
    )
    deadline = time.monotonic() + 30
    while await indexed_files() == before and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await indexed_files() == before + 1


async def test_partial_configuration_keeps_the_initialization_options(
    client: LanguageClient,
) -> None:
    """eglot sends workspace configuration separately: it is laid over, not instead."""
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"completion": {"maxLines": 3}})
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="pilotfish.status")
        )
        if status["settings"]["completion"]["maxLines"] == 3:
            break
        await asyncio.sleep(0.1)
    settings = status["settings"]
    assert settings["completion"]["maxLines"] == 3
    assert settings["completion"]["maxTokens"] == 16 and settings["completion"]["debounceMs"] == 0
    assert settings["dataDir"] == str(client.root / ".pilotfish-data")  # type: ignore[attr-defined]
    assert status["loaded"]  # same model and index settings: nothing reloaded
