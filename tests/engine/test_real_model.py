"""The engine with the real pulled model on llama.cpp: KV reuse is exact, cancel is prompt."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.engine import CompletionEngine
from pilotfish.lsp_server.engine.generate import GenerationRequest
from pilotfish.lsp_server.settings import CompletionSettings

pytestmark = pytest.mark.model

GGUF = Path.home() / ".local/share/pilotfish/models/qwen2.5-coder-0.5b/model.gguf"

SOURCE = """class Wrapper:
    def __init__(self, width=70, indent="", tabsize=8):
        self.width = width
        self.indent = indent
        self.tabsize = tabsize

    def describe(self):
        return f"Wrapper(width={self.width}, indent={self.indent!r})"
"""


@pytest.fixture(scope="module")
def generator():
    if not GGUF.is_file():
        pytest.fail("the real model is not pulled: run `pilotfish model pull qwen2.5-coder-0.5b`")
    from pilotfish.lsp_server.engine.llamacpp_backend import LlamaCppGenerator

    return LlamaCppGenerator(GGUF, model_id="qwen2.5-coder-0.5b")


def request_at(text: str, marker: str) -> CompletionRequest:
    head = text[: text.index(marker) + len(marker)]
    lines = head.split("\n")
    return CompletionRequest(
        text=text, line=len(lines) - 1, column=len(lines[-1]), document_key="w", path="wrap.py"
    )


def test_typing_reuses_the_kv_cache_and_matches_a_cold_run(generator) -> None:
    engine = CompletionEngine(generator, CompletionSettings(retrieval_tokens=0), cache_size=0)
    first = engine.complete(request_at(SOURCE, "self.tabsize = tabsize"))
    typed = SOURCE.replace("return f", "return ")
    warm = engine.complete(request_at(typed, "return "))
    assert warm.reused_tokens > warm.prompt_tokens // 2, (first, warm)
    generator.reset()  # a cold run
    cold = engine.complete(request_at(typed, "return "))
    assert cold.reused_tokens == 0
    assert warm.text == cold.text and warm.text.strip()


def test_cancel_stops_llamacpp_mid_decode(generator) -> None:
    cancel = threading.Event()
    prompt = "<|fim_prefix|>numbers = [<|fim_suffix|>]\n<|fim_middle|>"
    threading.Timer(0.5, cancel.set).start()
    started = time.perf_counter()
    result = generator.generate(
        GenerationRequest(prompt=prompt, max_tokens=3000, stop=(), max_lines=0), cancel
    )
    assert result.stop_reason == "cancelled"
    assert result.new_tokens < 3000 and time.perf_counter() - started < 30


def test_cancel_during_prefill_keeps_the_evaluated_prefix(generator) -> None:
    """A keystroke during a long prefill stops it within a chunk; the work done is reused."""
    generator.reset()
    body = "".join(f"    value_{i} = compute({i})\n" for i in range(120))
    prompt = f"<|fim_prefix|>def build():\n{body}    return<|fim_suffix|>\n<|fim_middle|>"
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.perf_counter()
    stopped = generator.generate(GenerationRequest(prompt=prompt, max_tokens=8, stop=()), cancel)
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens == 0
    assert time.perf_counter() - started < 20  # the whole prompt takes far longer here
    resumed = generator.generate(
        GenerationRequest(prompt=prompt, max_tokens=4, stop=()), threading.Event()
    )
    assert resumed.reused_tokens >= 64 and resumed.new_tokens > 0


MID_FILE = SOURCE + """
    def expand(self, text):
        return text.expandtabs(self.tabsize)

    def fits(self, line):
        return len(self.indent) + len(line) <= self.width

    def wrap(self, text):
        lines, line = [], ""
        for word in self.expand(text).split():
            if line and not self.fits(line + " " + word):
                lines.append(self.indent + line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        if line:
            lines.append(self.indent + line)
        return lines
"""


def test_typing_mid_file_moves_the_suffix_kv_and_completes_as_a_cold_run(generator) -> None:
    """Mid-file, the text after the cursor is moved in the KV cache, not evaluated again."""

    def engine() -> CompletionEngine:  # a new one each time: no typing-through, one KV cache
        return CompletionEngine(generator, CompletionSettings(retrieval_tokens=0), cache_size=0)

    before = MID_FILE.replace("        self.tabsize = tabsize\n", "        self.ta\n")
    generator.reset()
    engine().complete(request_at(before, "self.ta"))
    typed = before.replace("self.ta\n", "self.tab\n")
    warm = engine().complete(request_at(typed, "self.tab"))
    suffix_tokens = generator.count_tokens(MID_FILE[MID_FILE.index("\n\n    def describe") :])
    assert warm.reused_tokens >= warm.prompt_tokens - 40  # typed + refreshed + last token
    assert warm.reused_tokens - suffix_tokens > 0  # the prefix and most of the suffix
    generator.reset()
    cold = engine().complete(request_at(typed, "self.tab"))
    assert cold.reused_tokens == 0
    assert (warm.text, cold.text) == ("size = tabsize", "size = tabsize")
