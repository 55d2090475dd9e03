from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pilotfish.training.config import TrainConfig
from pilotfish.training.dataset import IGNORE, Tokenised, collate, length_batches, tokenise
from pilotfish.training.examples import Example
from pilotfish.training.progress import Event
from pilotfish.training.train import select_for_budget, train
from safetensors.torch import load_file
from transformers import AutoTokenizer


def _example(prompt: str, middle: str, weight: float = 1.0) -> Example:
    return Example(
        prompt=prompt,
        middle=middle,
        kind="span",
        commit="c" * 40,
        time=0,
        path="a.py",
        snippets=0,
        weight=weight,
    )


def _items(tok, n: int = 12) -> list[Tokenised]:
    out = []
    for i in range(n):
        e = _example(
            f"<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n\nx = {i}\n<|fim_middle|>",
            "return a + b",
            weight=float(i),
        )
        out.append(tokenise(e, tok, "<|endoftext|>"))
    return out


def test_loss_mask_covers_middle_and_end_token_only(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    item = _items(tok, 1)[0]
    batch = collate([item, Tokenised(ids=item.ids[:5], prompt_len=3, weight=1.0)], pad_id=0)
    labels = batch["labels"][0].tolist()
    assert all(x == IGNORE for x in labels[: item.prompt_len])
    target = tok.decode(labels[item.prompt_len :])
    assert target == "return a + b<|endoftext|>"
    assert batch["attention_mask"][1].tolist() == [1] * 5 + [0] * (len(item.ids) - 5)
    assert batch["labels"][1].tolist()[5:] == [IGNORE] * (len(item.ids) - 5)


def test_length_batches_are_deterministic_and_complete() -> None:
    items = [Tokenised(ids=tuple(range(n)), prompt_len=1, weight=1.0) for n in range(2, 60)]
    a = length_batches(items, 4, seed=3)
    assert a == length_batches(items, 4, seed=3)
    assert sorted(i for b in a for i in b) == list(range(len(items)))
    spread = max(max(len(items[i].ids) for i in b) - min(len(items[i].ids) for i in b) for b in a)
    assert spread <= 4  # neighbours in length share a batch


def test_budget_selection_prefers_weight() -> None:
    items = [Tokenised(ids=(1,) * 10, prompt_len=1, weight=w) for w in (1, 5, 3, 4)]
    assert select_for_budget(items, 20) == [1, 3]
    assert select_for_budget(items, 1) == [1]  # always at least one


def _config(**kw) -> TrainConfig:
    base = dict(
        device="cpu",
        batch_size=2,
        grad_accum=2,
        lr=5e-3,
        warmup_steps=1,
        eval_every=2,
        patience=100,
        top_layers=2,
        seed=0,
        lora_dropout=0.1,
    )
    return TrainConfig(**{**base, **kw})


def test_training_lowers_middle_loss_and_saves_a_peft_adapter(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = _items(tok)
    events: list[Event] = []
    result = train(
        _config(max_steps=12, epochs=50, lr=3e-2),
        tiny_model_dir,
        items,
        items[:4],
        tmp_path / "run",
        pad_id=tok.pad_token_id,
        report=events.append,
    )
    assert result.steps == 12 and result.stopped == "max-steps"
    first, last = result.train_curve[0][1], result.train_curve[-1][1]
    assert last < first * 0.3
    assert result.best_dir is not None
    assert (result.best_dir / "adapter_config.json").is_file()
    weights = load_file(str(result.best_dir / "adapter_model.safetensors"))
    # Only the top two of four layers are adapted (the CPU path).
    layers = {int(k.split(".layers.")[1].split(".")[0]) for k in weights}
    assert layers == {2, 3}
    assert any(e.step == 12 and e.total == 12 for e in events)


def test_resume_continues_exactly_where_it_stopped(tiny_model_dir: Path, tmp_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = _items(tok)
    pad = tok.pad_token_id
    train(
        _config(max_steps=6, epochs=50),
        tiny_model_dir,
        items,
        items[:2],
        tmp_path / "a",
        pad_id=pad,
        report=lambda e: None,
    )
    # The first run is interrupted (Ctrl-C) after step 4; the second resumes from its checkpoint.

    def interrupt(event: Event) -> None:
        if event.step == 4:
            raise KeyboardInterrupt

    stopped = train(
        _config(max_steps=6, epochs=50),
        tiny_model_dir,
        items,
        items[:2],
        tmp_path / "b",
        pad_id=pad,
        report=interrupt,
    )
    assert stopped.stopped == "interrupted" and stopped.steps == 4
    resumed = train(
        _config(max_steps=6, epochs=50, resume=True),
        tiny_model_dir,
        items,
        items[:2],
        tmp_path / "b",
        pad_id=pad,
        report=lambda e: None,
    )
    assert resumed.steps == 6
    assert [s for s, _ in resumed.train_curve] == [1, 2, 3, 4, 5, 6]
    a = load_file(str(tmp_path / "a" / "checkpoint" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoint" / "adapter_model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)


def test_time_budget_says_up_front_what_it_will_see(tiny_model_dir: Path, tmp_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = _items(tok)
    events: list[Event] = []
    result = train(
        _config(time_budget="3s", epochs=50),
        tiny_model_dir,
        items,
        [],
        tmp_path / "run",
        pad_id=tok.pad_token_id,
        report=events.append,
    )
    assert any("time budget" in e.message and "tokens/s measured" in e.message for e in events)
    assert result.planned_tokens > 0
    assert result.seconds < 10


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_gradient_checkpointing(tiny_model_dir: Path, tmp_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = _items(tok)
    result = train(
        _config(device="cuda", top_layers=-1, max_steps=6, epochs=50),
        tiny_model_dir,
        items,
        items[:2],
        tmp_path / "run",
        pad_id=tok.pad_token_id,
        report=lambda e: None,
    )
    assert result.device == "cuda" and result.peak_memory_mb
    assert result.train_curve[-1][1] < result.train_curve[0][1]


@pytest.mark.model
def test_a_few_lora_steps_of_the_real_model_on_cpu(real_model: str, tmp_path: Path) -> None:
    from pilotfish.lsp_server.models.pull import model_dir

    folder = model_dir(real_model)
    tok = AutoTokenizer.from_pretrained(folder)
    example = _example(
        "<|fim_prefix|>def pilotfish_area(radius):\n    <|fim_suffix|>\n<|fim_middle|>",
        "return PILOTFISH_PI * radius ** 2",
    )
    items = [tokenise(example, tok, "<|endoftext|>")] * 2
    result = train(
        _config(
            max_steps=3, epochs=50, lr=2e-3, batch_size=1, grad_accum=2, top_layers=2, threads=2
        ),
        folder,
        items,
        items[:1],
        tmp_path / "run",
        pad_id=tok.pad_token_id,
        report=lambda e: None,
    )
    assert result.steps == 3
    assert result.train_curve[-1][1] < result.train_curve[0][1]
    assert result.best_dir is not None
    weights = load_file(str(result.best_dir / "adapter_model.safetensors"))
    assert {int(k.split(".layers.")[1].split(".")[0]) for k in weights} == {22, 23}


@pytest.mark.parametrize(
    ("rate", "budget", "expected"),
    [(10.0, 1800.0, (1, 1)), (10.0, 10000.0, (2, 5)), (1e6, 1800.0, (2, 8)), (1.0, 60.0, (1, 1))],
)
def test_steps_shrink_to_fit_a_tenth_of_the_budget(
    rate: float, budget: float, expected: tuple[int, int]
) -> None:
    from pilotfish.training.train import fit_step_to_budget

    items = [Tokenised(ids=(1,) * 1000, prompt_len=900, weight=1.0)] * 4
    events: list[Event] = []
    config = fit_step_to_budget(
        _config(batch_size=2, grad_accum=8), rate, items, budget, events.append
    )
    assert (config.batch_size, config.grad_accum) == expected
    assert bool(events) == (expected != (2, 8))
