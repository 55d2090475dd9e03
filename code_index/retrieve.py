"""Retrieval: symbol-table, lexical (FTS5 BM25) and dense (FAISS) candidates, fused and budgeted."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import numpy as np

from .languages import normalize_language
from .store import Store, fts_query
from .symbols import KEYWORDS, identifiers_in
from .types import Citation, CursorContext, Snippet, SnippetSource

log = logging.getLogger(__name__)

RRF_K = 20
WEIGHTS: dict[str, float] = {"symbol": 2.0, "doc": 1.5, "lexical": 1.0, "dense": 1.0}
MAX_SNIPPET_LINES = 24
MAX_SNIPPETS = 8
SNIPPET_OVERHEAD_TOKENS = 8  # the `<|file_sep|>path` line around each snippet
CURSOR_WINDOW_BEFORE = 80  # same-file lines likely already in the prompt's prefix
CURSOR_WINDOW_AFTER = 30
AMBIGUOUS_DEFINITIONS = 12  # a name defined this often says little about which one is meant
FEW_DEFINITIONS = 3  # more than this: only the best-placed definition is kept
MAX_LOOKUP_NAMES = 96
MAX_QUERY_TERMS = 6
DENSE_BUDGET_MS = 30.0  # retrieval's share of a completion's latency (None: always dense)
MAX_SYMBOL_CANDIDATES = 40
MAX_DF_FRACTION = 0.01  # terms in more chunks than this are left out of lexical queries
MIN_COMMON_DF = 50
MEMBER_PENALTY = 8
AMBIGUOUS_PENALTY = 8
_KIND_RANK = {"class": 0, "interface": 0, "struct": 0, "enum": 0, "type": 1, "function": 1,
              "method": 2, "constant": 2, "macro": 2, "module": 3, "variable": 3, "field": 4}
_IMPORT_RE = re.compile(
    r"^\s*from\s+([\w.]+)\s+import\s+\(?([\w\s,]+)|^\s*import\s+([\w.]+)"
    r"|^\s*import\s+.*?from\s+['\"]([^'\"]+)['\"]",
    re.MULTILINE,
)


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPED_RE = re.compile(r"(?:([A-Za-z_]\w*)\s*\.\s*)?([A-Za-z_]\w*)?$")


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


class _Vectors(Protocol):
    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    @property
    def size(self) -> int: ...


class _Embedder(Protocol):
    def embed_query(self, text: str, *, max_tokens: int = 64) -> np.ndarray: ...


def estimate_tokens(text: str) -> int:
    """A cheap token estimate for code (about 3.5 characters per token)."""
    return int(len(text) / 3.5) + 1


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One retrieved piece before fusion."""

    path: str  # repo-relative, or absolute for dependencies
    abs_path: str
    start_line: int
    end_line: int
    text: str
    source: SnippetSource
    reason: str
    same_file: bool = False
    verbatim: bool = True  # False for outlines (signatures of a long body): they never overlap


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Stage timings of the last retrieval, in milliseconds."""

    symbol: float = 0.0
    lexical: float = 0.0
    dense: float = 0.0
    total: float = 0.0


def _clip(text: str, max_lines: int = MAX_SNIPPET_LINES) -> str:
    lines = text.rstrip().split("\n")
    if len(lines) <= max_lines:
        return "\n".join(lines)
    return "\n".join([*lines[:max_lines], "…"])


def _display_path(path: str) -> str:
    for marker in ("/site-packages/", "/node_modules/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _module_paths(prefix: str) -> tuple[dict[str, str], set[str]]:
    """Names imported by the file before the cursor -> module; and module path fragments."""
    names: dict[str, str] = {}
    modules: set[str] = set()
    for m in _IMPORT_RE.finditer(prefix):
        module = m.group(1) or m.group(3) or m.group(4) or ""
        fragment = module.strip("./").replace(".", "/")
        if fragment:
            modules.add(fragment)
        for name in re.findall(r"\w+", m.group(2) or ""):
            if name not in ("as", "import"):
                names[name] = fragment
    return names, modules


def names_by_distance(prefix: str, suffix: str, first: list[str], *, before: int = 1500,
                      after: int = 300, limit: int = 256) -> list[str]:
    """Identifiers of the text around the cursor, nearest first (``first`` lead).

    The name a line is about to use is often imported at the top or used a little below,
    not only in the last lines, so the whole neighbourhood counts, ordered by line distance.
    """
    distance: dict[str, int] = {}
    for name in first:
        distance.setdefault(name, 0)
    before_lines = prefix.split("\n")[-before:]
    for offset, line in enumerate(reversed(before_lines)):
        for name in _IDENT_RE.findall(line):
            if name not in distance and len(name) > 2 and name not in KEYWORDS:
                distance[name] = offset
    for offset, line in enumerate(suffix.split("\n", after)[:after]):
        for name in _IDENT_RE.findall(line):
            if len(name) > 2 and name not in KEYWORDS and distance.get(name, 10**6) > offset:
                distance[name] = offset
    return sorted(distance, key=lambda n: distance[n])[:limit]


class Retriever:
    """Fuses symbol, lexical and dense candidates for a cursor (the engine's one seam)."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self._vectors: _Vectors | None = None
        self._embedder: _Embedder | None = None
        self._lock = threading.Lock()
        self._df: dict[str, int] = {}
        self._common: set[str] | None = None  # terms too common to query, once warmed
        self.dense_budget_ms: float | None = DENSE_BUDGET_MS
        self._dense_ms = 0.0  # moving average of one query embedding
        self._dense_skipped = 0
        self._n_chunks = 0
        self.last_timings = Timings()

    @property
    def dense_query_ms(self) -> float:
        """Moving average of one query embedding, in milliseconds."""
        return self._dense_ms

    @property
    def dense_skipped(self) -> int:
        """Completions that skipped dense search to stay within the latency budget."""
        return self._dense_skipped

    def set_dense(self, vectors: _Vectors, embedder: _Embedder) -> None:
        """Enable dense search (once vectors exist)."""
        with self._lock:
            self._vectors, self._embedder = vectors, embedder

    def invalidate(self, *, rebuilt: bool = False) -> None:
        """The index changed; after a build, term frequencies are counted afresh."""
        if rebuilt:
            with self._lock:
                self._df.clear()
                self._n_chunks = 0
                self._common = None

    def warm(self) -> None:
        """Learn which terms are too common for lexical queries, in one pass over the vocabulary.

        Without it each new term costs a count query on first use (slow for common terms).
        """
        db = sqlite3.connect(self.store.path, timeout=30)
        try:
            n = db.execute("SELECT max(rowid) FROM chunks_fts").fetchone()[0] or 0
            limit = max(MIN_COMMON_DF, int(n * MAX_DF_FRACTION))
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
                       "USING fts5vocab(main, 'chunks_fts', 'row')")
            common = {r[0] for r in db.execute(
                "SELECT term FROM temp.chunks_vocab WHERE doc > ?", (limit,))}
        finally:
            db.close()
        with self._lock:
            self._common, self._n_chunks = common, n

    def _selective_terms(self, db: sqlite3.Connection, words: list[str]) -> list[str]:
        """The rarest useful FTS terms of the words: common terms make BM25 slow and vague."""
        with self._lock:
            if not self._n_chunks:
                self._n_chunks = db.execute("SELECT max(rowid) FROM chunks_fts").fetchone()[0] or 0
            n_chunks, common = self._n_chunks, self._common
        limit = max(MIN_COMMON_DF, int(n_chunks * MAX_DF_FRACTION))
        scored: list[tuple[int, str]] = []
        for term in fts_query(words, limit=32).replace('"', "").split(" OR "):
            if not term:
                continue
            if common is not None:
                if term not in common:
                    scored.append((0, term))
                continue
            df = self._df.get(term)
            if df is None:
                df = db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                (f'"{term}"',)).fetchone()[0]
                with self._lock:
                    if len(self._df) > 200_000:
                        self._df.clear()
                    self._df[term] = df
            if 0 < df <= limit:  # nearest first; the cap on df keeps BM25 cheap
                scored.append((df, term))
        return [term for _, term in scored[:MAX_QUERY_TERMS]]

    # ---- the engine's API ---------------------------------------------------------------------

    def retrieve(self, ctx: CursorContext, *, budget_tokens: int,
                 count_tokens: Callable[[str], int] | None = None,
                 max_snippets: int = MAX_SNIPPETS) -> list[Snippet]:
        """Ranked, fused, deduplicated snippets for the cursor, within ``budget_tokens``."""
        started = time.perf_counter()
        if budget_tokens <= 0:
            return []
        db = self.store.reader()
        cur_rel = self._rel(ctx.path)
        lines_before = ctx.prefix.split("\n")[-14:]
        near = list(ctx.identifiers) or identifiers_in("\n".join(lines_before))
        first_suffix_line = ctx.suffix.split("\n", 1)[0]
        for name in identifiers_in(first_suffix_line):
            if name not in near:
                near.append(name)
        near = [n for n in near if len(n) > 1][:24]
        names = names_by_distance(ctx.prefix, ctx.suffix, near)
        imported, modules = _module_paths(ctx.prefix[:20000])
        cursor_line = ctx.line + 1
        try:
            t0 = time.perf_counter()
            local = self._local_names(db, cur_rel)
            typed = self._typed_candidates(db, lines_before[-1], names, cur_rel, cursor_line)
            symbols = self._symbol_candidates(db, names, imported, modules, cur_rel, cursor_line,
                                              local)
            if typed:  # what is being typed leads; the rest keeps its order after it
                keys = {(c.path, c.start_line) for c in typed}
                symbols = typed + [c for c in symbols if (c.path, c.start_line) not in keys]
            t1 = time.perf_counter()
            lexical = self._lexical_candidates(db, near[:16], cur_rel, cursor_line, limit=20)
            t2 = time.perf_counter()
            query_text = "\n".join([*lines_before[-6:], first_suffix_line])
            spent_ms = (t2 - started) * 1000
            # Dense search costs one embedding forward pass; it runs only when its recent
            # cost still fits the completion's latency budget (a GPU, a fast CPU).
            dense: list[Candidate] = []
            if self.dense_budget_ms is None or spent_ms + self._dense_ms < self.dense_budget_ms:
                dense = self._dense_candidates(db, query_text, cur_rel, cursor_line, limit=20)
            else:
                self._dense_skipped += 1
                if self._dense_skipped % 50 == 0:
                    self._dense_ms *= 0.8  # re-measure now and then: the machine may be idle
            t3 = time.perf_counter()
        except sqlite3.Error as exc:  # a locked or broken index must not break completion
            log.warning("retrieval failed: %s", exc)
            return []
        fused = fuse([symbols, lexical, dense])
        snippets = fit_budget(fused, budget_tokens, count_tokens or estimate_tokens,
                              max_snippets=max_snippets)
        self.last_timings = Timings(
            symbol=(t1 - t0) * 1000, lexical=(t2 - t1) * 1000, dense=(t3 - t2) * 1000,
            total=(time.perf_counter() - started) * 1000,
        )
        return snippets

    def search(self, query: str, *, k: int = 10) -> list[Snippet]:
        """Free-text search over symbols, chunks, docs and vectors, fused."""
        db = self.store.reader()
        words = identifiers_in(query, limit=16, skip_keywords=False)
        try:
            symbols = self._symbol_candidates(db, words, {}, set(), None, 0,
                                              why="named in the query")
            lexical = self._lexical_candidates(db, words, None, 0, limit=k * 2,
                                               why="matches the query")
            docs = self._doc_candidates(db, words, limit=k)
            dense = self._dense_candidates(db, query, None, 0, limit=k * 2)
        except sqlite3.Error as exc:
            log.warning("search failed: %s", exc)
            return []
        fused = fuse([symbols, lexical, docs, dense])
        return fit_budget(fused, 10**9, estimate_tokens, max_snippets=k)

    def definitions(self, name: str, *, path: str | None = None, k: int = 5) -> list[Snippet]:
        """Definitions of one name (for hover), other files first; ``path`` is the asker's file."""
        db = self.store.reader()
        try:
            found = self._symbol_candidates(db, [name], {}, set(), self._rel(path), 0,
                                            why="definition")
        except sqlite3.Error as exc:
            log.warning("definition lookup failed: %s", exc)
            return []
        return fit_budget([(1.0 / (i + 1), c) for i, c in enumerate(found)], 10**9,
                          estimate_tokens, max_snippets=k)

    # ---- candidates ---------------------------------------------------------------------------

    def _rel(self, path: str | None) -> str | None:
        if not path:
            return None
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None

    def _abs(self, path: str, origin: str) -> str:
        return path if origin == "dependency" else str(self.root / path)

    @staticmethod
    def _near_cursor(path: str, cur_rel: str | None, start: int, end: int, line: int) -> bool:
        return (
            cur_rel is not None
            and path == cur_rel
            and start <= line + CURSOR_WINDOW_AFTER
            and end >= line - CURSOR_WINDOW_BEFORE
        )

    @staticmethod
    def _local_names(db: sqlite3.Connection, cur_rel: str | None) -> set[str]:
        if cur_rel is None:
            return set()
        return {r[0] for r in db.execute(
            "SELECT s.name FROM symbols s JOIN files f ON f.id=s.file_id WHERE f.path=?",
            (cur_rel,),
        )}

    def _symbol_candidates(
        self,
        db: sqlite3.Connection,
        names: list[str],
        imported: dict[str, str],
        modules: set[str],
        cur_rel: str | None,
        cursor_line: int,
        local: set[str] | frozenset[str] = frozenset(),
        why: str = "used near the cursor",
    ) -> list[Candidate]:
        if not names:
            return []
        placeholders = ",".join("?" * len(names))
        # Count first (index only): a name defined in many places is fetched just once.
        counts = dict(db.execute(
            f"SELECT name, count(*) FROM symbols WHERE name IN ({placeholders}) GROUP BY name",
            names,
        ).fetchall())
        defined = [n for n in names if 0 < counts.get(n, 0) <= AMBIGUOUS_DEFINITIONS]
        defined = defined[:MAX_LOOKUP_NAMES]
        if not defined:
            return []
        placeholders = ",".join("?" * len(defined))
        rows = db.execute(
            "SELECT s.name, s.kind, s.qualified_name, s.id, s.start_line, s.end_line, "
            "s.outer_start_line, f.path, f.origin, f.package FROM symbols s "
            f"JOIN files f ON f.id=s.file_id WHERE s.name IN ({placeholders})",
            defined,
        ).fetchall()
        by_name: dict[str, list[tuple]] = {}
        for row in rows:
            by_name.setdefault(row[0], []).append(row)
        order = {n: i for i, n in enumerate(defined)}
        scored: list[tuple[tuple, tuple, bool]] = []
        for name, defs in by_name.items():
            ambiguous = len(defs) > FEW_DEFINITIONS
            module = imported.get(name)
            ranked = []
            for row in defs:
                _, kind, qual, _, start, end, outer, path, origin, _ = row
                if self._near_cursor(path, cur_rel, outer or start, end, cursor_line):
                    continue
                same = path == cur_rel
                stem = path.rsplit(".", 1)[0]
                from_import = bool(module and (stem.endswith(module) or
                                               stem.endswith(module + "/__init__")))
                in_imported_module = any(stem.endswith(m) for m in modules)
                member = "." in qual and kind not in ("class", "struct", "interface")
                # The identifier nearest the cursor leads; imports pick among its definitions.
                key = (
                    name in local and not same,  # the file defines it: others are unlikely
                    same,
                    # Top-level names say more than attribute names (`value`, `append`).
                    order[name] + (MEMBER_PENALTY if member else 0)
                    + (AMBIGUOUS_PENALTY if ambiguous else 0),
                    not from_import,
                    not in_imported_module,
                    origin != "repo",
                    _KIND_RANK.get(kind, 3),
                )
                ranked.append((key, row, from_import))
            ranked.sort(key=lambda item: item[0])
            scored.extend(ranked[: 1 if ambiguous else 3])
        scored.sort(key=lambda item: item[0])
        return self._build_candidates(
            db, [(row, imp) for _, row, imp in scored[:MAX_SYMBOL_CANDIDATES]], cur_rel, why
        )

    def _typed_candidates(
        self, db: sqlite3.Connection, line_head: str, names: list[str], cur_rel: str | None,
        cursor_line: int,
    ) -> list[Candidate]:
        """What the cursor is typing: ``module.`` members, or names starting with a prefix."""
        m = _TYPED_RE.search(line_head)
        if m is None:
            return []
        qualifier, partial = m.group(1), m.group(2) or ""
        if qualifier in ("self", "cls", "this", "super"):
            qualifier = None
        columns = ("SELECT s.name, s.kind, s.qualified_name, s.id, s.start_line, s.end_line, "
                   "s.outer_start_line, f.path, f.origin, f.package FROM symbols s "
                   "JOIN files f ON f.id=s.file_id ")
        rows: list[tuple] = []
        if qualifier:
            file_ids = []
            for fid, path in db.execute("SELECT id, path FROM files WHERE path GLOB ?",
                                        (f"*{qualifier}*",)):
                pure = PurePosixPath(path)
                if pure.stem == qualifier or (
                    pure.stem in ("__init__", "index", "mod") and pure.parent.name == qualifier
                ):
                    file_ids.append(fid)
            if file_ids:
                rows = db.execute(
                    columns + f"WHERE s.file_id IN ({','.join('?' * len(file_ids))}) "
                    "AND s.qualified_name = s.name AND s.name GLOB ? LIMIT 400",
                    [*file_ids, f"{_glob_escape(partial)}*"],
                ).fetchall()
        elif len(partial) >= 2:
            rows = db.execute(
                columns + "WHERE s.name >= ? AND s.name < ? LIMIT 200",
                (partial, partial + "\U0010ffff"),
            ).fetchall()
        if not rows:
            return []
        order = {n: i for i, n in enumerate(names)}
        ranked = sorted(
            (r for r in rows
             if r[0] != partial and not self._near_cursor(r[7], cur_rel, r[6] or r[4], r[5],
                                                           cursor_line)),
            key=lambda r: (r[7] == cur_rel, r[0] not in order, order.get(r[0], 0),
                           "." in r[2], r[0].startswith("_"), r[8] != "repo",
                           _KIND_RANK.get(r[1], 3), r[4]),
        )
        why = f"in `{qualifier}`, which the cursor is typing" if qualifier else (
            f"starts with `{partial}`, typed at the cursor")
        return self._build_candidates(db, [(r, False) for r in ranked[:10]], cur_rel, why)

    def _build_candidates(
        self, db: sqlite3.Connection, scored: list[tuple[tuple, bool]], cur_rel: str | None,
        why: str,
    ) -> list[Candidate]:
        if not scored:
            return []
        # Summaries only for the few that can make it into the prompt.
        ids = [row[3] for row, _ in scored]
        summaries = dict(db.execute(
            f"SELECT id, summary FROM symbols WHERE id IN ({','.join('?' * len(ids))})", ids
        ).fetchall())
        out: list[Candidate] = []
        for row, from_import in scored:
            _, kind, qual, sid, start, end, outer, path, origin, package = row
            summary = summaries.get(sid) or ""
            out.append(Candidate(
                path=_display_path(path) if origin == "dependency" else path,
                abs_path=self._abs(path, origin),
                start_line=outer or start,
                end_line=end,
                text=_clip(summary),
                source="doc" if origin == "dependency" else "symbol",
                reason=(f"{kind} `{qual}` {why}"
                        + (f" (from {package})" if origin == "dependency" and package else "")
                        + (", imported here" if from_import else "")),
                same_file=path == cur_rel,
                verbatim=summary.count("\n") + 1 >= end - (outer or start) + 1,
            ))
        return out

    def _chunk_rows(self, db: sqlite3.Connection, ids: list[int]) -> dict[int, tuple]:
        if not ids:
            return {}
        placeholders = ",".join("?" * len(ids))
        rows = db.execute(
            "SELECT c.id, c.start_line, c.end_line, c.text, c.symbol, f.path, f.origin, "
            "(SELECT s.summary FROM symbols s WHERE s.file_id=c.file_id AND "
            " s.qualified_name=c.symbol LIMIT 1) "
            f"FROM chunks c JOIN files f ON f.id=c.file_id WHERE c.id IN ({placeholders})",
            ids,
        ).fetchall()
        return {r[0]: r for r in rows}

    def _chunk_candidate(self, row: tuple, source: SnippetSource, reason: str,
                         cur_rel: str | None) -> Candidate:
        _, start, end, text, symbol, path, origin, summary = row
        # A function's compact summary (signature + doc for long ones) beats a raw window.
        shown = summary if (summary and symbol) else text
        return Candidate(
            path=path, abs_path=self._abs(path, origin), start_line=start, end_line=end,
            text=_clip(shown), source=source, reason=reason, same_file=path == cur_rel,
            verbatim=shown.count("\n") + 1 >= end - start + 1,
        )

    def _lexical_candidates(self, db: sqlite3.Connection, words: list[str], cur_rel: str | None,
                            cursor_line: int, *, limit: int,
                            why: str = "shares identifiers with the cursor's lines",
                            ) -> list[Candidate]:
        terms = self._selective_terms(db, words)
        if not terms:
            return []
        query = " OR ".join(f'"{t}"' for t in terms)
        hits = db.execute(
            "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY rank LIMIT ?",
            (query, limit * 2),
        ).fetchall()
        rows = self._chunk_rows(db, [h[0] for h in hits])
        out: list[Candidate] = []
        for rowid, score in hits:
            row = rows.get(rowid)
            if row is None or self._near_cursor(row[5], cur_rel, row[1], row[2], cursor_line):
                continue
            out.append(self._chunk_candidate(row, "lexical", f"{why} (bm25 {-score:.1f})",
                                             cur_rel))
            if len(out) >= limit:
                break
        return out

    def _doc_candidates(self, db: sqlite3.Connection, words: list[str], *, limit: int
                        ) -> list[Candidate]:
        query = fts_query(words)
        if not query:
            return []
        rows = db.execute(
            "SELECT d.title, d.text, d.path, d.line, d.origin, d.package FROM docs_fts "
            "JOIN docs d ON d.id=docs_fts.rowid WHERE docs_fts MATCH ? ORDER BY rank LIMIT ?",
            (query, limit),
        ).fetchall()
        out = []
        for title, text, path, line, origin, package in rows:
            rel = self._rel(path) or _display_path(path or "")
            out.append(Candidate(
                path=rel, abs_path=path or "", start_line=line or 1,
                end_line=(line or 1) + text.count("\n"), text=_clip(f"{title}\n{text}", 12),
                source="doc", reason=f"{origin} documentation" + (f" of {package}" if package
                                                                   else ""),
            ))
        return out

    def _dense_candidates(self, db: sqlite3.Connection, text: str, cur_rel: str | None,
                          cursor_line: int, *, limit: int) -> list[Candidate]:
        with self._lock:
            vectors, embedder = self._vectors, self._embedder
        if vectors is None or embedder is None or vectors.size == 0 or not text.strip():
            return []
        t0 = time.perf_counter()
        query = embedder.embed_query(f"{cur_rel or ''}\n{text}")
        elapsed = (time.perf_counter() - t0) * 1000
        self._dense_ms = elapsed if not self._dense_ms else 0.8 * self._dense_ms + 0.2 * elapsed
        hits = vectors.search(query, limit * 2)
        rows = self._chunk_rows(db, [h[0] for h in hits])
        out: list[Candidate] = []
        for rowid, score in hits:
            row = rows.get(rowid)
            if row is None or self._near_cursor(row[5], cur_rel, row[1], row[2], cursor_line):
                continue
            out.append(self._chunk_candidate(
                row, "dense", f"similar to the code at the cursor (cosine {score:.2f})", cur_rel))
            if len(out) >= limit:
                break
        return out


