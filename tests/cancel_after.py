"""A deterministic mid-decode cancel for generator tests."""

from __future__ import annotations

import threading


class CancelAfter(threading.Event):
    """A cancel event that reads as unset for its first ``polls`` checks, set from then on.

    Generators poll their cancel event once per prefill chunk and once per decoded token, so
    this is a keystroke arriving at a known point of a request.
    """

    def __init__(self, polls: int) -> None:
        super().__init__()
        self.polls = polls

    def is_set(self) -> bool:
        self.polls -= 1
        return self.polls < 0 or super().is_set()
