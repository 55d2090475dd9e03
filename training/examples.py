"""History -> FIM examples at the spans developers wrote, random-span FIM, and held-out lines."""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import git

from ..code_index.types import CursorContext
from ..lsp_server.engine.context import identifiers_near, language_for
from ..lsp_server.engine.engine import RetrieveFn
from ..lsp_server.engine.prompt import CountTokens, PromptBudget, build_prompt
from ..lsp_server.engine.templates import FimTemplate
from .config import TrainConfig
from .filters import Deduper, content_reason, is_bot_commit, path_reason
from .history import Commit, FileChange, Span, file_changes, files_at
from .retrieval import without_path

log = logging.getLogger(__name__)

Kind = Literal["span", "random"]


@dataclass(frozen=True, kw_only=True)
class Example:
    """One training example: the served prompt and the middle the developer wrote."""

    prompt: str
    middle: str
    """Target text, without the end token; starts with any spaces the prompt trimmed."""
    kind: Kind
    commit: str
    time: int
    path: str
    snippets: int
    weight: float = 1.0
    """Priority when a time budget allows only some examples (recent, often-edited files)."""


@dataclass(frozen=True, kw_only=True)
class EvalCase:
    """A held-out line: the file with that line's code removed, and the code to predict."""

    commit: str
    path: str  # repository-relative
    text: str
    line: int
    column: int
    target: str


@dataclass(frozen=True, kw_only=True)
class Split:
    """The time split: commits trained on, commits held out, and the commit between them."""

    train: tuple[Commit, ...]
    heldout: tuple[Commit, ...]

    @property
    def split_sha(self) -> str:
        """The newest commit trained on; the evaluation index is built at it."""
        return self.train[-1].sha


@dataclass
class MiningStats:
    """What mining saw and why things were left out."""

    commits: int = 0
    bot_commits: int = 0
    files: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, object]:
        """JSON-able form for manifests and reports."""
        return {
            "commits": self.commits,
            "bot_commits": self.bot_commits,
            "files": self.files,
            "skipped": dict(self.skipped),
            "examples": dict(self.examples),
        }


def time_split(commits: Sequence[Commit], holdout: int = 0) -> Split:
    """Hold out the newest commits (``holdout``; 0 means 10%, between 1 and 50)."""
    if len(commits) < 2:
        raise ValueError(
            f"the history has {len(commits)} commit(s); at least 2 are needed "
            "(some to learn from, the newest to evaluate on)"
        )
    n = holdout or min(50, max(1, round(len(commits) * 0.1)))
    n = min(n, len(commits) - 1)
    return Split(train=tuple(commits[:-n]), heldout=tuple(commits[-n:]))


@dataclass(frozen=True, kw_only=True)
class PromptMaker:
    """Builds prompts exactly as the server does, for files of a checkout at ``root``."""

    root: Path
    template: FimTemplate
    count_tokens: CountTokens
    budget: PromptBudget
    retrieve: RetrieveFn | None = None

    def example(
        self,
        path: str,
        text: str,
        start: int,
        end: int,
        *,
        kind: Kind,
        commit: Commit,
        weight: float,
    ) -> Example:
        """The example whose middle is ``text[start:end]``."""
        prefix, middle, suffix = text[:start], text[start:end], text[end:]
        abs_path = str(self.root / path)
        ctx = CursorContext(
            prefix=prefix,
            suffix=suffix,
            language=language_for(path),
            path=abs_path,
            repo_root=str(self.root),
            line=prefix.count("\n"),
            identifiers=identifiers_near(prefix),
        )
        snippets = ()
        if self.retrieve is not None:
            snippets = tuple(
                without_path(self.retrieve, abs_path)(ctx, self.budget.retrieval_tokens)
            )
        prompt = build_prompt(ctx, self.template, self.count_tokens, self.budget, snippets)
        return Example(
            prompt=prompt.text,
            middle=prompt.trimmed + middle,
            kind=kind,
            commit=commit.sha,
            time=commit.time,
            path=path,
            snippets=len(prompt.snippets),
            weight=weight,
        )


def line_offsets(text: str) -> list[int]:
    """Offset of the start of each line (plus one past the end)."""
    offsets = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            offsets.append(i + 1)
    if offsets[-1] != len(text) + 1:
        offsets.append(len(text) + 1)
    return offsets


def span_cuts(
    text: str, span: Span, rng: random.Random, max_lines: int
) -> Iterable[tuple[int, int]]:
    """Character ranges of the middles made from ``span``: blocks of at most ``max_lines``.

    The middle ends at the end of its last line (before the newline), as a served cursor sits on
    a line whose rest follows; it starts at the line's start, after its indentation, or inside
    the first line (as if the developer had typed part of it), chosen at random.
    """
    lines = text.split("\n")
    offsets = line_offsets(text)
    start = span.start
    while start < min(span.end, len(lines)):
        end = min(start + max_lines, span.end, len(lines))
        first = lines[start]
        block = "\n".join(lines[start:end])
        if block.strip():
            indent = len(first) - len(first.lstrip(" \t"))
            roll = rng.random()
            if roll < 0.35:
                col = 0
            elif roll < 0.75 or len(first.strip()) < 4:
                col = indent
            else:
                col = rng.randrange(indent, len(first) - 1)
            begin = offsets[start] + col
            finish = offsets[end - 1] + len(lines[end - 1])
            if finish > begin and text[begin:finish].strip():
                yield begin, finish
        start = end


