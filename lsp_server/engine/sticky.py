"""Sticky snippets: keep the retrieved context of a prompt while the user types near it.

Retrieved snippets sit at the top of the prompt, and a KV cache reuses only a prompt's common
prefix: a snippet set that differs from the previous request's makes the model evaluate the
whole prompt again (about 1,300 tokens, seconds on a CPU core). Retrieval changes its answer
while a user types: the window of other code most like the cursor's lines is placed by what is
typed, and moves a line down with every line written. Typing 14 lines of a real file, the
snippets changed 36 times in 679 keystrokes, and over LSP the editor was shown 2 or 3 model
answers instead of 27 without retrieval; with this module, 17 to 29 (BENCHMARKS.md, session 11).

So a document keeps the snippets it was last shown while the cursor stays within ``reach``
lines of where they were retrieved, as long as the new retrieval's best snippet is one of them
(or it found nothing): then the prompt's head, and its KV cache, stay as they were. A new best
snippet from elsewhere, or a cursor that moved further, takes the new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...code_index.types import Snippet

REACH_LINES = 6
"""Lines the cursor may move from where the snippets were retrieved before they are refreshed.

An aligned window shows 8 lines from the place of the cursor's line; 6 lines on, what follows
the cursor is still in it. Typing the 14 lines above, 6 left 4 changes (4 lines: 5; 8: 3)."""


@dataclass(frozen=True)
class Shown:
    """The snippets a document's prompts show, and the cursor line they were retrieved at."""

    line: int
    snippets: tuple[Snippet, ...]


def _overlaps(a: Snippet, b: Snippet) -> bool:
    return a.path == b.path and a.start_line <= b.end_line and b.start_line <= a.end_line


def sticky_snippets(
    previous: Shown | None, line: int, retrieved: Sequence[Snippet], *, reach: int = REACH_LINES
) -> Shown:
    """What to show at cursor ``line``: ``previous`` kept, or the ``retrieved`` snippets."""
    if previous is not None and abs(line - previous.line) <= reach and previous.snippets and (
        not retrieved or any(_overlaps(retrieved[0], s) for s in previous.snippets)
    ):
        return previous
    return Shown(line=line, snippets=tuple(retrieved))
