"""pilotfish's repository index: tree-sitter symbols, docs, SQLite + FAISS store, retrieval."""

from .types import Chunk, Citation, CursorContext, DocChunk, Embedder, Retriever, Snippet, Symbol

__all__ = [
    "Chunk",
    "Citation",
    "CursorContext",
    "DocChunk",
    "Embedder",
    "Retriever",
    "Snippet",
    "Symbol",
]
