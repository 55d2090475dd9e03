"""The llama.cpp backend on a tiny random GGUF: the suffix's KV moved, not evaluated again."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from pilotfish.lsp_server.engine.generate import Generation, GenerationRequest
from pilotfish.lsp_server.engine.llamacpp_backend import (
    EXTRA_BUFFERS_ENV,
    MAX_STALE_TOKENS,
    TAIL_REFRESH,
    LlamaCppGenerator,
    cpu_has_amx,
    extra_buffers_enabled,
    model_params,
)

pytest.importorskip("llama_cpp")

PREFIX = "def load(path):\n    with open(path) as handle:\n        data = json."
SUFFIX = "\n    return data\n\n\ndef save(path, data):\n    with open(path, 'w') as out:\n" * 3


def write_tiny_gguf(folder: Path, out: Path) -> Path:
    """Write the tiny Qwen2 model of ``folder`` as an f32 GGUF llama.cpp can load."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    tok = json.loads((folder / "tokenizer.json").read_text())
    n_vocab = config["vocab_size"]
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [gguf.TokenType.UNUSED] * n_vocab
    for text, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = text, gguf.TokenType.NORMAL
    special = {t["content"]: t["id"] for t in tok["added_tokens"]}
    for text, i in special.items():
        tokens[i], types[i] = text, gguf.TokenType.CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]

    writer = gguf.GGUFWriter(str(out), "qwen2")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config.get("rope_theta", 10000.0))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(special["<|endoftext|>"])
    writer.add_add_bos_token(False)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config["num_hidden_layers"])
    for name, tensor in load_file(str(folder / "model.safetensors")).items():
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, name
        writer.add_tensor(gguf_name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def fim(prefix: str, suffix: str = SUFFIX) -> str:
    return f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"


def complete(
    gen: LlamaCppGenerator, prompt: str, max_tokens: int = 12, *, cancel: bool = False
) -> Generation:
    event = threading.Event()
    if cancel:
        event.set()
    return gen.generate(GenerationRequest(prompt=prompt, max_tokens=max_tokens, stop=()), event)


def cold(gen: LlamaCppGenerator, prompt: str, max_tokens: int = 12) -> Generation:
    gen.reset()
    return complete(gen, prompt, max_tokens)


@pytest.mark.parametrize("refresh", [0, TAIL_REFRESH])
def test_typing_mid_file_moves_the_suffix_kv(tiny_gguf: Path, refresh: int) -> None:
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024, tail_refresh=refresh)
    suffix_tokens = gen.count_tokens(f"<|fim_suffix|>{SUFFIX}")
    complete(gen, fim(PREFIX))
    typed = complete(gen, fim(PREFIX + "loa"))
    # Evaluated: the typed characters (one more token if the prefix's last token changed),
    # the first ``refresh`` tokens of the suffix and the last token; the rest was moved.
    evaluated = typed.prompt_tokens - typed.reused_tokens
    assert 1 < evaluated <= gen.count_tokens("loa") + 2 + refresh
    assert typed.reused_tokens >= suffix_tokens - refresh
    assert typed.new_tokens > 0 and typed.stop_reason != "cancelled"


def last_logits(gen: LlamaCppGenerator) -> np.ndarray:
    """The logits that chose the first generated token (llama.cpp's output buffer)."""
    from llama_cpp import llama_cpp

    llm = gen._llm  # the logits themselves are what this test compares
    vocab = llm.n_vocab()
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(vocab,)).copy()


def test_moving_the_suffix_back_restores_the_exact_cache(tiny_gguf: Path) -> None:
    """Typing then deleting moves the suffix's own KV there and back: a cold run's logits.

    Moved one way only, the suffix's KV reflects the other text before it, and the logits
    show it: the comparison can tell.
    """
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024)
    cold(gen, fim(PREFIX + "load"), 1)
    reference = last_logits(gen)
    complete(gen, fim(PREFIX + "loads(x"), 1)
    back = complete(gen, fim(PREFIX + "load"), 1)
    # Evaluated: the refreshed start of the suffix, the last token and at most the token
    # before the cursor (``load`` and ``loads`` may split differently).
    assert TAIL_REFRESH < back.prompt_tokens - back.reused_tokens <= TAIL_REFRESH + 2
    assert np.abs(last_logits(gen) - reference).max() < 0.05  # f16 K rotated there and back

    cold(gen, fim(PREFIX + "loads(x"), 1)
    one_way = complete(gen, fim(PREFIX + "load"), 1)
    assert one_way.reused_tokens == back.reused_tokens
    assert np.abs(last_logits(gen) - reference).max() > 0.5


def test_without_tail_reuse_only_the_prefix_is_reused(tiny_gguf: Path) -> None:
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024, reuse_tail=False)
    complete(gen, fim(PREFIX))
    typed = complete(gen, fim(PREFIX + "loa"))
    assert typed.reused_tokens < gen.count_tokens(fim(PREFIX)) - gen.count_tokens(SUFFIX)
    assert typed.text == cold(gen, fim(PREFIX + "loa")).text


