"""Prompt stage: the FIM prompt within a token budget, with retrieved context.

Training imports this module so that an adapter learns from exactly the prompts the server builds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...code_index.relevance import is_test_path, usable_language
from ...code_index.types import CursorContext, Snippet
from .templates import ContextStyle, FimTemplate, RepoFile

CountTokens = Callable[[str], int]

# A rough upper bound of characters per token for code; used only to cut huge texts cheaply
# before exact counting.
_MAX_CHARS_PER_TOKEN = 8


@dataclass(frozen=True, kw_only=True)
class PromptBudget:
    """Token budgets: in-file text, and retrieved context on top of it."""

    infile_tokens: int = 1536
    retrieval_tokens: int = 384
    max_snippets: int = 8
    """Most snippets shown, however many fit the token budget."""
    context_at_line_start: bool = True
    """Whether retrieved context is shown when nothing is typed on the cursor's line yet.

    Every served model is shown it there (BENCHMARKS.md "Completion quality", session 10:
    the 0.5B's aligned windows of similar code, 24 exact lines of 104 against 12 without)."""
    suffix_share: float = 0.25
    """Share of the in-file budget the text after the cursor may take."""


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """A rendered prompt and what went into it."""

    text: str
    prefix: str
    suffix: str
    snippets: tuple[Snippet, ...]
    template: str
    template_version: str
    trimmed: str = ""
    """Spaces cut from the end of the prefix; the model's output starts with them instead."""
    context_note: str = ""
    """Why the prompt shows the repository context it shows (or none), for users."""


def build_prompt(
    ctx: CursorContext,
    template: FimTemplate,
    count_tokens: CountTokens,
    budget: PromptBudget,
    snippets: Sequence[Snippet] = (),
    *,
    style: ContextStyle = "repo",
) -> Prompt:
    """Render the prompt for ``ctx``: truncated prefix/suffix, then snippets that fit.

    ``style`` says how the snippets are shown (see :data:`ContextStyle`); it is part of the
    template version an adapter records, since an adapter learns one presentation.
    """
    suffix_budget = int(budget.infile_tokens * budget.suffix_share)
    suffix = keep_head(ctx.suffix, suffix_budget, count_tokens)
    prefix_budget = budget.infile_tokens - count_tokens(suffix)
    prefix = keep_tail(ctx.prefix, prefix_budget, count_tokens)
    prefix, trimmed = split_trailing_space(prefix)

    used: list[Snippet] = []
    spent = 0
    offered = len(snippets)
    if not shows_context(ctx, budget):
        snippets = ()
    for snippet in usable_snippets(ctx, snippets):
        if len(used) >= budget.max_snippets:
            break
        cost = count_tokens(snippet.text) + 8  # path line and separators
        if spent + cost > budget.retrieval_tokens:
            continue
        used.append(snippet)
        spent += cost

    repo_files = [RepoFile(path=_display_path(s.path, ctx.repo_root), text=s.text) for s in used]
    text = template.render(
        prefix,
        suffix,
        repo_files=repo_files,
        repo=Path(ctx.repo_root).name if ctx.repo_root else "",
        path=_display_path(ctx.path, ctx.repo_root) if ctx.path else "",
        style=style,
        language=ctx.language,
    )
    return Prompt(
        text=text,
        prefix=prefix,
        suffix=suffix,
        snippets=tuple(used),
        template=template.name,
        template_version=template.version if style == "repo" else f"{template.version}-{style}",
        trimmed=trimmed,
        context_note=_context_note(ctx, budget, offered, len(used)),
    )


def _context_note(ctx: CursorContext, budget: PromptBudget, offered: int, used: int) -> str:
    if not shows_context(ctx, budget):
        return (
            "none: nothing is typed on this line yet, and context is set to be shown only "
            "once something is"
        )
    if not offered:
        return ("none: retrieval found nothing worth showing here (for a model served similar "
                "code only: no other code looks more like these lines than this file; or the "
                "index is still building)")
    if not used:
        return f"none: {offered} retrieved, none usable here (another language, or over budget)"
    return f"{used} of {offered} retrieved snippets shown"


def shows_context(ctx: CursorContext, budget: PromptBudget) -> bool:
    """Whether the prompt for ``ctx`` shows retrieved context at all (see the budget's rule)."""
    return budget.context_at_line_start or bool(ctx.prefix.rsplit("\n", 1)[-1].strip())


def usable_snippets(ctx: CursorContext, snippets: Sequence[Snippet]) -> list[Snippet]:
    """The snippets code at the cursor can use, best first; test code last outside tests.

    A small model does worse with context it cannot use than with none (BENCHMARKS.md,
    "Completion quality"): code of another language never enters the prompt, and library
    code goes before test code unless the cursor is in a test.
    """
    kept = [s for s in snippets if usable_language(s.path, ctx.language)]
    if ctx.path and is_test_path(_display_path(ctx.path, ctx.repo_root)):
        return kept
    return sorted(kept, key=lambda s: is_test_path(s.path))  # stable: ranks kept otherwise


def split_trailing_space(prefix: str) -> tuple[str, str]:
    """Move the spaces at the end of the cursor's line out of the prompt.

    Tokenizers fold a space into the next word (`` a``), so a prompt ending in a space asks the
    model for a token sequence it rarely saw, and FIM output degrades badly (seen with
    Qwen2.5-Coder: ``return `` completed to an unrelated line, ``return`` to `` a + b``).
    Indentation alone on the line goes too: the prompt then ends at a line start and the model
    writes the whole line, indentation included (80 stdlib lines, BENCHMARKS.md "Completion
    quality": right indentation 96 % of the time, against 71 % when the prompt ended in the
    indentation, where the model often indented once more).
    """
    line = prefix.rsplit("\n", 1)[-1]
    stripped = line.rstrip(" \t")
    if stripped == line:
        return prefix, ""
    cut = len(line) - len(stripped)
    return prefix[:-cut], line[-cut:]


def restore_trailing_space(output: str, trimmed: str) -> str:
    """Drop from the model's output the spaces the user had already typed."""
    if not trimmed:
        return output
    n = 0
    while n < len(trimmed) and n < len(output) and output[n] in " \t":
        n += 1
    return output[n:]


def keep_tail(text: str, max_tokens: int, count_tokens: CountTokens) -> str:
    """The longest tail of ``text`` made of whole lines (or a cut first line) within the budget."""
    if max_tokens <= 0:
        return ""
    text = text[-max_tokens * _MAX_CHARS_PER_TOKEN :]
    if count_tokens(text) <= max_tokens:
        return text
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    # Binary search the first line start whose tail fits.
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if count_tokens(text[starts[mid] :]) <= max_tokens:
            hi = mid
        else:
            lo = mid + 1
    tail = text[starts[lo] :]
    if count_tokens(tail) <= max_tokens:
        return tail
    # A single line longer than the budget: the longest tail of it that fits (digits and
    # symbols run one character a token, so no fixed characters-per-token guess holds).
    lo, hi = 0, len(tail)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(tail[-mid:]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return tail[len(tail) - lo :]


def keep_head(text: str, max_tokens: int, count_tokens: CountTokens) -> str:
    """The longest head of ``text`` made of whole lines within the budget."""
    if max_tokens <= 0:
        return ""
    text = text[: max_tokens * _MAX_CHARS_PER_TOKEN]
    if count_tokens(text) <= max_tokens:
        return text
    ends = [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    lo, hi = 0, len(ends)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(text[: ends[mid - 1]]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return text[: ends[lo - 1]] if lo else ""


def _display_path(path: str | None, repo_root: str | None) -> str:
    if not path:
        return ""
    if repo_root:
        try:
            return Path(path).resolve().relative_to(Path(repo_root).resolve()).as_posix()
        except ValueError:
            pass
    return Path(path).name
