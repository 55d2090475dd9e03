"""The one ``TrainConfig``: every knob of mining, training, evaluation and export, parsed once."""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _h(text: str) -> dict[str, Any]:
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Options of ``python -m pilotfish.training train|eval``; each field is one CLI flag."""

    # -- repository and history
    repo: str = field(default=".", metadata=_h("repository to learn"))
    rev: str = field(default="HEAD", metadata=_h("history to walk (first parent)"))
    max_commits: int = field(default=0, metadata=_h("newest N commits only (0: all)"))
    holdout_commits: int = field(
        default=0, metadata=_h("newest commits held out for evaluation (0: 10%%, 1..50)")
    )
    data_dir: str = field(default="", metadata=_h("repository data folder (default: per repo)"))
    # -- examples
    span_max_lines: int = field(default=8, metadata=_h("longest middle, in lines"))
    max_middle_tokens: int = field(default=192, metadata=_h("longest middle, in tokens"))
    random_spans_per_file: int = field(
        default=1, metadata=_h("random-span FIM examples per file at the split commit")
    )
    context_tokens: int = field(default=1536, metadata=_h("in-file prompt budget (as served)"))
    retrieval_tokens: int = field(default=384, metadata=_h("retrieved-context budget"))
    retrieval: bool = field(default=True, metadata=_h("put retrieved context in prompts"))
    max_file_bytes: int = field(default=1_000_000, metadata=_h("skip larger files"))
    max_eval: int = field(default=120, metadata=_h("held-out lines to evaluate on"))
    # -- model and LoRA
    model: str = field(default="qwen2.5-coder-0.5b", metadata=_h("base model name or folder"))
    device: str = field(default="auto", metadata=_h("auto, cpu or cuda"))
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = field(
        default=DEFAULT_TARGETS, metadata=_h("comma-separated module names LoRA adapts")
    )
    top_layers: int = field(
        default=-1, metadata=_h("adapt only the top N layers (-1: all on CUDA, 4 on CPU)")
    )
    # -- optimisation
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10
    batch_size: int = field(default=4, metadata=_h("sequences per micro-batch"))
    grad_accum: int = field(default=4, metadata=_h("micro-batches per optimizer step"))
    epochs: float = field(default=2.0, metadata=_h("passes over the training examples"))
    max_steps: int = field(default=0, metadata=_h("stop after N optimizer steps (0: epochs)"))
    max_seq_tokens: int = field(default=2304, metadata=_h("drop longer examples"))
    eval_every: int = field(default=25, metadata=_h("validation loss every N steps"))
    val_examples: int = field(default=48, metadata=_h("validation examples (newest train commits)"))
    patience: int = field(default=3, metadata=_h("early stop after N evals without improvement"))
    seed: int = 0
    time_budget: str = field(default="", metadata=_h("wall-clock budget, e.g. 30m (CPU path)"))
    gradient_checkpointing: bool = field(default=True, metadata=_h("on CUDA"))
    threads: int = field(default=0, metadata=_h("CPU threads (0: all)"))
    # -- run, gate, export
    out: str = field(default="", metadata=_h("run folder (default: <data dir>/runs/<name>)"))
    name: str = field(default="", metadata=_h("adapter name (default: date and HEAD)"))
    resume: bool = field(default=False, metadata=_h("continue from the run folder's checkpoint"))
    threshold: float = field(
        default=0.0, metadata=_h("exact-match points adapter+retrieval must gain to be promoted")
    )
    promote: bool = field(default=True, metadata=_h("make a passing adapter current"))
    eval_max_tokens: int = field(default=48, metadata=_h("tokens generated per held-out line"))
    gguf: bool = field(default=True, metadata=_h("also write adapter.gguf for llama.cpp"))
    json_progress: bool = field(default=False, metadata=_h("JSON-lines progress on stdout"))

    @property
    def budget_seconds(self) -> float:
        """``time_budget`` in seconds (0: none)."""
        return parse_duration(self.time_budget)


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``1.5h`` -> seconds; empty -> 0."""
    text = text.strip().lower()
    if not text:
        return 0.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 30m or 2h")
    value = float(match.group(1))
    return value * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` field, generated from the dataclass (never listed twice)."""
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text
            )
        elif kind.startswith("tuple"):
            parser.add_argument(
                flag,
                type=lambda s: tuple(p for p in s.split(",") if p),
                default=f.default,
                help=help_text,
            )
        else:
            caster = {"int": int, "float": float, "str": str}[kind]
            parser.add_argument(flag, type=caster, default=f.default, help=help_text)


def from_args(args: argparse.Namespace) -> TrainConfig:
    """The config the parsed flags describe; checks values that would fail later."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    config = TrainConfig(**values)
    parse_duration(config.time_budget)
    if config.lora_r <= 0 or config.batch_size <= 0 or config.grad_accum <= 0:
        raise ValueError("lora-r, batch-size and grad-accum must be positive")
    return config


def to_json(config: TrainConfig) -> dict[str, Any]:
    """JSON-able form, stored in checkpoints and manifests."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def from_json(data: dict[str, Any]) -> TrainConfig:
    """Inverse of :func:`to_json`, ignoring unknown keys."""
    known = {f.name for f in fields(TrainConfig)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known
    }
    return TrainConfig(**values)
