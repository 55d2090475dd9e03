"""Dependency API docs: Python modules from the workspace venv and npm ``.d.ts`` files."""

from __future__ import annotations

import json
from pathlib import Path

from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.types import CursorContext

FANCYLIB = '''\
"""Widgets for everyone."""


def make_widget(name: str, size: int = 3) -> "Widget":
    """Create a widget with the given name and size."""
    return Widget(name, size)


def _private_helper():
    pass


class Widget:
    """A small widget."""

    def spin(self, times: int) -> None:
        """Spin the widget."""
'''

LEFTPAD_DTS = '''\
/** Pads a string on the left. */
export declare function leftPad(s: string, n: number, ch?: string): string;
export interface PadOptions { width: number }
'''


def _workspace(root: Path, version: str = "1.2.0") -> None:
    site = root / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "fancylib").mkdir(parents=True, exist_ok=True)
    (site / "fancylib" / "__init__.py").write_text(FANCYLIB)
    for old in site.glob("fancylib-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = site / f"fancylib-{version}.dist-info"
    info.mkdir()
    (info / "top_level.txt").write_text("fancylib\n")
    (root / "app.py").write_text("from fancylib import make_widget\n\nw = make_widget('a')\n")
    pkg = root / "node_modules" / "leftpad"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "package.json").write_text(json.dumps(
        {"name": "leftpad", "version": "1.0.0", "types": "index.d.ts"}))
    (pkg / "index.d.ts").write_text(LEFTPAD_DTS)
    (root / "main.ts").write_text('import { leftPad } from "leftpad";\nleftPad("a", 3);\n')


def test_python_and_typescript_dependency_docs(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    _workspace(root)
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False))
    try:
        summary = index.build()
        assert summary.files == 2  # .venv and node_modules are not the repository's files
        assert summary.dependency_files == 2

        prefix = "from fancylib import make_widget\n\nw = make_widget('a')\nv = make_widget("
        ctx = CursorContext(prefix=prefix, suffix=")\n", language="python",
                            path=str(root / "app.py"), repo_root=str(root), line=3)
        snippets = index.retrieve(ctx, budget_tokens=400)
        doc = next(s for s in snippets if s.source == "doc")
        assert doc.path == "fancylib/__init__.py"
        assert doc.text.startswith('def make_widget(name: str, size: int = 3) -> "Widget":')
        assert "fancylib" in doc.reason
        assert doc.citation is not None and doc.citation.path is not None
        assert doc.citation.path.endswith("site-packages/fancylib/__init__.py")

        names = {r[0] for r in index.store.reader().execute(
            "SELECT s.name FROM symbols s JOIN files f ON f.id=s.file_id "
            "WHERE f.origin='dependency'")}
        assert {"make_widget", "Widget", "spin", "leftPad", "PadOptions"} <= names
        assert "_private_helper" not in names

        ts_ctx = CursorContext(prefix='import { leftPad } from "leftpad";\nleftPad(', suffix=")",
                               language="typescript", path=str(root / "main.ts"),
                               repo_root=str(root), line=1)
        ts = index.retrieve(ts_ctx, budget_tokens=400)
        assert any(s.path == "leftpad/index.d.ts" and "leftPad" in s.text for s in ts)
        left = next(s for s in ts if s.path == "leftpad/index.d.ts")
        assert "Pads a string on the left." in left.text or "leftPad(s: string" in left.text

        # Cached per package version: a second build does not redo it, a new version does.
        assert index.build().dependency_files == 0
        _workspace(root, version="1.3.0")
        assert index.build().dependency_files == 1
    finally:
        index.close()


def test_completions_leave_out_the_typing_plumbing(tmp_path: Path) -> None:
    """``Any`` from typing_extensions is known to every model: no prompt place for it."""
    root = tmp_path / "ws"
    root.mkdir()
    _workspace(root)
    site = root / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "typing_extensions.py").write_text(
        '"""Backported typing."""\n\n\nclass Any:\n    """Special type: every type."""\n\n\n'
        'def overload(func):\n    """Decorator for overloaded functions."""\n    return func\n'
    )
    info = site / "typing_extensions-4.12.0.dist-info"
    info.mkdir()
    (info / "top_level.txt").write_text("typing_extensions\n")
    prefix = ("from typing_extensions import Any, overload\n"
              "from fancylib import make_widget\n\n\n"
              "@overload\ndef build(name: Any) -> Any:\n    return make_widget(name)\n\n\n"
              "def other(name: Any) -> Any:\n    return ")
    (root / "app.py").write_text(prefix + "name\n")  # what imports the modules to document
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False))
    try:
        index.build()
        ctx = CursorContext(prefix=prefix, suffix="\n", language="python",
                            path=str(root / "app.py"), repo_root=str(root), line=11)
        shown = index.retrieve(ctx, budget_tokens=2000)
        assert any("make_widget" in s.text for s in shown)
        assert not any("typing_extensions" in s.path for s in shown), shown
        # Asked for by name (hover, search), it is still found.
        assert any("typing_extensions" in s.path for s in index.retriever.definitions("Any"))
    finally:
        index.close()
