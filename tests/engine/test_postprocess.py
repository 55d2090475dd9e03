"""Table tests of every postprocess rule and of the rule chain."""

from __future__ import annotations

import pytest
from conftest import ctx_at
from pilotfish.lsp_server.engine.postprocess import (
    PostContext,
    balance_brackets,
    drop_repetition,
    limit_lines,
    limit_to_line,
    postprocess,
    reject_blank,
    stop_at_block_end,
    strip_trailing_whitespace,
    trim_suffix_overlap,
)


def post(marked: str, *, multiline: bool = False, max_lines: int = 8, language: str = "python"):
    return PostContext(ctx=ctx_at(marked, language), multiline=multiline, max_lines=max_lines)


@pytest.mark.parametrize(
    ("marked", "multiline", "raw", "expected"),
    [
        ("x = |", False, "1\ny = 2", "1"),
        ("x = |", True, "1\ny = 2", "1\ny = 2"),
        # At the end of a line a leading newline means "the next line".
        ("def f():|", False, "\n    return 1\n    x", "\n    return 1"),
        ("def f():|", False, "\n\n", None),
        # With text after the cursor a newline ends the suggestion.
        ("foo(|)", False, "\nbar", ""),
    ],
)
def test_limit_to_line(marked: str, multiline: bool, raw: str, expected: str | None) -> None:
    assert limit_to_line(raw, post(marked, multiline=multiline)) == expected


@pytest.mark.parametrize(
    ("marked", "raw", "expected"),
    [
        # Body of a function: stops where the code dedents out of the block.
        (
            "def f(x):\n    |",
            "y = x + 1\n    return y\n\ndef g():\n    pass",
            "y = x + 1\n    return y\n",
        ),
        # Nested block opened by the suggestion itself is kept.
        (
            "def f(xs):\n    |",
            "for x in xs:\n        print(x)\n    return 1\nz = 2",
            "for x in xs:\n        print(x)\n    return 1",
        ),
        # Top level: nothing dedents below column 0, everything is kept.
        ("|", "import os\nimport sys", "import os\nimport sys"),
    ],
)
def test_stop_at_block_end(marked: str, raw: str, expected: str) -> None:
    assert stop_at_block_end(raw, post(marked, multiline=True)) == expected


def test_stop_at_block_end_is_off_in_single_line_mode() -> None:
    assert stop_at_block_end("a\nb", post("x = |")) == "a\nb"


@pytest.mark.parametrize(
    ("raw", "max_lines", "expected"),
    [
        ("a\nb\nc", 2, "a\nb"),
        ("a\n\nb\nc", 2, "a\n\nb"),  # blank lines do not count
        ("a", 1, "a"),
    ],
)
def test_limit_lines(raw: str, max_lines: int, expected: str) -> None:
    assert limit_lines(raw, post("|", multiline=True, max_lines=max_lines)) == expected


@pytest.mark.parametrize(
    ("marked", "raw", "expected"),
    [
        # A loop of identical lines stops at the first repeat.
        ("def f():\n    |", "x += 1\n    x += 1\n    x += 1", "x += 1"),
        # A suggestion that only repeats the previous line is rejected.
        ("    a = 1\n    |", "a = 1", None),
        # A different line goes through.
        ("    a = 1\n    |", "b = 2", "b = 2"),
        # Mid-line, repeating the previous line's text is fine (user chose to type it).
        ("a = 1\na = |", "1", "1"),
    ],
)
def test_drop_repetition(marked: str, raw: str, expected: str | None) -> None:
    assert drop_repetition(raw, post(marked, multiline=True)) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a  \n  b \n\n  ", "a\n  b"),
        ("x", "x"),
    ],
)
def test_strip_trailing_whitespace(raw: str, expected: str) -> None:
    assert strip_trailing_whitespace(raw, post("|")) == expected


