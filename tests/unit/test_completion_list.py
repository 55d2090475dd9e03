"""The completion-list fallback: when it answers, and the item it builds."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lsprotocol import types
from pilotfish.code_index.types import Snippet
from pilotfish.lsp_server.engine.engine import Completion
from pilotfish.lsp_server.features.completion import answers_completion, completion_item
from pilotfish.lsp_server.settings import CompletionSettings, Settings

WITH_INLINE = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        inline_completion=types.InlineCompletionClientCapabilities()
    )
)
WITHOUT_INLINE = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        completion=types.CompletionClientCapabilities()
    )
)


@pytest.mark.parametrize(
    ("mode", "caps", "answers"),
    [
        ("auto", WITHOUT_INLINE, True),
        ("auto", types.ClientCapabilities(), True),
        ("auto", WITH_INLINE, False),
        ("on", WITH_INLINE, True),
        ("off", WITHOUT_INLINE, False),
    ],
)
def test_answers_completion(mode: str, caps: types.ClientCapabilities, answers: bool) -> None:
    settings = Settings(completion=CompletionSettings(list_fallback=mode))  # type: ignore[arg-type]
    ls = SimpleNamespace(settings=settings, client_capabilities=caps)
    assert answers_completion(ls) is answers  # type: ignore[arg-type]


def at(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


def test_item_replaces_the_typed_word_so_menus_can_filter_it() -> None:
    done = Completion(id="x", text="th * self.height", source="model", model="m")
    item = completion_item(done, "wid", at(3, 13), at(3, 16), "python")
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.new_text == "width * self.height"
    assert item.text_edit.range == types.Range(start=at(3, 13), end=at(3, 16))
    assert item.filter_text is not None and item.filter_text.startswith("wid")
    assert item.label == "width * self.height"
    assert item.command is not None and item.command.arguments == [{"id": "x"}]


def test_multiline_item_labels_its_first_line_and_shows_all_and_the_context() -> None:
    snippet = Snippet(
        path="geo/shapes.py", start_line=12, end_line=20, text="", score=1.0, source="symbol",
        reason="",
    )
    done = Completion(
        id="y", text="if x:\n        return 1", source="model", snippets=(snippet,), model="m"
    )
    item = completion_item(done, "", at(0, 4), at(0, 4), "python")
    assert item.label == "if x: …"
    assert isinstance(item.documentation, types.MarkupContent)
    assert "```python\nif x:\n        return 1\n```" in item.documentation.value
    assert "geo/shapes.py:12" in item.documentation.value


def test_long_first_line_is_cut_in_the_label_only() -> None:
    text = "x" * 100
    done = Completion(id="z", text=text, source="model")
    item = completion_item(done, "", at(0, 0), at(0, 0), "")
    assert len(item.label) == 60 and item.label.endswith("…")
    assert isinstance(item.text_edit, types.TextEdit) and item.text_edit.new_text == text


def test_plain_text_documentation_for_clients_without_markdown() -> None:
    done = Completion(id="p", text="a + b", source="model")
    item = completion_item(done, "", at(0, 0), at(0, 0), "python", markdown=False)
    assert item.documentation == "a + b"  # a plain string: every client reads it
