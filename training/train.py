"""The LoRA training loop: one readable file, top to bottom (model, data, optimiser, loop).

Loss is on the middle tokens only, normalised by how many there are in an optimiser step. On
CUDA it trains in bf16 with gradient checkpointing; on CPU it adapts only the top layers (the
backward pass then stops there) and, with a time budget, trains on the examples that matter most
within what the measured speed allows, saying so before it starts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .config import TrainConfig, to_json
from .dataset import IGNORE, Tokenised, collate, micro_batches
from .progress import Event

log = logging.getLogger(__name__)

Report = Callable[[Event], None]
CHECKPOINT = "checkpoint"
BEST = "best"


@dataclass
class TrainResult:
    """What a run did: steps, tokens, speed, losses; ``best_dir`` holds the best adapter."""

    steps: int = 0
    total_steps: int = 0
    tokens: int = 0
    target_tokens: int = 0
    seconds: float = 0.0
    best_val: float | None = None
    best_dir: Path | None = None
    stopped: str = "done"  # done, early-stop, time-budget, max-steps, interrupted
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)
    examples_used: int = 0
    planned_tokens: int = 0
    peak_memory_mb: float | None = None
    device: str = "cpu"

    @property
    def tokens_per_second(self) -> float:
        """Training tokens per second of wall time."""
        return self.tokens / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        """JSON-able summary for the report and the manifest."""
        return {
            "steps": self.steps,
            "total_steps": self.total_steps,
            "tokens": self.tokens,
            "target_tokens": self.target_tokens,
            "seconds": round(self.seconds, 1),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "best_val_loss": self.best_val,
            "stopped": self.stopped,
            "examples_used": self.examples_used,
            "planned_tokens": self.planned_tokens,
            "peak_memory_mb": self.peak_memory_mb,
            "device": self.device,
            "train_curve": self.train_curve,
            "val_curve": self.val_curve,
        }


# -- setup ----------------------------------------------------------------------------------


def pick_device(device: str) -> str:
    """``auto`` -> ``cuda`` when usable, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def setup_model(config: TrainConfig, model_dir: Path, device: str) -> Any:
    """The base model with fresh LoRA layers; only they train."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=dtype, use_safetensors=True, trust_remote_code=False
    )
    n_layers = int(model.config.num_hidden_layers)
    top = config.top_layers if config.top_layers >= 0 else (n_layers if device == "cuda" else 4)
    top = min(max(top, 1), n_layers)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        # Adapting only the top layers keeps the backward pass short: nothing below them needs
        # gradients, so autograd stores no activations there.
        layers_to_transform=list(range(n_layers - top, n_layers)) if top < n_layers else None,
        layers_pattern="layers" if top < n_layers else None,
    )
    model = get_peft_model(model, lora)
    if device == "cuda" and config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    return model.to(device)


def setup_optimizer(
    model: Any, config: TrainConfig, total_steps: int, clock: dict[str, float] | None = None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW on the LoRA weights; linear warm-up, then cosine decay to 10% of the peak.

    With a ``clock`` (a time budget), progress is the larger of steps done and time spent, so
    the rate has decayed when the budget runs out, however fast the machine turns out to be.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = min(config.warmup_steps, max(1, total_steps // 10))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        if clock is not None:
            progress = max(progress, clock.get("fraction", 0.0))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def middle_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the middle tokens, and how many there were.

    The vocabulary projection runs only at target positions: full logits of a 150k vocabulary
    over a 2k-token prompt would cost gigabytes for tokens the loss ignores.
    """
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE
    base = model.get_base_model()
    if hasattr(base, "model") and hasattr(base, "lm_head"):
        hidden = base.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        logits = base.lm_head(hidden[:, :-1][mask]).float()
    else:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = out.logits[:, :-1][mask].float()
    loss = F.cross_entropy(logits, labels[mask], reduction="sum")
    return loss, int(mask.sum())


def select_for_budget(items: Sequence[Tokenised], token_budget: int) -> list[int]:
    """The highest-weight examples whose tokens fit ``token_budget`` (at least one)."""
    order = sorted(range(len(items)), key=lambda i: -items[i].weight)
    chosen: list[int] = []
    spent = 0
    for i in order:
        cost = len(items[i].ids)
        if chosen and spent + cost > token_budget:
            continue
        chosen.append(i)
        spent += cost
    return sorted(chosen)


# -- evaluation loss and checkpoints ------------------------------------------------------------


