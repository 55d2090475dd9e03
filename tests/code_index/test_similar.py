"""Similar code: identifier-set windows, and the window leading retrieval when asked."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.similar import (
    SHOW_AFTER,
    SHOW_BEFORE,
    CursorLines,
    FileWindows,
    identifier_set,
    in_file_floor,
    jaccard,
    query_identifiers,
)
from pilotfish.code_index.types import CursorContext


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("x y", "x y", 1.0), ("x y", "y z", 1 / 3), ("x", "z", 0.0), ("", "", 0.0)],
)
def test_jaccard(a: str, b: str, expected: float) -> None:
    assert jaccard(identifier_set(a), identifier_set(b)) == pytest.approx(expected)


def test_query_is_the_last_lines_before_the_cursor() -> None:
    prefix = "\n".join(f"old{i} = 1" for i in range(30)) + "\nfresh = ob"
    query = query_identifiers(prefix, lines=3)
    assert query == {"old28", "old29", "fresh", "ob"}


def test_best_window_finds_the_matching_lines_and_their_numbers() -> None:
    lines = [f"filler_{i} = {i}" for i in range(40)]
    lines[25:27] = ["engine = CompletionEngine(gen, settings)", "engine.complete(request)"]
    query = identifier_set("engine = CompletionEngine(gen, settings)\nresult = engine.complete")
    window = FileWindows(lines, size=10, stride=5).best(query)
    assert window is not None
    assert window.start <= 26 and window.end >= 27  # 1-based lines
    assert "CompletionEngine(gen, settings)" in window.text
    assert FileWindows(lines[:3]).best(identifier_set("nothing_shared")) is None


def test_top_windows_are_the_best_that_do_not_overlap() -> None:
    lines = [f"filler_{i} = {i}" for i in range(60)]
    lines[5:7] = ["port = DEFAULT_PORTS.get(url.scheme)", "host = url.host"]
    lines[45:47] = ["port = DEFAULT_PORTS.get(url.scheme)", "scheme = url.scheme"]
    query = identifier_set("port = DEFAULT_PORTS.get(url.scheme)\nscheme = url.scheme")
    windows = FileWindows(lines, size=10, stride=5).top(query, 3)
    assert [w.score for w in windows] == sorted((w.score for w in windows), reverse=True)
    assert any(w.start <= 46 <= w.end for w in windows[:1])  # the closer match first
    assert any(w.start <= 6 <= w.end for w in windows)  # the other one too, not a neighbour
    for a, b in itertools.combinations(windows, 2):
        assert a.end < b.start or b.end < a.start
    assert FileWindows(lines, size=10, stride=5).top(identifier_set("nothing_shared"), 3) == []


def test_windows_near_line_ranges_only_score_those() -> None:
    """A huge file is searched only around the chunks the lexical index matched."""
    lines = [f"filler_{i} = {i}" for i in range(200)]
    lines[10:12] = ["port = DEFAULT_PORTS.get(url.scheme)", "host = url.host"]  # the best
    lines[150:152] = ["port = DEFAULT_PORTS.get(url.scheme)", "other = 1"]
    query = identifier_set("port = DEFAULT_PORTS.get(url.scheme)\nhost = url.host")
    windows = FileWindows(lines, size=10, stride=5)
    assert windows.top(query, 1)[0].start <= 11 <= windows.top(query, 1)[0].end
    near = windows.top(query, 1, near=[(150, 152)])[0]
    assert near.start <= 151 <= near.end
    assert windows.starts_near([(150, 152)]) == list(range(130, 165, 5))
    computed = FileWindows(lines, size=10, stride=5)
    computed.top(query, 1, near=[(150, 152)])
    assert set(computed.sets) == set(computed.starts_near([(150, 152)]))  # nothing else read


def _block_then_answer() -> tuple[list[str], str]:
    """Another file: a block like the cursor's lines ending a window, the answer after it."""
    lines = [f"filler_{i} = {i}" for i in range(60)]
    block = ["conn = pool.acquire(origin)", "conn.send(request)", "status = conn.read_status()"]
    lines[17:20] = block
    lines[20] = "return Response(status, conn.read_body())"
    return lines, "\n".join(["def fetch(pool, origin, request):", *block])


