"""The word a completion-list item replaces is the client's whole identifier, in any script.

Found with Emacs eglot (tests/editors/test_emacs_eglot.py): eglot keeps an item only if its text
starts with the symbol before the cursor. With an ASCII-only word the item for ``résu`` replaced
``su`` (its text ``suult…``) and the one after ``prix_unité`` replaced nothing, so eglot said
"No match" and dropped both.
"""

from __future__ import annotations

import pytest
from lsprotocol import types
from pilotfish.lsp_server.engine.engine import Completion
from pilotfish.lsp_server.features.completion import completion_item, word_before


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ("    return prix_unité", "prix_unité"),
        ("    return résu", "résu"),
        ("total = données_2", "données_2"),
        ("    return sum(item.val", "val"),
        ("self.__ini", "__ini"),
        ("x = 9abc", "abc"),  # an identifier does not start with a digit
        ("    return sum(", ""),
        ('f"{item.name} coûte 💶 {item.pri', "pri"),
    ],
)
def test_word_before_is_the_whole_identifier(line: str, word: str) -> None:
    assert word_before(line) == word


def test_item_after_a_non_ascii_identifier_starts_with_it() -> None:
    line = "    return prix_unité"
    word = word_before(line)
    start = types.Position(line=0, character=len(line) - len(word))
    end = types.Position(line=0, character=len(line))
    item = completion_item(
        Completion(id="u", text=" * item.quantity", source="model"), word, start, end, "python"
    )
    assert item.label.startswith("prix_unité")
    assert item.filter_text is not None and item.filter_text.startswith("prix_unité")
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.range.start.character == len("    return ")
    assert item.text_edit.new_text == "prix_unité * item.quantity"
