"""Scheduling of completion requests: fast paths at once, adaptive debounce, newest-wins, one model.

The cheap stages (prefilter, typing-through, prompt, cache) run at once on a helper thread, so a
suggestion the user is typing through, or a cached one, costs no debounce and no model call. Only
requests that need the model wait out a per-document debounce, then run on the single model
thread; a newer request for the same document cancels an older one, mid-decode.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .engine.context import CompletionRequest
from .engine.engine import Completion, CompletionEngine

log = logging.getLogger(__name__)

# Gaps longer than this are pauses, not typing, and say nothing about typing speed.
_TYPING_GAP_S = 1.5
_SAMPLES = 8


def adaptive_debounce_ms(gaps_s: list[float], base_ms: int, max_ms: int) -> int:
    """How long to wait before starting the model for a document.

    Waiting pays only when the next keystroke is likely to come within the wait (it would
    cancel the run anyway): so the wait is 1.2x the user's median gap between keystrokes when
    that lies within ``[base_ms, max_ms]``, and ``base_ms`` otherwise (a slow typist gets a run
    for each keystroke either way; a very fast one is caught by newest-wins cancellation).
    """
    if len(gaps_s) < 3 or max_ms <= base_ms:
        return base_ms
    estimate = 1.2 * statistics.median(gaps_s) * 1000
    return int(estimate) if base_ms <= estimate <= max_ms else base_ms


@dataclass
class _DocumentState:
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    last: float | None = None
    inflight: threading.Event | None = None


class Scheduler:
    """Runs one model request at a time; a newer request for a document cancels the older.

    Cancelling sets the older request's event, which the generator checks between tokens, so
    the model stops mid-decode instead of finishing work nobody will see.
    """

    def __init__(self, debounce_ms: int, debounce_max_ms: int | None = None) -> None:
        self.debounce_ms = debounce_ms
        self.debounce_max_ms = debounce_max_ms if debounce_max_ms is not None else debounce_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pilotfish-model")
        self._prepare = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pilotfish-prepare")
        self._documents: dict[str, _DocumentState] = {}

    def debounce_for(self, key: str) -> int:
        """The current debounce of a document, in milliseconds."""
        state = self._documents.get(key)
        gaps = list(state.gaps) if state else []
        return adaptive_debounce_ms(gaps, self.debounce_ms, self.debounce_max_ms)

    def _note_keystroke(self, key: str) -> _DocumentState:
        state = self._documents.setdefault(key, _DocumentState())
        now = time.monotonic()
        if state.last is not None and now - state.last < _TYPING_GAP_S:
            state.gaps.append(now - state.last)
        state.last = now
        return state

    async def complete(
        self, engine: CompletionEngine, request: CompletionRequest
    ) -> Completion | None:
        """Complete ``request`` unless a newer one for the same document supersedes it."""
        key = request.document_key
        state = self._note_keystroke(key)
        if state.inflight is not None:
            state.inflight.set()
        cancel = threading.Event()
        state.inflight = cancel
        loop = asyncio.get_running_loop()
        try:
            prepared = await loop.run_in_executor(self._prepare, engine.prepare, request)
            if isinstance(prepared, Completion):
                return None if cancel.is_set() else prepared
            debounce = self.debounce_for(key)
            if debounce > 0:
                await asyncio.sleep(debounce / 1000)
            if cancel.is_set():
                return None
            future = loop.run_in_executor(self._executor, engine.run, prepared, cancel)
            try:
                completion = await asyncio.shield(future)
            except asyncio.CancelledError:
                # $/cancelRequest (or shutdown): stop the model, do not answer.
                cancel.set()
                raise
            return None if cancel.is_set() else completion
        finally:
            if state.inflight is cancel:
                state.inflight = None

    def cancel_all(self) -> None:
        """Stop every running request."""
        for state in self._documents.values():
            if state.inflight is not None:
                state.inflight.set()

    def forget(self, key: str) -> None:
        """Drop a closed document's state (cancelling its request)."""
        state = self._documents.pop(key, None)
        if state is not None and state.inflight is not None:
            state.inflight.set()

    def shutdown(self) -> None:
        """Cancel work and stop the worker threads."""
        self.cancel_all()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._prepare.shutdown(wait=False, cancel_futures=True)
