"""The server's background index service: builds and updates the repository index.

First version: no index yet, so completions use in-file context only. The code_index issue
replaces the internals and keeps this interface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..code_index.types import CursorContext, Snippet
from .settings import IndexSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class IndexProgress:
    """One progress report of a running index build."""

    message: str
    percentage: int | None = None
    done: bool = False


ProgressCallback = Callable[[IndexProgress], None]


class IndexService:
    """Owns one repository's index for the server; all methods are safe to call any time."""

    def __init__(self, repo_root: Path, data_dir: Path, settings: IndexSettings) -> None:
        self.repo_root = repo_root
        self.data_dir = data_dir
        self.settings = settings

    def start(self, progress: ProgressCallback | None = None) -> None:
        """Start (or resume) building the index in the background; returns at once."""
        if progress:
            progress(IndexProgress(message="no index in this version", done=True))

    def reindex(self, progress: ProgressCallback | None = None) -> None:
        """Rebuild from scratch in the background."""
        self.start(progress)

    def did_change(self, path: Path, text: str) -> None:
        """A buffer changed: its text wins over the disk."""

    def did_delete(self, path: Path) -> None:
        """A file was deleted."""

    def retrieve(self, ctx: CursorContext, *, budget_tokens: int) -> list[Snippet]:
        """Context for a completion; empty while the index is not ready."""
        return []

    def status(self) -> dict[str, object]:
        """A JSON-able summary for ``pilotfish.status``."""
        return {"state": "disabled"}

    def close(self) -> None:
        """Stop background work and release files."""
