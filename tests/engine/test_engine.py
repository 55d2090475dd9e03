"""The engine and scheduler with a tiny random model: KV reuse, cancel, cache, typing-through."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from cancel_after import CancelAfter
from pilotfish.lsp_server.engine.anchor import anchored_start
from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.engine import CompletionEngine, Pending
from pilotfish.lsp_server.engine.generate import GenerationRequest
from pilotfish.lsp_server.engine.hf_backend import TransformersGenerator
from pilotfish.lsp_server.scheduler import Scheduler, adaptive_debounce_ms
from pilotfish.lsp_server.settings import CompletionSettings

FIM = "<|fim_prefix|>{}<|fim_suffix|>\n<|fim_middle|>"


def words(text: str) -> int:
    return len(text.split()) + text.count("\n")


@pytest.fixture(scope="module")
def generator(tiny_model_dir: Path) -> TransformersGenerator:
    return TransformersGenerator(tiny_model_dir, model_id="tiny", device="cpu", int8=False)


def at_end(text: str, key: str = "doc") -> CompletionRequest:
    lines = text.split("\n")
    return CompletionRequest(
        text=text, line=len(lines) - 1, column=len(lines[-1]), document_key=key, path="a.py"
    )


def engine_for(generator: TransformersGenerator, **settings: object) -> CompletionEngine:
    base: dict[str, object] = {"retrieval_tokens": 0, "max_tokens": 12}
    base.update(settings)
    return CompletionEngine(generator, CompletionSettings(**base))  # type: ignore[arg-type]


# -- generator plumbing ----------------------------------------------------------------------


def test_kv_reuse_gives_the_same_output_as_a_fresh_cache(tiny_model_dir: Path) -> None:
    warm = TransformersGenerator(tiny_model_dir, model_id="tiny", device="cpu", int8=False)
    cold = TransformersGenerator(tiny_model_dir, model_id="tiny", device="cpu", int8=False)
    first = FIM.format("import json\n\ndef load(path):\n    with open(path) as f:\n        return")
    second = FIM.format("import json\n\ndef load(path):\n    with open(path) as f:\n        data =")
    request = GenerationRequest(prompt=first, max_tokens=20, stop=(), max_lines=0)
    warm.generate(request, threading.Event())
    again = GenerationRequest(prompt=second, max_tokens=20, stop=(), max_lines=0)
    reused = warm.generate(again, threading.Event())
    fresh = cold.generate(again, threading.Event())
    assert reused.reused_tokens > 10 and fresh.reused_tokens == 0
    assert reused.text == fresh.text and reused.new_tokens == 20
    # The same prompt again reuses all but the last prompt token.
    third = warm.generate(again, threading.Event())
    assert third.reused_tokens == third.prompt_tokens - 1 and third.text == fresh.text


def test_cancel_stops_mid_decode(generator: TransformersGenerator) -> None:
    request = GenerationRequest(prompt=FIM.format("x = "), max_tokens=500, stop=(), max_lines=0)
    result = generator.generate(request, CancelAfter(4))  # 1 prefill check, 3 decode
    assert result.stop_reason == "cancelled" and result.new_tokens == 3


def test_cancelled_generation_leaves_a_usable_cache(generator: TransformersGenerator) -> None:
    prompt = FIM.format("values = [1, 2, 3]\ntotal = ")
    request = GenerationRequest(prompt=prompt, max_tokens=8, stop=(), max_lines=0)
    generator.generate(request, CancelAfter(2))
    after = generator.generate(request, threading.Event())
    fresh = TransformersGenerator(generator._model_dir, model_id="t", device="cpu", int8=False)
    assert after.text == fresh.generate(request, threading.Event()).text


def test_cancel_during_prefill_keeps_the_evaluated_prefix(tiny_model_dir: Path) -> None:
    generator = TransformersGenerator(tiny_model_dir, model_id="tiny", device="cpu", int8=False)
    body = "".join(f"    value_{i} = compute({i})\n" for i in range(40))
    prompt = FIM.format(f"def build():\n{body}    return")
    request = GenerationRequest(prompt=prompt, max_tokens=6, stop=(), max_lines=0)
    assert generator.count_tokens(prompt) > 2 * 128
    stopped = generator.generate(request, CancelAfter(1))  # after the first chunk
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens == 0
    resumed = generator.generate(request, threading.Event())
    assert resumed.reused_tokens == 128
    fresh = TransformersGenerator(tiny_model_dir, model_id="tiny", device="cpu", int8=False)
    assert resumed.text == fresh.generate(request, threading.Event()).text


def test_static_cache_matches_the_dynamic_one(tiny_model_dir: Path) -> None:
    """The CUDA path's preallocated cache, exercised on the CPU: same text, same reuse."""
    static = TransformersGenerator(tiny_model_dir, model_id="t", device="cpu", int8=False,
                                   static_cache=True, n_ctx=512)
    dynamic = TransformersGenerator(tiny_model_dir, model_id="t", device="cpu", int8=False)
    prompts = [FIM.format(p) for p in (
        "import json\n\ndef load(path):\n    with open(path) as f:\n        return",
        "import json\n\ndef load(path):\n    with open(path) as f:\n        data =",
        "class Stack:\n    def push(self, item):\n        self.",  # nothing shared: a cold start
        "class Stack:\n    def push(self, item):\n        self.items",
    )]
    for prompt in prompts:
        request = GenerationRequest(prompt=prompt, max_tokens=16, stop=(), max_lines=0)
        got, want = static.generate(request, threading.Event()), dynamic.generate(
            request, threading.Event())
        assert (got.text, got.reused_tokens) == (want.text, want.reused_tokens)
    # A cancel mid-decode leaves the static cache usable for the next request.
    request = GenerationRequest(prompt=prompts[0], max_tokens=200, stop=(), max_lines=0)
    assert static.generate(request, CancelAfter(3)).stop_reason == "cancelled"
    request = GenerationRequest(prompt=prompts[1], max_tokens=16, stop=(), max_lines=0)
    assert static.generate(request, threading.Event()).text == dynamic.generate(
        request, threading.Event()).text


