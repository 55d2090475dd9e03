"""End to end, without LSP: a completion that needs a definition from another file.

A tiny workspace: ``geometry.py`` defines ``polygon_area_from_vertices``; ``report.py`` imports
the module (not the name, so in-file context never spells it out) and stops half-way through
``polygon_``. With the index, the engine's retrieval must hand the model geometry.py's
definition in a snippet (for the default 0.5B, served similar code only, the window of
geometry.py that looks more like report.py's lines than report.py itself does), and the model
must finish the long name, which appears nowhere in report.py. The same request with the
index disabled (in-file context only) is recorded too.
Greedy decoding (the default) keeps it deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.engine import Completion
from pilotfish.lsp_server.runtime import Runtime
from pilotfish.lsp_server.settings import IndexSettings, Settings

pytestmark = pytest.mark.model

GEOMETRY = '''"""Plane geometry helpers."""

from __future__ import annotations


def polygon_area_from_vertices(vertices: list[tuple[float, float]]) -> float:
    """Area of a simple polygon from its vertices in order (shoelace formula)."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1]):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0
'''

# The module is imported, not the name: the rest of the name exists only in geometry.py.
REPORT_HEAD = '''"""Reports on land parcels."""

from __future__ import annotations

import geometry


def parcel_area(corners: list[tuple[float, float]]) -> float:
    """The parcel's area in square metres."""
    return geometry.polygon_'''
REPORT_TAIL = "\n"
DEF_LINE = 6  # 1-based line of the def in GEOMETRY


def _complete(runtime: Runtime, root: Path) -> Completion:
    text = REPORT_HEAD + REPORT_TAIL
    lines = REPORT_HEAD.split("\n")
    request = CompletionRequest(
        text=text,
        line=len(lines) - 1,
        column=len(lines[-1]),
        path=str(root / "report.py"),
        language_id="python",
        repo_root=str(root),
    )
    return runtime.engine().complete(request)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xfile")
    (root / "geometry.py").write_text(GEOMETRY)
    (root / "report.py").write_text(REPORT_HEAD + REPORT_TAIL)
    return root


def test_index_sees_the_definition(real_model: str, workspace: Path) -> None:
    from pilotfish.lsp_server.indexing import IndexService

    service = IndexService(workspace, workspace / ".data", IndexSettings(embeddings=False))
    try:
        service.start()
        assert service.wait_ready(120), "index did not become ready"
        found = service.definitions("polygon_area_from_vertices")
        assert any(s.path.endswith("geometry.py") for s in found), found
    finally:
        service.close()


def test_cross_file_completion_uses_the_other_file(real_model: str, workspace: Path) -> None:
    settings = Settings(data_dir=str(workspace / ".data"), index=IndexSettings(embeddings=False))
    runtime = Runtime(settings, workspace)
    assert runtime.index is not None
    try:
        runtime.index.start()
        assert runtime.index.wait_ready(120), "index did not become ready"
        completion = _complete(runtime, workspace)
        # Every model is served context where nothing is typed on the line yet, too.
        assert runtime.loaded is not None and runtime.loaded.context_at_line_start is True
    finally:
        runtime.index.close()

    spans = [(Path(s.path).name, s.start_line, s.end_line) for s in completion.snippets]
    assert any(name == "geometry.py" and start <= DEF_LINE <= end for name, start, end in spans), (
        f"geometry.py's definition not among the snippets: {spans}"
    )
    assert completion.source == "model", completion
    assert completion.text.startswith("area_from_vertices"), (
        f"completion {completion.text!r} does not finish the name; prompt:\n{completion.prompt}"
    )


def test_in_file_only_recorded(real_model: str, workspace: Path) -> None:
    settings = Settings(index=IndexSettings(enable=False))
    runtime = Runtime(settings, workspace)
    assert runtime.index is None
    completion = _complete(runtime, workspace)
    assert not completion.snippets
    # In-file context never spells the name: the model guesses from the parameter (it said
    # `area(corners)` when this was written), so the long name must not appear.
    print(f"in-file only: {completion.text!r}")
    assert "area_from_vertices" not in completion.text


def test_cli_complete_indexes_and_lists_the_snippets(real_model: str, workspace: Path) -> None:
    """``pilotfish complete --json`` updates the index itself and shows what it used.

    The workspace is no git repository, so ``--repo`` names it (a loose file alone would be
    completed from the file only, rather than indexing whatever folder holds it).
    """
    import json
    import subprocess
    import sys

    lines = REPORT_HEAD.split("\n")
    where = f"{workspace / 'report.py'}:{len(lines)}:{len(lines[-1]) + 1}"
    proc = subprocess.run(
        [sys.executable, "-m", "pilotfish.lsp_server", "complete", where, "--json",
         "--repo", str(workspace), "--data-dir", str(workspace / ".cli-data")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert any(s["path"].endswith("geometry.py") for s in result["snippets"]), result
    assert result["context"].endswith("snippets shown"), result["context"]
    assert result["completion"].startswith("area_from_vertices"), result["completion"]
