"""End to end through a real LSP client (pytest-lsp) and the real pulled model."""

from __future__ import annotations

import asyncio
import time

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_fixture import server_client

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

SOURCE = "def add(a, b):\n    return \n\n\ndef main():\n    print(add(1, 2))\n"


@server_client
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("workspace")
    (root / "calc.py").write_text(SOURCE)
    lsp_client.init_result = await lsp_client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True)
            ),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="workspace")],
            initialization_options={
                "dataDir": str(root / ".pilotfish-data"),
                "completion": {"debounceMs": 0, "maxTokens": 24},
            },
        )
    )
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def wait_until_loaded(client: LanguageClient, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="pilotfish.status")
        )
        if status["loaded"]:
            return status
        if status.get("error"):
            pytest.fail(f"model failed to load: {status['error']}")
        await asyncio.sleep(0.5)
    pytest.fail("model did not load in time")


_versions = iter(range(1, 10_000))


def open_doc(client: LanguageClient, text: str = SOURCE, name: str = "calc.py") -> str:
    """Open (or reopen with new text) a document and return its URI."""
    uri = (client.root / name).as_uri()  # type: ignore[attr-defined]
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=next(_versions), text=text
            )
        )
    )
    return uri


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )


async def test_capabilities_advertise_inline_completion(client: LanguageClient) -> None:
    result: types.InitializeResult = client.init_result  # type: ignore[attr-defined]
    caps = result.capabilities
    assert caps.inline_completion_provider is not None  # needs explicit options (STACK.md)
    assert caps.hover_provider
    assert caps.execute_command_provider is not None
    assert {"pilotfish.status", "pilotfish.explainCompletion", "pilotfish.reindex"} <= set(
        caps.execute_command_provider.commands
    )
    assert result.server_info is not None and result.server_info.name == "pilotfish"


async def test_inline_completion_of_add(client: LanguageClient) -> None:
    await wait_until_loaded(client)
    uri = open_doc(client)
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    assert result is not None
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    assert items, "no inline completion came back"
    assert "a + b" in items[0].insert_text
    assert items[0].command is not None and items[0].command.command == (
        "pilotfish.completionAccepted"
    )
    explained = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="pilotfish.explainCompletion")
    )
    assert explained["completion"] == items[0].insert_text
    assert explained["timings"]["total"] > 0


async def test_cancelled_request_does_not_answer_late(client: LanguageClient) -> None:
    before = (await wait_until_loaded(client))["completions"].get("model", 0)
    # A text no earlier test completed, so the answer cannot come from the cache.
    uri = open_doc(client, "def scale(values, factor):\n    return \n")
    msg_id = "cancel-me"
    started = time.monotonic()
    future = asyncio.wrap_future(
        client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 11), msg_id=msg_id
        )
    )
    await asyncio.sleep(0.2)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(future, timeout=10)
    assert "cancel" in str(info.value).lower()
    assert time.monotonic() - started < 5
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="pilotfish.status")
    )
    assert status["completions"]["model"] == before  # the model run stopped, not finished
    # The server is still healthy and answers the next request.
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    assert result is not None


async def test_newer_request_supersedes_older(client: LanguageClient) -> None:
    await wait_until_loaded(client)
    # A text no earlier test completed: a cached answer would not exercise the scheduler.
    uri = open_doc(client, "def mean(values):\n    return \n")
    first = client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    second = client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    older, newer = await asyncio.gather(first, second)
    assert older is None or not getattr(older, "items", None)
    assert newer is not None and newer.items  # type: ignore[union-attr]


async def test_completion_list_serves_clients_without_inline_completions(
    client: LanguageClient,
) -> None:
    """This client declares no ``inlineCompletion``: ``textDocument/completion`` gets the
    suggestion as one item that replaces the typed word (menus filter by it)."""
    result: types.InitializeResult = client.init_result  # type: ignore[attr-defined]
    assert result.capabilities.completion_provider is not None
    await wait_until_loaded(client)
    uri = open_doc(client, SOURCE.replace("return \n", "return a\n"), name="calc_list.py")
    answer = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=12),
        )
    )
    assert isinstance(answer, types.CompletionList) and answer.is_incomplete
    assert len(answer.items) == 1
    item = answer.items[0]
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.range.start == types.Position(line=1, character=11)
    assert item.text_edit.range.end == types.Position(line=1, character=12)
    # The item is the typed word plus the engine's suggestion, which explainCompletion reports.
    # (What the model suggests after `return a` depends on whether the index is ready yet; the
    # shape of the item does not.)
    explained = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="pilotfish.explainCompletion")
    )
    assert explained["completion"] and item.text_edit.new_text == "a" + explained["completion"]
    assert item.filter_text is not None and item.filter_text.startswith("a")
