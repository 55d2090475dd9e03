"""Generate stage: the ``Generator`` seam and its request/result records."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

StopReason = Literal["stop", "length", "cancelled", "lines"]


@dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    """One prompt to continue."""

    prompt: str
    max_tokens: int
    stop: tuple[str, ...]
    max_lines: int = 1
    """Stop once this many non-empty lines are complete (1 in single-line mode)."""
    temperature: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Generation:
    """What a generator produced and what it cost."""

    text: str
    prompt_tokens: int
    new_tokens: int
    reused_tokens: int = 0
    """Prompt tokens served from the KV cache of an earlier request."""
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    stop_reason: StopReason = "stop"


class Generator(Protocol):
    """A loaded model that continues prompts; one request at a time."""

    backend: str
    device: str
    model_id: str

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's vocabulary."""
        ...

    def has_token(self, text: str) -> bool:
        """Whether ``text`` is one token of the vocabulary (to choose the FIM template)."""
        ...

    def generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        """Continue the prompt; return early (``cancelled``) once ``cancel`` is set."""
        ...

    def set_adapter(self, adapter: Path | None) -> None:
        """Serve with this LoRA adapter from now on (``None``: the base model)."""
        ...

    @property
    def adapter(self) -> str | None:
        """Name of the adapter in use, if any."""
        ...


class StopScanner:
    """Incrementally decides when generated text should end: a stop string or enough lines."""

    def __init__(self, stop: tuple[str, ...], max_lines: int) -> None:
        self.stop = tuple(s for s in stop if s)
        self.max_lines = max_lines
        self.text = ""

    def feed(self, piece: str) -> StopReason | None:
        """Append ``piece``; return why to stop, or ``None`` to go on."""
        self.text += piece
        for s in self.stop:
            at = self.text.find(s)
            if at >= 0:
                self.text = self.text[:at]
                return "stop"
        if self.max_lines and self._complete_lines() >= self.max_lines:
            return "lines"
        return None

    def _complete_lines(self) -> int:
        lines = self.text.split("\n")[:-1]  # the last piece is not complete yet
        return sum(1 for line in lines if line.strip())


def common_prefix_length(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token sequences (what a KV cache can reuse)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
