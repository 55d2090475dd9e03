"""Retrieved context for training and evaluation prompts, from an index of the split commit only."""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import git

from ..code_index.types import CursorContext, Snippet
from ..lsp_server.engine.engine import RetrieveFn
from ..lsp_server.models.registry import ServedRetrieval

log = logging.getLogger(__name__)

Retrievers = Callable[[ServedRetrieval], RetrieveFn]
"""One index's retriever for each way a model is served (base model, or with an adapter)."""


def checkout_snapshot(repo: git.Repo, sha: str, dest: Path) -> Path:
    """Write the tree of ``sha`` into ``dest`` (no ``.git``), so nothing newer can leak in."""
    dest.mkdir(parents=True, exist_ok=True)
    data = repo.git.archive(sha, format="tar", stdout_as_string=False)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def without_path(retrieve: RetrieveFn, path: str) -> RetrieveFn:
    """A retriever that never returns the file being completed (it holds the answer)."""
    resolved = str(Path(path).resolve())

    def wrapped(ctx: CursorContext, budget: int) -> Sequence[Snippet]:
        return [s for s in retrieve(ctx, budget) if str(Path(s.path).resolve()) != resolved]

    return wrapped


def code_index_retrievers(root: Path, data_dir: Path) -> Retrievers | None:
    """The server's retrieval (``code_index``) over ``root``; ``None`` if it is not available.

    Embeddings are left off so that training does not need the embedding model; symbol and
    lexical retrieval are what the server falls back to as well. Each retriever retrieves as
    the server does for the policy it is made for (the registry's ``served_retrieval``), so
    prompts match what is served.
    """
    try:
        from ..code_index import indexer
        from ..code_index.config import IndexConfig
    except ImportError as exc:
        log.warning("code_index is not available (%s); prompts use in-file context only", exc)
        return None
    try:
        config = _index_config(IndexConfig)
        index = indexer.Index(root, data_dir, config)
        index.build()
    except Exception:  # the index is optional: training goes on with in-file prompts
        log.exception("building the index of %s failed; prompts use in-file context only", root)
        return None

    def retriever(policy: ServedRetrieval) -> RetrieveFn:
        def retrieve(ctx: CursorContext, budget: int) -> Sequence[Snippet]:
            return index.retrieve(ctx, budget_tokens=budget, similar_code=policy.similar_code,
                                  only_similar=policy.only_similar)

        return retrieve

    return retriever


def _index_config(config_type: Any) -> Any:
    # Dependency docs come from the developer's environment, not from the commit: leave them out.
    try:
        return config_type(embeddings=False, dependency_docs=False)
    except TypeError:
        return config_type()
