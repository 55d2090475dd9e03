"""What each model is served mid-line: the registry's policy, through the runtime's retriever."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilotfish.code_index.types import CursorContext
from pilotfish.lsp_server.runtime import Runtime
from pilotfish.lsp_server.settings import IndexSettings, ModelSettings, Settings

DEFINITION = "class CompletionEngine:\n    def __init__(self, gen, settings, cache_size=256):\n" \
             "        self.gen = gen\n"
USAGE = ("from engine import CompletionEngine\n\n\ndef test_runs_once(gen, settings):\n"
         "    engine = CompletionEngine(gen, settings, cache_size=0)\n"
         "    first = engine.complete(make_request('x = '))\n")


@pytest.mark.parametrize(("model", "definitions", "style"), [
    # similar code only, as comments (BENCHMARKS.md, Completion quality)
    ("qwen2.5-coder-0.5b", False, "comments"),
    ("qwen2.5-coder-1.5b", True, "repo"),
])
def test_mid_line_context_per_model(tmp_path: Path, model: str, definitions: bool,
                                    style: str) -> None:
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "engine.py").write_text(DEFINITION)
    (root / "tests" / "test_one.py").write_text(USAGE)
    (root / "tests" / "test_two.py").write_text("")
    (root / "helpers.py").write_text(  # a definition no similar window shows
        "".join(f"def unrelated_{i}(a):\n    return a * {i}\n\n\n" for i in range(12))
        + "def make_request(text):\n    return {'text': text}\n")
    settings = Settings(data_dir=str(tmp_path / "data"), model=ModelSettings(name=model),
                        index=IndexSettings(embeddings=False))
    runtime = Runtime(settings, root)
    assert runtime.index is not None
    try:
        runtime.index.start()
        assert runtime.index.wait_ready(60)
        prefix = ("from engine import CompletionEngine\nfrom helpers import make_request\n\n\n"
                  "def test_runs_twice(gen, settings):\n    request = make_request('y')\n"
                  "    engine = ")
        ctx = CursorContext(prefix=prefix, suffix="\n", language="python",
                            line=prefix.count("\n"), path=str(root / "tests" / "test_two.py"),
                            repo_root=str(root))
        snippets = runtime._retrieve(ctx, 600)  # what the engine calls (no model loaded here)
        assert snippets and snippets[0].source == "similar", snippets
        everything = runtime.index.retrieve(ctx, budget_tokens=600, similar_code=True)
        alike = runtime.index.retrieve(ctx, budget_tokens=600, only_similar=True)
        assert snippets == (everything if definitions else alike)
        assert all(s.source == "similar" for s in alike)
        assert len(everything) > len(alike)  # definitions besides the windows
        assert runtime._served_style() == style  # how the engine shows them (no adapter)
    finally:
        runtime.close()
