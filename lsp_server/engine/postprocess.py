"""Postprocess stage: small named rules that clean a raw model output or reject it.

Each rule is ``(text, PostContext) -> str | None``; ``None`` rejects the suggestion. Rules run in
order; model quirks (stop tokens) are handled by the generator, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...code_index.types import CursorContext
from .brackets import CLOSERS, first_stray_closer, imbalance, prefix_state, quotes_for
from .context import current_line_prefix, current_line_suffix, indentation


@dataclass(frozen=True, kw_only=True)
class PostContext:
    """What the rules need to know about the cursor."""

    ctx: CursorContext
    multiline: bool
    max_lines: int = 8


Rule = Callable[[str, PostContext], str | None]

LINE_REST_CHARS = 2000
"""How much of the rest of the cursor's line the rules read: a suggestion is a few hundred
characters, and a generated or minified line can be a megabyte (postprocessing one took 7 s)."""


def _line_rest(post: PostContext) -> str:
    return current_line_suffix(post.ctx)[:LINE_REST_CHARS]


def limit_to_line(text: str, post: PostContext) -> str | None:
    """Single-line mode keeps the first line; a leading newline keeps the first line after it."""
    if post.multiline:
        return text
    if text.startswith(("\n", "\r\n")) and not _line_rest(post).strip():
        # Cursor at the end of a line: the useful suggestion is the next line.
        head = text.lstrip("\r\n").split("\n", 1)[0]
        return "\n" + head if head.strip() else None
    return text.split("\n", 1)[0]


def stop_at_block_end(text: str, post: PostContext) -> str | None:
    """Multi-line suggestions end where the code dedents below the cursor's block."""
    if not post.multiline:
        return text
    lines = text.split("\n")
    base = len(indentation(current_line_prefix(post.ctx)))
    first_indent = base + len(indentation(lines[0])) if lines[0].strip() else base
    floor = min(base, first_indent)
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and len(indentation(line)) < floor:
            break
        kept.append(line)
    return "\n".join(kept)


def limit_lines(text: str, post: PostContext) -> str | None:
    """Bound multi-line suggestions to ``max_lines`` non-empty lines."""
    lines = text.split("\n")
    kept: list[str] = []
    count = 0
    for line in lines:
        if line.strip():
            count += 1
            if count > post.max_lines:
                break
        kept.append(line)
    return "\n".join(kept)


def trim_suffix_overlap(text: str, post: PostContext) -> str | None:
    """Remove the end of the suggestion that repeats the text right after the cursor."""
    line_rest = _line_rest(post).strip()
    if line_rest:
        stripped = text.rstrip()
        for k in range(min(len(line_rest), len(stripped)), 0, -1):
            if stripped.endswith(line_rest[:k]) and _worth_cutting(stripped, k, line_rest, post):
                return stripped[: len(stripped) - k]
        return text
    # Multi-line: drop trailing lines equal to the next non-blank lines of the suffix.
    following = [ln.strip() for ln in post.ctx.suffix.split("\n")[1:] if ln.strip()][:8]
    lines = text.rstrip().split("\n")
    for n in range(min(len(lines) - 1, len(following)), 0, -1):
        if [ln.strip() for ln in lines[-n:]] == following[:n]:
            return "\n".join(lines[:-n])
    return text


_PUNCTUATION = ";,:."


def _worth_cutting(text: str, k: int, line_rest: str, post: PostContext) -> bool:
    """Cut punctuation, closers and quotes only where the line gets no less balanced.

    A whole-word repeat of the rest of the line (3+ characters) is always cut.
    """
    cut = text[len(text) - k :]
    quotes = quotes_for(post.ctx.language)
    if all(ch in _PUNCTUATION for ch in cut):
        return True
    if all(ch in _PUNCTUATION or ch in CLOSERS or ch in quotes for ch in cut):
        state = prefix_state(post.ctx.prefix, post.ctx.language)
        suffix = _line_rest(post)
        lang = post.ctx.language
        return imbalance(state, text[: len(text) - k], suffix, lang) <= imbalance(
            state, text, suffix, lang
        )
    return k == len(line_rest) and len(cut) >= 3


def balance_brackets(text: str, post: PostContext) -> str | None:
    """Balance the suggestion against the code around it.

    A closer that matches no open bracket (in the prefix or the suggestion) ends the
    suggestion; closers and quotes at its end that the rest of the line already supplies are
    dropped, so accepting never leaves ``foo(x))`` or ``"abc""``.
    """
    lang = post.ctx.language
    state = prefix_state(post.ctx.prefix, lang)
    stray = first_stray_closer(text, lang, state)
    if stray is not None:
        text = text[:stray].rstrip(" \t")
    suffix = _line_rest(post)
    if not suffix.strip():
        return text
    quotes = quotes_for(lang)
    run = 0
    while run < len(text) and (text[-1 - run] in CLOSERS or text[-1 - run] in quotes):
        run += 1
    # The shortest cut of trailing closers/quotes that balances the line best.
    best, best_score = 0, imbalance(state, text, suffix, lang)
    for k in range(1, run + 1):
        score = imbalance(state, text[: len(text) - k], suffix, lang)
        if score < best_score:
            best, best_score = k, score
    return text[: len(text) - best]


def drop_repetition(text: str, post: PostContext) -> str | None:
    """Stop at a loop: a line that repeats the previous one, or the line before the cursor."""
    lines = text.split("\n")
    kept: list[str] = []
    for line in lines:
        if kept and line.strip() and line.strip() == kept[-1].strip():
            break
        kept.append(line)
    before = [ln for ln in post.ctx.prefix.split("\n")[:-1] if ln.strip()]
    if (
        kept
        and before
        and kept[0].strip()
        and not current_line_prefix(post.ctx).strip()
        and kept[0].strip() == before[-1].strip()
    ):
        return None
    return "\n".join(kept)


def strip_trailing_whitespace(text: str, post: PostContext) -> str | None:
    """No trailing spaces or blank lines at the end."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def reject_blank(text: str, post: PostContext) -> str | None:
    """Blank or whitespace-only suggestions are not suggestions."""
    return text if text.strip() else None


RULES: tuple[Rule, ...] = (
    limit_to_line,
    stop_at_block_end,
    limit_lines,
    drop_repetition,
    strip_trailing_whitespace,
    balance_brackets,
    trim_suffix_overlap,
    reject_blank,
)


def postprocess(text: str, post: PostContext, rules: Sequence[Rule] = RULES) -> str | None:
    """Run the rules in order; ``None`` when one rejects."""
    current: str | None = text
    for rule in rules:
        if current is None:
            return None
        current = rule(current, post)
    return current
