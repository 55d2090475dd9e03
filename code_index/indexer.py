"""Builds and updates one repository's index: files -> symbols, chunks, docs -> SQLite + FAISS."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunks import chunk_file, content_hash
from .config import IndexConfig
from .docs import (
    DependencyModule,
    find_site_packages,
    is_public,
    resolve_python_modules,
    resolve_typescript_modules,
    split_markdown,
    split_rst,
)
from .embed import (
    EmbedderUnavailableError,
    TransformerEmbedder,
    configured_backend,
    load_embedder,
    vector_key,
)
from .files import SourceFile, check_text, read_file, select_files, unselected_reason
from .languages import DOC_SUFFIXES, has_grammar, language_of_path
from .retrieve import Retriever
from .store import IndexCorruptError, Store
from .symbols import Definition, ParsedFile, parse_source
from .types import Chunk, Citation, CursorContext, DocChunk, Snippet
from .vectors import VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Progress:
    """One progress report: a phase, how far it is, and a line for humans."""

    phase: str  # "scan", "parse", "dependencies", "embed", "done"
    done: int
    total: int
    message: str

    @property
    def percentage(self) -> int | None:
        """0..100 within the phase, when the total is known."""
        return int(100 * self.done / self.total) if self.total else None


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, kw_only=True)
class IndexSummary:
    """What a build did."""

    files: int
    symbols: int
    chunks: int
    docs: int
    changed: int
    removed: int
    skipped: dict[str, int] = field(default_factory=dict)
    parse_seconds: float = 0.0
    embed_seconds: float = 0.0
    embedded: int = 0
    dependency_files: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    def to_json(self) -> dict[str, object]:
        """A JSON-able form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _noop(_: Progress) -> None:
    return None


def _doc_chunks_of_definitions(
    defs: Sequence[Definition], abs_path: str, origin: str
) -> list[DocChunk]:
    out: list[DocChunk] = []
    for d in defs:
        s = d.symbol
        if not s.doc or len(s.doc) < 20:
            continue
        out.append(DocChunk(
            id=content_hash(f"{abs_path}\0{s.qualified_name}\0{s.start_line}"),
            title=s.qualified_name,
            text=f"{s.signature}\n{s.doc}"[:1500],
            citation=Citation(path=abs_path, line=s.start_line),
            origin=origin,
        ))
    return out


def analyse(rel: str, text: str, language: str, abs_path: str, config: IndexConfig
            ) -> tuple[ParsedFile | None, list[Chunk], list[DocChunk]]:
    """Parse one file's text into definitions, chunks and doc chunks (pure; never raises)."""
    if language in DOC_SUFFIXES.values():
        docs = (split_rst if language == "rst" else split_markdown)(rel, text, abs_path)
        return None, [], docs
    parsed = parse_source(text, rel, language) if has_grammar(language) else None
    chunks = chunk_file(rel, text, parsed, language, max_lines=config.chunk_max_lines,
                        block_lines=config.block_lines)
    docs = _doc_chunks_of_definitions(parsed.definitions, abs_path, "docstring") if parsed else []
    return parsed, chunks, docs


