"""Tokenised examples with loss on the middle only, stored as JSON lines, batched by length."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .examples import EvalCase, Example

IGNORE = -100


@dataclass(frozen=True, kw_only=True)
class Tokenised:
    """Token ids of prompt + middle + end token, and how many of them are prompt."""

    ids: tuple[int, ...]
    prompt_len: int
    weight: float

    @property
    def targets(self) -> int:
        """Tokens the loss is computed on (the middle and the end token)."""
        return len(self.ids) - self.prompt_len


def tokenise(example: Example, tokenizer: Any, end_token: str) -> Tokenised:
    """Prompt and middle tokenised apart, so no token straddles the boundary the model sees.

    The prompt ends in the template's middle token, so tokenising apart is what serving does.
    """
    prompt = tokenizer.encode(example.prompt, add_special_tokens=False)
    middle = tokenizer.encode(example.middle + end_token, add_special_tokens=False)
    return Tokenised(ids=tuple(prompt + middle), prompt_len=len(prompt), weight=example.weight)


def collate(batch: Sequence[Tokenised], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (prompt and pads ignored)."""
    width = max(len(t.ids) for t in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, t in enumerate(batch):
        n = len(t.ids)
        ids[row, :n] = torch.tensor(t.ids)
        mask[row, :n] = 1
        labels[row, t.prompt_len : n] = torch.tensor(t.ids[t.prompt_len :])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def length_batches(items: Sequence[Tokenised], batch_size: int, seed: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (little padding), in a seeded order.

    Sorting within shuffled windows of 50 batches keeps batches tight without always feeding
    the longest examples together.
    """
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(items[i].ids))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def micro_batches(items: Sequence[Tokenised], batch_size: int, seed: int) -> Iterator[list[int]]:
    """An endless stream of length-bucketed batches, reshuffled each epoch (deterministic)."""
    epoch = 0
    while True:
        yield from length_batches(items, batch_size, seed + epoch)
        epoch += 1


def save_jsonl(path: Path, records: Sequence[Example] | Sequence[EvalCase]) -> None:
    """Write records as JSON lines (write-then-rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(dataclasses.asdict(r)) + "\n")
    tmp.replace(path)


def load_examples(path: Path) -> list[Example]:
    """Examples saved by :func:`save_jsonl`."""
    with path.open(encoding="utf-8") as f:
        return [Example(**json.loads(line)) for line in f if line.strip()]


def load_cases(path: Path) -> list[EvalCase]:
    """Held-out cases saved by :func:`save_jsonl`."""
    with path.open(encoding="utf-8") as f:
        return [EvalCase(**json.loads(line)) for line in f if line.strip()]
