"""Prompt-lookup decoding in the transformers backend (eager steps, float on CPU): same tokens."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cancel_after import CancelAfter
from pilotfish.lsp_server.engine.generate import Generation, GenerationRequest
from pilotfish.lsp_server.engine.hf_backend import TransformersGenerator
from pilotfish.lsp_server.engine.lookup import DraftPolicy
from tiny_model import build_tiny_model

EAGER = DraftPolicy(warmup=0, min_draft=1)
FIM = "<|fim_prefix|>{}<|fim_suffix|>\n<|fim_middle|>"
PROMPTS = (
    "import json\n",
    FIM.format("def load(path):\n    with open(path) as f:\n        return"),
    "x = 1\ny = 2\n",
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    out = {"wide": tiny_model_dir}
    for name, spread in (("mixed", 0.15), ("repetitive", 0.05)):
        out[name] = build_tiny_model(tmp_path_factory.mktemp(name), initializer_range=spread)
    return out


def run(
    gen: TransformersGenerator,
    prompt: str,
    policy: DraftPolicy | None,
    *,
    max_tokens: int = 48,
    stop: tuple[str, ...] = (),
    cancel: threading.Event | None = None,
) -> Generation:
    gen.draft_policy = policy
    request = GenerationRequest(prompt=prompt, max_tokens=max_tokens, stop=stop, max_lines=0)
    return gen.generate(request, cancel or threading.Event())


@pytest.mark.parametrize("model", ["wide", "mixed", "repetitive"])
@pytest.mark.parametrize("static", [False, True])
def test_same_output_with_and_without_drafts(
    models: dict[str, Path], model: str, static: bool
) -> None:
    def load() -> TransformersGenerator:
        return TransformersGenerator(
            models[model], model_id=model, device="cpu", int8=False, static_cache=static, n_ctx=512
        )

    on_gen, off_gen = load(), load()
    verified = accepted = 0
    for prompt in PROMPTS:
        off = run(off_gen, prompt, None)
        on = run(on_gen, prompt, EAGER)
        assert (on.text, on.new_tokens, on.stop_reason) == (
            off.text,
            off.new_tokens,
            off.stop_reason,
        )
        verified += on_gen.drafts[0]
        accepted += on_gen.drafts[1]
    assert verified > 0
    if model == "repetitive":
        assert accepted >= 0.8 * verified


def test_stop_inside_an_accepted_draft_and_the_cache_after_it(models: dict[str, Path]) -> None:
    gen = TransformersGenerator(models["repetitive"], model_id="r", device="cpu", int8=False)
    fresh = TransformersGenerator(models["repetitive"], model_id="r", device="cpu", int8=False)
    reference = run(fresh, PROMPTS[1], None).text
    stop = reference[12:15]
    out = run(gen, PROMPTS[1], EAGER, stop=(stop,))
    assert out.stop_reason == "stop" and out.text == reference[: reference.index(stop)]
    # The next request reuses the cache the draft steps left.
    again = run(gen, PROMPTS[1], EAGER)
    assert again.reused_tokens == again.prompt_tokens - 1 and again.text == reference


def test_max_tokens_and_cancel_with_drafts(models: dict[str, Path]) -> None:
    gen = TransformersGenerator(models["repetitive"], model_id="r", device="cpu", int8=False)
    for max_tokens in (1, 5, 17):
        assert run(gen, PROMPTS[0], EAGER, max_tokens=max_tokens).new_tokens == max_tokens
    full = run(gen, PROMPTS[0], None)
    stopped = run(gen, PROMPTS[0], EAGER, cancel=CancelAfter(4))  # 1 prefill poll, 3 tokens
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens == 3
    assert full.text.startswith(stopped.text)
    assert run(gen, PROMPTS[0], EAGER).text == full.text
