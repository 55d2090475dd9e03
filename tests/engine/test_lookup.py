"""Prompt-lookup drafts and the policy that decides when verifying one pays."""

from __future__ import annotations

import pytest
from pilotfish.lsp_server.engine.lookup import DraftPolicy, propose


@pytest.mark.parametrize(
    ("history", "k", "expected"),
    [
        # The last 3 tokens (1 2 3) occurred before: what followed them is copied.
        ([1, 2, 3, 4, 5, 9, 1, 2, 3], 2, [4, 5]),
        # The most recent earlier occurrence wins over an older one.
        ([1, 2, 3, 4, 1, 2, 3, 7, 8, 1, 2, 3], 3, [7, 8, 1]),
        # A longer n-gram wins over a more recent shorter one: (2 3) follows 1 only at the start.
        ([1, 2, 3, 4, 9, 2, 3, 5, 1, 2, 3], 1, [4]),
        # No 3- or 2-gram match: the last token alone is looked up.
        ([5, 6, 7, 8, 9, 7], 2, [8, 9]),
        # The copy runs into the end and on into itself: a repeating pattern keeps repeating.
        ([4, 1, 2, 1, 2], 5, [1, 2, 1, 2, 1]),
        ([3, 3, 3], 4, [3, 3, 3, 3]),
        # Fewer tokens than asked for are never padded with guesses... except by the copy.
        ([1, 2, 3, 1, 2], 8, [3, 1, 2, 3, 1, 2, 3, 1]),
        # Nothing to find.
        ([1, 2, 3, 4], 3, []),
        ([7], 3, []),
        ([], 3, []),
        ([1, 2, 1], 0, []),
    ],
)
def test_propose(history: list[int], k: int, expected: list[int]) -> None:
    assert propose(history, k) == expected


def test_min_ngram_bounds_the_match() -> None:
    # Only the last token (9) occurred before: with n >= 2 required there is no draft.
    assert propose([9, 4, 5, 9], 2, min_ngram=2) == []
    assert propose([9, 4, 5, 9], 2, min_ngram=1) == [4, 5]


def test_matches_fall_on_token_boundaries() -> None:
    # Packed little-endian, 0x105 0x100 0 reads 05 01 00 00 00 01 00 00 00 00 00 00: the
    # bytes of the 2-gram (1 1) stand at offset 1, straddling tokens, which is not a match.
    history = [0x105, 0x100, 0, 1, 1]
    assert propose(history, 2, min_ngram=2) == []
    assert propose(history, 2, min_ngram=1) == [1, 1]  # the aligned 1 at index 3


def test_large_token_ids() -> None:
    big = 151_643  # Qwen's vocabulary runs past 2**16
    assert propose([big, big + 1, big + 2, big], 2) == [big + 1, big + 2]


def test_policy_verifies_only_after_the_lookup_predicted_the_model() -> None:
    policy = DraftPolicy(k_max=8, min_draft=4, warmup=2)
    draft = [1, 2, 3, 4, 5]
    assert not policy.wants(draft)
    policy.observe(draft, 1)  # the model chose the draft's first token
    assert not policy.wants(draft)
    policy.observe(draft, 1)
    assert policy.wants(draft)
    assert not policy.wants(draft[:3])  # too short to pay for its batch


def test_policy_falls_back_to_plain_steps_after_a_rejection() -> None:
    policy = DraftPolicy(k_max=8, min_draft=2, warmup=1)
    policy.observe([4, 5], 4)
    policy.record(drafted=4, accepted=4)
    assert policy.wants([1, 2])  # fully accepted: still in the copying run
    policy.record(drafted=4, accepted=1)
    assert not policy.wants([1, 2])
    assert (policy.drafted, policy.accepted) == (8, 5)
    policy.observe([4, 5], 9)  # the model chose otherwise: the streak is still broken
    assert not policy.wants([1, 2])
    policy.observe([], 9)  # no draft at all breaks it too
    assert policy.streak == 0


def test_policy_off() -> None:
    policy = DraftPolicy(k_max=0, warmup=0, min_draft=0)
    assert not policy.wants([1, 2, 3])
