"""What a session of pilotfish holds: settings, the repository's index and the loaded engine.

The CLI and the language server both build one; the model loads lazily, once.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..code_index.types import CursorContext, Snippet
from . import adapters, paths
from .engine.backends import load_generator
from .engine.device import pick_device
from .engine.engine import CompletionEngine
from .engine.templates import ContextStyle
from .hover import Explainer, HoverResult
from .indexing import IndexService
from .models.registry import ServedRetrieval, served_retrieval
from .settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """Settings, index service and completion engine for one repository."""

    def __init__(self, settings: Settings, repo_root: Path | None) -> None:
        self.settings = settings
        self.repo_root = repo_root
        self.data_dir = (
            paths.repo_data_dir(repo_root, settings.data_dir) if repo_root is not None else None
        )
        self.index: IndexService | None = None
        self.index_off_reason = "" if settings.index.enable else "index.enable is off"
        if repo_root is not None and too_broad_to_index(repo_root):
            # An editor opened a loose file from ~ or /: indexing that is not what anyone wants.
            self.index_off_reason = (
                f"not indexing {repo_root}: it is a home or root folder; open a project folder"
            )
            log.warning("%s", self.index_off_reason)
        elif repo_root is not None and self.data_dir is not None and settings.index.enable:
            self.index = IndexService(repo_root, self.data_dir, settings.index)
        self._engine: CompletionEngine | None = None
        self._engine_error: str | None = None
        self._load_lock = threading.Lock()
        self.load_seconds: float | None = None
        self.explainer = Explainer(repo_root, settings.index.python)

    def engine(self) -> CompletionEngine:
        """The engine, loading the model on first use (thread-safe; raises UserError)."""
        with self._load_lock:
            if self._engine is None:
                started = time.monotonic()
                try:
                    generator = load_generator(self.settings.model)
                except Exception as exc:  # remembered for status and waiting requests
                    self._engine_error = str(exc)
                    raise
                if self.data_dir is not None:
                    # The repository's current adapter (model.adapter = "auto") from the start,
                    # not only after a train/use command; a mismatched base model is refused.
                    try:
                        outcome = adapters.apply(generator, self.data_dir,
                                                 self.settings.model.adapter)
                        log.info("adapter: %s", outcome)
                    except Exception:  # a broken adapter must not cost the user completions
                        log.exception("could not apply the adapter; serving the base model")
                self._engine = CompletionEngine(
                    generator, self.settings.completion, self._retrieve if self.index else None,
                    context_style=self._served_style,
                )
                self.load_seconds = time.monotonic() - started
                self._engine_error = None
                log.info("model loaded in %.1f s", self.load_seconds)
            return self._engine

    @property
    def load_error(self) -> str | None:
        """Why the model failed to load, if it did."""
        return self._engine_error

    @property
    def loaded(self) -> CompletionEngine | None:
        """The engine if it is loaded, without loading it."""
        return self._engine

    def _served(self) -> ServedRetrieval:
        """What the model is served now (with the adapter, if one is loaded)."""
        engine = self._engine
        adapter = engine is not None and engine.generator.adapter is not None
        return served_retrieval(self.settings.model.name, adapter=adapter)

    def _served_style(self) -> ContextStyle:
        return self._served().context_style

    def _retrieve(self, ctx: CursorContext, budget_tokens: int) -> list[Snippet]:
        assert self.index is not None
        served = self._served()
        return self.index.retrieve(ctx, budget_tokens=budget_tokens,
                                   similar_code=served.similar_code,
                                   only_similar=served.only_similar)

    def status(self) -> dict[str, object]:
        """Model, device, data directory and what is loaded, as JSON-able data."""
        engine = self._engine
        model = self.settings.model
        stats: dict[str, object] = engine.stats() if engine else {}
        return {
            "model": engine.generator.model_id if engine else model.name,
            "backend": engine.generator.backend if engine else model.backend,
            "device": engine.generator.device if engine else _device_or_error(model.device),
            "adapter": engine.generator.adapter if engine else None,
            "loaded": engine is not None,
            "loadSeconds": round(self.load_seconds, 1) if self.load_seconds else None,
            "error": self._engine_error,
            "repoRoot": str(self.repo_root) if self.repo_root else None,
            "dataDir": str(self.data_dir) if self.data_dir else None,
            "modelsDir": str(paths.models_dir()),
            "index": self.index.status() if self.index else {
                "state": "disabled", "message": self.index_off_reason or "no workspace folder",
            },
            "completions": stats,
            "latency": {"p50Ms": stats.get("p50Ms"), "p95Ms": stats.get("p95Ms")},
            "cacheHitRate": stats.get("cacheHitRate", 0.0),
            "enabled": self.settings.completion.enable,
        }

    def hover(
        self, text: str, line: int, column: int, *, path: str | None, language_id: str = "",
        budget_s: float | None = None,
    ) -> HoverResult | None:
        """The hover at a position; the explanation waits at most ``budget_s`` (settings)."""
        hover = self.settings.hover
        engine = self._engine
        return self.explainer.hover(
            text, line, column, path=path, language_id=language_id,
            store=self.index.store() if self.index else None,
            generator=engine.generator if engine is not None and hover.explain else None,
            budget_s=hover.budget_ms / 1000 if budget_s is None else budget_s,
        )

    def close(self) -> None:
        """Stop background work."""
        self.explainer.close()
        if self.index is not None:
            self.index.close()


def _device_or_error(device: str) -> str:
    try:
        return pick_device(device)
    except RuntimeError as exc:
        return f"unavailable ({exc})"


def too_broad_to_index(root: Path) -> bool:
    """A home folder or the filesystem root: never a repository worth indexing whole."""
    try:
        resolved = root.resolve()
        return resolved == Path.home().resolve() or resolved == Path(resolved.anchor)
    except (OSError, RuntimeError):
        return False
