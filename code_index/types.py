"""Typed records and seams shared by the index, the completion engine and training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

SnippetSource = Literal["symbol", "lexical", "dense", "doc", "similar"]


@dataclass(frozen=True, kw_only=True)
class Citation:
    """Where a piece of context came from: a file and 1-based line, or a URL."""

    path: str | None = None
    line: int = 1
    url: str | None = None

    def link(self) -> str:
        """A clickable link: ``file:///abs/path#L<line>`` or the URL."""
        if self.url:
            return self.url
        if self.path is None:
            return ""
        return f"{Path(self.path).resolve().as_uri()}#L{self.line}"


@dataclass(frozen=True, kw_only=True)
class Symbol:
    """A definition found by tree-sitter."""

    name: str
    kind: str
    qualified_name: str
    signature: str
    doc: str
    path: str
    language: str
    start_byte: int
    end_byte: int
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """A symbol-aligned piece of a source file, the unit of lexical and dense search."""

    id: str
    path: str
    language: str
    start_line: int
    end_line: int
    text: str
    content_hash: str
    symbol: str | None = None


@dataclass(frozen=True, kw_only=True)
class DocChunk:
    """A piece of documentation: a README section, a docstring, a dependency's API doc."""

    id: str
    title: str
    text: str
    citation: Citation
    origin: str  # "repo", "docstring", "dependency"


@dataclass(frozen=True, kw_only=True)
class Snippet:
    """Retrieved context put into a prompt, with why it was picked."""

    path: str
    start_line: int
    end_line: int
    text: str
    score: float
    source: SnippetSource
    reason: str
    citation: Citation | None = None

    def to_json(self) -> dict[str, object]:
        """The JSON shape shown by ``pilotfish complete --json`` and the server."""
        return {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "score": round(self.score, 4),
            "source": self.source,
            "reason": self.reason,
            "link": self.citation.link() if self.citation else None,
            "text": self.text,
        }


@dataclass(frozen=True, kw_only=True)
class CursorContext:
    """What the engine knows about the cursor: the text around it and where it is."""

    prefix: str
    suffix: str
    language: str
    path: str | None = None  # absolute path of the document, when it has one
    repo_root: str | None = None
    line: int = 0  # 0-based line of the cursor
    identifiers: tuple[str, ...] = field(default=())


class Retriever(Protocol):
    """Finds repository context for a cursor; the one seam between engine and index."""

    def retrieve(self, ctx: CursorContext, *, budget_tokens: int) -> Sequence[Snippet]:
        """Return ranked, deduplicated snippets that fit ``budget_tokens``."""
        ...


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors."""

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed a batch of texts."""
        ...
