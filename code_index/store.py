"""The index's SQLite store: files, symbols, chunks, docs, hashes, embeddings and FTS5 tables."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .symbols import Definition, split_identifier
from .types import Chunk, DocChunk

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
DB_NAME = "index.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(
  id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, language TEXT, origin TEXT NOT NULL,
  hash TEXT, size INTEGER, mtime_ns INTEGER, package TEXT);
CREATE TABLE IF NOT EXISTS symbols(
  id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
  name TEXT NOT NULL, kind TEXT, qualified_name TEXT, signature TEXT, doc TEXT, summary TEXT,
  start_byte INTEGER, end_byte INTEGER, start_line INTEGER, end_line INTEGER,
  outer_start_line INTEGER);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_file ON symbols(file_id);
CREATE INDEX IF NOT EXISTS symbols_qualified ON symbols(qualified_name);
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT, chunk_key TEXT NOT NULL,
  file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
  start_line INTEGER, end_line INTEGER, symbol TEXT, text TEXT, content_hash TEXT);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(content_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts
  USING fts5(terms, tokenize="unicode61 tokenchars '_'");
CREATE TABLE IF NOT EXISTS docs(
  id INTEGER PRIMARY KEY, doc_key TEXT UNIQUE NOT NULL,
  file_id INTEGER REFERENCES files(id) ON DELETE CASCADE,
  title TEXT, text TEXT, path TEXT, line INTEGER, url TEXT, origin TEXT, package TEXT);
CREATE INDEX IF NOT EXISTS docs_file ON docs(file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(terms, tokenize="unicode61 tokenchars '_'");
CREATE TABLE IF NOT EXISTS embeddings(content_hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS packages(name TEXT PRIMARY KEY, version TEXT, indexed_at REAL);
CREATE TABLE IF NOT EXISTS skipped(path TEXT PRIMARY KEY, reason TEXT NOT NULL);
"""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class IndexCorruptError(Exception):
    """The SQLite file cannot be used; the caller moves it aside and rebuilds."""


@functools.lru_cache(maxsize=200_000)
def _terms_of_identifier(name: str) -> str:
    lowered = name.lower()
    parts = split_identifier(name)
    if len(parts) > 1:
        return lowered + " " + " ".join(parts)
    return lowered


def fts_terms(text: str) -> str:
    """The FTS5 column text: identifiers, lower-cased, plus their sub-words."""
    return " ".join(_terms_of_identifier(m) for m in _IDENT.findall(text))


def fts_query(words: Iterable[str], limit: int = 24) -> str:
    """An OR query of identifiers and their sub-words for FTS5 MATCH (empty if nothing)."""
    terms: dict[str, None] = {}
    for word in words:
        for term in _terms_of_identifier(word).split():
            if len(term) > 1 and term.isascii():
                terms[term] = None
        if len(terms) >= limit:
            break
    return " OR ".join(f'"{t}"' for t in list(terms)[:limit])


@dataclass(frozen=True, kw_only=True)
class FileRow:
    """A stored file."""

    id: int
    path: str
    language: str
    origin: str
    hash: str
    size: int
    mtime_ns: int


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("PRAGMA cache_size=-32000")
    return db


