"""Progress of a training run: a bar on the terminal, or JSON lines the server relays."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, kw_only=True)
class Event:
    """One progress report: a stage, an optional step count, metrics and a short message."""

    stage: str  # mine, train, eval, export, done, error
    message: str = ""
    step: int | None = None
    total: int | None = None
    metrics: dict[str, float] | None = None

    @property
    def percentage(self) -> int | None:
        """Percent done within the stage, if counted."""
        if self.step is None or not self.total:
            return None
        return max(0, min(100, int(100 * self.step / self.total)))

    def to_json(self) -> dict[str, object]:
        """The JSON line's object (``$/progress`` in the server)."""
        out: dict[str, object] = {"stage": self.stage, "message": self.message}
        if self.step is not None:
            out["step"] = self.step
            out["total"] = self.total
            out["percentage"] = self.percentage
        if self.metrics:
            out["metrics"] = {k: round(v, 5) for k, v in self.metrics.items()}
        return out


class Reporter:
    """Writes events as JSON lines (``json_lines``) or as a one-line bar on a terminal."""

    def __init__(self, *, json_lines: bool = False, stream: TextIO | None = None) -> None:
        self.json_lines = json_lines
        self.stream = stream or (sys.stdout if json_lines else sys.stderr)
        self._started = time.monotonic()
        self._bar_open = False

    def __call__(self, event: Event) -> None:
        """Report ``event``."""
        if self.json_lines:
            self.stream.write(json.dumps(event.to_json()) + "\n")
            self.stream.flush()
            return
        if event.step is not None and event.total:
            self._bar(event)
            return
        self._close_bar()
        self.stream.write(f"[{event.stage}] {event.message}\n")
        self.stream.flush()

    def _bar(self, event: Event) -> None:
        pct = event.percentage or 0
        filled = pct * 30 // 100
        metrics = " ".join(f"{k}={v:.4g}" for k, v in (event.metrics or {}).items())
        elapsed = time.monotonic() - self._started
        line = (
            f"\r[{event.stage}] |{'#' * filled}{'.' * (30 - filled)}| {event.step}/{event.total} "
            f"{metrics} {elapsed:6.0f}s {event.message}"
        )
        self.stream.write(line[:160].ljust(100))
        self.stream.flush()
        self._bar_open = True
        if event.step == event.total:
            self._close_bar()

    def _close_bar(self) -> None:
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