def test_a_window_is_shown_around_the_cursors_place_in_it() -> None:
    lines, prefix = _block_then_answer()
    query = identifier_set(prefix)
    windows = FileWindows(lines, size=20, stride=10)
    fixed = windows.best(query)
    assert fixed is not None and "return Response" not in fixed.text  # the window ends before it
    shown = windows.top(query, 1, cursor=CursorLines.of(prefix + "\n    "))[0]
    place = 21  # 1-based line of the answer: after the line like the cursor's previous one
    assert (shown.start, shown.end) == (place - SHOW_BEFORE, place + SHOW_AFTER - 1)
    assert "return Response(status, conn.read_body())" in shown.text
    assert shown.text == "\n".join(lines[shown.start - 1 : shown.end])
    assert shown.score == fixed.score  # chosen by the window, only shown elsewhere


def test_the_typed_part_of_the_line_picks_between_equal_places() -> None:
    lines = [f"filler_{i} = {i}" for i in range(40)]
    lines[10:12] = ["status = conn.read_status()", "return Response(status)"]
    lines[20:22] = ["status = conn.read_status()", "raise ProtocolError(status)"]
    windows = FileWindows(lines, size=20, stride=10)
    cursor = CursorLines(before=("status = conn.read_status()",), typed="raise Pro")
    assert windows.place(0, 30, cursor) == 21  # 0-based: the raise, not the first return
    assert windows.place(0, 30, CursorLines(("status = conn.read_status()",), "")) == 11


def test_only_windows_above_a_score_are_returned_and_aligned() -> None:
    lines, prefix = _block_then_answer()
    query, cursor = identifier_set(prefix), CursorLines.of(prefix + "\n")
    windows = FileWindows(lines, size=20, stride=10)
    best = windows.top(query, 2)
    assert len(best) == 2 and best[1].score < best[0].score
    assert [w.score for w in windows.top(query, 2, above=best[1].score)] == [best[0].score]
    assert windows.top(query, 2, cursor=cursor, above=best[0].score) == []
    assert not windows._line_sets  # nothing was aligned


def test_an_aligned_window_keeps_its_length_at_the_files_start() -> None:
    lines = [f"filler_{i} = {i}" for i in range(60)]
    lines[1:4] = ["import socket", "import ssl", "from .base import Stream"]
    prefix = "import socket\nimport ssl\nfrom .base import Stream"
    shown = FileWindows(lines).top(identifier_set(prefix), 1,
                                   cursor=CursorLines.of(prefix + "\n"))[0]
    assert (shown.start, shown.end) == (1, SHOW_BEFORE + SHOW_AFTER)


def test_cursor_lines_are_the_previous_lines_and_the_typed_part() -> None:
    assert CursorLines.of("a = 1\n  b = 2\n    c = 3\n    ret") == CursorLines(
        before=("b = 2", "c = 3"), typed="ret")
    assert CursorLines.of("x") == CursorLines(before=(), typed="x")


def test_short_text_is_one_window() -> None:
    window = FileWindows(["a = b", "c = d", "", ""]).best(identifier_set("a c"))
    assert window is not None and (window.start, window.end) == (1, 2)


USAGE = '''\
from engine import CompletionEngine


def test_runs_once(gen, settings):
    engine = CompletionEngine(gen, settings, cache_size=0)
    first = engine.complete(make_request("x = "))
    assert first.source == "model"
'''

DEFINITION = '''\
class CompletionEngine:
    """Turns requests into suggestions."""

    def __init__(self, gen, settings, cache_size=256):
        self.gen = gen
'''


@pytest.fixture
def index(tmp_path: Path):
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "engine.py").write_text(DEFINITION)
    (root / "tests" / "test_one.py").write_text(USAGE)
    (root / "tests" / "test_two.py").write_text("")
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    idx.build()
    yield idx
    idx.close()


def test_similar_window_leads_only_when_asked(index: Index) -> None:
    prefix = (
        "from engine import CompletionEngine\n\n\ndef test_runs_twice(gen, settings):\n    "
    )
    ctx = CursorContext(
        prefix=prefix, suffix="\n", language="python", line=prefix.count("\n"),
        path=str(index.root / "tests" / "test_two.py"), repo_root=str(index.root),
    )
    led = index.retrieve(ctx, budget_tokens=600, similar_code=True)
    assert led and led[0].path == "tests/test_one.py", [s.path for s in led]
    assert "engine = CompletionEngine(gen, settings, cache_size=0)" in led[0].text
    assert led[0].reason.startswith("code like the lines before the cursor")
    assert led[0].source == "similar"
    plain = index.retrieve(ctx, budget_tokens=600)
    assert not any(s.reason.startswith("code like") for s in plain)