class Index:
    """One repository's index: build, incremental updates, embeddings and retrieval.

    Thread-safety: one writer at a time (builds and updates take ``write_lock``); retrieval
    reads through per-thread SQLite connections and never waits for a write.
    """

    def __init__(self, root: Path, data_dir: Path, config: IndexConfig | None = None) -> None:
        self.root = root.resolve()
        self.data_dir = data_dir
        self.config = config or IndexConfig()
        self.store = Store.open_or_rebuild(data_dir)
        self.write_lock = threading.RLock()
        self._embedder: TransformerEmbedder | None = None
        self._embedder_error: str | None = None
        self._embedder_lock = threading.Lock()
        self.vectors: VectorIndex | None = None
        self.retriever = Retriever(self.store, self.root)
        self.retriever.dense_budget_ms = self.config.dense_budget_ms
        self._unselected: dict[str, str | None] = {}  # update_file's verdicts on new paths

    # ---- embeddings -------------------------------------------------------------------------

    def embedder(self) -> TransformerEmbedder | None:
        """The embedder, loaded on first use; ``None`` when disabled or unavailable."""
        if not self.config.embeddings:
            return None
        with self._embedder_lock:
            if self._embedder is None and self._embedder_error is None:
                try:
                    cache_dir = self.config.embed_cache_dir
                    self._embedder = load_embedder(
                        self.config.embedding_model, max_tokens=self.config.embed_max_tokens,
                        batch_size=self.config.embed_batch_size,
                        threads=self.config.embed_threads,
                        backend=configured_backend(self.config.embed_backend),
                        cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
                    )
                except EmbedderUnavailableError as exc:
                    log.warning("%s; dense search is off", exc)
                    self._embedder_error = str(exc)
            return self._embedder

    def open_vectors(self) -> str | None:
        """Load (or rebuild) the FAISS index when embeddings are on; returns what happened."""
        embedder = self.embedder()
        if embedder is None:
            return None
        model = vector_key(self.config.embedding_model, embedder.backend)
        stored_model = self.store.get_meta("embedding_model")
        if stored_model != model:
            with self.store.transaction() as db:
                db.execute("DELETE FROM embeddings")
                self.store.set_meta(db, "embedding_model", model)
                self.store.bump_vectors_version(db)
        vectors = VectorIndex(self.data_dir, embedder.dim, model, self.config.exact_vector_limit)
        what = vectors.load_or_rebuild(self.store)
        self.vectors = vectors
        self.retriever.set_dense(vectors, embedder)
        return what

    def embed_pending(self, progress: ProgressFn = _noop,
                      cancel: threading.Event | None = None) -> tuple[int, float]:
        """Embed every chunk whose content has no vector yet; returns (count, seconds)."""
        started = time.perf_counter()  # loading the model counts as embedding time
        embedder = self.embedder()
        if embedder is None:
            return 0, 0.0
        if self.vectors is None:
            self.open_vectors()
        vectors = self.vectors
        assert vectors is not None
        done_before, total = self.store.embedding_counts()
        count = 0
        batch = max(embedder.batch_size * 8, 256)  # sorted by length within: less padding
        while not (cancel and cancel.is_set()):
            rows = self.store.missing_embeddings(batch)
            if not rows:
                break
            texts = [_embedding_text(path, text) for _, path, text in rows]
            array = embedder.embed_array(texts)
            hashes = [h for h, _, _ in rows]
            self.store.put_embeddings(hashes, array)
            self._add_vectors_for(hashes, array)
            count += len(rows)
            progress(Progress(phase="embed", done=min(done_before + count, total), total=total,
                              message=f"embedding {done_before + count}/{total} chunks"))
        seconds = time.perf_counter() - started
        if vectors.pending > 2000 or (count and not (cancel and cancel.is_set())):
            vectors.rebuild(self.store)
        return count, seconds

    def _add_vectors_for(self, hashes: Sequence[str], array: np.ndarray) -> None:
        if self.vectors is None or not hashes:
            return
        by_hash = {h: array[i] for i, h in enumerate(hashes)}
        placeholders = ",".join("?" * len(hashes))
        rows = self.store.reader().execute(
            f"SELECT id, content_hash FROM chunks WHERE content_hash IN ({placeholders})",
            list(hashes),
        ).fetchall()
        if rows:
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.stack([by_hash[r[1]] for r in rows]).astype(np.float32)
            self.vectors.add(ids, vecs)

    # ---- build ----------------------------------------------------------------------------------

    def build(self, progress: ProgressFn = _noop, cancel: threading.Event | None = None, *,
              embed: bool = True, full: bool = False) -> IndexSummary:
        """Index the workspace: only files whose content changed are redone (all if ``full``)."""
        started = time.perf_counter()
        with self.write_lock:
            progress(Progress(phase="scan", done=0, total=0, message="listing files"))
            selection = select_files(self.root, self.config)
            self._unselected.clear()  # ignore rules may have changed since
            stored = self.store.files("repo")
            if full:
                stored = {}
            wanted = {f.rel for f in selection.files}
            removed = [p for p in self.store.files("repo") if p not in wanted]
            skipped: Counter[str] = Counter(selection.skipped)
            changed = 0
            total = len(selection.files)
            parse_started = time.perf_counter()
            pending: list[tuple[SourceFile, str | None, str | None, int, int]] = []

            def flush() -> None:
                nonlocal changed
                if not pending:
                    return
                with self.store.transaction() as db:
                    for file, text, reason, size, mtime in pending:
                        if text is None:
                            self.store.delete_file(db, file.rel)
                            self.store.record_skipped(db, file.rel, reason or "unreadable")
                            continue
                        parsed, chunks, docs = analyse(
                            file.rel, text, file.language, str(file.path), self.config
                        )
                        self.store.put_file(
                            db, path=file.rel, language=file.language, origin="repo",
                            file_hash=content_hash(text), size=size, mtime_ns=mtime,
                            definitions=parsed.definitions if parsed else [], chunks=chunks,
                            docs=docs,
                        )
                        changed += 1
                pending.clear()

            with self.store.transaction() as db:
                for path in removed:
                    self.store.delete_file(db, path)
                db.execute("DELETE FROM skipped")
                for reason, examples in selection.examples.items():
                    for rel in examples:
                        self.store.record_skipped(db, rel, reason)
                self.store.set_meta(db, "state", "building")
            for n, file in enumerate(selection.files, start=1):
                if cancel is not None and cancel.is_set():
                    break
                if n % 50 == 0 or n == total:
                    progress(Progress(phase="parse", done=n, total=total,
                                      message=f"indexing {n}/{total} files"))
                try:
                    st = file.path.stat()
                except OSError:
                    skipped["unreadable"] += 1
                    continue
                old = stored.get(file.rel)
                if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                    continue  # unchanged since the last build
                text, reason = read_file(file, self.root, self.config)
                if text is None:
                    skipped[reason or "unreadable"] += 1
                    if old is not None or reason:
                        pending.append((file, None, reason, 0, 0))
                elif old is not None and old.hash == content_hash(text):
                    with self.store.transaction() as db:  # touched, same content
                        db.execute("UPDATE files SET mtime_ns=? WHERE id=?",
                                   (st.st_mtime_ns, old.id))
                    continue
                else:
                    pending.append((file, text, None, st.st_size, st.st_mtime_ns))
                if len(pending) >= self.config.commit_every_files:
                    flush()
            flush()
            cancelled = bool(cancel is not None and cancel.is_set())
            with self.store.transaction() as db:
                self.store.set_meta(db, "state", "partial" if cancelled else "ready")
                self.store.set_meta(db, "skipped_counts", _encode_counts(skipped))
                self.store.set_meta(db, "built_at", str(time.time()))
            parse_seconds = time.perf_counter() - parse_started
        self.retriever.invalidate(rebuilt=True)
        try:
            self.retriever.warm()
        except sqlite3.Error as exc:
            log.warning("could not read the FTS vocabulary: %s", exc)
        dep_files = 0
        if not cancelled and self.config.dependency_docs:
            dep_files = self.index_dependencies(progress)
        embedded, embed_seconds = 0, 0.0
        if embed and not cancelled:
            embedded, embed_seconds = self.embed_pending(progress, cancel)
        counts = self.store.counts()
        summary = IndexSummary(
            files=counts["files"], symbols=counts["symbols"], chunks=counts["chunks"],
            docs=counts["docs"], changed=changed, removed=len(removed), skipped=dict(skipped),
            parse_seconds=round(parse_seconds, 2), embed_seconds=round(embed_seconds, 2),
            embedded=embedded, dependency_files=dep_files,
            seconds=round(time.perf_counter() - started, 2), cancelled=cancelled,
        )
        progress(Progress(phase="done", done=1, total=1, message=_summary_line(summary)))
        return summary

    # ---- incremental ----------------------------------------------------------------------------

    def _rel(self, path: Path | str) -> str | None:
        p = Path(path)
        if not p.is_absolute():
            p = self.root / p
        try:
            return p.resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None

    def update_file(self, path: Path | str, text: str | None = None) -> str:
        """Re-index one file from ``text`` (an open buffer) or the disk; returns what happened.

        The content hash decides: unchanged content costs one hash and no writes.
        """
        rel = self._rel(path)
        if rel is None:
            return "outside"
        language = language_of_path(rel)
        abs_path = self.root / rel
        from_buffer = False
        with self.write_lock:
            old = self.store.file_row(rel)
            if old is None:  # not chosen by the last build: the build's rules first
                if rel not in self._unselected:
                    self._unselected[rel] = unselected_reason(self.root, rel, self.config)
                if self._unselected[rel] is not None:
                    return f"skipped ({self._unselected[rel]})"
            if text is None:
                if not abs_path.is_file():
                    return self.delete_file(rel)
                file = SourceFile(path=abs_path, rel=rel, language=language or "plaintext")
                text, reason = read_file(file, self.root, self.config)
            else:
                from_buffer = True
                reason = check_text(text, rel, self.config)
            if language is None:
                reason = reason or "unsupported"
            if text is None or reason is not None:
                with self.store.transaction() as db:
                    self._drop_vectors_of(db, rel)
                    self.store.delete_file(db, rel)
                    self.store.record_skipped(db, rel, reason or "unreadable")
                return f"skipped ({reason})"
            digest = content_hash(text)
            if old is not None and old.hash == digest:
                return "unchanged"
            assert language is not None
            parsed, chunks, docs = analyse(rel, text, language, str(abs_path), self.config)
            try:
                st = abs_path.stat()
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:
                size, mtime = len(text), 0
            with self.store.transaction() as db:
                self._drop_vectors_of(db, rel)
                ids = self.store.put_file(
                    db, path=rel, language=language, origin="repo", file_hash=digest,
                    # A buffer's text is not the disk's: mtime 0 makes the next build re-check.
                    size=size, mtime_ns=0 if from_buffer else mtime,
                    definitions=parsed.definitions if parsed else [], chunks=chunks, docs=docs,
                )
            self._vectors_for_new_chunks(ids)
        self.retriever.invalidate()
        return "updated"

    def delete_file(self, path: Path | str) -> str:
        """Forget a deleted file."""
        rel = self._rel(path) if Path(path).is_absolute() else str(path)
        if rel is None:
            return "outside"
        with self.write_lock, self.store.transaction() as db:
            self._drop_vectors_of(db, rel)
            found = self.store.delete_file(db, rel)
        self.retriever.invalidate()
        return "deleted" if found else "unknown"

    def _drop_vectors_of(self, db, rel: str) -> None:
        if self.vectors is None:
            return
        ids = [r[0] for r in db.execute(
            "SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id WHERE f.path=?", (rel,)
        ).fetchall()]
        self.vectors.remove(ids)

    def _vectors_for_new_chunks(self, ids: list[int]) -> None:
        """New chunks whose content already has a vector become searchable at once."""
        if self.vectors is None or not ids:
            return
        placeholders = ",".join("?" * len(ids))
        rows = self.store.reader().execute(
            f"SELECT c.id, e.vector FROM chunks c JOIN embeddings e "
            f"ON e.content_hash=c.content_hash WHERE c.id IN ({placeholders})", ids
        ).fetchall()
        if rows:
            self.vectors.add(
                np.array([r[0] for r in rows], dtype=np.int64),
                np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]),
            )

    # ---- dependencies ---------------------------------------------------------------------------

    def index_dependencies(self, progress: ProgressFn = _noop) -> int:
        """Index the public API of imported dependencies (cached per package version)."""
        db = self.store.reader()
        py_modules: set[str] = set()
        ts_modules: set[str] = set()
        for (text, language) in db.execute(
            "SELECT c.text, f.language FROM chunks c JOIN files f ON f.id=c.file_id "
            "WHERE f.origin='repo' AND c.symbol IS NULL AND f.language IN "
            "('python','javascript','typescript','tsx')"
        ):
            if language == "python":
                py_modules.update(_python_imports(text))
            else:
                ts_modules.update(_js_imports(text))
        deps: list[DependencyModule] = []
        sites = find_site_packages(self.root, self.config.python)
        if sites and py_modules:
            deps += resolve_python_modules(py_modules, sites)
        if ts_modules:
            deps += resolve_typescript_modules(ts_modules, self.root)
        known = dict(db.execute("SELECT name, version FROM packages").fetchall())
        indexed = 0
        for n, dep in enumerate(deps, start=1):
            key = f"{dep.language}:{dep.module}"
            if known.get(key) == dep.version:
                continue
            try:
                data = dep.path.read_bytes()
                if len(data) > self.config.max_file_bytes:
                    continue
                text = data.decode("utf-8", errors="replace")
            except OSError:
                continue
            parsed = parse_source(text, str(dep.path), dep.language)
            public = [d for d in parsed.definitions if is_public(d.symbol.name) and (
                d.parent is None or parsed.definitions[d.parent].symbol.kind in (
                    "class", "interface", "module")
            )]
            docs = _doc_chunks_of_definitions(
                [d for d in public if d.parent is None], str(dep.path), "dependency")
            with self.write_lock, self.store.transaction() as wdb:
                self.store.put_file(
                    wdb, path=str(dep.path), language=dep.language, origin="dependency",
                    file_hash=content_hash(text), size=len(data), mtime_ns=0,
                    definitions=public, chunks=[], docs=docs, package=dep.package,
                )
                wdb.execute("INSERT OR REPLACE INTO packages VALUES(?, ?, ?)",
                            (key, dep.version, time.time()))
            indexed += 1
            progress(Progress(phase="dependencies", done=n, total=len(deps),
                              message=f"dependency docs {dep.module} {dep.version}"))
        if indexed:
            self.retriever.invalidate()
        return indexed

    # ---- queries ------------------------------------------------------------------------------

    def retrieve(self, ctx: CursorContext, *, budget_tokens: int,
                 count_tokens: Callable[[str], int] | None = None,
                 max_snippets: int = 8, similar_code: bool = False,
                 only_similar: bool = False) -> list[Snippet]:
        """Ranked, fused, deduplicated snippets for a cursor that fit ``budget_tokens``.

        ``similar_code``: lead with the window of other code most like the cursor's lines;
        ``only_similar``: those windows alone (see ``Retriever.retrieve``).
        """
        return self.retriever.retrieve(ctx, budget_tokens=budget_tokens,
                                       count_tokens=count_tokens, max_snippets=max_snippets,
                                       similar_code=similar_code, only_similar=only_similar)

    def definitions(self, name: str, *, path: str | None = None, k: int = 5) -> list[Snippet]:
        """Where a name is defined (repository and dependency APIs), with signature and doc."""
        return self.retriever.definitions(name, path=path, k=k)

    def search(self, query: str, k: int = 10) -> list[Snippet]:
        """Free-text search (``pilotfish search``): symbols, lexical and dense, fused."""
        return self.retriever.search(query, k=k)

    def state(self) -> str:
        """``empty``, ``building``, ``partial`` or ``ready``."""
        return self.store.get_meta("state") or "empty"

    def status(self) -> dict[str, object]:
        """Counts and state for status displays."""
        done, total = self.store.embedding_counts()
        return {
            "state": self.state(),
            **self.store.counts(),
            "embedded": done,
            "embeddable": total,
            "vectors": self.vectors.size if self.vectors else 0,
            "vectorIndex": self.vectors.kind if self.vectors else None,
            "embedder": (self._embedder.name if self._embedder else self._embedder_error),
            "denseQueryMs": round(self.retriever.dense_query_ms, 1),
            "denseSkipped": self.retriever.dense_skipped,
            "skipped": _decode_counts(self.store.get_meta("skipped_counts") or ""),
            "dataDir": str(self.data_dir),
        }

    def close(self) -> None:
        """Save pending vectors and close the store."""
        if self.vectors is not None and self.vectors.pending:
            try:
                self.vectors.rebuild(self.store)
            except Exception as exc:
                log.warning("could not save vectors: %s", exc)
        self.store.close()