class Store:
    """One repository's SQLite index; a writer connection plus one reader per thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        data_dir.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self.db = _connect(self.path)
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.path} is not a usable index ({exc})") from exc

    @classmethod
    def open_or_rebuild(cls, data_dir: Path) -> Store:
        """Open the store; a corrupt file is moved aside (``index.db.corrupt``) and recreated."""
        try:
            store = cls(data_dir)
            store.check()
            return store
        except IndexCorruptError as exc:
            log.error("%s; moving it aside and rebuilding", exc)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for suffix in ("", "-wal", "-shm"):
                old = data_dir / f"{DB_NAME}{suffix}"
                if old.exists():
                    old.replace(data_dir / f"{DB_NAME}{suffix}.corrupt-{stamp}")
            return cls(data_dir)

    def _init_schema(self) -> None:
        row = None
        with contextlib.suppress(sqlite3.OperationalError):
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and row[0] != str(SCHEMA_VERSION):
            # Derived data only: an index of another schema is dropped and rebuilt.
            log.warning("index schema %s != %s: rebuilding", row[0], SCHEMA_VERSION)
            self.db.close()
            for suffix in ("", "-wal", "-shm"):
                (self.data_dir / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
            self.db = _connect(self.path)
        with self.transaction() as db:
            for statement in _SCHEMA.strip().split(";\n"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def check(self) -> None:
        """Raise :class:`IndexCorruptError` unless the database passes a quick check."""
        try:
            result = self.db.execute("PRAGMA quick_check").fetchone()
            self.db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'x'").fetchone()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise IndexCorruptError(f"{self.path} is corrupt ({exc})") from exc
        if result is None or result[0] != "ok":
            self.close()
            raise IndexCorruptError(f"{self.path} failed its integrity check ({result})")

    # ---- connections ----------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        """Return this thread's read connection (WAL lets it read while the writer writes)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = _connect(self.path)
            db.execute("PRAGMA query_only=ON")
            self._local.db = db
            with self._write_lock:
                self._readers.append(db)
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection: all of it commits, or none."""
        with self._write_lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    def close(self) -> None:
        """Close every connection."""
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            for db in self._readers:
                with contextlib.suppress(Exception):
                    db.close()
            with contextlib.suppress(Exception):
                self.db.close()

    # ---- meta -------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A value of the meta table."""
        row = self.reader().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        """Set a meta value inside a transaction."""
        db.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))

    def bump_vectors_version(self, db: sqlite3.Connection) -> None:
        """Mark the stored vectors changed (a FAISS file built earlier is now stale)."""
        db.execute(
            "INSERT INTO meta VALUES('vectors_version', '1') ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + 1"
        )

    # ---- files --------------------------------------------------------------------------------

    def files(self, origin: str = "repo") -> dict[str, FileRow]:
        """Stored files of one origin by path."""
        rows = self.reader().execute(
            "SELECT id, path, language, origin, hash, size, mtime_ns FROM files WHERE origin=?",
            (origin,),
        ).fetchall()
        return {r[1]: FileRow(id=r[0], path=r[1], language=r[2], origin=r[3], hash=r[4] or "",
                              size=r[5] or 0, mtime_ns=r[6] or 0) for r in rows}

    def file_row(self, path: str) -> FileRow | None:
        """One stored file by path."""
        r = self.reader().execute(
            "SELECT id, path, language, origin, hash, size, mtime_ns FROM files WHERE path=?",
            (path,),
        ).fetchone()
        if r is None:
            return None
        return FileRow(id=r[0], path=r[1], language=r[2], origin=r[3], hash=r[4] or "",
                       size=r[5] or 0, mtime_ns=r[6] or 0)

    def delete_file(self, db: sqlite3.Connection, path: str) -> bool:
        """Remove a file and everything derived from it; True if it was there."""
        row = db.execute("SELECT id FROM files WHERE path=?", (path,)).fetchone()
        if row is None:
            return False
        file_id = row[0]
        db.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE file_id=?)",
            (file_id,),
        )
        db.execute(
            "DELETE FROM docs_fts WHERE rowid IN (SELECT id FROM docs WHERE file_id=?)", (file_id,)
        )
        n_chunks = db.execute("DELETE FROM chunks WHERE file_id=?", (file_id,)).rowcount
        db.execute("DELETE FROM symbols WHERE file_id=?", (file_id,))
        db.execute("DELETE FROM docs WHERE file_id=?", (file_id,))
        db.execute("DELETE FROM files WHERE id=?", (file_id,))
        if n_chunks:
            self.bump_vectors_version(db)
        return True

    def put_file(
        self,
        db: sqlite3.Connection,
        *,
        path: str,
        language: str,
        origin: str,
        file_hash: str,
        size: int,
        mtime_ns: int,
        definitions: Sequence[Definition],
        chunks: Sequence[Chunk],
        docs: Sequence[DocChunk] = (),
        package: str | None = None,
    ) -> list[int]:
        """Replace one file's rows; returns the new chunk row ids."""
        self.delete_file(db, path)
        db.execute("DELETE FROM skipped WHERE path=?", (path,))
        cur = db.execute(
            "INSERT INTO files(path, language, origin, hash, size, mtime_ns, package) "
            "VALUES(?,?,?,?,?,?,?)",
            (path, language, origin, file_hash, size, mtime_ns, package),
        )
        file_id = cur.lastrowid
        db.executemany(
            "INSERT INTO symbols(file_id, name, kind, qualified_name, signature, doc, summary, "
            "start_byte, end_byte, start_line, end_line, outer_start_line) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (file_id, d.symbol.name, d.symbol.kind, d.symbol.qualified_name,
                 d.symbol.signature, d.symbol.doc, d.summary, d.symbol.start_byte,
                 d.symbol.end_byte, d.symbol.start_line, d.symbol.end_line, d.outer_start_line)
                for d in definitions
            ],
        )
        ids: list[int] = []
        for c in chunks:
            cur = db.execute(
                "INSERT INTO chunks(chunk_key, file_id, start_line, end_line, symbol, text, "
                "content_hash) VALUES(?,?,?,?,?,?,?)",
                (c.id, file_id, c.start_line, c.end_line, c.symbol, c.text, c.content_hash),
            )
            rowid = cur.lastrowid
            assert rowid is not None
            ids.append(rowid)
            terms = fts_terms(f"{c.symbol or ''} {path.rsplit('/', 1)[-1]} {c.text}")
            db.execute("INSERT INTO chunks_fts(rowid, terms) VALUES(?, ?)", (rowid, terms))
        for d in docs:
            self.put_doc(db, d, file_id=file_id, package=package)
        if chunks:
            self.bump_vectors_version(db)
        return ids

    def put_doc(
        self, db: sqlite3.Connection, doc: DocChunk, *, file_id: int | None, package: str | None
    ) -> None:
        """Insert (or replace) one doc chunk and its FTS row."""
        old = db.execute("SELECT id FROM docs WHERE doc_key=?", (doc.id,)).fetchone()
        if old is not None:
            db.execute("DELETE FROM docs_fts WHERE rowid=?", (old[0],))
            db.execute("DELETE FROM docs WHERE id=?", (old[0],))
        cur = db.execute(
            "INSERT INTO docs(doc_key, file_id, title, text, path, line, url, origin, package) "
            "VALUES(?,?,?,?,?,?,?,?,?)",
            (doc.id, file_id, doc.title, doc.text, doc.citation.path, doc.citation.line,
             doc.citation.url, doc.origin, package),
        )
        db.execute(
            "INSERT INTO docs_fts(rowid, terms) VALUES(?, ?)",
            (cur.lastrowid, fts_terms(f"{doc.title} {doc.text}")),
        )

    def record_skipped(self, db: sqlite3.Connection, path: str, reason: str) -> None:
        """Remember why a file is not indexed."""
        db.execute("INSERT OR REPLACE INTO skipped VALUES(?, ?)", (path, reason))

    # ---- embeddings ---------------------------------------------------------------------------

    def missing_embeddings(self, limit: int) -> list[tuple[str, str, str]]:
        """(content_hash, path, text) of chunks whose content has no stored vector yet."""
        return self.reader().execute(
            "SELECT c.content_hash, f.path, c.text FROM chunks c JOIN files f ON f.id=c.file_id "
            "LEFT JOIN embeddings e ON e.content_hash=c.content_hash "
            "WHERE e.content_hash IS NULL GROUP BY c.content_hash LIMIT ?",
            (limit,),
        ).fetchall()

    def put_embeddings(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (float32) by content hash."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES(?, ?)",
                [(h, v.astype(np.float32).tobytes()) for h, v in zip(hashes, vectors, strict=True)],
            )
            self.bump_vectors_version(db)

    def chunk_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, vectors) of every chunk that has a stored vector."""
        rows = self.reader().execute(
            "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.content_hash=c.content_hash"
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.zeros((len(rows), dim), dtype=np.float32)
        for i, r in enumerate(rows):
            vectors[i] = np.frombuffer(r[1], dtype=np.float32)
        return ids, vectors

    def embedding_counts(self) -> tuple[int, int]:
        """(chunks with a vector, chunks)."""
        db = self.reader()
        total = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        done = db.execute(
            "SELECT count(*) FROM chunks c JOIN embeddings e ON e.content_hash=c.content_hash"
        ).fetchone()[0]
        return done, total

    # ---- stats ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Row counts for status and summaries."""
        db = self.reader()
        out = {}
        for table, where in (
            ("files", "origin='repo'"), ("symbols", "1"), ("chunks", "1"), ("docs", "1"),
            ("embeddings", "1"),
        ):
            out[table] = db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
        out["dependency_files"] = db.execute(
            "SELECT count(*) FROM files WHERE origin='dependency'"
        ).fetchone()[0]
        return out

    def skipped_counts(self) -> dict[str, int]:
        """Skipped files by reason."""
        return dict(
            self.reader().execute("SELECT reason, count(*) FROM skipped GROUP BY reason").fetchall()
        )
