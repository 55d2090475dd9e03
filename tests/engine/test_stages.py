"""Table tests of the pure stages before the model: context, prefilter, prompt, stop scanning."""

from __future__ import annotations

import pytest
from conftest import ctx_at
from pilotfish.lsp_server.engine.context import (
    CompletionRequest,
    PositionError,
    build_context,
    identifiers_near,
    language_for,
    offset_of,
    wants_multiline,
)
from pilotfish.lsp_server.engine.generate import StopScanner, common_prefix_length
from pilotfish.lsp_server.engine.prefilter import PrefilterOptions, skip_reason
from pilotfish.lsp_server.engine.prompt import (
    PromptBudget,
    build_prompt,
    keep_head,
    keep_tail,
    restore_trailing_space,
    split_trailing_space,
)
from pilotfish.lsp_server.engine.templates import TEMPLATES, template_for

QWEN = TEMPLATES["qwen2.5-coder"]


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word and per newline."""
    return len(text.split()) + text.count("\n")


# -- context ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marked", "expected"),
    [
        ("def f():\n    |", True),
        ("def f():\n|", True),
        ("|", True),
        ("x = |", False),
        ("    |x = 1", False),
        ("foo(|)", False),
        ("if a:\n    |   \nb", True),  # trailing spaces after the cursor are nothing
        ("x = 1\n|", False),  # between statements: one statement
        ("def f():\n    x = 1\n\n    |", False),
        ("x = foo(\n    |", True),  # an open call: its arguments
        ("class A:\n\n    |", True),  # blank lines after the opener do not count
    ],
)
def test_wants_multiline(marked: str, expected: bool) -> None:
    assert wants_multiline(ctx_at(marked)) is expected


@pytest.mark.parametrize(
    ("text", "line", "column", "offset"),
    [("ab\ncd", 0, 0, 0), ("ab\ncd", 1, 1, 4), ("ab\ncd", 1, 2, 5), ("", 0, 0, 0)],
)
def test_offset_of(text: str, line: int, column: int, offset: int) -> None:
    assert offset_of(text, line, column) == offset


@pytest.mark.parametrize(("line", "column"), [(-1, 0), (0, 3), (2, 0)])
def test_offset_of_outside(line: int, column: int) -> None:
    with pytest.raises(PositionError):
        offset_of("ab\ncd", line, column)


def test_build_context_splits_at_cursor() -> None:
    ctx = build_context(CompletionRequest(text="a = 1\nb = a\n", line=1, column=4, path="x.py"))
    assert (ctx.prefix, ctx.suffix, ctx.language, ctx.line) == ("a = 1\nb = ", "a\n", "python", 1)


@pytest.mark.parametrize(
    ("path", "language_id", "expected"),
    [
        ("a.py", "", "python"),
        ("a.TSX", "", "tsx"),
        # Ids as clients send them: VS Code's, Emacs eglot's tree-sitter modes, capitalised.
        ("a.tsx", "typescriptreact", "tsx"),
        ("a.py", "python-ts", "python"),
        ("a.go", "go-ts", "go"),
        ("a.js", "js", "javascript"),
        (None, "Python", "python"),
        ("notes.md", "markdown", "markdown"),
        # An id pilotfish does not know gives way to the suffix; without one it stays.
        ("a.py", "cython", "python"),
        (None, "haskell", "haskell"),
        (None, "", "plaintext"),
    ],
)
def test_language_for(path: str | None, language_id: str, expected: str) -> None:
    assert language_for(path, language_id) == expected


def test_identifiers_near_most_recent_first() -> None:
    assert identifiers_near("import os\nvalue = os.path.join(root, name)") == (
        "name",
        "root",
        "join",
        "path",
        "os",
        "value",
        "import",
    )


# -- prefilter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marked", "options", "selection", "expected"),
    [
        ("x = |", PrefilterOptions(), False, None),
        ("pri|nt(x)", PrefilterOptions(), False, "inside a word"),
        ("pri|nt(x)", PrefilterOptions(skip_inside_word=False), False, None),
        ("print(|x)", PrefilterOptions(), False, None),  # before a word, not inside one
        ("x = |", PrefilterOptions(), True, "selection active"),
        ("# note |", PrefilterOptions(skip_in_comments=True), False, "in a comment"),
        ("# note |", PrefilterOptions(), False, None),
        (
            "x = |" + "a" * 100,
            PrefilterOptions(max_file_bytes=50),
            False,
            "file over the size limit",
        ),
    ],
)
def test_skip_reason(
    marked: str, options: PrefilterOptions, selection: bool, expected: str | None
) -> None:
    assert skip_reason(ctx_at(marked), options, selection_active=selection) == expected


def test_skip_in_comments_uses_the_language_marker() -> None:
    options = PrefilterOptions(skip_in_comments=True)
    assert skip_reason(ctx_at("// x |", "javascript"), options) == "in a comment"
    assert skip_reason(ctx_at("-- x |", "lua"), options) == "in a comment"
    assert skip_reason(ctx_at("# x |", "javascript"), options) is None


# -- prompt ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "budget", "expected"),
    [
        ("a b\nc d\ne f", 100, "a b\nc d\ne f"),
        ("a b\nc d\ne f", 3, "e f"),  # whole lines from the end
        ("a b\nc d\ne f", 5, "c d\ne f"),
        ("a b\nc d\ne f", 0, ""),
    ],
)
def test_keep_tail(text: str, budget: int, expected: str) -> None:
    assert keep_tail(text, budget, words) == expected


@pytest.mark.parametrize(
    ("text", "budget", "expected"),
    [
        ("a b\nc d\ne f", 100, "a b\nc d\ne f"),
        ("a b\nc d\ne f", 3, "a b\n"),
        ("a b\nc d\ne f", 6, "a b\nc d\n"),
        ("a b c d", 2, ""),  # no whole line fits
        ("a b", 0, ""),
    ],
)
def test_keep_head(text: str, budget: int, expected: str) -> None:
    assert keep_head(text, budget, words) == expected


def test_keep_tail_cuts_inside_one_huge_line() -> None:
    line = "x " * 1000
    kept = keep_tail(line, 10, words)
    assert words(kept) <= 10 and line.endswith(kept) and kept
    # One token a character (digits): the cut still fits the budget, and fills it.
    digits = "1234567890" * 500
    assert keep_tail(digits, 40, len) == digits[-40:]


@pytest.mark.parametrize(
    ("prefix", "kept", "trimmed"),
    [
        ("    return ", "    return", " "),
        ("x =  ", "x =", "  "),
        ("def f():\n    ", "def f():\n", "    "),  # the model writes the indentation itself
        ("def f():\n\t", "def f():\n", "\t"),
        ("x = 1", "x = 1", ""),
        ("", "", ""),
    ],
)
def test_split_trailing_space(prefix: str, kept: str, trimmed: str) -> None:
    assert split_trailing_space(prefix) == (kept, trimmed)


@pytest.mark.parametrize(
    ("output", "trimmed", "expected"),
    [
        (" a + b", " ", "a + b"),
        ("a + b", " ", "a + b"),
        ("  x", " ", " x"),
        (" x", "", " x"),
        ("        if x:", "    ", "    if x:"),  # one level deeper than typed: kept
        ("  return", "    ", "return"),  # shallower than typed: the typed indentation wins
        ("\n    y = 1", "    ", "\n    y = 1"),  # a new line first: its indentation is absolute
    ],
)
def test_restore_trailing_space(output: str, trimmed: str, expected: str) -> None:
    assert restore_trailing_space(output, trimmed) == expected


def test_build_prompt_within_budget_keeps_cursor_neighbourhood() -> None:
    prefix = "".join(f"line{i} = {i}\n" for i in range(200)) + "result = "
    suffix = "".join(f"after{i} = {i}\n" for i in range(200))
    ctx = ctx_at(prefix + "|" + suffix)
    prompt = build_prompt(ctx, QWEN, words, PromptBudget(infile_tokens=100, suffix_share=0.25))
    assert words(prompt.prefix) + words(prompt.suffix) <= 100
    assert prompt.prefix.endswith("result =") and prompt.trimmed == " "
    assert prompt.suffix.startswith("after0 = 0\n")
    assert (
        prompt.text == f"<|fim_prefix|>{prompt.prefix}<|fim_suffix|>{prompt.suffix}<|fim_middle|>"
    )


def test_build_prompt_snippets_use_repo_format_and_budget() -> None:
    from pilotfish.code_index.types import Snippet

    snippets = [
        Snippet(
            path="/r/a.py",
            start_line=1,
            end_line=1,
            text="def a(): pass",
            score=1.0,
            source="lexical",
            reason="t",
        ),
        Snippet(
            path="/r/b.py",
            start_line=1,
            end_line=1,
            text="x " * 50,
            score=0.5,
            source="lexical",
            reason="t",
        ),
    ]
    ctx = ctx_at("x = |")
    ctx = type(ctx)(prefix=ctx.prefix, suffix="", language="python", path="/r/m.py", repo_root="/r")
    prompt = build_prompt(ctx, QWEN, words, PromptBudget(retrieval_tokens=20), snippets)
    assert [s.path for s in prompt.snippets] == ["/r/a.py"]
    assert prompt.text.startswith(
        "<|repo_name|>r\n<|file_sep|>a.py\ndef a(): pass\n<|file_sep|>m.py\n"
    )
    assert prompt.context_note == "1 of 2 retrieved snippets shown"


@pytest.mark.parametrize(
    ("text", "line_start", "offered", "note"),
    [
        ("def f():\n    |", False, 1, "none: nothing is typed on this line yet"),
        ("def f():\n    |", True, 1, "1 of 1 retrieved snippets shown"),
        ("x = |", False, 0, "none: retrieval found nothing"),
        ("x = |", False, 1, "1 of 1 retrieved snippets shown"),
    ],
)
def test_prompt_says_why_it_shows_the_context_it_shows(
    text: str, line_start: bool, offered: int, note: str
) -> None:
    from pilotfish.code_index.types import Snippet

    snippet = Snippet(
        path="/r/a.py", start_line=1, end_line=1, text="def a(): pass", score=1.0,
        source="symbol", reason="t",
    )
    ctx = ctx_at(text)
    ctx = type(ctx)(prefix=ctx.prefix, suffix="", language="python", path="/r/m.py", repo_root="/r")
    budget = PromptBudget(context_at_line_start=line_start)
    prompt = build_prompt(ctx, QWEN, words, budget, [snippet] * offered)
    assert prompt.context_note.startswith(note)


def test_prompt_says_when_no_retrieved_snippet_is_usable() -> None:
    from pilotfish.code_index.types import Snippet

    js = Snippet(
        path="/r/a.js", start_line=1, end_line=1, text="function a() {}", score=1.0,
        source="symbol", reason="t",
    )
    ctx = ctx_at("x = |")
    ctx = type(ctx)(prefix=ctx.prefix, suffix="", language="python", path="/r/m.py", repo_root="/r")
    prompt = build_prompt(ctx, QWEN, words, PromptBudget(), [js])
    assert prompt.snippets == ()
    assert prompt.context_note.startswith("none: 1 retrieved, none usable here")


def test_template_for_picks_by_tokens() -> None:
    vocab = {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}
    assert template_for(lambda t: t in vocab) is TEMPLATES["starcoder2"]
    assert template_for(lambda t: False) is None


# -- stop scanning ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "stop", "max_lines", "reason", "text"),
    [
        (["a", "b<|endo", "ftext|>c"], ("<|endoftext|>",), 0, "stop", "ab"),
        (["x = 1", "\n", "y"], (), 1, "lines", "x = 1\n"),
        (["\n", "\n", "x", "\n"], (), 1, "lines", "\n\nx\n"),  # blank lines do not count
        (["a\nb\n", "c"], (), 2, "lines", "a\nb\n"),
        (["abc"], ("",), 0, None, "abc"),  # an empty stop string never stops
    ],
)
def test_stop_scanner(
    pieces: list[str], stop: tuple[str, ...], max_lines: int, reason: str | None, text: str
) -> None:
    scanner = StopScanner(stop, max_lines)
    got = None
    for piece in pieces:
        got = scanner.feed(piece)
        if got:
            break
    assert (got, scanner.text) == (reason, text)


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [([], [1], 0), ([1, 2, 3], [1, 2, 4], 2), ([1, 2], [1, 2, 3], 2), ([5], [6], 0)],
)
def test_common_prefix_length(a: list[int], b: list[int], n: int) -> None:
    assert common_prefix_length(a, b) == n


def test_build_prompt_keeps_usable_snippets_library_code_first() -> None:
    from pilotfish.code_index.types import Snippet

    def snip(path: str, text: str) -> Snippet:
        return Snippet(path=f"/r/{path}", start_line=1, end_line=1, text=text, score=1.0,
                       source="symbol", reason="t")

    snippets = [snip("tests/helpers.py", "def fake(): pass"), snip("drive.js", "function a() {}"),
                snip("pkg/core.py", "def real(): pass"), snip("docs/api.md", "# API")]
    ctx = ctx_at("x = |")
    ctx = type(ctx)(prefix=ctx.prefix, suffix="", language="python", path="/r/pkg/m.py",
                    repo_root="/r")
    prompt = build_prompt(ctx, QWEN, words, PromptBudget(), snippets)
    assert [s.path for s in prompt.snippets] == ["/r/pkg/core.py", "/r/docs/api.md",
                                                 "/r/tests/helpers.py"]
    # In a test file, test helpers keep their rank; the budget's snippet count is a cap.
    in_test = type(ctx)(prefix=ctx.prefix, suffix="", language="python",
                        path="/r/tests/test_m.py", repo_root="/r")
    prompt = build_prompt(in_test, QWEN, words, PromptBudget(max_snippets=1), snippets)
    assert [s.path for s in prompt.snippets] == ["/r/tests/helpers.py"]


@pytest.mark.parametrize(
    ("marked", "at_line_start", "shown"),
    [
        ("def f():\n    |", False, False),  # nothing typed on the line: in-file context only
        ("def f():\n    total = |", False, True),  # typed: the snippet may help
        ("def f():\n    |", True, True),  # adapters are trained and served with it
    ],
)
def test_build_prompt_context_at_line_start(marked: str, at_line_start: bool, shown: bool) -> None:
    from pilotfish.code_index.types import Snippet

    snippet = Snippet(path="/r/lib.py", start_line=1, end_line=1, text="def area(r): ...",
                      score=1.0, source="symbol", reason="t")
    ctx = ctx_at(marked)
    ctx = type(ctx)(prefix=ctx.prefix, suffix=ctx.suffix, language="python", path="/r/m.py",
                    repo_root="/r")
    budget = PromptBudget(context_at_line_start=at_line_start)
    prompt = build_prompt(ctx, QWEN, words, budget, [snippet])
    assert bool(prompt.snippets) is shown
    assert ("def area(r)" in prompt.text) is shown
