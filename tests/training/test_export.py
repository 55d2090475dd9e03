from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pilotfish.training.export import write_gguf_lora

MODEL = Path.home() / ".local/share/pilotfish/models/qwen2.5-coder-0.5b"


def _peft_adapter(model_dir: Path, out: Path, *, layers: list[int] | None, scale: float) -> Path:
    """A LoRA adapter with non-zero B (a fresh one is a no-op), saved in PEFT format."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "down_proj"],
        layers_to_transform=layers,
        layers_pattern="layers" if layers else None,
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, scale)
    model.save_pretrained(str(out))
    return out


def test_gguf_lora_has_llamacpp_names_shapes_and_alpha(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import gguf

    peft_dir = _peft_adapter(tiny_model_dir, tmp_path / "a", layers=[2, 3], scale=0.1)
    pairs = write_gguf_lora(peft_dir, tmp_path / "adapter.gguf", "qwen2")
    assert pairs == 2 * 3
    reader = gguf.GGUFReader(str(tmp_path / "adapter.gguf"))
    fields = {k: reader.fields[k] for k in ("general.type", "adapter.type", "adapter.lora.alpha")}
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 16.0
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {
        f"blk.{i}.{m}.weight.lora_{ab}"
        for i in (2, 3)
        for m in ("attn_q", "attn_v", "ffn_down")
        for ab in "ab"
    }
    # ggml lists dimensions innermost first: A is (r x in) -> [in, r]; B (out x r) -> [r, out].
    assert list(tensors["blk.2.attn_q.weight.lora_a"].shape) == [32, 8]
    assert list(tensors["blk.2.ffn_down.weight.lora_a"].shape) == [64, 8]
    assert list(tensors["blk.2.ffn_down.weight.lora_b"].shape) == [8, 32]


@pytest.mark.model
@pytest.mark.skipif(not (MODEL / "model.gguf").is_file(), reason="needs the pulled 0.5B model")
def test_gguf_lora_changes_llamacpp_as_peft_changes_transformers(tmp_path: Path) -> None:
    """Same prompt, same adapter: the logit shift under llama.cpp follows the one under peft."""
    from peft import PeftModel
    from pilotfish.lsp_server.engine.llamacpp_backend import open_llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    peft_dir = _peft_adapter(MODEL, tmp_path / "a", layers=None, scale=0.02)
    write_gguf_lora(peft_dir, peft_dir / "adapter.gguf", "qwen2")
    prompt = "<|fim_prefix|>def fibonacci(n):\n    <|fim_suffix|>\n<|fim_middle|>"
    tok = AutoTokenizer.from_pretrained(str(MODEL))
    ids = tok.encode(prompt, add_special_tokens=False)

    base = AutoModelForCausalLM.from_pretrained(str(MODEL), dtype=torch.float32).eval()
    with torch.no_grad():
        hf_base = base(torch.tensor([ids])).logits[0, -1].numpy().copy()
        tuned = PeftModel.from_pretrained(base, str(peft_dir)).eval()
        hf_tuned = tuned(torch.tensor([ids])).logits[0, -1].numpy().copy()
    del base, tuned

    def llama_logits(lora: Path | None) -> np.ndarray:
        llm = open_llama(
            MODEL / "model.gguf",
            n_ctx=256,
            n_threads=2,
            logits_all=True,
            lora_path=str(lora) if lora else None,
            verbose=False,
        )
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        assert tokens == ids
        llm.eval(tokens)
        return np.array(llm.scores[len(tokens) - 1], dtype=np.float64)

    lc_base = llama_logits(None)
    lc_tuned = llama_logits(peft_dir / "adapter.gguf")
    d_hf, d_lc = hf_tuned - hf_base, lc_tuned - lc_base
    assert np.abs(d_hf).max() > 1.0  # the adapter really moves the output
    cosine = float(d_hf @ d_lc / (np.linalg.norm(d_hf) * np.linalg.norm(d_lc)))
    assert cosine > 0.8, cosine
    # The most promoted tokens agree.
    top_hf = set(np.argsort(-d_hf)[:20])
    top_lc = set(np.argsort(-d_lc)[:20])
    assert len(top_hf & top_lc) >= 10
