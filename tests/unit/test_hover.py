"""Hover: symbol under the cursor, resolution, sources, citation check, budget and cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.lsp_server.engine.generate import Generation, GenerationRequest
from pilotfish.lsp_server.hover import Explainer, check_citations, symbol_at

APP = '''import json

from util import slugify


class Page:
    def __init__(self, title):
        self.title = title

    def slug(self):
        return slugify(self.title)

    def dump(self):
        return json.dumps({"title": self.title, "slug": self.slug()})
'''

UTIL = '''"""Small helpers."""


def slugify(title: str, sep: str = "-") -> str:
    """Turn a title into a lowercase URL slug, words joined by ``sep``."""
    words = [w for w in title.lower().split() if w.isalnum()]
    return sep.join(words)
'''


@pytest.mark.parametrize(
    ("line", "column", "expected"),
    [
        (10, 17, ("slugify", None)),
        (13, 20, ("dumps", "json")),
        (13, 62, ("slug", "self")),
        (13, 15, ("json", None)),
        (4, 0, None),  # an empty line
    ],
)
def test_symbol_at(line: int, column: int, expected: tuple[str, str | None] | None) -> None:
    assert symbol_at(APP, line, column) == expected


@pytest.mark.parametrize(
    ("text", "valid", "invalid", "cleaned"),
    [
        ("Slugs [1]. Called by Page [2].", 2, 0, "Slugs [1]. Called by Page [2]."),
        ("It slugs [1]. Made up [7].", 1, 1, "It slugs [1]. Made up."),
        ("No markers at all.", 0, 0, "No markers at all."),
        ("[0] zero is no source.", 0, 1, "zero is no source."),
    ],
)
def test_check_citations(text: str, valid: int, invalid: int, cleaned: str) -> None:
    result = check_citations(text, count=2)
    assert (result.valid_markers, result.invalid_markers, result.text) == (valid, invalid, cleaned)
    assert result.verified is (valid > 0)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Index]:
    root = tmp_path_factory.mktemp("hover-ws")
    (root / "app.py").write_text(APP)
    (root / "util.py").write_text(UTIL)
    (root / "README.md").write_text("# Notes\n\nUse slugify to make page URLs.\n")
    index = Index(root, root / ".data", IndexConfig(embeddings=False, dependency_docs=False))
    index.build()
    return root, index


def hover_at(workspace: tuple[Path, Index], line: int, column: int, **kw: object):
    root, index = workspace
    explainer = Explainer(root)
    try:
        return explainer.hover(APP, line, column, path=str(root / "app.py"), store=index.store,
                               generator=None, budget_s=0, **kw)  # type: ignore[arg-type]
    finally:
        explainer.close()


def test_function_from_another_file(workspace: tuple[Path, Index]) -> None:
    result = hover_at(workspace, 10, 17)
    assert result is not None and result.symbol is not None
    assert result.symbol.path == str(workspace[0] / "util.py")
    assert result.symbol.start_line == 4
    kinds = [s.kind for s in result.sources]
    assert kinds[0] == "definition" and "doc" in kinds and "call site" in kinds
    markdown = result.to_markdown()
    assert f"({(workspace[0] / 'util.py').as_uri()}#L4)" in markdown
    assert "Turn a title into a lowercase URL slug" in markdown
    plain = result.to_plaintext()  # for clients that show hovers as plain text
    assert f"defined at {workspace[0] / 'util.py'}:4" in plain
    assert "Turn a title into a lowercase URL slug" in plain
    assert "```" not in plain and "](" not in plain and "*" not in plain


def test_stdlib_function_through_import(workspace: tuple[Path, Index]) -> None:
    result = hover_at(workspace, 13, 20)
    assert result is not None and result.symbol is not None
    path = Path(result.symbol.path)
    assert path.name == "__init__.py" and path.parent.name == "json"
    line = path.read_text().split("\n")[result.symbol.start_line - 1]
    assert line.startswith("def dumps(")


def test_method_on_self(workspace: tuple[Path, Index]) -> None:
    result = hover_at(workspace, 13, 62)
    assert result is not None and result.symbol is not None
    assert result.symbol.qualified_name == "Page.slug"
    assert result.symbol.start_line == 10


class SlowGenerator:
    """A plumbing stand-in for the model: answers after a delay unless cancelled first;
    counts its calls and records how each ended."""

    backend = "test"
    device = "cpu"
    model_id = "slow"
    adapter = None

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0
        self.outcomes: list[str] = []

    def generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        self.calls += 1
        stopped = cancel.wait(self.delay)
        self.outcomes.append("cancelled" if stopped else "done")
        if stopped:
            return Generation(text="", prompt_tokens=1, new_tokens=0, stop_reason="cancelled")
        return Generation(text="It makes URL slugs [1]. Page calls it [3]. Bogus [9].",
                          prompt_tokens=1, new_tokens=1)


def test_a_newer_hover_stops_the_older_explanations(workspace: tuple[Path, Index]) -> None:
    """Clients that hover at every cursor stop (eglot's eldoc) queue nothing but the newest."""
    root, index = workspace
    generator = SlowGenerator(delay=1.5)
    explainer = Explainer(root)
    try:
        args = dict(path=str(root / "app.py"), store=index.store, generator=generator,
                    budget_s=0.05)
        for line, column in [(10, 17), (13, 20), (13, 62)]:  # slugify, json.dumps, self.slug
            first = explainer.hover(APP, line, column, **args)  # type: ignore[arg-type]
            assert first is not None and first.pending
        time.sleep(2.0)
        # Each older run was stopped (or never started): only self.slug's ran to its end.
        assert generator.outcomes[-1] == "done" and len(generator.outcomes) in (2, 3)
        assert set(generator.outcomes[:-1]) == {"cancelled"}
        latest = explainer.hover(APP, 13, 62, **args)  # type: ignore[arg-type]
        assert latest is not None and latest.explanation is not None
        again = explainer.hover(APP, 10, 17, **args)  # type: ignore[arg-type]
        assert again is not None and again.pending  # the stopped one was not cached half-done
    finally:
        explainer.close()


def test_budget_returns_at_once_then_cache_serves(workspace: tuple[Path, Index]) -> None:
    root, index = workspace
    generator = SlowGenerator(delay=1.0)
    explainer = Explainer(root)
    try:
        args = dict(path=str(root / "app.py"), store=index.store, generator=generator)
        started = time.monotonic()
        first = explainer.hover(APP, 10, 17, budget_s=0.1, **args)  # type: ignore[arg-type]
        assert time.monotonic() - started < 0.9
        assert first is not None and first.pending and first.explanation is None
        assert "in progress" in first.to_markdown()
        time.sleep(1.3)
        second = explainer.hover(APP, 10, 17, budget_s=0.1, **args)  # type: ignore[arg-type]
        assert second is not None and second.explanation is not None
        assert second.explanation.invalid_markers == 1
        assert "[9]" not in second.explanation.text
        assert generator.calls == 1
    finally:
        explainer.close()
