import pytest
from lsprotocol import types
from pilotfish.lsp_server.convert import (
    column_to_units,
    to_engine_position,
    units_to_column,
    uri_to_path,
)

LINE = 'x = "é😋" + y'  # é: 1 UTF-16 unit, 2 UTF-8 bytes; 😋: 2 UTF-16 units, 4 UTF-8 bytes


@pytest.mark.parametrize(
    ("utf16", "column"),
    [(0, 0), (5, 5), (6, 6), (8, 7), (9, 8), (100, len(LINE))],
)
def test_utf16_to_column(utf16: int, column: int) -> None:
    assert units_to_column(LINE, utf16) == column


@pytest.mark.parametrize(
    ("utf8", "column"),
    [(0, 0), (5, 5), (7, 6), (11, 7), (12, 8), (100, len(LINE))],
)
def test_utf8_to_column(utf8: int, column: int) -> None:
    assert units_to_column(LINE, utf8, "utf-8") == column


def test_offsets_inside_a_character_round_down() -> None:
    assert units_to_column(LINE, 6, "utf-8") == 5  # the second byte of é
    assert units_to_column(LINE, 9, "utf-8") == 6  # inside 😋
    assert units_to_column(LINE, 7) == 6  # between 😋's surrogates


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_round_trip_every_column(encoding: str) -> None:
    for column in range(len(LINE) + 1):
        units = column_to_units(LINE, column, encoding)
        assert units_to_column(LINE, units, encoding) == column
    assert column_to_units(LINE, len(LINE), encoding) == {"utf-8": 16, "utf-16": 13, "utf-32": 12}[
        encoding
    ]


def test_engine_position_in_each_encoding() -> None:
    text = 'a = "é"\nb = "é" + c'
    # The column just before "c": 10 code points, 11 UTF-8 bytes.
    assert to_engine_position(text, types.Position(line=1, character=11), "utf-8") == (1, 10)
    assert to_engine_position(text, types.Position(line=1, character=10)) == (1, 10)
    assert to_engine_position(text, types.Position(line=1, character=10), "utf-32") == (1, 10)


def test_engine_position_clamps_past_the_end() -> None:
    text = "a\nbc"
    assert to_engine_position(text, types.Position(line=9, character=0)) == (1, 2)
    assert to_engine_position("a\r\nb", types.Position(line=0, character=5)) == (0, 1)


def test_uri_to_path() -> None:
    assert str(uri_to_path("file:///tmp/a%20b.py")) == "/tmp/a b.py"
    assert uri_to_path("untitled:Untitled-1") is None
