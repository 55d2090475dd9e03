"""``textDocument/completion``: the suggestion as one item, for clients without ghost text.

Helix, Emacs eglot, Kate, Sublime LSP and Neovim's completion menus have no inline completions.

``completion.listFallback`` decides when: ``auto`` answers only clients that do not declare
``textDocument.inlineCompletion`` (so VS Code and Neovim 0.12 keep ghost text alone), ``on``
always, ``off`` never.

Completion menus filter their items by the word before the cursor, so the item replaces that
word with the word plus the suggestion (``self.wid`` + ``th * 2`` -> the item ``width * 2``)
rather than inserting the bare continuation, which no filter would match. The list is marked
incomplete: the suggestion depends on everything typed, so the client asks again.
"""

from __future__ import annotations

import re

from lsprotocol import types

from ..convert import column_to_units, document_lines, to_engine_position
from ..engine.engine import Completion
from ..server import PilotfishServer
from .suggest import accepted_command, suggest

# An identifier as Python and most languages define it (letters of any script, ``_``, then digits
# too), as the clients' own word rules see it: Emacs's symbol at point, VS Code's word pattern.
_WORD_BEFORE = re.compile(r"[^\W\d]\w*$")
LABEL_CHARS = 60


def answers_completion(ls: PilotfishServer) -> bool:
    """Whether ``textDocument/completion`` gets the model's suggestion for this client."""
    mode = ls.settings.completion.list_fallback
    if mode != "auto":
        return mode == "on"
    caps = ls.client_capabilities
    declared = caps is not None and caps.text_document is not None and (
        caps.text_document.inline_completion is not None
    )
    return not declared


def client_reads_markdown(ls: PilotfishServer) -> bool:
    """Whether the client renders Markdown in completion item documentation."""
    caps = ls.client_capabilities
    text = caps.text_document if caps else None
    item = text.completion.completion_item if text and text.completion else None
    formats = (item.documentation_format if item else None) or ()
    return types.MarkupKind.Markdown in formats


def word_before(text: str) -> str:
    """The identifier that ``text`` ends with (``""`` if none): what the item replaces.

    A shorter word than the client's (``su`` of ``résu``) makes menus that filter by their own
    word, such as eglot's, drop the item.
    """
    match = _WORD_BEFORE.search(text)
    return match.group(0) if match else ""


def completion_item(
    completion: Completion,
    word: str,
    start: types.Position,
    end: types.Position,
    language: str,
    *,
    markdown: bool = True,
) -> types.CompletionItem:
    """One item that replaces ``word`` (from ``start`` to the cursor ``end``) with word + text."""
    new_text = word + completion.text
    first = new_text.lstrip("\n").split("\n", 1)[0].strip()
    label = first if len(first) <= LABEL_CHARS else first[: LABEL_CHARS - 1] + "…"
    if "\n" in new_text.strip("\n") and not label.endswith("…"):
        label += " …"
    code = new_text.strip("\n")
    places = [f"{s.path}:{s.start_line}" for s in completion.snippets]
    if markdown:
        doc = f"```{language}\n{code}\n```"
        cited = "".join(f"\n- `{place}`" for place in places)
    else:
        doc = code
        cited = "".join(f"\n- {place}" for place in places)
    if cited:
        doc += f"\n\nRepository context used:{cited}"
    return types.CompletionItem(
        label=label or new_text.strip(),
        kind=types.CompletionItemKind.Text,
        detail=f"pilotfish ({completion.model or 'model'})",
        documentation=(
            types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if markdown else doc
        ),
        filter_text=word + completion.text.lstrip("\n").split("\n", 1)[0],
        sort_text="0",
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=types.Range(start=start, end=end), new_text=new_text),
        command=accepted_command(completion),
    )


def register(server: PilotfishServer) -> None:
    """Register the completion-list handler."""

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(
        ls: PilotfishServer, params: types.CompletionParams
    ) -> types.CompletionList | None:
        if ls.runtime is None or not ls.settings.completion.enable or not answers_completion(ls):
            return None
        if ls.runtime.loaded is None:
            # Menus ask again on the next keystroke (isIncomplete), and some clients give up on
            # a request after seconds (eglot: 10 s): answer at once while the model loads.
            return types.CompletionList(is_incomplete=True, items=[])
        document = ls.workspace.get_text_document(params.text_document.uri)
        encoding = ls.position_encoding
        line, column = to_engine_position(document.source, params.position, encoding)
        line_text = document_lines(document.source)[line].rstrip("\r")
        word = word_before(line_text[:column])
        result = await suggest(ls, params.text_document.uri, params.position)
        if result is None:
            return types.CompletionList(is_incomplete=True, items=[])
        start = types.Position(
            line=line, character=column_to_units(line_text, column - len(word), encoding)
        )
        end = types.Position(line=line, character=column_to_units(line_text, column, encoding))
        item = completion_item(
            result, word, start, end, document.language_id or "",
            markdown=client_reads_markdown(ls),
        )
        return types.CompletionList(is_incomplete=True, items=[item])
