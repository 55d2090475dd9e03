"""Prefilter stage: decide, before any model work, whether a suggestion can help here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...code_index.types import CursorContext
from .context import current_line_prefix, current_line_suffix

_WORD = re.compile(r"\w")


@dataclass(frozen=True, kw_only=True)
class PrefilterOptions:
    """Which situations skip the model."""

    skip_inside_word: bool = True
    skip_in_comments: bool = False
    max_file_bytes: int = 1_000_000


_LINE_COMMENT = {
    "python": "#",
    "shellscript": "#",
    "ruby": "#",
    "lua": "--",
}


def skip_reason(
    ctx: CursorContext, options: PrefilterOptions, *, selection_active: bool = False
) -> str | None:
    """Why no completion should be asked for, or ``None`` to go ahead."""
    if selection_active:
        return "selection active"
    if len(ctx.prefix.encode("utf-8", "replace")) + len(ctx.suffix) > options.max_file_bytes:
        return "file over the size limit"
    before, after = current_line_prefix(ctx), current_line_suffix(ctx)
    if options.skip_inside_word and after[:1] and _WORD.match(after[:1]) and before[-1:].isalnum():
        return "inside a word"
    if options.skip_in_comments:
        marker = _LINE_COMMENT.get(ctx.language, "//")
        if before.lstrip().startswith(marker):
            return "in a comment"
    return None
