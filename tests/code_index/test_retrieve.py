"""Retrieval: cross-file definitions first, the cursor's region excluded, budgets, the service."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.retrieve import estimate_tokens
from pilotfish.code_index.types import CursorContext
from pilotfish.lsp_server.indexing import IndexProgress, IndexService
from pilotfish.lsp_server.settings import IndexSettings

GEOMETRY = '''\
"""Shapes."""

import math


def area_of_circle(radius: float) -> float:
    """Area of a circle of the given radius."""
    return math.pi * radius ** 2


class Polygon:
    """A closed shape made of points."""

    def __init__(self, points):
        self.points = points

    def perimeter(self) -> float:
        """Sum of the edge lengths."""
        return sum(_dist(a, b) for a, b in zip(self.points, self.points[1:]))


def _dist(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])
'''

MAIN_PREFIX = '''\
from shapes.geometry import area_of_circle, Polygon


def local_helper(r):
    return r * 2


def report(r):
    total = area_of_circle(r) + local_helper(r)
    return '''


def _repo(root: Path) -> Path:
    (root / "shapes").mkdir(parents=True)
    (root / "shapes" / "geometry.py").write_text(GEOMETRY)
    (root / "app").mkdir()
    (root / "app" / "main.py").write_text(MAIN_PREFIX + "total\n")
    (root / "README.md").write_text(
        "# Shapes\n\nCompute the area of circles.\n\n## Install\n\npip\n"
    )
    return root


def _ctx(root: Path, prefix: str = MAIN_PREFIX, suffix: str = "\n") -> CursorContext:
    return CursorContext(
        prefix=prefix, suffix=suffix, language="python", path=str(root / "app" / "main.py"),
        repo_root=str(root), line=prefix.count("\n"),
    )


@pytest.fixture
def index(tmp_path: Path):
    root = _repo(tmp_path / "repo")
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    idx.build()
    yield idx
    idx.close()


def test_cross_file_definition_comes_first(index: Index) -> None:
    snippets = index.retrieve(_ctx(index.root), budget_tokens=500)
    assert snippets, "retrieval found nothing"
    # The two definitions the file imports from the other file lead (which of them first is
    # fusion's guess), ahead of the file's own helper and the README.
    first_two = {s.text.split("\n", 1)[0]: s for s in snippets[:2]}
    assert set(first_two) == {"def area_of_circle(radius: float) -> float:", "class Polygon:"}
    area = first_two["def area_of_circle(radius: float) -> float:"]
    assert (area.path, area.source, area.start_line) == ("shapes/geometry.py", "symbol", 6)
    assert area.citation is not None
    assert area.citation.link() == f"{(index.root / 'shapes/geometry.py').as_uri()}#L6"
    assert "area_of_circle" in area.reason


def test_cursor_region_of_own_file_is_excluded(index: Index) -> None:
    snippets = index.retrieve(_ctx(index.root), budget_tokens=2000)
    assert not any(s.path == "app/main.py" for s in snippets)


def test_snippets_fit_the_budget(index: Index) -> None:
    big = index.retrieve(_ctx(index.root), budget_tokens=2000)
    small = index.retrieve(_ctx(index.root), budget_tokens=40)
    assert len(small) < len(big)
    assert sum(estimate_tokens(s.text) + 8 for s in small) <= 40
    assert index.retrieve(_ctx(index.root), budget_tokens=0) == []
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return len(text.split())

    index.retrieve(_ctx(index.root), budget_tokens=200, count_tokens=count)
    assert counted, "a caller's tokenizer is used when given"


def test_snippets_do_not_overlap(index: Index) -> None:
    snippets = index.retrieve(_ctx(index.root), budget_tokens=5000)
    spans: dict[str, list[tuple[int, int]]] = {}
    for s in snippets:
        if s.text.count("\n") + 1 >= s.end_line - s.start_line + 1:  # verbatim windows
            for lo, hi in spans.get(s.path, []):
                assert s.end_line < lo or s.start_line > hi, (s.path, s.start_line, lo, hi)
            spans.setdefault(s.path, []).append((s.start_line, s.end_line))


def test_incremental_update_uses_content_hashes(index: Index) -> None:
    path = index.root / "shapes" / "geometry.py"
    assert index.update_file(path, GEOMETRY) == "unchanged"
    new = GEOMETRY + "\n\ndef volume_of_sphere(radius):\n    return 4 / 3 * math.pi * radius ** 3\n"
    started = time.perf_counter()
    assert index.update_file(path, new) == "updated"
    assert time.perf_counter() - started < 1.0
    ctx = _ctx(index.root, prefix=MAIN_PREFIX + "volume_of_sphere(")
    assert index.retrieve(ctx, budget_tokens=300)[0].text.startswith("def volume_of_sphere")
    assert index.delete_file(path) == "deleted"
    assert not any(s.path == "shapes/geometry.py"
                   for s in index.retrieve(_ctx(index.root), budget_tokens=500))


def test_search_finds_symbols_and_docs(index: Index) -> None:
    results = index.search("perimeter", k=5)
    assert results[0].path == "shapes/geometry.py" and "perimeter" in results[0].text
    docs = index.search("install", k=5)
    assert any(s.source == "doc" and s.path == "README.md" for s in docs)


def test_a_sentence_searches_by_meaning_not_by_symbols_named_like_its_words(
    tmp_path: Path,
) -> None:
    """In a sentence, plain words like "and" or "unknown" are not asked for as symbol names.

    A schema library has methods called ``and`` and ``unknown``; asked for "parse unknown input
    safely and return an error", the function that does that must come first, not them.
    """
    root = tmp_path / "repo"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "schema.py").write_text(
        "class Schema:\n"
        "    def unknown(self):\n        return Schema()\n\n"
        "    def optional(self):\n        return Schema()\n\n"
        "    def and_(self, other):\n        return Schema()\n\n\n"
        "def parse_safely(schema, data):\n"
        '    """Parse untrusted input; return an error result instead of raising."""\n'
        "    try:\n        return schema.parse(data), None\n"
        "    except ValueError as error:\n        return None, error\n"
    )
    (root / "lib" / "words.py").write_text("def input(): ...\n\n\ndef error(): ...\n")
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    index.build()
    try:
        top = index.search("parse unknown input safely and return an error", k=3)
        assert "parse_safely" in top[0].text
        # Code-shaped words are still looked up as names, in a sentence or alone.
        assert "def unknown" in index.search("unknown", k=1)[0].text
        assert "def error" in index.search("where is error() defined", k=1)[0].text
    finally:
        index.close()


def test_search_shows_the_same_text_once(tmp_path: Path) -> None:
    """A function copied into another file (a build output, a vendored copy) is one result."""
    root = tmp_path / "repo"
    body = 'def checksum(data):\n    """Adler-32 checksum of the data."""\n    return 1\n'
    for folder in ("client", "server"):
        (root / folder).mkdir(parents=True)
        (root / folder / "sums.py").write_text(body)
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    index.build()
    try:
        texts = [" ".join(s.text.split()) for s in index.search("checksum", k=10)]
        assert texts and len(texts) == len(set(texts))
    finally:
        index.close()


def test_secret_buffer_is_never_indexed(index: Index) -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    result = index.update_file(index.root / "app" / "conf.py", f"TOKEN = '{token}'\n")
    assert result == "skipped (secret)"
    assert not index.search("TOKEN", k=5)


@pytest.mark.parametrize("git", [True, False])
def test_files_appearing_after_a_build_follow_the_build_rules(tmp_path: Path, git: bool) -> None:
    """Watched-file events and new buffers cannot bring in what a build would leave out."""
    root = _repo(tmp_path / "repo")
    (root / ".gitignore").write_text("local_settings.py\nprivate/\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        index.build()
        files = {
            "local_settings.py": "def ignored_by_gitignore():\n    pass\n",
            "private/notes.py": "def in_an_ignored_folder():\n    pass\n",
            "node_modules/pkg/index.js": "function vendoredThing() {}\n",
            "credentials.py": "def secret_by_name():\n    pass\n",
            "app/new_module.py": "def brand_new_function():\n    pass\n",
        }
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        verdicts = {rel: index.update_file(root / rel) for rel in files}
        assert verdicts == {
            "local_settings.py": "skipped (ignored)",
            "private/notes.py": "skipped (ignored)",
            "node_modules/pkg/index.js": "skipped (vendored)",
            "credentials.py": "skipped (secret)",
            "app/new_module.py": "updated",
        }
        # An open buffer of an ignored file is not indexed either.
        buffer = "def ignored_by_gitignore():\n    return 2\n"
        assert index.update_file(root / "local_settings.py", buffer) == "skipped (ignored)"
        assert any("brand_new_function" in s.text for s in index.search("brand_new_function"))
        for hidden in ("ignored_by_gitignore", "in_an_ignored_folder", "secret_by_name"):
            assert not any(hidden in s.text for s in index.search(hidden, k=10)), hidden
    finally:
        index.close()


def test_service_is_empty_before_ready_then_serves_and_updates(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    service = IndexService(root, tmp_path / "data", IndexSettings(embeddings=False))
    try:
        assert service.retrieve(_ctx(root), budget_tokens=500) == []  # not started: in-file only
        reports: list[IndexProgress] = []
        service.start(reports.append)
        assert service.wait_ready(60)
        assert service.wait_idle(60)
        assert reports and reports[-1].done
        snippets = service.retrieve(_ctx(root), budget_tokens=500)
        assert snippets[0].path == "shapes/geometry.py"

        service.did_change(root / "shapes" / "extra.py", "def brand_new_thing(x):\n    return x\n")
        assert service.wait_idle(30)
        ctx = _ctx(root, prefix=MAIN_PREFIX + "brand_new_thing(")
        assert service.retrieve(ctx, budget_tokens=300)[0].path == "shapes/extra.py"

        service.did_delete(root / "shapes" / "extra.py")
        assert service.wait_idle(30)
        assert not any(s.path == "shapes/extra.py"
                       for s in service.retrieve(ctx, budget_tokens=300))
        status = service.status()
        assert status["ready"] is True and status["files"] == 3
        assert isinstance(status["retrievals"], int) and status["retrievals"] >= 3
    finally:
        service.close()


def test_service_reindex_and_status_while_building(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    service = IndexService(root, tmp_path / "data", IndexSettings(embeddings=False))
    try:
        service.start()
        status = service.status()  # never blocks, whatever the state
        assert status["state"] in ("starting", "opening", "indexing", "ready")
        assert service.wait_ready(60)
        done: list[IndexProgress] = []
        service.reindex(done.append)
        deadline = time.monotonic() + 60
        while not (done and done[-1].done) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done and done[-1].done
        assert service.retrieve(_ctx(root), budget_tokens=500)
    finally:
        service.close()


def test_definitions_for_hover(index: Index) -> None:
    found = index.definitions("perimeter", path=str(index.root / "app" / "main.py"))
    assert found and found[0].path == "shapes/geometry.py"
    assert found[0].text.startswith("def perimeter(self) -> float:")
    assert "Sum of the edge lengths." in found[0].text
    assert index.definitions("no_such_name") == []


def test_open_buffer_wins_over_disk_after_reindex(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    service = IndexService(root, tmp_path / "data", IndexSettings(embeddings=False))
    try:
        service.start()
        assert service.wait_ready(60) and service.wait_idle(60)
        path = root / "shapes" / "geometry.py"
        service.did_change(path, GEOMETRY + "\n\ndef only_in_buffer(x):\n    return x\n")
        assert service.wait_idle(30)
        service.reindex()
        assert service.wait_idle(60)
        assert service.definitions("only_in_buffer"), "the buffer's text survived the rebuild"
        service.did_close(path)
        assert service.wait_idle(30)
        assert service.definitions("only_in_buffer") == []  # back to the disk's content
    finally:
        service.close()


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        # The module's API: its public names' signatures in one snippet, in file order.
        ("x = geometry.", "def area_of_circle(radius: float) -> float: ...\nclass Polygon: ..."),
        ("y = area_of_circle(2)\n    x = geometry.", "def area_of_circle"),  # used nearby
        ("x = geometry.Pol", "class Polygon"),
        ("x = area_of", "def area_of_circle"),  # a name being typed
    ],
)
def test_what_is_being_typed_leads(index: Index, typed: str, first: str) -> None:
    prefix = "from shapes import geometry\n\n\ndef f(points):\n    " + typed
    snippets = index.retrieve(_ctx(index.root, prefix=prefix), budget_tokens=500)
    assert snippets and snippets[0].text.startswith(first), [s.text[:30] for s in snippets]
