"""Prompt-lookup drafts: the tokens that followed the last n-gram's most recent earlier copy.

Code often repeats what is already in its context (a line like the one above, a name defined
earlier, the text after the cursor), so the tokens that followed the last occurrence of what
was just generated are a cheap guess of what comes next; the model then checks the guess in
one batch (speculative decoding without a draft model).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

MAX_NGRAM = 3
"""Longest n-gram matched: a longer match is a stronger hint but is found less often."""
MIN_NGRAM = 1


def propose(
    history: Sequence[int], k: int, *, max_ngram: int = MAX_NGRAM, min_ngram: int = MIN_NGRAM
) -> list[int]:
    """Up to ``k`` draft tokens to follow ``history`` (the prompt and what was generated).

    The last ``n`` tokens are looked up for ``n`` from ``max_ngram`` down to ``min_ngram``;
    at the first ``n`` with an earlier occurrence, the most recent one is taken and the
    tokens after it are copied. The copy may run into the history's end and on into the copy
    itself, as an LZ77 match does: a repeating pattern continues repeating.
    """
    size = len(history)
    if k <= 0:
        return []
    for n in range(min(max_ngram, size - 1), min_ngram - 1, -1):
        at = _last_earlier(history, n)
        if at is not None:
            copied = list(history[at + n :])
            for i in range(k - len(copied)):
                copied.append(copied[i])  # the match runs on into its own copy
            return copied[:k]
    return []


def _last_earlier(history: Sequence[int], n: int) -> int | None:
    """Start of the most recent occurrence of the last ``n`` tokens that ends before the end."""
    size = len(history)
    if n <= 0 or n >= size:
        return None
    # bytes.rfind searches in C; a hit must fall on a token boundary (4 bytes a token).
    data = array("I", history).tobytes()
    pattern = data[-4 * n :]
    end = 4 * (size - 1)
    while (at := data.rfind(pattern, 0, end)) >= 0:
        if at % 4 == 0:
            return at // 4
        end = at + len(pattern) - 1
    return None


@dataclass(kw_only=True)
class DraftPolicy:
    """When to verify a draft, and how long: only where it pays, judged on this request.

    A draft is verified in one batch with a row of logits for each position, and on a CPU a
    batch is far from free: measured on this project's 2-core box with the 0.5B model
    (BENCHMARKS.md, "Prompt-lookup decoding"), a batch of 9 costs about 6 one-token steps and
    a batch of 2 three. So a draft pays only when it is long and mostly accepted, which
    prompt lookup delivers in runs (a line copied from above) and rarely elsewhere.

    Drafts are therefore checked for free first: on plain one-token steps, each step's draft
    is compared with the token the model chose. Once ``warmup`` consecutive first draft tokens
    matched, the request is in a copying run and drafts of at least ``min_draft`` tokens are
    verified; after a draft the model rejected in part, it goes back to plain steps.
    ``k_max = 0`` turns drafting off. The defaults are the best of a grid replayed on recorded
    requests with the measured batch costs (``benchmarks/prompt_lookup.py --replay``): with a
    shorter warmup, single-line requests verified drafts that did not pay.
    """

    k_max: int = 16
    min_draft: int = 8
    warmup: int = 8
    streak: int = 0
    """Consecutive plain steps whose first draft token was the model's choice."""
    drafted: int = 0
    accepted: int = 0

    def wants(self, draft: Sequence[int]) -> bool:
        """Whether to verify ``draft`` now rather than take a plain step."""
        return self.k_max > 0 and self.streak >= self.warmup and len(draft) >= self.min_draft

    def observe(self, draft: Sequence[int], chosen: int) -> None:
        """A plain step chose ``chosen`` where ``draft`` was proposed (and not verified)."""
        self.streak = self.streak + 1 if draft and draft[0] == chosen else 0

    def record(self, drafted: int, accepted: int) -> None:
        """A verified draft of ``drafted`` tokens had its first ``accepted`` ones accepted."""
        self.drafted += drafted
        self.accepted += accepted
        if accepted < drafted:
            self.streak = 0
