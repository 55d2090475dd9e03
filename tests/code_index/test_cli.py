"""``pilotfish index`` and ``pilotfish search`` through the real command line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pilotfish.lsp_server.cli import main


def _repo(root: Path) -> Path:
    root.mkdir()
    (root / "lib.py").write_text(
        'def greet(name):\n    """Say hello."""\n    return "hi " + name\n'
    )
    (root / "app.py").write_text('from lib import greet\nprint(greet("x"))\n')
    (root / ".env").write_text("SECRET=1\n")
    return root


def test_index_then_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, data = _repo(tmp_path / "repo"), tmp_path / "data"
    assert main(["index", str(repo), "--data-dir", str(data), "--no-embeddings", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 2 and summary["symbols"] == 1
    assert summary["skipped"] == {"secret": 1}

    assert main(["search", "greet", "--repo", str(repo), "--data-dir", str(data), "--json",
                 "--no-dense"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results[0]["path"] == "lib.py" and results[0]["source"] == "symbol"
    assert results[0]["link"] == f"{(repo / 'lib.py').as_uri()}#L1"

    assert main(["search", "greet", "--repo", str(repo), "--data-dir", str(data),
                 "--no-dense"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. lib.py:1-3") and "def greet(name):" in out


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    repo = _repo(tmp_path / "repo")
    assert main(["search", "greet", "--repo", str(repo), "--data-dir",
                 str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "has no index yet" in err and "Traceback" not in err


def test_index_embeds_on_every_core_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In the foreground ``pilotfish index`` embeds with every core; ``--threads N`` caps it."""
    import pilotfish.code_index.indexer as indexer
    from pilotfish.code_index.embed import EmbedderUnavailableError

    asked: list[int] = []

    def fake_load(*args: object, threads: int = 1, **kwargs: object) -> None:
        asked.append(threads)
        raise EmbedderUnavailableError("not loaded in this test")

    monkeypatch.setattr(indexer, "load_embedder", fake_load)
    repo = _repo(tmp_path / "repo")
    assert main(["index", str(repo), "--data-dir", str(tmp_path / "a"), "--json"]) == 0
    assert main(["index", str(repo), "--data-dir", str(tmp_path / "b"), "--threads", "1",
                 "--json"]) == 0
    assert asked == [0, 1]  # 0: every core (TransformerEmbedder resolves it)
    capsys.readouterr()
    assert main(["index", str(repo), "--threads", "-1"]) == 2
    assert "--threads -1" in capsys.readouterr().err


def test_status_says_what_the_saved_index_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, data = _repo(tmp_path / "repo"), tmp_path / "data"
    assert main(["status", "--repo", str(repo), "--data-dir", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "index       not built yet: run `pilotfish index`" in lines
    assert not (data / "index.db").exists()  # asking created nothing

    assert main(["index", str(repo), "--data-dir", str(data), "--no-embeddings"]) == 0
    capsys.readouterr()
    assert main(["status", "--repo", str(repo), "--data-dir", str(data)]) == 0
    index_line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("index"))
    assert "ready: 2 files, 1 symbols" in index_line
    assert main(["status", "--repo", str(repo), "--data-dir", str(data), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["index"]["built"] and status["index"]["files"] == 2
    assert status["currentAdapter"] is None


def test_index_embeds_with_the_backend_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pilotfish.code_index.embed import BACKEND_ENV
    from pilotfish.code_index.store import Store

    monkeypatch.delenv(BACKEND_ENV, raising=False)
    repo, data = _repo(tmp_path / "repo"), tmp_path / "data"
    assert main(["index", str(repo), "--data-dir", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["embedded"] >= 1
    assert Store(data).get_meta("embedding_model") == "all-MiniLM-L6-v2+int8pc"  # the default
    assert main(["index", str(repo), "--data-dir", str(data), "--embed-backend", "onnx",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["embedded"] >= 1  # fp32: embedded again
    assert Store(data).get_meta("embedding_model") == "all-MiniLM-L6-v2"