def test_the_whole_suffix_is_evaluated_again_once_too_much_was_typed(tiny_gguf: Path) -> None:
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024)
    complete(gen, fim(PREFIX))
    typed, moved = "", []
    for word in ["loads(", "handle", ".read", "()", ")  ", "# parse", " the", " file"] * 4:
        typed += word
        step = complete(gen, fim(PREFIX + typed))
        moved.append(step.prompt_tokens - step.reused_tokens < gen.count_tokens(SUFFIX) // 2)
    assert moved[0] and not all(moved)
    # Stale KV never outlives the limit: a refresh happened within the last MAX_STALE tokens.
    assert gen.count_tokens(typed) // MAX_STALE_TOKENS <= moved.count(False)


def test_a_cancel_still_moves_the_suffix_for_the_next_keystroke(tiny_gguf: Path) -> None:
    """Cancelled before its prefill, a request still joins the moved suffix (one short chunk)."""
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024)
    complete(gen, fim(PREFIX))
    reference = complete(gen, fim(PREFIX + "load"))  # moved, not cancelled
    complete(gen, fim(PREFIX))
    stopped = complete(gen, fim(PREFIX + "load"), cancel=True)
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens == 0
    again = complete(gen, fim(PREFIX + "load"))
    assert again.reused_tokens == again.prompt_tokens - 1  # all of it was kept
    assert again.text == reference.text


def test_a_cancelled_recompute_keeps_the_moved_suffix_until_one_completes(
    tiny_gguf: Path,
) -> None:
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024)
    paste = PREFIX + "loads(handle.read())  # " + "parse the whole file " * 8
    cold(gen, fim(paste), 1)
    reference = last_logits(gen)
    complete(gen, fim(PREFIX))
    # Over the staleness limit at once: the suffix is evaluated again, but the keystroke's
    # cancel stops that and the moved suffix stays in the cache.
    stopped = complete(gen, fim(paste), cancel=True)
    assert stopped.stop_reason == "cancelled"
    assert stopped.reused_tokens > gen.count_tokens(SUFFIX) - TAIL_REFRESH
    # The next request finds it too stale to serve from and evaluates it (all but the
    # refreshed start, evaluated last time for this very text): a cold run's logits.
    again = complete(gen, fim(paste), 1)
    assert again.prompt_tokens - again.reused_tokens >= gen.count_tokens(SUFFIX) - TAIL_REFRESH
    assert np.abs(last_logits(gen) - reference).max() < 0.05


def test_a_cancel_without_a_moved_tail_keeps_only_the_exact_prefix(tiny_gguf: Path) -> None:
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024, reuse_tail=False)
    reference = cold(gen, fim(PREFIX + "loads(handle.read())"))
    complete(gen, fim(PREFIX))
    stopped = complete(gen, fim(PREFIX + "loads(handle.read())"), cancel=True)
    assert stopped.stop_reason == "cancelled" and stopped.new_tokens == 0
    again = complete(gen, fim(PREFIX + "loads(handle.read())"))
    assert again.reused_tokens < again.prompt_tokens - gen.count_tokens(SUFFIX)
    assert again.text == reference.text


def test_an_adapter_applies_on_the_recreated_context(
    tiny_gguf: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The backend recreates llama.cpp's context (two sequences): the LoRA must follow it."""
    import torch
    from llama_cpp import Llama
    from peft import LoraConfig, get_peft_model
    from pilotfish.training.export import write_gguf_lora
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    peft = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
        LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"]),
    )
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a fresh adapter is a no-op
    adapter = tmp_path / "adapter"
    peft.save_pretrained(str(adapter))
    write_gguf_lora(adapter, adapter / "adapter.gguf", "qwen2")

    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=1024)
    complete(gen, fim(PREFIX), 1)
    base = last_logits(gen)
    gen.set_adapter(adapter)
    complete(gen, fim(PREFIX), 1)
    tuned = last_logits(gen)
    plain = Llama(
        model_path=str(tiny_gguf),
        n_ctx=1024,
        n_threads=1,
        logits_all=True,
        lora_path=str(adapter / "adapter.gguf"),
        verbose=False,
    )
    tokens = plain.tokenize(fim(PREFIX).encode(), add_bos=False, special=True)
    plain.eval(tokens)
    expected = np.array(plain.scores[len(tokens) - 1])
    assert np.abs(tuned - base).max() > 0.5  # the adapter moves the output...
    assert np.abs(tuned - expected).max() < 0.05  # ... as llama.cpp's own context applies it


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    """AMX (whose llama.cpp kernels crash on these models) is told by the flags line."""
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert cpu_has_amx(amx)
    assert not cpu_has_amx(plain)
    assert not cpu_has_amx(tmp_path / "missing")


def test_extra_buffers_follow_the_cpu_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTRA_BUFFERS_ENV, raising=False)
    assert extra_buffers_enabled() is (not cpu_has_amx())
    monkeypatch.setenv(EXTRA_BUFFERS_ENV, "0")
    assert extra_buffers_enabled() is False
    monkeypatch.setenv(EXTRA_BUFFERS_ENV, "1")
    assert extra_buffers_enabled() is True


def test_model_params_reach_the_load_and_are_restored_after() -> None:
    import llama_cpp.llama_cpp as lib

    default = lib.llama_model_default_params
    for wanted in (False, True):
        with model_params(extra_buffers=wanted):
            assert lib.llama_model_default_params().use_extra_bufts is wanted
        assert lib.llama_model_default_params is default
    with pytest.raises(RuntimeError), model_params(extra_buffers=False):
        raise RuntimeError("a failed load")
    assert lib.llama_model_default_params is default


def test_a_model_loaded_without_extra_buffers_gives_the_same_tokens(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load the server does on an AMX CPU (extra buffers off) generates as the default one."""
    logits = []
    for flag in ("0", "1"):  # f32 weights never go to AMX buffers: "1" is safe on any CPU here
        monkeypatch.setenv(EXTRA_BUFFERS_ENV, flag)
        gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=512)
        assert complete(gen, fim(PREFIX)).new_tokens > 0
        logits.append(last_logits(gen))
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-5)
