"""Cursor context: the document split at the cursor, with the facts later stages decide on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from ...code_index.languages import (
    DOC_SUFFIXES,
    LANGUAGE_BY_SUFFIX,
    PLAIN_TEXT_SUFFIXES,
    normalize_language,
)
from ...code_index.types import CursorContext

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_KNOWN_LANGUAGES = frozenset(
    {*LANGUAGE_BY_SUFFIX.values(), *PLAIN_TEXT_SUFFIXES.values(), *DOC_SUFFIXES.values()}
)


def language_for(path: str | None, language_id: str = "") -> str:
    """The language of a document: the client's language id, else its file suffix.

    Ids are normalised (``typescriptreact`` -> ``tsx``, ``Python`` -> ``python``, Emacs
    eglot's ``python-ts`` for ``python-ts-mode`` -> ``python``); one pilotfish does not know
    gives way to the file's suffix, so every later stage (comment markers, strings, which
    snippets a file can use) sees a name it knows.
    """
    normal = normalize_language(language_id.strip()) if language_id else ""
    if normal.endswith("-ts"):
        normal = normalize_language(normal[: -len("-ts")])
    if normal in _KNOWN_LANGUAGES:
        return normal
    if path:
        suffix = PurePath(path).suffix.lower()
        by_suffix = LANGUAGE_BY_SUFFIX.get(suffix) or PLAIN_TEXT_SUFFIXES.get(suffix)
        if by_suffix:
            return by_suffix
    return normal or "plaintext"


@dataclass(frozen=True, kw_only=True)
class CompletionRequest:
    """A completion asked for at one point of a document's current text."""

    text: str
    line: int  # 0-based
    column: int  # 0-based, in Python characters (code points)
    path: str | None = None
    language_id: str = ""
    repo_root: str | None = None
    selection_active: bool = False
    document_key: str = ""
    """Identifies the document across requests (its URI), for cancellation and typing-through."""


class PositionError(ValueError):
    """The position lies outside the document."""


def offset_of(text: str, line: int, column: int) -> int:
    """The string offset of a 0-based (line, column); raise :class:`PositionError` if outside."""
    if line < 0 or column < 0:
        raise PositionError(f"negative position {line}:{column}")
    lines = text.split("\n")
    if line >= len(lines):
        raise PositionError(f"line {line + 1} is past the end of the file ({len(lines)} lines)")
    if column > len(lines[line]):
        raise PositionError(
            f"column {column + 1} is past the end of line {line + 1} "
            f"({len(lines[line])} characters)"
        )
    return sum(len(each) + 1 for each in lines[:line]) + column


def build_context(request: CompletionRequest) -> CursorContext:
    """Split the document at the cursor and collect the identifiers near it."""
    offset = offset_of(request.text, request.line, request.column)
    prefix, suffix = request.text[:offset], request.text[offset:]
    return CursorContext(
        prefix=prefix,
        suffix=suffix,
        language=language_for(request.path, request.language_id),
        path=request.path,
        repo_root=request.repo_root,
        line=request.line,
        identifiers=identifiers_near(prefix),
    )


def identifiers_near(prefix: str, lines: int = 12, limit: int = 24) -> tuple[str, ...]:
    """Identifiers in the last lines before the cursor, most recent first, without repeats."""
    tail = "\n".join(prefix.splitlines()[-lines:])
    seen: dict[str, None] = {}
    for name in reversed(_IDENT.findall(tail)):
        if len(name) > 1 and name not in seen:
            seen[name] = None
        if len(seen) >= limit:
            break
    return tuple(seen)


def current_line_prefix(ctx: CursorContext) -> str:
    """Text of the cursor's line before the cursor."""
    return ctx.prefix.rsplit("\n", 1)[-1]


def current_line_suffix(ctx: CursorContext) -> str:
    """Text of the cursor's line after the cursor."""
    return ctx.suffix.split("\n", 1)[0]


def indentation(line: str) -> str:
    """The leading whitespace of a line."""
    return line[: len(line) - len(line.lstrip(" \t"))]


BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")


def opens_block(line: str) -> bool:
    """Whether a line ends by opening a block (``def f():``, ``if x {``)."""
    return line.rstrip().endswith(BLOCK_OPENERS)


def wants_multiline(ctx: CursorContext) -> bool:
    """Multi-line only where a block is about to be written from scratch.

    That is a cursor on a line with nothing but indentation around it, right after a line that
    opens a block (``def f():``, ``if x {``, ``foo(``), or in an empty file. Elsewhere the
    suggestion is the rest of the line or the next line: a blank line between statements gets
    one statement, which is also a quarter of the decoding (16 tokens rather than 64).
    """
    if current_line_prefix(ctx).strip() or current_line_suffix(ctx).strip():
        return False
    before = [line for line in ctx.prefix.split("\n")[:-1] if line.strip()]
    return not before or opens_block(before[-1])
