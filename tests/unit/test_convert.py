import pytest
from lsprotocol import types
from pilotfish.lsp_server.convert import (
    column_to_utf16,
    to_engine_position,
    uri_to_path,
    utf16_to_column,
)

LINE = 'x = "é😋" + y'  # é is one UTF-16 unit, 😋 two


@pytest.mark.parametrize(
    ("utf16", "column"),
    [(0, 0), (5, 5), (6, 6), (8, 7), (9, 8), (100, len(LINE))],
)
def test_utf16_to_column(utf16: int, column: int) -> None:
    assert utf16_to_column(LINE, utf16) == column


def test_round_trip_every_column() -> None:
    for column in range(len(LINE) + 1):
        assert utf16_to_column(LINE, column_to_utf16(LINE, column)) == column


def test_engine_position_clamps_past_the_end() -> None:
    text = "a\nbc"
    assert to_engine_position(text, types.Position(line=9, character=0)) == (1, 2)
    assert to_engine_position("a\r\nb", types.Position(line=0, character=5)) == (0, 1)


def test_uri_to_path() -> None:
    assert str(uri_to_path("file:///tmp/a%20b.py")) == "/tmp/a b.py"
    assert uri_to_path("untitled:Untitled-1") is None
