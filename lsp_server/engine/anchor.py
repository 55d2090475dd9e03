"""Sticky prompt start: keep the prefix window's first line fixed while the user types.

A KV cache only reuses a prompt's common *prefix*. If the prefix window slid forward by a line
on every keystroke (cutting the oldest line to make room for the newest character), no two
consecutive prompts would share a single token and every request would pay a cold prefill.
So the window starts at an anchor line, kept while the text from it fits the budget; when it no
longer fits, the anchor jumps forward far enough to leave ``slack`` of the budget for typing.
"""

from __future__ import annotations

from collections.abc import Callable

from .prompt import keep_tail

CountTokens = Callable[[str], int]

_MAX_CHARS_PER_TOKEN = 8  # as in prompt.keep_tail: longer texts cannot fit, no need to count


def anchored_start(
    prefix: str,
    anchor: int | None,
    budget_tokens: int,
    count_tokens: CountTokens,
    *,
    slack: float = 0.25,
) -> int:
    """Offset in ``prefix`` where the prompt's prefix should start.

    ``anchor`` is the offset used for the previous request of the same document. It is kept
    when it still starts a line and the text from it fits ``budget_tokens``.
    """
    if budget_tokens <= 0:
        return len(prefix)
    if (
        anchor is not None
        and 0 <= anchor <= len(prefix)
        and (anchor == 0 or prefix[anchor - 1] == "\n")
        and count_tokens(prefix[anchor:]) <= budget_tokens
    ):
        return anchor
    if (
        len(prefix) <= budget_tokens * _MAX_CHARS_PER_TOKEN
        and count_tokens(prefix) <= budget_tokens
    ):
        return 0
    tail = keep_tail(prefix, max(1, int(budget_tokens * (1 - slack))), count_tokens)
    return len(prefix) - len(tail)
