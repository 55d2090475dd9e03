"""Prompt-lookup decoding in the llama.cpp backend, on tiny GGUFs: same tokens, fewer steps.

Three tiny random models: the usual wide one (its output rarely repeats, drafts are
rejected), a ``mixed`` one (partly repetitive: drafts accepted in part, rejected cells
dropped) and a ``repetitive`` one (one pattern repeated: nearly every draft accepted).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cancel_after import CancelAfter
from pilotfish.lsp_server.engine.generate import Generation, GenerationRequest
from pilotfish.lsp_server.engine.llamacpp_backend import LlamaCppGenerator, open_llama
from pilotfish.lsp_server.engine.lookup import DraftPolicy
from test_llamacpp_backend import PREFIX, fim, write_tiny_gguf
from tiny_model import build_tiny_model

pytest.importorskip("llama_cpp")

EAGER = DraftPolicy(warmup=0, min_draft=1)
"""Verifies every draft there is: the most verify steps, rejections and KV rollbacks."""
PROMPTS = ("import json\n", fim(PREFIX), "x = 1\ny = 2\n", fim(PREFIX + "loads("))


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    out = {"wide": write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("g") / "w.gguf")}
    for name, spread in (("mixed", 0.15), ("repetitive", 0.05)):
        folder = build_tiny_model(tmp_path_factory.mktemp(name), initializer_range=spread)
        out[name] = write_tiny_gguf(folder, folder / "tiny.gguf")
    return out


def run(
    gen: LlamaCppGenerator,
    prompt: str,
    policy: DraftPolicy | None,
    *,
    max_tokens: int = 64,
    stop: tuple[str, ...] = (),
    cold: bool = True,
    cancel: threading.Event | None = None,
    temperature: float = 0.0,
) -> Generation:
    gen.draft_policy = policy
    if cold:
        gen.reset()
    request = GenerationRequest(
        prompt=prompt, max_tokens=max_tokens, stop=stop, max_lines=0, temperature=temperature
    )
    return gen.generate(request, cancel or threading.Event())


@pytest.mark.parametrize("model", ["wide", "mixed", "repetitive"])
def test_greedy_output_is_the_same_with_and_without_drafts(
    ggufs: dict[str, Path], model: str
) -> None:
    gen = LlamaCppGenerator(ggufs[model], model_id=model, threads=1, n_ctx=1024)
    verified = accepted = 0
    for prompt in PROMPTS:
        off = run(gen, prompt, None)
        assert gen.lookup_stats.steps == 0
        for policy in (EAGER, DraftPolicy()):
            on = run(gen, prompt, policy)
            assert (on.text, on.new_tokens, on.stop_reason) == (
                off.text,
                off.new_tokens,
                off.stop_reason,
            )
            verified += gen.lookup_stats.drafted
            accepted += gen.lookup_stats.accepted
    assert verified > 0
    if model == "repetitive":
        assert accepted >= 0.8 * verified
    if model == "mixed":
        assert 0 < accepted < verified  # rejected cells were dropped along the way


def test_off_matches_llamacpps_own_greedy_loop(ggufs: dict[str, Path]) -> None:
    """The tokens are those llama.cpp's own loop with its greedy sampler picks."""
    gen = LlamaCppGenerator(ggufs["mixed"], model_id="mixed", threads=1, n_ctx=1024)
    plain = open_llama(ggufs["mixed"], n_ctx=1024, n_threads=1, verbose=False)
    for prompt in PROMPTS:
        ids = plain.tokenize(prompt.encode(), add_bos=False, special=True)
        plain.reset()
        expected = []
        for token in plain.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
            expected.append(token)
            if len(expected) == 24 or token == plain.token_eos():
                break
        out = run(gen, prompt, EAGER, max_tokens=24)
        # The cache holds the prompt and every generated token but the last.
        llm = gen._llm
        assert out.new_tokens == len(expected)
        assert list(llm.input_ids[len(ids) : len(ids) + len(expected) - 1]) == expected[:-1]


def test_repetitive_output_takes_few_model_steps(ggufs: dict[str, Path]) -> None:
    gen = LlamaCppGenerator(ggufs["repetitive"], model_id="r", threads=1, n_ctx=1024)
    out = run(gen, "import json\n", DraftPolicy())
    stats = gen.lookup_stats
    plain_steps = out.new_tokens - stats.accepted
    assert out.new_tokens == 64 and plain_steps <= 16  # 64 tokens in at most 16 model calls