def test_the_cursor_file_is_never_its_own_similar_code(index: Index) -> None:
    prefix = USAGE + "\n\ndef test_again(gen, settings):\n    "
    ctx = CursorContext(
        prefix=prefix, suffix="\n", language="python", line=prefix.count("\n"),
        path=str(index.root / "tests" / "test_one.py"), repo_root=str(index.root),
    )
    led = index.retrieve(ctx, budget_tokens=600, similar_code=True)
    assert not any(s.path == "tests/test_one.py" and s.reason.startswith("code like")
                   for s in led)


def test_in_file_floor_skips_the_query_lines_and_reads_both_sides() -> None:
    query_lines = [f"q{i} = step(q{i - 1})" for i in range(20)]
    copy = ["engine = CompletionEngine(gen, settings)", "engine.complete(request)"]
    pad = [f"pad{i} = 0" for i in range(30)]
    query = identifier_set("engine CompletionEngine gen settings complete request")
    above = "\n".join([*copy, *pad, *query_lines, "    "])
    assert in_file_floor(above, "\n", query) > 0.2  # the copy far above counts
    assert in_file_floor("\n".join([*pad, *query_lines, "    "]), "\n", query) == 0.0
    # The query's own lines never count, however alike.
    alike = "\n".join([*copy, "    "])
    assert in_file_floor(alike, "\n", query) == 0.0
    assert in_file_floor("x = 1\n", "\n" + "\n".join(copy), query) > 0.5  # below the cursor


def test_at_line_start_similar_code_shows_only_what_beats_the_file(index: Index) -> None:
    """Where nothing is typed, a model that is served similar code gets context only when
    another file looks more like the cursor's lines than its own file does."""
    prefix = "from engine import CompletionEngine\n\n\ndef test_runs_twice(gen, settings):\n    "
    own = "\n\n" + USAGE.replace("test_runs_once", "test_here")  # the same code, below
    ctx = CursorContext(
        prefix=prefix, suffix=own, language="python", line=prefix.count("\n"),
        path=str(index.root / "tests" / "test_two.py"), repo_root=str(index.root),
    )
    assert index.retrieve(ctx, budget_tokens=600, similar_code=True) == []
    # Once something is typed, definitions still come (and no window that does not beat it).
    typed = CursorContext(
        prefix=prefix + "engine = Compl", suffix=own, language="python",
        line=prefix.count("\n"), path=str(index.root / "tests" / "test_two.py"),
        repo_root=str(index.root),
    )
    snippets = index.retrieve(typed, budget_tokens=600, similar_code=True)
    assert snippets and not any(s.source == "similar" for s in snippets)
    assert any(s.path == "engine.py" for s in snippets)


def test_window_cache_rereads_a_changed_file(tmp_path: Path) -> None:
    import os

    from pilotfish.code_index.similar import WindowCache

    path = tmp_path / "m.py"
    body = [f"filler_{i} = {i}" for i in range(60)]
    body[5] = "alpha = beta(gamma)"
    body[45] = "alpha = beta(delta)"
    path.write_text("\n".join(body))
    cache = WindowCache()
    query = identifier_set("alpha = beta(gamma)")
    first = cache.top(path, query)
    assert len(first) == 1 and first[0].start == 1  # the window holding line 6
    body[5] = "unrelated = 0"
    path.write_text("\n".join(body) + "\n# changed\n")
    os.utime(path, ns=(1, 10**18))  # a different mtime even on coarse clocks
    again = cache.top(path, query)
    assert len(again) == 1 and "gamma" not in again[0].text
    assert cache.top(tmp_path / "missing.py", query) == []