def test_prompts_longer_than_the_context_keep_their_end(tiny_model_dir: Path) -> None:
    generator = TransformersGenerator(tiny_model_dir, model_id="t", device="cpu", int8=False,
                                      static_cache=True, n_ctx=128)
    body = "".join(f"value_{i} = compute({i})\n" for i in range(80))
    request = GenerationRequest(prompt=FIM.format(body + "total ="), max_tokens=8, stop=(),
                                max_lines=0)
    result = generator.generate(request, threading.Event())
    assert result.prompt_tokens == 128 - 8 - 1 and result.new_tokens == 8


# -- engine: cache, typing-through, anchors ---------------------------------------------------


def test_context_at_line_start_is_shown_unless_turned_off(
    generator: TransformersGenerator,
) -> None:
    from pilotfish.code_index.types import Snippet

    snippet = Snippet(path="lib.py", start_line=1, end_line=1, text="def area(r): ...",
                      score=1.0, source="symbol", reason="t")
    asked: list[int] = []

    def retrieve(ctx: object, budget: int) -> list[Snippet]:
        asked.append(budget)
        return [snippet]

    engine = CompletionEngine(generator, CompletionSettings(max_tokens=2), retrieve)
    shown = engine.prepare(at_end("import os\n\ndef f():\n    "))
    assert isinstance(shown, Pending) and shown.prompt.snippets and len(asked) == 1
    off = CompletionEngine(generator, CompletionSettings(max_tokens=2), retrieve,
                           context_at_line_start=False)
    blank = off.prepare(at_end("import os\n\ndef f():\n    ", key="other"))
    assert len(asked) == 1  # nothing to show: retrieval is not even run
    typed = off.prepare(at_end("import os\n\ndef f():\n    x = ", key="third"))
    assert isinstance(blank, Pending) and isinstance(typed, Pending)
    assert not blank.prompt.snippets and typed.prompt.snippets and len(asked) == 2
    # The reason travels with the completion (``complete --json``, explainCompletion).
    done = off.run(blank, threading.Event())
    assert done.to_json()["context"] == blank.prompt.context_note
    assert str(done.to_json()["context"]).startswith("none: nothing is typed on this line")
    no_index = CompletionEngine(generator, CompletionSettings(max_tokens=2), None)
    alone = no_index.prepare(at_end("x = ", key="fourth"))
    assert isinstance(alone, Pending)
    assert alone.prompt.context_note == "none: no repository index for this file"


