"""Scheduling of completion requests: debounce, newest-wins per document, model off the loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from .engine.context import CompletionRequest
from .engine.engine import Completion, CompletionEngine

log = logging.getLogger(__name__)


class Scheduler:
    """Runs one model request at a time; a newer request for a document cancels the older.

    Cancelling sets the older request's event, which the generator checks between tokens, so
    the model stops mid-decode instead of finishing work nobody will see.
    """

    def __init__(self, debounce_ms: int) -> None:
        self.debounce_ms = debounce_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pilotfish-model")
        self._inflight: dict[str, threading.Event] = {}

    async def complete(
        self, engine: CompletionEngine, request: CompletionRequest
    ) -> Completion | None:
        """Complete ``request`` unless a newer one for the same document supersedes it."""
        key = request.document_key
        older = self._inflight.get(key)
        if older is not None:
            older.set()
        cancel = threading.Event()
        self._inflight[key] = cancel
        try:
            if self.debounce_ms > 0:
                await asyncio.sleep(self.debounce_ms / 1000)
            if cancel.is_set():
                return None
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor, engine.complete, request, cancel)
            try:
                completion = await asyncio.shield(future)
            except asyncio.CancelledError:
                # $/cancelRequest (or shutdown): stop the model, do not answer.
                cancel.set()
                raise
            return None if cancel.is_set() else completion
        finally:
            if self._inflight.get(key) is cancel:
                del self._inflight[key]

    def cancel_all(self) -> None:
        """Stop every running request."""
        for event in self._inflight.values():
            event.set()

    def shutdown(self) -> None:
        """Cancel work and stop the worker thread."""
        self.cancel_all()
        self._executor.shutdown(wait=False, cancel_futures=True)
