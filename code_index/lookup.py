"""Lookups by name for explanations: definitions, doc chunks and call sites from the store."""

from __future__ import annotations

import re
from pathlib import Path

from .store import Store, fts_query
from .types import Citation, DocChunk, Snippet, Symbol


def _abs(root: Path, path: str) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else root / p)


def find_definitions(store: Store, root: Path, name: str, *, limit: int = 8) -> list[Symbol]:
    """Definitions named ``name``: the repository's first, then dependencies'."""
    rows = store.reader().execute(
        "SELECT s.name, s.kind, s.qualified_name, s.signature, s.doc, f.path, f.language, "
        "s.start_byte, s.end_byte, s.start_line, s.end_line, f.origin "
        "FROM symbols s JOIN files f ON f.id = s.file_id WHERE s.name = ? "
        "ORDER BY f.origin = 'repo' DESC, length(s.qualified_name) LIMIT ?",
        (name, limit),
    ).fetchall()
    return [
        Symbol(
            name=r[0], kind=r[1] or "", qualified_name=r[2] or r[0], signature=r[3] or "",
            doc=r[4] or "", path=_abs(root, r[5]), language=r[6] or "", start_byte=r[7] or 0,
            end_byte=r[8] or 0, start_line=r[9] or 1, end_line=r[10] or 1,
        )
        for r in rows
    ]


def find_docs(store: Store, name: str, *, limit: int = 3) -> list[DocChunk]:
    """Documentation sections that mention ``name`` (BM25 over the docs' terms)."""
    query = fts_query([name])
    if not query:
        return []
    rows = store.reader().execute(
        "SELECT d.doc_key, d.title, d.text, d.path, d.line, d.url, d.origin FROM docs_fts "
        "JOIN docs d ON d.id = docs_fts.rowid WHERE docs_fts MATCH ? "
        "ORDER BY bm25(docs_fts) LIMIT ?",
        (query, limit),
    ).fetchall()
    return [
        DocChunk(
            id=r[0], title=r[1] or "", text=r[2] or "",
            citation=Citation(path=r[3], line=r[4] or 1, url=r[5]), origin=r[6] or "repo",
        )
        for r in rows
    ]


def find_call_sites(
    store: Store, root: Path, name: str, *, exclude: tuple[str, int, int] | None = None,
    limit: int = 3,
) -> list[Snippet]:
    """Lines of the repository that call or name ``name`` (``exclude``: path, first, last line)."""
    query = fts_query([name])
    if not query:
        return []
    rows = store.reader().execute(
        "SELECT f.path, c.start_line, c.text FROM chunks_fts JOIN chunks c ON c.id = "
        "chunks_fts.rowid JOIN files f ON f.id = c.file_id WHERE chunks_fts MATCH ? "
        "AND f.origin = 'repo' ORDER BY bm25(chunks_fts) LIMIT 40",
        (query,),
    ).fetchall()
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}\s*\(|\.{re.escape(name)}\s*\(")
    out: list[Snippet] = []
    for path, start, text in rows:
        absolute = _abs(root, path)
        for offset, line in enumerate((text or "").split("\n")):
            number = (start or 1) + offset
            if not pattern.search(line) or line.lstrip().startswith(("def ", "class ")):
                continue
            if exclude and exclude[0] == absolute and exclude[1] <= number <= exclude[2]:
                continue
            out.append(Snippet(
                path=absolute, start_line=number, end_line=number, text=line.strip(),
                score=1.0, source="lexical", reason=f"calls {name}",
                citation=Citation(path=absolute, line=number),
            ))
            break
        if len(out) >= limit:
            break
    return out
