"""A scripted stand-in for `pilotfish serve`, for fast client tests: fixed inline completions.

Answers `textDocument/inlineCompletion` by the text before the cursor (see `ANSWERS`), pushes
`pilotfish/status`, answers the pilotfish commands, and appends every command it receives to
the JSON-lines file named by $FAKE_PILOTFISH_LOG.
"""

from __future__ import annotations

import asyncio
import json
import os

from lsprotocol import types
from pygls.lsp.server import LanguageServer

server = LanguageServer("fake-pilotfish", "0.0.1")

# Text before the cursor (stripped) -> the completions offered there.
ANSWERS: dict[str, list[str]] = {
    "return sum(": ["item.value() for item in items)", "x.price * x.quantity for x in items)"],
    "return [": ["\n        item.name\n        for item in items\n    ]"],
}
STATUS = {
    "model": "fake-model",
    "backend": "fake",
    "device": "cpu",
    "adapter": None,
    "loaded": True,
    "index": {"state": "ready", "files": 3, "chunks": 7},
    "latency": {"p50Ms": 42, "p95Ms": 99},
    "cacheHitRate": 0.5,
    "enabled": True,
}


CURRENT = dict(STATUS)


def _push(status: dict[str, object]) -> None:
    CURRENT.clear()
    CURRENT.update(status)
    server.protocol.notify("pilotfish/status", status)


def _record(command: str, args: object) -> None:
    path = os.environ.get("FAKE_PILOTFISH_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"command": command, "arguments": args}) + "\n")


@server.feature(types.INITIALIZED)
async def initialized(ls: LanguageServer, params: types.InitializedParams) -> None:
    """Push a status, as the real server does once it has loaded.

    With $FAKE_PILOTFISH_INDEXING (seconds), first report indexing at 40% for that long, as
    `$/progress` and as the status' index state.
    """
    seconds = float(os.environ.get("FAKE_PILOTFISH_INDEXING", "0"))
    if seconds:
        token = "fake-indexing"
        await ls.work_done_progress.create_async(token)
        ls.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title="pilotfish: indexing", percentage=0)
        )
        ls.work_done_progress.report(
            token, types.WorkDoneProgressReport(message="indexing 2/3 files", percentage=40)
        )
        indexing = {"state": "indexing", "files": 2, "percentage": 40}
        _push({**STATUS, "index": indexing})
        await asyncio.sleep(seconds)
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="index ready"))
    _push(STATUS)


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
def inline_completion(
    ls: LanguageServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    """Offer the scripted completions for the text before the cursor."""
    doc = ls.workspace.get_text_document(params.text_document.uri)
    line = doc.lines[params.position.line] if params.position.line < len(doc.lines) else ""
    before = line[: params.position.character].strip()
    items = []
    for n, text in enumerate(ANSWERS.get(before, [])):
        items.append(
            types.InlineCompletionItem(
                insert_text=text,
                range=types.Range(params.position, params.position),
                command=types.Command(
                    title="accepted",
                    command="pilotfish.completionAccepted",
                    arguments=[{"id": f"c{params.position.line}-{n}"}],
                ),
            )
        )
    # A replacing item: the range starts before the cursor, the text repeats what is typed.
    if before == "total = su":
        start = types.Position(params.position.line, params.position.character - 2)
        items.append(
            types.InlineCompletionItem(
                insert_text="sum(prices)",
                range=types.Range(start, params.position),
                command=types.Command(
                    title="accepted",
                    command="pilotfish.completionAccepted",
                    arguments=[{"id": "r1"}],
                ),
            )
        )
    return types.InlineCompletionList(items=items)


def _answer(name: str) -> object:
    if name == "pilotfish.status":
        return CURRENT
    if name == "pilotfish.explainCompletion":
        return {
            "id": "c1",
            "prompt_tokens": 120,
            "snippets": [
                {
                    "path": "inventory.py",
                    "start_line": 7,
                    "end_line": 16,
                    "source": "symbol",
                    "reason": "Item is used near the cursor",
                    "link": "file:///inventory.py#L7",
                    "text": "class Item: ...",
                }
            ],
            "timings": {"retrieve": 3.0, "generate": 40.0},
        }
    if name in ("pilotfish.reindex", "pilotfish.train"):
        return {"started": True}
    if name == "pilotfish.adapters":
        return [{"name": "a1", "path": "/adapters/a1", "current": True, "manifest": {}}]
    if name == "pilotfish.useAdapter":
        return {"ok": True}
    return None


def _command(name: str) -> None:
    # pygls maps a handler's parameters onto the arguments: take them all as *args.
    def handler(ls: LanguageServer, *args: object) -> object:
        _record(name, list(args))
        return _answer(name)

    server.command(name)(handler)


for _name in (
    "pilotfish.completionAccepted",
    "pilotfish.completionDismissed",
    "pilotfish.reindex",
    "pilotfish.setEnabled",
    "pilotfish.explainCompletion",
    "pilotfish.status",
    "pilotfish.train",
    "pilotfish.cancelTraining",
    "pilotfish.adapters",
    "pilotfish.useAdapter",
):
    _command(_name)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
    """A cited explanation for `Item`, as the real server writes them."""
    doc = ls.workspace.get_text_document(params.text_document.uri)
    word = doc.word_at_position(params.position)
    if word != "Item":
        return None
    text = "**Item**: one line of stock [1]\n\n1. [inventory.py:7](file:///inventory.py#L7)"
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(
    ls: LanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    """Record the settings the client sent."""
    _record("workspace/didChangeConfiguration", params.settings)


if __name__ == "__main__":
    server.start_io()