def test_only_similar_shows_windows_and_no_definitions(index: Index) -> None:
    """The 0.5B's served context mid-line: the windows that beat the file, nothing else."""
    prefix = ("from engine import CompletionEngine\n\n\ndef test_runs_twice(gen, settings):\n"
              "    engine = ")

    def ctx(text: str, suffix: str = "\n") -> CursorContext:
        return CursorContext(
            prefix=text, suffix=suffix, language="python", line=text.count("\n"),
            path=str(index.root / "tests" / "test_two.py"), repo_root=str(index.root),
        )

    shown = index.retrieve(ctx(prefix), budget_tokens=600, only_similar=True)
    assert shown and all(s.source == "similar" for s in shown), shown
    assert shown[0].path == "tests/test_one.py"
    everything = index.retrieve(ctx(prefix), budget_tokens=600, similar_code=True)
    assert any(s.path == "engine.py" for s in everything)  # what only_similar leaves out
    # The file itself looks more alike: nothing at all.
    own = "\n\n" + USAGE.replace("test_runs_once", "test_here")
    assert index.retrieve(ctx(prefix, own), budget_tokens=600, only_similar=True) == []
    # A name being typed changes nothing: definitions cost the 0.5B there too (BENCHMARKS.md).
    typed = index.retrieve(ctx(prefix + "Compl", own), budget_tokens=600, only_similar=True)
    assert typed == []



def test_similar_code_comes_from_files_of_the_cursors_language(tmp_path: Path) -> None:
    """A Python line is completed from Python windows, not from a text file's rows."""
    root = tmp_path / "repo"
    for folder in ("lib", "notes", "more", "app"):
        (root / folder).mkdir(parents=True)
    (root / "lib" / "engine.py").write_text(DEFINITION)
    (root / "notes" / "usage.txt").write_text(USAGE)
    (root / "more" / "test_one.py").write_text(USAGE)
    (root / "app" / "main.py").write_text("")
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        idx.build()
        prefix = ("from engine import CompletionEngine\n\n\ndef test_runs_twice(gen, settings):\n"
                  "    engine = ")
        for path, language in ((root / "app" / "main.py", "python"),
                               (root / "app" / "unsaved.py", "python")):  # not indexed yet
            ctx = CursorContext(prefix=prefix, suffix="\n", language=language,
                                line=prefix.count("\n"), path=str(path), repo_root=str(root))
            shown = [s.path for s in idx.retrieve(ctx, budget_tokens=600, only_similar=True)]
            assert "more/test_one.py" in shown and "notes/usage.txt" not in shown, shown
    finally:
        idx.close()


def _many_terms_repo(root: Path) -> str:
    """Ten files, each the only one to use one of the names the cursor's lines use."""
    (root / "pkg").mkdir(parents=True)
    names = [f"helper_{w}" for w in ("amber", "birch", "cedar", "dune", "ember", "fjord",
                                     "grove", "heath", "islet", "jetty")]
    for i, name in enumerate(names):
        body = "\n".join(f"    value_{i}_{j} = {name}(value_{i}_{j - 1})" for j in range(1, 8))
        (root / "pkg" / f"mod_{i}.py").write_text(f"def use_{i}(value_{i}_0):\n{body}\n")
    (root / "pkg" / "here.py").write_text("")
    return "def work(x):\n" + "".join(f"    x = {name}(x)\n" for name in names) + "    y = "


def test_similar_code_searches_the_nearest_terms_first(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a few terms are searched: the nearest, not an order that follows string hashing."""
    root = tmp_path / "repo"
    prefix = _many_terms_repo(root)
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        idx.build()
        asked: list[list[str]] = []
        selective = idx.retriever._selective_terms
        monkeypatch.setattr(idx.retriever, "_selective_terms",
                            lambda db, words: asked.append(list(words)) or selective(db, words))
        ctx = CursorContext(prefix=prefix, suffix="\n", language="python",
                            line=prefix.count("\n"), path=str(root / "pkg" / "here.py"),
                            repo_root=str(root))
        assert idx.retrieve(ctx, budget_tokens=2000, only_similar=True)
        assert asked and asked[0][:3] == ["helper_jetty", "helper_islet", "helper_heath"], asked
    finally:
        idx.close()


def test_terms_no_chunk_holds_are_not_searched(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _many_terms_repo(root)
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        idx.build()  # learns the common terms (warm): absent ones are not among them
        db = idx.store.reader()
        terms = idx.retriever._selective_terms(db, ["nowhere_to_be_found", "helper_amber"])
        assert "helper_amber" in terms and "nowhere_to_be_found" not in terms
    finally:
        idx.close()
