"""The server's background index service: builds, updates and queries the repository index.

All work runs on one background thread; every public method returns at once. Completions get
in-file context only (``retrieve`` returns ``[]``) until the symbol + lexical index is ready;
dense search joins in when embeddings catch up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..code_index.config import IndexConfig
from ..code_index.indexer import Index, Progress
from ..code_index.store import Store
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

# Share of the progress bar per phase: files first, then embeddings.
_PHASES = {"scan": (0, 2), "parse": (2, 60), "dependencies": (60, 65), "embed": (65, 100)}


def config_from_settings(settings: IndexSettings) -> IndexConfig:
    """The index's own config from the user-facing settings."""
    return IndexConfig(
        max_file_bytes=settings.max_file_bytes,
        exclude=tuple(settings.exclude),
        embeddings=settings.embeddings,
        embedding_model=settings.embedding_model,
        embed_backend=settings.embedding_backend,
        python=settings.python,
    )


class IndexService:
    """Owns one repository's index for the server; all methods are safe to call any time."""

    def __init__(self, repo_root: Path, data_dir: Path, settings: IndexSettings) -> None:
        self.repo_root = repo_root
        self.data_dir = data_dir
        self.settings = settings
        self.config = config_from_settings(settings)
        self._index: Index | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._interrupt = threading.Event()  # pauses embedding so updates go first
        self._ready = threading.Event()
        self._updates: dict[Path, str | None] = {}  # path -> buffer text (None: read the disk)
        self._deletes: set[Path] = set()
        self._buffers: dict[Path, str] = {}  # open buffers: re-applied after a full build
        self._reindex: ProgressCallback | bool | None = False
        self._progress: ProgressCallback | None = None
        self._state = "idle"
        self._message = ""
        self._percentage: int | None = None
        self._error: str | None = None
        self._last_summary: dict[str, object] | None = None
        self._retrievals = 0
        self._retrieval_ms: list[float] = []

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self, progress: ProgressCallback | None = None) -> None:
        """Start (or resume) building the index in the background; returns at once."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._progress = progress
            self._state = "starting"
            self._thread = threading.Thread(
                target=self._run, name="pilotfish-index", daemon=True
            )
            self._thread.start()

    def reindex(self, progress: ProgressCallback | None = None) -> None:
        """Rebuild from scratch in the background."""
        with self._lock:
            self._reindex = progress if progress is not None else True
            self._interrupt.set()
            self._wake.set()
        self.start(progress)

    def did_change(self, path: Path, text: str) -> None:
        """A buffer changed (or was opened or saved): its text wins over the disk."""
        with self._lock:
            self._deletes.discard(path)
            self._updates[path] = text
            self._buffers[path] = text
            self._interrupt.set()
            self._wake.set()

    def did_change_on_disk(self, path: Path) -> None:
        """A watched file changed on disk (``workspace/didChangeWatchedFiles``)."""
        with self._lock:
            if path not in self._updates:
                self._updates[path] = None
            self._interrupt.set()
            self._wake.set()

    def did_close(self, path: Path) -> None:
        """A buffer was closed: the disk is the truth again for this file."""
        with self._lock:
            if self._buffers.pop(path, None) is not None and path not in self._deletes:
                self._updates[path] = None
            self._wake.set()

    def did_delete(self, path: Path) -> None:
        """A file was deleted."""
        with self._lock:
            self._updates.pop(path, None)
            self._buffers.pop(path, None)
            self._deletes.add(path)
            self._interrupt.set()
            self._wake.set()

    def close(self) -> None:
        """Stop background work and release files."""
        self._stop.set()
        self._interrupt.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        index = self._index
        if index is not None and (thread is None or not thread.is_alive()):
            index.close()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the symbol + lexical index is usable (for tests and the CLI)."""
        return self._ready.wait(timeout)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until queued updates are applied (for tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._updates and not self._deletes and self._reindex is False
            if idle and self._state in ("ready", "error", "embedding"):
                return True
            time.sleep(0.02)
        return False

    # ---- queries ------------------------------------------------------------------------------

    def retrieve(self, ctx: CursorContext, *, budget_tokens: int,
                 count_tokens: Callable[[str], int] | None = None,
                 similar_code: bool = False, only_similar: bool = False) -> list[Snippet]:
        """Context for a completion; empty while the index is not ready (in-file only)."""
        index = self._index
        if index is None or not self._ready.is_set():
            return []
        started = time.perf_counter()
        try:
            snippets = index.retrieve(ctx, budget_tokens=budget_tokens, count_tokens=count_tokens,
                                      similar_code=similar_code, only_similar=only_similar)
        except Exception:  # retrieval must never break a completion
            log.exception("retrieval failed")
            return []
        elapsed = (time.perf_counter() - started) * 1000
        with self._lock:
            self._retrievals += 1
            self._retrieval_ms = [*self._retrieval_ms[-199:], elapsed]
        return snippets

    def store(self) -> Store | None:
        """The index's SQLite store for lookups by name (hover), once the index is ready."""
        index = self._index
        if index is None or not self._ready.is_set():
            return None
        return index.store

    def search(self, query: str, k: int = 10) -> list[Snippet]:
        """Free-text search over the index (symbols, lexical, docs, dense)."""
        index = self._index
        if index is None or not self._ready.is_set():
            return []
        try:
            return index.search(query, k=k)
        except Exception:
            log.exception("search failed")
            return []

    def definitions(self, name: str, *, path: Path | None = None, k: int = 5) -> list[Snippet]:
        """Definitions of a name with signature and doc, for hover; [] while not ready."""
        index = self._index
        if index is None or not self._ready.is_set():
            return []
        try:
            return index.definitions(name, path=str(path) if path else None, k=k)
        except Exception:
            log.exception("definition lookup failed")
            return []

    def status(self) -> dict[str, object]:
        """A JSON-able summary for ``pilotfish.status``."""
        out: dict[str, object] = {
            "state": self._state,
            "ready": self._ready.is_set(),
            "message": self._message,
            "percentage": self._percentage,
            "error": self._error,
            "dataDir": str(self.data_dir),
        }
        index = self._index
        if index is not None:
            try:
                out.update({k: v for k, v in index.status().items() if k != "state"})
            except Exception as exc:
                out["statusError"] = str(exc)
        if self._last_summary:
            out["lastBuild"] = self._last_summary
        with self._lock:
            times = sorted(self._retrieval_ms)
            out["retrievals"] = self._retrievals
        if times:
            out["retrievalP50Ms"] = round(times[len(times) // 2], 1)
            out["retrievalP95Ms"] = round(times[int(len(times) * 0.95) - 1 if len(times) > 1
                                                else 0], 1)
        return out

    # ---- the background thread ---------------------------------------------------------------

    def _report(self, p: Progress) -> None:
        lo, hi = _PHASES.get(p.phase, (0, 100))
        pct = lo + int((hi - lo) * p.done / p.total) if p.total else lo
        self._message = p.message
        self._percentage = pct
        callback = self._progress
        if callback is not None and p.phase != "done":
            try:
                callback(IndexProgress(message=p.message, percentage=pct))
            except Exception:
                log.exception("progress callback failed")

    def _finish_progress(self, message: str) -> None:
        callback, self._progress = self._progress, None
        self._message, self._percentage = message, 100
        if callback is not None:
            try:
                callback(IndexProgress(message=message, percentage=100, done=True))
            except Exception:
                log.exception("progress callback failed")

    def _run(self) -> None:
        try:
            self._state = "opening"
            index = Index(self.repo_root, self.data_dir, self.config)
            self._index = index
            if index.state() in ("ready", "partial") and index.store.counts()["files"]:
                self._ready.set()  # the last build is usable while this one refreshes it
            self._build(index, full=False)
            if self.config.embeddings and not self._stop.is_set():
                try:
                    index.open_vectors()
                except Exception as exc:
                    log.warning("dense search unavailable: %s", exc)
            self._loop(index)
        except Exception as exc:
            log.exception("indexing failed")
            self._error = str(exc)
            self._state = "error"
            self._finish_progress(f"indexing failed: {exc}")

    def _build(self, index: Index, *, full: bool) -> None:
        self._state = "indexing"
        summary = index.build(self._report, self._stop, embed=False, full=full)
        with self._lock:
            buffers = dict(self._buffers)
        for path, text in buffers.items():  # a build read the disk; open buffers win
            self._safely(index.update_file, path, text)
        self._last_summary = summary.to_json()
        self._ready.set()
        self._state = "ready"
        if not self.config.embeddings:
            self._finish_progress(f"index ready: {summary.files} files, "
                                  f"{summary.symbols} symbols")
        else:
            self._message = f"index ready: {summary.files} files; embedding in the background"

    def _loop(self, index: Index) -> None:
        embeddings_done = not self.config.embeddings
        while not self._stop.is_set():
            with self._lock:
                updates, self._updates = self._updates, {}
                deletes, self._deletes = self._deletes, set()
                reindex, self._reindex = self._reindex, False
                self._interrupt.clear()
                self._wake.clear()
            if reindex is not False:
                if callable(reindex):
                    self._progress = reindex
                self._build(index, full=True)
                embeddings_done = not self.config.embeddings
            for path in deletes:
                self._safely(index.delete_file, path)
            for path, text in updates.items():
                self._safely(index.update_file, path, text)
                embeddings_done = embeddings_done and not self.config.embeddings
            if not embeddings_done and not self._interrupt.is_set():
                self._state = "embedding"
                try:
                    index.embed_pending(self._report, self._interrupt)
                except Exception as exc:
                    log.warning("embedding failed, dense search off: %s", exc)
                    embeddings_done = True
                if not self._interrupt.is_set():
                    embeddings_done = True
                    self._state = "ready"
                    done, total = index.store.embedding_counts()
                    self._finish_progress(f"index ready: {done}/{total} chunks embedded")
                continue
            self._wake.wait(timeout=1.0)

    @staticmethod
    def _safely(fn: Callable[..., str], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("index update failed for %s", args[0] if args else "?")
