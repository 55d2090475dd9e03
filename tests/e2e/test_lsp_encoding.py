"""Position encodings: a client that negotiates UTF-8 (as Neovim and Helix do) gets byte offsets.

pygls takes the client's first supported choice; every position pilotfish reads or writes must
then be in UTF-8 code units, or completions land in the wrong column on any non-ASCII line.
"""

from __future__ import annotations

import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.test_lsp_inline import wait_until_loaded

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

# "héllo → wörld" has 3 two-byte and 1 three-byte characters before `+ gree`.
SOURCE = 'def greet(greeting):\n    return "héllo → wörld" + gree\n'
LINE = SOURCE.splitlines()[1]


@pytest_lsp.fixture(
    scope="module",
    loop_scope="module",
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "pilotfish.lsp_server", "serve"]
    ),
)
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("workspace")
    (root / "greet.py").write_text(SOURCE)
    lsp_client.init_result = await lsp_client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                general=types.GeneralClientCapabilities(
                    position_encodings=[
                        types.PositionEncodingKind.Utf8,
                        types.PositionEncodingKind.Utf16,
                    ]
                )
            ),
            root_uri=root.as_uri(),
            initialization_options={
                "dataDir": str(root / ".pilotfish-data"),
                "completion": {"debounceMs": 0, "maxTokens": 16},
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
            position=types.Position(line=1, character=end_bytes),
        )
    )
    assert isinstance(answer, types.CompletionList) and answer.items
    edit = answer.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    # The range replaces exactly the typed word `gree`, counted in bytes.
    assert edit.range.start == types.Position(line=1, character=end_bytes - len("gree"))
    assert edit.range.end == types.Position(line=1, character=end_bytes)
    assert edit.new_text.startswith("gree")
    # The engine saw the cursor after `gree` (not 4 characters further left, mid-string).
    explained = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="pilotfish.explainCompletion")
    )
    assert edit.new_text == "gree" + explained["completion"]