def mine(
    repo: git.Repo,
    split: Split,
    config: TrainConfig,
    maker: PromptMaker,
    *,
    stats: MiningStats | None = None,
) -> tuple[list[Example], list[EvalCase]]:
    """Training examples from ``split.train`` and held-out lines from ``split.heldout``."""
    stats = stats if stats is not None else MiningStats()
    rng = random.Random(config.seed)
    # Exact duplicates of (context, middle) windows; near-duplicate files of another path.
    dedup = Deduper(near=False)
    copies = Deduper()
    examples: list[Example] = []
    train_changes = list(_changes(repo, split.train, config, stats, copies))

    # Files people edit most, and recent commits, matter most when a budget allows only some.
    edits = Counter(change.path for change in train_changes)
    rank = {c.sha: i for i, c in enumerate(split.train)}
    newest = len(split.train) - 1

    def weight(commit: Commit, path: str) -> float:
        recency = math.exp(-(newest - rank[commit.sha]) / max(20.0, len(split.train) / 4))
        return recency * (1.0 + math.log1p(edits[path]))

    for change in train_changes:
        for span in change.spans:
            for begin, end in span_cuts(change.text, span, rng, config.span_max_lines):
                _add(
                    examples,
                    dedup,
                    stats,
                    maker,
                    change.path,
                    change.text,
                    begin,
                    end,
                    "span",
                    change.commit,
                    weight(change.commit, change.path),
                    config,
                )

    # Random-span FIM over the files at the split point covers code no recent commit touched.
    split_commit = split.train[-1]
    for path, text in sorted(
        files_at(repo, split.split_sha, max_file_bytes=config.max_file_bytes).items()
    ):
        if path_reason(path) or content_reason(text, max_bytes=config.max_file_bytes):
            continue
        if copies.seen(text, owner=path):
            continue
        n_lines = text.count("\n") + 1
        for _ in range(config.random_spans_per_file):
            start = rng.randrange(n_lines)
            span = Span(
                start=start, end=min(n_lines, start + rng.randint(1, config.span_max_lines))
            )
            for begin, end in span_cuts(text, span, rng, config.span_max_lines):
                _add(
                    examples,
                    dedup,
                    stats,
                    maker,
                    path,
                    text,
                    begin,
                    end,
                    "random",
                    split_commit,
                    0.3 * weight(split_commit, path),
                    config,
                )
    cases = heldout_cases(repo, split.heldout, config, stats, copies, rng)
    return examples, cases


def _add(
    examples: list[Example],
    dedup: Deduper,
    stats: MiningStats,
    maker: PromptMaker,
    path: str,
    text: str,
    begin: int,
    end: int,
    kind: Kind,
    commit: Commit,
    weight: float,
    config: TrainConfig,
) -> None:
    middle = text[begin:end]
    if maker.count_tokens(middle) > config.max_middle_tokens:
        stats.skipped["middle too long"] += 1
        return
    window = text[max(0, begin - 200) : end]
    reason = dedup.seen(window)
    if reason:
        stats.skipped[reason] += 1
        return
    examples.append(maker.example(path, text, begin, end, kind=kind, commit=commit, weight=weight))
    stats.examples[kind] += 1


def _changes(
    repo: git.Repo,
    commits: Iterable[Commit],
    config: TrainConfig,
    stats: MiningStats,
    copies: Deduper,
) -> Iterable[FileChange]:
    for commit in commits:
        stats.commits += 1
        if is_bot_commit(commit):
            stats.bot_commits += 1
            continue
        for change in file_changes(repo, commit, max_file_bytes=config.max_file_bytes):
            reason = path_reason(change.path) or content_reason(
                change.text, max_bytes=config.max_file_bytes
            )
            reason = reason or copies.seen(change.text, owner=change.path)
            if reason:
                stats.skipped[reason] += 1
                continue
            stats.files += 1
            yield change


def heldout_cases(
    repo: git.Repo,
    commits: Sequence[Commit],
    config: TrainConfig,
    stats: MiningStats,
    copies: Deduper,
    rng: random.Random,
) -> list[EvalCase]:
    """First-line completions of lines the held-out commits added (cursor after indentation)."""
    cases: list[EvalCase] = []
    dedup = Deduper(near=False)
    for change in _changes(repo, commits, config, stats, copies):
        lines = change.text.split("\n")
        for span in change.spans:
            for i in range(span.start, min(span.end, len(lines))):
                line = lines[i]
                code = line.strip()
                if len(code) < 4 or code.startswith(("#", "//", '"""', "'''", "*", "/*")):
                    continue
                if dedup.seen("\n".join(lines[max(0, i - 3) : i + 1])):
                    stats.skipped["eval duplicate"] += 1
                    continue
                indent = line[: len(line) - len(line.lstrip(" \t"))]
                doc = "\n".join([*lines[:i], indent, *lines[i + 1 :]])
                cases.append(
                    EvalCase(
                        commit=change.commit.sha,
                        path=change.path,
                        text=doc,
                        line=i,
                        column=len(indent),
                        target=code,
                    )
                )
    rng.shuffle(cases)
    cases = cases[: config.max_eval] if config.max_eval > 0 else cases
    stats.examples["eval"] = len(cases)
    return cases
