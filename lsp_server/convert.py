"""Conversions at the LSP edge: positions in the negotiated encoding, URIs, document lines."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types

UTF16 = "utf-16"
"""LSP's default position encoding; clients may negotiate utf-8 (Neovim, Helix) or utf-32."""


def _units(ch: str, encoding: str) -> int:
    """Code units of one character in a position encoding."""
    if encoding == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


def units_to_column(line: str, character: int, encoding: str = UTF16) -> int:
    """Code-point column of a client offset on ``line`` (clamped to the line, as LSP asks).

    An offset that falls inside a character (half a surrogate pair, a byte inside a UTF-8
    sequence) rounds down to that character's start.
    """
    units = 0
    for index, ch in enumerate(line):
        units += _units(ch, encoding)
        if units > character:
            return index
    return len(line)


def column_to_units(line: str, column: int, encoding: str = UTF16) -> int:
    """Client offset (in ``encoding``'s code units) of a code-point column on ``line``."""
    return sum(_units(ch, encoding) for ch in line[:column])


def uri_to_path(uri: str) -> Path | None:
    """The filesystem path of a ``file://`` URI, else ``None`` (untitled buffers and such)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def document_lines(text: str) -> list[str]:
    """Lines without their endings, as positions count them."""
    return text.split("\n")


def to_engine_position(
    text: str, position: types.Position, encoding: str = UTF16
) -> tuple[int, int]:
    """LSP position to the engine's 0-based line and code-point column."""
    lines = document_lines(text)
    if position.line >= len(lines):
        return len(lines) - 1, len(lines[-1])
    line = lines[position.line].rstrip("\r")
    return position.line, units_to_column(line, position.character, encoding)