def test_context_style_is_asked_per_request(generator: TransformersGenerator) -> None:
    """The server passes a function: an adapter loaded later changes the format at once."""
    from pilotfish.code_index.types import Snippet

    snippet = Snippet(path="lib.py", start_line=1, end_line=1, text="def area(r): ...",
                      score=1.0, source="symbol", reason="t")
    styles = ["comments", "repo"]
    engine = CompletionEngine(generator, CompletionSettings(max_tokens=2),
                              lambda ctx, budget: [snippet], context_style=lambda: styles[0])
    first = engine.prepare(at_end("x = ", key="a"))
    styles.pop(0)
    second = engine.prepare(at_end("y = ", key="b"))
    assert isinstance(first, Pending) and isinstance(second, Pending)
    assert "# def area(r): ..." in first.prompt.text and "<|file_sep|>" not in first.prompt.text
    assert "<|file_sep|>lib.py\ndef area(r): ..." in second.prompt.text
    assert first.prompt.template_version.endswith("-comments")


def test_typing_through_makes_no_model_call(generator: TransformersGenerator) -> None:
    engine = engine_for(generator)
    text = "import os\nprint("
    shown = engine.complete(at_end(text))
    assert shown.source == "model" and len(shown.text) >= 3, shown
    runs = engine.counts["modelRuns"]
    typed = shown.text[:2]
    through = engine.complete(at_end(text + typed))
    assert through.source == "typing-through"
    assert through.text == shown.text[2:]
    assert engine.counts["modelRuns"] == runs
    # Typing something else goes back to the model.
    other = "Z" if not shown.text.startswith("Z") else "Q"
    assert engine.complete(at_end(text + other)).source == "model"
    assert engine.counts["modelRuns"] == runs + 1


def test_typing_through_is_per_document(generator: TransformersGenerator) -> None:
    engine = engine_for(generator)
    shown = engine.complete(at_end("import os\nprint(", key="a"))
    assert shown.text
    assert engine.complete(at_end("import os\nprint(" + shown.text[:1], key="b")).source == "model"


def test_cache_serves_the_same_prompt(generator: TransformersGenerator) -> None:
    engine = engine_for(generator)
    first = engine.complete(at_end("def f(a):\n    return ", key="a"))
    second = engine.complete(at_end("def f(a):\n    return ", key="b"))
    assert (first.source, second.source) == ("model", "cache")
    assert second.text == first.text and engine.counts["modelRuns"] == 1


def test_lru_evicts_the_oldest(generator: TransformersGenerator) -> None:
    engine = CompletionEngine(
        generator, CompletionSettings(retrieval_tokens=0, max_tokens=4), cache_size=2
    )
    for text in ("a = ", "b = ", "a = ", "c = ", "b = "):
        engine.complete(at_end(text, key=""))
    # a, b: runs; a: hit (now newest); c: run evicts b; b: run again.
    assert engine.counts["modelRuns"] == 4 and engine.counts["cache"] == 1


def test_cache_is_keyed_by_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    peft_model = get_peft_model(
        base, LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj", "v_proj"])
    )
    adapter = tmp_path / "adapter-1"
    peft_model.save_pretrained(str(adapter))
    generator = TransformersGenerator(tiny_model_dir, model_id="tiny", device="cpu", int8=False)
    engine = engine_for(generator)
    engine.complete(at_end("x = ", key=""))
    generator.set_adapter(adapter)
    served = engine.complete(at_end("x = ", key=""))
    assert served.source == "model" and served.adapter == "adapter-1"
    assert engine.counts["modelRuns"] == 2


@pytest.mark.parametrize(
    ("prefix", "anchor", "budget", "expected"),
    [
        ("a b\nc d\n", None, 100, 0),  # fits: start of the text
        ("a b\nc d\ne f g", 4, 100, 4),  # a fitting anchor is kept
        ("a b\nc d\ne f g", 5, 100, 0),  # not at a line start: recomputed
        ("a b\nc d\ne f g", 99, 100, 0),  # past the end (text shrank): recomputed
        # Over budget: jump ahead leaving slack (budget 8, 75% = 6 tokens: "c d\ne f g").
        ("a b\nc d\ne f g", 0, 8, 4),
        ("l1 x\nl2 x\nl3 x\nl4 x\nl5 x", None, 9, 15),
    ],
)
def test_anchored_start(prefix: str, anchor: int | None, budget: int, expected: int) -> None:
    assert anchored_start(prefix, anchor, budget, words) == expected


