"""Symbol-aligned chunks of a source file, with stable ids and content hashes."""

from __future__ import annotations

import hashlib

from .symbols import CONTAINER_KINDS, Definition, ParsedFile
from .types import Chunk

_FUNCTIONS = frozenset({"function", "method"})


def content_hash(text: str) -> str:
    """A short, stable hash of a text (what decides whether work must be redone)."""
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=12).hexdigest()


def _chunk_id(path: str, anchor: str) -> str:
    return hashlib.blake2b(f"{path}\0{anchor}".encode(), digest_size=8).hexdigest()


class _Builder:
    def __init__(self, path: str, language: str, lines: list[str], max_lines: int) -> None:
        self.path = path
        self.language = language
        self.lines = lines
        self.max_lines = max_lines
        self.chunks: list[Chunk] = []
        self._anchors: dict[str, int] = {}

    def add(self, start: int, end: int, anchor: str, symbol: str | None, text: str | None = None,
            ) -> None:
        """Add lines ``start..end`` (1-based, inclusive), split when longer than the limit."""
        if text is not None:
            self._emit(start, end, anchor, symbol, text)
            return
        step = self.max_lines
        for part, lo in enumerate(range(start, end + 1, step)):
            hi = min(end, lo + step - 1)
            body = "\n".join(self.lines[lo - 1 : hi])
            if not body.strip():
                continue
            self._emit(lo, hi, anchor if part == 0 else f"{anchor}#{part}", symbol, body)

    def _emit(self, start: int, end: int, anchor: str, symbol: str | None, text: str) -> None:
        seen = self._anchors.get(anchor, 0)
        self._anchors[anchor] = seen + 1
        if seen:  # overloads and redefinitions keep distinct, still stable, ids
            anchor = f"{anchor}@{seen}"
        self.chunks.append(
            Chunk(
                id=_chunk_id(self.path, anchor),
                path=self.path,
                language=self.language,
                start_line=start,
                end_line=end,
                text=text,
                content_hash=content_hash(text),
                symbol=symbol,
            )
        )


def chunk_file(
    path: str,
    text: str,
    parsed: ParsedFile | None,
    language: str,
    *,
    max_lines: int = 60,
    block_lines: int = 40,
) -> list[Chunk]:
    """Chunks of a file: functions, class outlines with their methods, module-level blocks.

    Files without a grammar are cut into blocks of ``block_lines`` lines.
    """
    lines = text.split("\n")
    builder = _Builder(path, language, lines, max_lines)
    defs = parsed.definitions if parsed is not None else []
    if not defs:
        builder.max_lines = block_lines
        builder.add(1, len(lines), "L1", None)
        return builder.chunks

    covered = [False] * (len(lines) + 2)

    def cover(lo: int, hi: int) -> None:
        for i in range(max(lo, 1), min(hi, len(lines)) + 1):
            covered[i] = True

    children: dict[int | None, list[int]] = {}
    for i, d in enumerate(defs):
        children.setdefault(d.parent, []).append(i)

    def visit(index: int, depth: int) -> None:
        d: Definition = defs[index]
        s = d.symbol
        if s.kind in _FUNCTIONS or (s.kind not in CONTAINER_KINDS):
            if s.kind in _FUNCTIONS or s.end_line - d.outer_start_line >= 2:
                builder.add(d.outer_start_line, s.end_line, s.qualified_name, s.qualified_name)
                cover(d.outer_start_line, s.end_line)
            return
        kids = children.get(index, [])
        span = s.end_line - d.outer_start_line + 1
        if not kids or span <= max_lines // 2 or depth >= 2:
            builder.add(d.outer_start_line, s.end_line, s.qualified_name, s.qualified_name)
            cover(d.outer_start_line, s.end_line)
            return
        # The outline (header, doc, member signatures) stands for the whole container.
        builder.add(d.outer_start_line, s.end_line, s.qualified_name, s.qualified_name, d.summary)
        cover(d.outer_start_line, s.end_line)
        for k in kids:
            visit(k, depth + 1)

    for top in children.get(None, []):
        visit(top, 0)

    # Module-level code between definitions, in blocks.
    start: int | None = None
    for line_no in range(1, len(lines) + 2):
        free = line_no <= len(lines) and not covered[line_no]
        if free and start is None:
            start = line_no
        if start is not None and (not free or line_no - start >= block_lines):
            end = line_no - 1
            if "\n".join(lines[start - 1 : end]).strip():
                builder.add(start, end, f"L{start}", None)
            start = line_no if free else None
    return builder.chunks