def fuse(lists: list[list[Candidate]], k: int = RRF_K) -> list[tuple[float, Candidate]]:
    """Reciprocal-rank fusion; overlapping ranges of one file merge into the best-scored one.

    Candidates from other files come before the cursor's own file at equal footing, since
    the prompt already carries the file around the cursor.
    """
    scores: dict[tuple[str, int, int], float] = {}
    best: dict[tuple[str, int, int], Candidate] = {}
    for candidates in lists:
        for rank, c in enumerate(candidates):
            key = (c.path, c.start_line, c.end_line)
            weight = WEIGHTS.get(c.source, 1.0) * (0.5 if c.same_file else 1.0)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank + 1)
            if key not in best or WEIGHTS[c.source] > WEIGHTS[best[key].source]:
                best[key] = c
    ordered = sorted(scores.items(), key=lambda item: -item[1])
    kept: list[tuple[float, Candidate]] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for key, score in ordered:
        c = best[key]
        if c.verbatim:
            spans = taken.setdefault(c.path, [])
            if any(c.start_line <= hi and lo <= c.end_line for lo, hi in spans):
                continue
            spans.append((c.start_line, c.end_line))
        kept.append((score, c))
    return kept


def fit_budget(
    fused: list[tuple[float, Candidate]],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    *,
    max_snippets: int = MAX_SNIPPETS,
) -> list[Snippet]:
    """The best snippets whose texts (plus a path line each) fit the token budget."""
    out: list[Snippet] = []
    used = 0
    for score, c in fused:
        if len(out) >= max_snippets:
            break
        if not c.text.strip():
            continue
        cost = count_tokens(c.text) + SNIPPET_OVERHEAD_TOKENS
        if used + cost > budget_tokens:
            continue
        used += cost
        out.append(Snippet(
            path=c.path, start_line=c.start_line, end_line=c.end_line, text=c.text,
            score=score, source=c.source, reason=c.reason,
            citation=Citation(path=c.abs_path, line=c.start_line),
        ))
    return out


__all__ = ["Retriever", "estimate_tokens", "fit_budget", "fuse", "normalize_language"]