def test_anchor_keeps_consecutive_prompts_sharing_their_start(
    generator: TransformersGenerator,
) -> None:
    engine = engine_for(generator, context_tokens=96)
    text = "".join(f"value_{i} = compute({i}, scale=2)\n" for i in range(40)) + "result = value_"
    starts = []
    for ch in "39 + value_38":
        prepared = engine.prepare(at_end(text))
        assert isinstance(prepared, Pending)
        starts.append(prepared.prompt.prefix.split("\n", 1)[0])
        text += ch
    assert len(set(starts)) <= 2, starts  # at most one jump in 13 keystrokes


# -- scheduling --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gaps", "base", "most", "expected"),
    [
        ([], 60, 200, 60),  # too few samples
        ([0.1, 0.1, 0.1], 60, 200, 120),  # a burst: wait 1.2x the gap
        ([0.1, 0.1, 0.1], 60, 60, 60),  # adaptation off
        ([0.4, 0.5, 0.4], 60, 200, 60),  # a slow typist: waiting saves nothing
        ([0.02, 0.03, 0.02], 60, 200, 60),  # faster than the base: the base
    ],
)
def test_adaptive_debounce(gaps: list[float], base: int, most: int, expected: int) -> None:
    assert adaptive_debounce_ms(gaps, base, most) == expected


async def test_burst_of_keystrokes_runs_the_model_once(generator: TransformersGenerator) -> None:
    engine = engine_for(generator)
    scheduler = Scheduler(debounce_ms=80, debounce_max_ms=80)
    text = "def area(radius):\n    return "
    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(scheduler.complete(engine, at_end(text + "r" * i))))
        await asyncio.sleep(0.01)
    results = await asyncio.gather(*tasks)
    scheduler.shutdown()
    assert [r is None for r in results] == [True] * 5 + [False]
    assert engine.counts["modelRuns"] == 1 and engine.counts["model"] == 1


async def test_cancel_request_stops_the_model(generator: TransformersGenerator) -> None:
    engine = engine_for(generator, max_tokens=5000)
    scheduler = Scheduler(debounce_ms=0)
    task = asyncio.create_task(scheduler.complete(engine, at_end("x = [")))
    while engine.counts["modelRuns"] == 0:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    task.cancel()  # what pygls does on $/cancelRequest
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if engine.counts["cancelled"]:
            break
        await asyncio.sleep(0.01)
    scheduler.shutdown()
    assert engine.counts["cancelled"] == 1 and engine.counts["model"] == 0


# -- CUDA (skipped without a GPU; see BENCHMARKS.md for the numbers still to take) ------------


@pytest.mark.gpu
def test_cuda_generation_reuses_the_cache_and_cancels(tiny_model_dir: Path) -> None:
    gpu = TransformersGenerator(tiny_model_dir, model_id="tiny", device="cuda")
    assert gpu.device == "cuda"
    first = FIM.format("import json\n\ndef load(path):\n    return")
    second = FIM.format("import json\n\ndef load(path):\n    data =")
    gpu.generate(
        GenerationRequest(prompt=first, max_tokens=8, stop=(), max_lines=0), threading.Event()
    )
    again = gpu.generate(
        GenerationRequest(prompt=second, max_tokens=8, stop=(), max_lines=0), threading.Event()
    )
    assert again.reused_tokens > 5 and again.new_tokens == 8
    stopped = gpu.generate(
        GenerationRequest(prompt=first, max_tokens=500, stop=(), max_lines=0), CancelAfter(3)
    )
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens == 2


@pytest.mark.gpu
def test_cuda_graph_decode_matches_eager(tiny_model_dir: Path) -> None:
    graphs = TransformersGenerator(tiny_model_dir, model_id="t", device="cuda")
    eager = TransformersGenerator(tiny_model_dir, model_id="t", device="cuda",
                                  compile_decode=False)
    assert graphs._compile and graphs._static and not eager._compile
    for body in ("import json\n\ndef load(path):\n    return",
                 "import json\n\ndef load(path):\n    data ="):
        request = GenerationRequest(prompt=FIM.format(body), max_tokens=24, stop=(), max_lines=0)
        assert graphs.generate(request, threading.Event()).text == eager.generate(
            request, threading.Event()).text
