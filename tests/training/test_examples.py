from __future__ import annotations

import random
from pathlib import Path

import pytest
from pilotfish.code_index.types import CursorContext, Snippet
from pilotfish.lsp_server.engine.prompt import PromptBudget
from pilotfish.lsp_server.engine.templates import TEMPLATES
from pilotfish.training.config import TrainConfig
from pilotfish.training.examples import PromptMaker, mine, span_cuts, time_split
from pilotfish.training.history import Commit, Span, files_at, first_parent_commits, open_repo

QWEN = TEMPLATES["qwen2.5-coder"]


def count(text: str) -> int:
    return len(text) // 3 + 1


def _commits(n: int) -> list[Commit]:
    return [
        Commit(sha=f"{i:040d}", parent=None, time=i, author="a", email="e", message=str(i))
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("n", "holdout", "held"),
    [(2, 0, 1), (10, 0, 1), (40, 0, 4), (40, 7, 7), (3, 9, 2), (1000, 0, 50)],
)
def test_time_split_holds_out_the_newest(n: int, holdout: int, held: int) -> None:
    split = time_split(_commits(n), holdout)
    assert len(split.heldout) == held
    assert split.train[-1].time < split.heldout[0].time
    assert split.split_sha == split.train[-1].sha


def test_time_split_needs_two_commits() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        time_split(_commits(1))


def test_span_cuts_end_at_line_end_and_cover_blocks() -> None:
    text = "a = 1\n    b = 2\n    c = 3\nd = 4\n"
    rng = random.Random(0)
    cuts = list(span_cuts(text, Span(start=1, end=3), rng, max_lines=1))
    assert len(cuts) == 2
    for begin, end in cuts:
        assert text[end] == "\n"
        assert (
            text[begin:end].strip() in {"b = 2", "c = 3"} or text[begin:end].strip() in "b = 2c = 3"
        )
    whole = list(span_cuts(text, Span(start=1, end=3), rng, max_lines=8))
    assert len(whole) == 1 and text[whole[0][0] : whole[0][1]].endswith("c = 3")


def _parts(prompt: str) -> tuple[str, str]:
    body = prompt.split("<|fim_prefix|>", 1)[1]
    prefix, rest = body.split("<|fim_suffix|>", 1)
    suffix = rest.split("<|fim_middle|>", 1)[0]
    return prefix, suffix


def _mine(root: Path, retrieve=None, **overrides):
    repo = open_repo(root)
    commits = first_parent_commits(repo)
    config = TrainConfig(**{"holdout_commits": 2, "max_eval": 50, **overrides})
    split = time_split(commits, config.holdout_commits)
    maker = PromptMaker(
        root=root,
        template=QWEN,
        count_tokens=count,
        budget=PromptBudget(infile_tokens=100_000, retrieval_tokens=200),
        retrieve=retrieve,
    )
    examples, cases = mine(repo, split, config, maker)
    return repo, split, examples, cases


def test_examples_are_the_served_prompts_of_what_was_written(make_repo, history) -> None:
    root, commit = make_repo()
    history(commit, n=10)
    repo, split, examples, cases = _mine(root, random_spans_per_file=4)
    train_shas = {c.sha for c in split.train}
    held_shas = {c.sha for c in split.heldout}
    assert examples and cases
    assert {e.commit for e in examples} <= train_shas
    assert {c.commit for c in cases} <= held_shas
    spans = [e for e in examples if e.kind == "span"]
    assert spans and any(e.kind == "random" for e in examples)
    versions = {sha: files_at(repo, sha) for sha in train_shas}
    for e in examples:
        assert e.prompt.startswith("<|fim_prefix|>") and e.prompt.endswith("<|fim_middle|>")
        prefix, suffix = _parts(e.prompt)
        # With a generous budget nothing is cut: prefix + middle + suffix is the file then.
        assert prefix + e.middle + suffix == versions[e.commit][e.path]
    # Nothing held out is trained on: no held-out line is a training middle.
    targets = {c.target for c in cases}
    assert targets
    middles = "\n".join(e.middle for e in spans)
    assert not any(f"scaled_{i}(" in middles for i in (8, 9))
    for case in cases:
        lines = case.text.split("\n")
        assert lines[case.line].strip() == ""
        assert case.column == len(lines[case.line])


def test_bot_commits_and_secrets_never_become_examples(make_repo) -> None:
    root, commit = make_repo()
    commit({"app.py": "def main():\n    return 0\n"}, "start")
    commit(
        {"app.py": "def main():\n    return run_everything()\n"},
        "Bump deps",
        author="dependabot[bot]",
    )
    commit({"conf.py": "API_KEY = 'AKIAIOSFODNN7EXAMPLE'\nTIMEOUT = 30\n"}, "config")
    commit({"app.py": "def main():\n    return run_everything(fast=True)\n"}, "fast")
    commit({"app.py": "def main():\n    return run_everything(fast=False)\n"}, "slow")
    commit({"app.py": "def main():\n    return run_everything(fast=None)\n"}, "none")
    _, _, examples, _ = _mine(root, holdout_commits=1)
    assert examples
    assert not any("AKIA" in e.prompt or "AKIA" in e.middle for e in examples)
    assert not any(e.path == "conf.py" for e in examples)
    assert not any(e.middle.strip() == "return run_everything()" for e in examples)


def test_retrieved_context_comes_in_but_never_from_the_file_itself(make_repo, history) -> None:
    root, commit = make_repo()
    history(commit, n=5)

    def retrieve(ctx: CursorContext, budget: int) -> list[Snippet]:
        assert ctx.path and ctx.repo_root == str(root)
        return [
            Snippet(
                path=str(root / "pkg/other.py"),
                start_line=1,
                end_line=1,
                text="def helper(x):\n    return x\n",
                score=1.0,
                source="symbol",
                reason="t",
            ),
            Snippet(
                path=ctx.path,
                start_line=1,
                end_line=1,
                text="SAME FILE ANSWER",
                score=2.0,
                source="lexical",
                reason="t",
            ),
        ]

    _, _, examples, _ = _mine(root, retrieve=retrieve, holdout_commits=1)
    assert examples
    for e in examples:
        assert e.snippets == 1
        assert "<|file_sep|>pkg/other.py\ndef helper(x):" in e.prompt
        assert "SAME FILE ANSWER" not in e.prompt
