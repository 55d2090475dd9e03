"""KV reuse planning of the llama.cpp backend: which cached tokens a new prompt keeps, and where."""

from __future__ import annotations

import pytest
from pilotfish.lsp_server.engine.llamacpp_backend import (
    KvPlan,
    Staleness,
    bound_staleness,
    plan_reuse,
)

# Tokens as letters: P prefix, S suffix (the text after the cursor), M the FIM middle token.
S = list("SSSSSSSSSS")


def ids(text: str) -> list[str]:
    return list(text)


@pytest.mark.parametrize(
    ("cached", "new", "min_tail", "plan"),
    [
        # Nothing cached: everything is evaluated.
        ("", "abcSSSSSSSSSSM", 4, KvPlan(head=0)),
        # Typing appends to the prefix: the prefix stays, the suffix moves one to the right.
        ("abcSSSSSSSSSSM", "abcdSSSSSSSSSSM", 4, KvPlan(head=3, tail=10, tail_at=3, shift=1)),
        # Two characters typed that retokenise the last prefix token (c -> x y z).
        ("abcSSSSSSSSSSM", "abxyzSSSSSSSSSSM", 4, KvPlan(head=2, tail=10, tail_at=3, shift=2)),
        # Backspace: the suffix moves left.
        ("abcdSSSSSSSSSSM", "abcSSSSSSSSSSM", 4, KvPlan(head=3, tail=10, tail_at=4, shift=-1)),
        # A common tail shorter than min_tail is not worth moving.
        ("abcSSSM", "abcdSSSM", 4, KvPlan(head=3)),
        # The same prompt again: only the last token is evaluated, nothing moves.
        ("abcSSSSSSSSSSM", "abcSSSSSSSSSSM", 4, KvPlan(head=13)),
        # Different last tokens: no common tail at all.
        ("abcSSSSSSSSSSM", "abcdSSSSSSSSSSX", 4, KvPlan(head=3)),
        # Tail reuse switched off.
        ("abcSSSSSSSSSSM", "abcdSSSSSSSSSSM", 0, KvPlan(head=3)),
        # The tail never reaches into the common prefix (the repeated letters could match
        # across it): 'aaaa' + 'aaaaa' reuses the prefix, and the tail is what is left.
        ("aaaaM", "aaaaaM", 1, KvPlan(head=4)),
        # A prompt that appends at its very end (no text after the cursor): prefix only.
        ("abcM", "abcdM", 4, KvPlan(head=3)),
    ],
)
def test_plan_reuse(cached: str, new: str, min_tail: int, plan: KvPlan) -> None:
    got = plan_reuse(ids(cached), ids(new), min_tail=min_tail)
    assert got == plan
    assert got.reused == plan.head + plan.tail
    # Invariants: the reused tail ends one before the last token in both prompts, and the
    # head and the tail never overlap in either.
    if got.tail:
        assert got.tail_at >= got.head and got.tail_at + got.tail == len(cached) - 1
        assert (
            ids(cached)[got.tail_at : got.tail_at + got.tail]
            == ids(new)[len(new) - 1 - got.tail : len(new) - 1]
        )
        assert got.tail_at + got.shift == len(new) - 1 - got.tail


def test_refresh_evaluates_the_start_of_the_tail_again() -> None:
    plan = plan_reuse(ids("abcSSSSSSSSSSM"), ids("abcdSSSSSSSSSSM"), min_tail=4, refresh=3)
    assert plan == KvPlan(head=3, tail=7, tail_at=6, shift=1)
    # Too short once refreshed: not moved at all.
    assert plan_reuse(ids("abcSSSSSSM"), ids("abcdSSSSSSM"), min_tail=4, refresh=3).tail == 0


TYPED = KvPlan(head=3, tail=10, tail_at=3, shift=1)  # one token typed before a 10-token tail


@pytest.mark.parametrize(
    ("plan", "stale", "limit", "expected_plan", "expected_stale"),
    [
        # Prefix reuse only, nothing stale: all exact.
        (KvPlan(head=3), Staleness(), 64, KvPlan(head=3), Staleness()),
        # A first move: the tail, now at 4, reflects one token less than stands before it.
        (TYPED, Staleness(), 64, TYPED, Staleness(at=4, changed=1)),
        # Moving an already stale tail adds up.
        (TYPED, Staleness(at=3, changed=60), 64, TYPED, Staleness(at=4, changed=61)),
        # ... until the limit: then the tail is evaluated again (the moved one waits, and
        # stays, as stale as counted, if a keystroke stops that).
        (
            TYPED,
            Staleness(at=3, changed=64),
            64,
            KvPlan(head=3, tail=10, tail_at=3, shift=1, recompute_tail=True),
            Staleness(at=4, changed=65),
        ),
        # A backspace counts too (one token removed).
        (
            KvPlan(head=3, tail=10, tail_at=4, shift=-1),
            Staleness(),
            64,
            KvPlan(head=3, tail=10, tail_at=4, shift=-1),
            Staleness(at=3, changed=1),
        ),
        # The same prompt again reuses the stale tail in place: it stays stale, as much.
        (
            KvPlan(head=13),
            Staleness(at=4, changed=9),
            64,
            KvPlan(head=13),
            Staleness(at=4, changed=9),
        ),
        # Prefix reuse stopping before the stale part: what follows is evaluated, all exact.
        (KvPlan(head=2), Staleness(at=4, changed=9), 64, KvPlan(head=2), Staleness()),
        # Over the limit with stale KV inside the common prefix: cut the prefix there.
        (
            KvPlan(head=13, tail=10, tail_at=13, shift=1),
            Staleness(at=4, changed=64),
            64,
            KvPlan(head=4),
            Staleness(),
        ),
        # One big paste over the limit: evaluated again even with nothing stale before.
        (
            KvPlan(head=3, tail=10, tail_at=3, shift=80),
            Staleness(),
            64,
            KvPlan(head=3, tail=10, tail_at=3, shift=80, recompute_tail=True),
            Staleness(at=83, changed=80),
        ),
    ],
)
def test_bound_staleness(
    plan: KvPlan, stale: Staleness, limit: int, expected_plan: KvPlan, expected_stale: Staleness
) -> None:
    assert bound_staleness(plan, stale, refresh=0, limit=limit) == (expected_plan, expected_stale)


def test_bound_staleness_does_not_count_the_refreshed_tokens() -> None:
    plan = plan_reuse(ids("abcSSSSSSSSSSM"), ids("abcdSSSSSSSSSSM"), min_tail=4, refresh=3)
    assert bound_staleness(plan, Staleness(), refresh=3) == (plan, Staleness(at=7, changed=1))