def _embedding_text(path: str, text: str) -> str:
    return f"{path}\n{text[:2000]}"


def _encode_counts(counts: Counter[str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(counts.items()))


def _decode_counts(raw: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in raw.split(","):
        key, _, value = part.partition("=")
        if key and value.isdigit():
            out[key] = int(value)
    return out


def _summary_line(s: IndexSummary) -> str:
    skipped = sum(s.skipped.values())
    return (f"{s.files} files, {s.symbols} symbols, {s.chunks} chunks, {s.docs} docs; "
            f"{s.changed} changed, {s.removed} removed, {skipped} skipped; {s.seconds:.1f} s")


_PY_IMPORT = None


def _python_imports(text: str) -> set[str]:
    import re

    out: set[str] = set()
    for m in re.finditer(r"^\s*(?:from\s+([A-Za-z_][\w.]*)\s+import|import\s+([\w., ]+))", text,
                         re.MULTILINE):
        if m.group(1):
            out.add(m.group(1))
        elif m.group(2):
            for part in m.group(2).split(","):
                name = part.strip().split(" ")[0]
                if name:
                    out.add(name)
    return out


def _js_imports(text: str) -> set[str]:
    import re

    return set(re.findall(r"""(?:from\s+|require\(\s*|import\s*\(?\s*)['"]([^'"]+)['"]""", text))


__all__ = ["Index", "IndexCorruptError", "IndexSummary", "Progress", "ProgressFn", "analyse"]
