"""Prompt lookup with the real pulled model on llama.cpp: copied code in few steps, same text."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cancel_after import CancelAfter
from pilotfish.lsp_server.engine.generate import Generation, GenerationRequest
from pilotfish.lsp_server.engine.lookup import DraftPolicy

pytestmark = pytest.mark.model

GGUF = Path.home() / ".local/share/pilotfish/models/qwen2.5-coder-0.5b/model.gguf"

COPYING = """import json


def load_settings(path):
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object, got {type(data).__name__}")
    return data


def load_defaults(path):
"""
"""A second function like the first: the model copies its body."""

PROMPTS = {
    "copying": f"<|fim_prefix|>{COPYING}<|fim_suffix|>\n<|fim_middle|>",
    "fields": "<|fim_prefix|>class Point:\n    def __init__(self, x, y, z):\n        self.x = x\n"
    "        self.<|fim_suffix|>\n\n    def norm(self):\n        return (self.x ** 2 + self.y ** 2"
    " + self.z ** 2) ** 0.5\n<|fim_middle|>",
    "new code": "<|fim_prefix|>import os\n\n\ndef newest_file(folder):\n    <|fim_suffix|>\n"
    "<|fim_middle|>",
}


@pytest.fixture(scope="module")
def generator():
    if not GGUF.is_file():
        pytest.fail("the real model is not pulled: run `pilotfish model pull qwen2.5-coder-0.5b`")
    from pilotfish.lsp_server.engine.llamacpp_backend import LlamaCppGenerator

    return LlamaCppGenerator(GGUF, model_id="qwen2.5-coder-0.5b", threads=1)


def run(generator, prompt: str, policy: DraftPolicy | None, cancel=None) -> Generation:
    generator.draft_policy = policy
    generator.reset()
    request = GenerationRequest(prompt=prompt, max_tokens=64, stop=(), max_lines=0)
    return generator.generate(request, cancel or threading.Event())


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_same_text_with_drafts(generator, name: str) -> None:
    off = run(generator, PROMPTS[name], None)
    on = run(generator, PROMPTS[name], DraftPolicy())
    assert on.text == off.text and on.new_tokens == off.new_tokens
    if name == "copying":
        stats = generator.lookup_stats
        assert "isinstance(data, dict)" in on.text
        assert stats.accepted >= 0.8 * stats.drafted and stats.accepted >= 24
        model_calls = on.new_tokens - stats.accepted  # one call per step, draft or not
        assert model_calls <= on.new_tokens // 2


def test_cancel_mid_decode_with_drafts(generator) -> None:
    reference = run(generator, PROMPTS["copying"], None)
    # Polled once per prefill chunk and once after it (the prompt is one chunk), then once
    # per token: the cancel lands on the 12th token, inside a verified draft's run.
    stopped = run(generator, PROMPTS["copying"], DraftPolicy(), CancelAfter(2 + 11))
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens == 12
    assert generator.lookup_stats.accepted > 0
    assert reference.text.startswith(stopped.text)
    # The cache the cancelled request left serves the next one (all of the prompt reused).
    request = GenerationRequest(prompt=PROMPTS["copying"], max_tokens=64, stop=(), max_lines=0)
    again = generator.generate(request, threading.Event())
    assert again.reused_tokens == again.prompt_tokens - 1 and again.text == reference.text
