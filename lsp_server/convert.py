"""Conversions at the LSP edge: UTF-16 positions, document requests, Markdown."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types


def utf16_to_column(line: str, character: int) -> int:
    """Code-point column of a UTF-16 offset on ``line`` (clamped to the line, as LSP asks)."""
    units = 0
    for index, ch in enumerate(line):
        if units >= character:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def column_to_utf16(line: str, column: int) -> int:
    """UTF-16 offset of a code-point column on ``line``."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in line[:column])


def uri_to_path(uri: str) -> Path | None:
    """The filesystem path of a ``file://`` URI, else ``None`` (untitled buffers and such)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def document_lines(text: str) -> list[str]:
    """Lines without their endings, as positions count them."""
    return text.split("\n")


def to_engine_position(text: str, position: types.Position) -> tuple[int, int]:
    """LSP position (UTF-16) to the engine's 0-based line and code-point column."""
    lines = document_lines(text)
    if position.line >= len(lines):
        return len(lines) - 1, len(lines[-1])
    line = lines[position.line].rstrip("\r")
    return position.line, utf16_to_column(line, position.character)