@pytest.mark.parametrize("max_tokens", [1, 2, 9, 17, 40])
def test_max_tokens_is_exact_with_drafts(ggufs: dict[str, Path], max_tokens: int) -> None:
    gen = LlamaCppGenerator(ggufs["repetitive"], model_id="r", threads=1, n_ctx=1024)
    off = run(gen, fim(PREFIX), None, max_tokens=max_tokens)
    on = run(gen, fim(PREFIX), EAGER, max_tokens=max_tokens)
    assert on.new_tokens == off.new_tokens == max_tokens
    assert on.text == off.text and on.stop_reason == "length"


@pytest.mark.parametrize("model", ["wide", "repetitive"])
def test_a_stop_string_inside_an_accepted_draft_ends_the_text_there(
    ggufs: dict[str, Path], model: str
) -> None:
    gen = LlamaCppGenerator(ggufs[model], model_id=model, threads=1, n_ctx=1024)
    prompt = next(p for p in PROMPTS if len(run(gen, p, None).text) > 20)
    reference = run(gen, prompt, None).text
    stop = reference[12:15]
    on = run(gen, prompt, EAGER, stop=(stop,))
    assert on.stop_reason == "stop"
    assert on.text == reference[: reference.index(stop)]


def test_the_cache_after_a_speculative_request_serves_the_next_one(
    ggufs: dict[str, Path],
) -> None:
    """Accepted, rejected and unread draft cells leave a cache the next prompt reuses exactly."""
    gen = LlamaCppGenerator(ggufs["mixed"], model_id="mixed", threads=1, n_ctx=1024)
    reference = run(gen, fim(PREFIX + "load"), None).text
    for stop in ((), (reference[5:7],)):
        run(gen, fim(PREFIX), EAGER, stop=stop)
        llm = gen._llm  # what the next request's plan reads
        assert llm.n_tokens >= gen.count_tokens(fim(PREFIX)) - 1
        warm = run(gen, fim(PREFIX + "load"), EAGER, cold=False)
        assert warm.reused_tokens > 0 and warm.text == reference


@pytest.mark.parametrize("polls", [0, 3, 20])
def test_cancel_mid_decode_with_drafts(ggufs: dict[str, Path], polls: int) -> None:
    gen = LlamaCppGenerator(ggufs["repetitive"], model_id="r", threads=1, n_ctx=1024)
    reference = run(gen, fim(PREFIX), None)
    # Polled once per prefill chunk that may stop, then once per generated token.
    stopped = run(gen, fim(PREFIX), EAGER, cancel=CancelAfter(polls + 2))
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens < reference.new_tokens
    assert reference.text.startswith(stopped.text)
    again = run(gen, fim(PREFIX), EAGER, cold=False)
    assert again.text == reference.text and again.reused_tokens > 0


def test_sampling_does_not_draft(ggufs: dict[str, Path]) -> None:
    gen = LlamaCppGenerator(ggufs["repetitive"], model_id="r", threads=1, n_ctx=1024)
    out = run(gen, fim(PREFIX), EAGER, temperature=0.8, max_tokens=16)
    assert out.new_tokens == 16 and gen.lookup_stats.steps == 0


def test_off_by_default(ggufs: dict[str, Path]) -> None:
    gen = LlamaCppGenerator(ggufs["repetitive"], model_id="r", threads=1)
    assert gen.draft_policy is None
    gen.generate(
        GenerationRequest(prompt="import json\n", max_tokens=32, stop=()), threading.Event()
    )
    assert gen.lookup_stats.steps == 0


def test_drafts_with_a_lora_adapter(ggufs: dict[str, Path], tmp_path: Path) -> None:
    """The adapter's model is the one that checks the drafts: same output as without them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from pilotfish.training.export import write_gguf_lora
    from transformers import AutoModelForCausalLM

    folder = ggufs["mixed"].parent
    torch.manual_seed(0)
    peft = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(folder)),
        LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"]),
    )
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    adapter = tmp_path / "adapter"
    peft.save_pretrained(str(adapter))
    write_gguf_lora(adapter, adapter / "adapter.gguf", "qwen2")

    gen = LlamaCppGenerator(ggufs["mixed"], model_id="mixed", threads=1, n_ctx=1024)
    base = run(gen, PROMPTS[0], None).text
    gen.set_adapter(adapter)
    off = run(gen, PROMPTS[0], None)
    on = run(gen, PROMPTS[0], EAGER)
    assert off.text != base  # the adapter is applied...
    assert on.text == off.text and gen.lookup_stats.drafted > 0  # ... and checks the drafts
