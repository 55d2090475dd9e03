"""The first moments of a session: requests that arrive while the model is still loading."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_fixture import server_client

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

SOURCE = "def add(a, b):\n    return a\n"


@server_client
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("startup")
    (root / "calc.py").write_text(SOURCE)
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),  # no inline completions: the menu path
            root_uri=root.as_uri(),
            initialization_options={"dataDir": str(root / ".pilotfish-data"),
                                    "index": {"embeddings": False}},
        )
    )
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def test_completion_menu_answers_at_once_while_the_model_loads(
    client: LanguageClient,
) -> None:
    """Menus ask again as the user types; eglot gives up on a request after 10 s."""
    uri = (client.root / "calc.py").as_uri()  # type: ignore[attr-defined]
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                 text=SOURCE)
        )
    )
    answer = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=12),
        )
    )
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="pilotfish.status")
    )
    assert isinstance(answer, types.CompletionList)
    assert answer.is_incomplete and not answer.items
    assert not status["loaded"]  # the answer did not wait for the model