@torch.no_grad()
def validation_loss(
    model: Any, items: Sequence[Tokenised], config: TrainConfig, pad_id: int, device: str
) -> float:
    """Mean loss per middle token over ``items``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(items), config.batch_size):
        batch = {
            k: v.to(device)
            for k, v in collate(items[start : start + config.batch_size], pad_id).items()
        }
        loss, n = middle_loss(model, batch)
        total += float(loss)
        count += n
    model.train()
    return total / max(1, count)


def save_checkpoint(
    run_dir: Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any, state: dict
) -> None:
    """Adapter, optimiser, schedule and loop state, replaced atomically."""
    tmp = run_dir / f"{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            # Dropout draws from this: restoring it makes a resumed run match an unbroken one.
            "rng": torch.get_rng_state(),
        },
        tmp / "optimizer.pt",
    )
    (tmp / "state.json").write_text(json.dumps(state))
    final = run_dir / CHECKPOINT
    old = run_dir / f"{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    run_dir: Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Restore what :func:`save_checkpoint` wrote; return the loop state."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = run_dir / CHECKPOINT
    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    saved = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    return json.loads((folder / "state.json").read_text())


def _save_best(run_dir: Path, model: Any) -> Path:
    tmp = run_dir / f"{BEST}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    final = run_dir / BEST
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


# -- the loop ----------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    model_dir: Path,
    train_items: Sequence[Tokenised],
    val_items: Sequence[Tokenised],
    run_dir: Path,
    *,
    pad_id: int,
    report: Report,
) -> TrainResult:
    """Train a LoRA adapter; the best one (by validation loss) ends up in ``run_dir/best``."""
    if not train_items:
        raise ValueError("no training examples")
    started = time.monotonic()
    device = pick_device(config.device)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = TrainResult(device=device)
    resuming = config.resume and (run_dir / CHECKPOINT / "state.json").is_file()

    model = setup_model(config, model_dir, device)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report(Event(stage="train", message=f"LoRA: {trainable:,} trainable parameters on {device}"))

    # -- which examples: all of them, or on a budget the ones that matter most -----------------
    selection_file = run_dir / "selection.json"
    budget = config.budget_seconds
    if resuming and selection_file.is_file():
        saved = json.loads(selection_file.read_text())
        chosen = saved["chosen"]
        config = dataclasses.replace(
            config, batch_size=saved["batch_size"], grad_accum=saved["grad_accum"]
        )
    elif budget > 0:
        rate = _measure_speed(model, train_items, config, pad_id, device)
        elapsed = time.monotonic() - started
        config = fit_step_to_budget(config, rate, train_items, budget, report)
        # Leave a tenth for validation passes and saving.
        token_budget = int(rate * max(0.0, budget - elapsed) * 0.9)
        expected = select_for_budget(train_items, token_budget)
        result.planned_tokens = token_budget
        report(
            Event(
                stage="train",
                message=(
                    f"time budget {budget / 60:.0f} min at {rate:.0f} tokens/s measured: "
                    f"about {token_budget:,} tokens, {len(expected)} of {len(train_items)} "
                    "examples (recent commits and most-edited files first)"
                ),
            )
        )
        # Train in priority order until the time is up: a wrong speed estimate then costs
        # only the least important examples.
        chosen = sorted(range(len(train_items)), key=lambda i: (-train_items[i].weight, i))
    else:
        chosen = list(range(len(train_items)))
    selection_file.write_text(
        json.dumps(
            {"chosen": chosen, "batch_size": config.batch_size, "grad_accum": config.grad_accum}
        )
    )
    items = [train_items[i] for i in chosen]
    result.examples_used = len(items)
    tokens_per_epoch = sum(len(t.ids) for t in items)
    micro_per_epoch = math.ceil(len(items) / config.batch_size)
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / config.grad_accum))
    epochs = config.epochs if budget <= 0 else min(config.epochs, 1.0)
    total_steps = max(1, round(steps_per_epoch * epochs))
    if config.max_steps > 0:
        total_steps = min(total_steps, config.max_steps)
    result.total_steps = total_steps
    if not result.planned_tokens:
        result.planned_tokens = int(tokens_per_epoch * total_steps / steps_per_epoch)
    report(
        Event(
            stage="train",
            message=(
                f"{total_steps} steps of {config.batch_size}x{config.grad_accum} sequences; "
                f"~{result.planned_tokens:,} tokens"
            ),
        )
    )

    clock: dict[str, float] | None = {"fraction": 0.0} if budget > 0 else None
    optimizer, scheduler = setup_optimizer(model, config, total_steps, clock)
    state: dict[str, Any] = {
        "step": 0,
        "best_val": None,
        "bad_evals": 0,
        "tokens": 0,
        "target_tokens": 0,
        "train_curve": [],
        "val_curve": [],
        "seconds": 0.0,
        "config": to_json(config),
    }
    if resuming:
        state.update(load_checkpoint(run_dir, model, optimizer, scheduler))
        # A time budget covers the whole run, interrupted or not.
        started -= float(state["seconds"])
        report(Event(stage="train", message=f"resumed at step {state['step']}"))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    stream = (
        priority_batches(items, config.batch_size)
        if budget > 0
        else micro_batches(items, config.batch_size, config.seed)
    )
    for _ in range(state["step"] * config.grad_accum):  # the same order as the first run
        next(stream)
    loop_start = time.monotonic()
    seconds_before = float(state["seconds"])
    best_dir = run_dir / BEST if (run_dir / BEST).is_dir() else None
    stopped = "done"
    try:
        while state["step"] < total_steps:
            step_loss, step_targets = 0.0, 0
            optimizer.zero_grad(set_to_none=True)
            group = [next(stream) for _ in range(config.grad_accum)]
            group_targets = sum(items[i].targets for idx in group for i in idx)
            for idx in group:
                batch = {
                    k: v.to(device) for k, v in collate([items[i] for i in idx], pad_id).items()
                }
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                    loss, n = middle_loss(model, batch)
                # Normalise by the step's target tokens, not per micro-batch: long middles
                # count as much as they weigh.
                (loss / max(1, group_targets)).backward()
                step_loss += float(loss.detach())
                step_targets += n
                state["tokens"] += int(batch["attention_mask"].sum())
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            if clock is not None:
                clock["fraction"] = (time.monotonic() - started) / budget
            scheduler.step()
            state["step"] += 1
            state["target_tokens"] += step_targets
            train_loss = step_loss / max(1, step_targets)
            state["train_curve"].append((state["step"], train_loss))
            state["seconds"] = seconds_before + time.monotonic() - loop_start
            report(
                Event(
                    stage="train",
                    step=state["step"],
                    total=total_steps,
                    metrics={"loss": train_loss, "lr": float(scheduler.get_last_lr()[0])},
                )
            )

            last = state["step"] == total_steps
            out_of_time = budget > 0 and time.monotonic() - started > budget
            if state["step"] % config.eval_every == 0 or last or out_of_time:
                val = (
                    validation_loss(model, val_items, config, pad_id, device)
                    if val_items
                    else train_loss
                )
                state["val_curve"].append((state["step"], val))
                report(Event(stage="train", message=f"step {state['step']}: val loss {val:.4f}"))
                if state["best_val"] is None or val < state["best_val"]:
                    state["best_val"], state["bad_evals"] = val, 0
                    best_dir = _save_best(run_dir, model)
                else:
                    state["bad_evals"] += 1
                save_checkpoint(run_dir, model, optimizer, scheduler, state)
                if state["bad_evals"] >= config.patience:
                    stopped = "early-stop"
                    break
            if out_of_time:
                stopped = "time-budget"
                break
        if stopped == "done" and config.max_steps and state["step"] >= config.max_steps:
            stopped = "max-steps"
    except KeyboardInterrupt:
        state["seconds"] = seconds_before + time.monotonic() - loop_start
        save_checkpoint(run_dir, model, optimizer, scheduler, state)
        stopped = "interrupted"
        report(
            Event(stage="train", message=f"interrupted at step {state['step']}; --resume goes on")
        )

    if best_dir is None:
        best_dir = _save_best(run_dir, model)
    result.steps = state["step"]
    result.tokens = state["tokens"]
    result.target_tokens = state["target_tokens"]
    result.seconds = float(state["seconds"])
    result.best_val = state["best_val"]
    result.best_dir = best_dir
    result.stopped = stopped
    result.train_curve = [tuple(x) for x in state["train_curve"]]  # type: ignore[misc]
    result.val_curve = [tuple(x) for x in state["val_curve"]]  # type: ignore[misc]
    if device == "cuda":
        result.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
    (run_dir / "train.json").write_text(json.dumps(result.to_json(), indent=2))
    return result


def fit_step_to_budget(
    config: TrainConfig,
    rate: float,
    items: Sequence[Tokenised],
    budget: float,
    report: Report,
) -> TrainConfig:
    """Smaller optimizer steps when one would take more than a tenth of the time budget.

    A 4x4 step of 2k-token prompts is minutes on a GPU but most of an hour on a laptop CPU: the
    budget could run out before the first step ends.
    """
    mean_len = sum(len(t.ids) for t in items) / max(1, len(items))
    per_sequence = mean_len / max(rate, 1e-9)
    sequences = max(1, int(budget / 10 / per_sequence))
    if config.batch_size * config.grad_accum <= sequences:
        return config
    batch = min(config.batch_size, sequences)
    accum = max(1, sequences // batch)
    report(
        Event(
            stage="train",
            message=(
                f"steps of {batch}x{accum} sequences instead of "
                f"{config.batch_size}x{config.grad_accum}, so that one fits a tenth of the budget"
            ),
        )
    )
    return dataclasses.replace(config, batch_size=batch, grad_accum=accum)


def priority_batches(items: Sequence[Tokenised], batch_size: int) -> Iterator[list[int]]:
    """Batches in the given (priority) order, repeated; the time budget decides where it ends."""
    while True:
        for start in range(0, len(items), batch_size):
            yield list(range(start, min(start + batch_size, len(items))))


def _measure_speed(
    model: Any, items: Sequence[Tokenised], config: TrainConfig, pad_id: int, device: str
) -> float:
    """Training tokens per second, from one forward and backward of a typical micro-batch."""
    by_length = sorted(items, key=lambda t: len(t.ids))
    mid = len(by_length) // 2
    sample = by_length[max(0, mid - config.batch_size // 2) :][: config.batch_size]
    batch = {k: v.to(device) for k, v in collate(sample, pad_id).items()}
    start = time.monotonic()
    loss, n = middle_loss(model, batch)
    (loss / max(1, n)).backward()
    model.zero_grad(set_to_none=True)
    seconds = time.monotonic() - start
    return float(batch["attention_mask"].sum()) / max(seconds, 1e-6)