@pytest.mark.parametrize(
    ("marked", "raw", "expected"),
    [
        # The closer the editor auto-inserted is not repeated.
        ("print(|)", "x, y)", "x, y"),
        # A closer the suggestion needs for its own call is kept.
        ("print(|)", "len(x)", "len(x)"),
        ("print(|)", "len(x))", "len(x)"),
        # Quotes: the auto-closed quote is not doubled.
        ('s = "|"', 'hello"', "hello"),
        ('s = f(|")', 'a, "b")', 'a, "b'),
        # Punctuation the line already ends with.
        ("x = [1, 2|];", ", 3];", ", 3"),
        # A whole-word repeat of the rest of the line is cut.
        ("if x |:\n", "is None:", "is None"),
        ("return |value", "self.value", "self."),
        # Nothing to cut.
        ("x = |", "1", "1"),
        # Multi-line: trailing lines that repeat what follows the cursor.
        ("def f():\n    |\n    return y\n", "y = 1\n    return y", "y = 1"),
    ],
)
def test_trim_suffix_overlap(marked: str, raw: str, expected: str) -> None:
    p = post(marked, multiline="\n" in raw)
    assert trim_suffix_overlap(raw, p) == expected


@pytest.mark.parametrize(
    ("marked", "raw", "expected"),
    [
        # A closer that matches nothing ends the suggestion.
        ("x = |", "1) + 2", "x = 1".removeprefix("x = ")),
        ("x = foo[|", "a)", "a"),  # wrong kind of closer
        # Closers matching brackets open in the prefix are kept.
        ("x = foo(|", "a, b)", "a, b)"),
        ("x = foo(\n    a,\n    |", "b,\n)", "b,\n)"),
        # Doubled closer against the rest of the line.
        ("print(foo(|))", "x))", "x"),
        ("print(|)", "foo(x))", "foo(x)"),
        ("print(|)", "foo(x)", "foo(x)"),
        # Brackets inside strings and comments do not count.
        ("x = |", "')' + y", "')' + y"),
        ("x = 1  |", "# close )", "# close )"),
        ('s = "(|"', ")", ")"),
        # Quotes against the rest of the line.
        ('s = "abc|"', 'def"', "def"),
        ('s = ["a", "|"]', 'b"]', "b"),
        # A closed string that the suffix does not close again stays whole.
        ("print(|)", "'hi'", "'hi'"),
        # JavaScript template strings and // comments.
        ("const s = `abc|`", "def`", "def"),
        ("f(x); // |", "call g()) later", "call g()) later"),
    ],
)
def test_balance_brackets(marked: str, raw: str, expected: str) -> None:
    language = "javascript" if "const" in marked or "//" in marked else "python"
    assert balance_brackets(raw, post(marked, language=language)) == expected


@pytest.mark.parametrize("raw", ["", "   ", "\n\t\n"])
def test_reject_blank(raw: str) -> None:
    assert reject_blank(raw, post("x = |")) is None


@pytest.mark.parametrize(
    ("marked", "multiline", "raw", "expected"),
    [
        ("result = compute(|)", False, "a, b)\nprint(result)", "a, b"),
        ("def add(a, b):\n    |", True, "return a + b\n\n\ndef sub(a, b):", "return a + b"),
        ("x = |", False, "   \n", None),
        ("items = [|]", False, "1, 2, 3]]", "1, 2, 3"),
        ("    a = 1\n    |", True, "a = 1\n    a = 1", None),
    ],
)
def test_chain(marked: str, multiline: bool, raw: str, expected: str | None) -> None:
    assert postprocess(raw, post(marked, multiline=multiline)) == expected


def test_a_megabyte_line_after_the_cursor_is_read_only_near_the_cursor() -> None:
    """Generated one-line files: the rules see the first LINE_REST_CHARS of the line's rest
    (postprocessing read all of it, quadratically: 7 s on a 0.9 MB line)."""
    rest = ")" + ",9" * 500_000
    marked = "x = [1, f(2|" + rest
    assert trim_suffix_overlap("2, 3)", post(marked)) == "2, 3"
    assert balance_brackets("2))", post(marked)) == "2"
    assert postprocess("2, 3)", post("y = [" + ",7" * 300_000 + ", f(|" + rest)) == "2, 3"
