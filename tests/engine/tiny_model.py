"""A tiny random Qwen2 model with an offline byte-level BPE tokenizer, for plumbing tests."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

FIM_TOKENS = (
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|file_sep|>",
    "<|repo_name|>",
    "<|im_end|>",
)


def build_tiny_model(folder: Path, *, seed: int = 0) -> Path:
    """Write a tokenizer and a 2-layer Qwen2 model with random weights into ``folder``."""
    import json as corpus_module  # any stdlib module's source is realistic Python text

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    corpus = Path(inspect.getfile(corpus_module)).read_text(encoding="utf-8")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=list(FIM_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus.splitlines(keepends=True), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    fast.add_special_tokens({"additional_special_tokens": list(FIM_TOKENS[1:])})
    fast.save_pretrained(str(folder))

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.6,  # wide weights give varied greedy output, not one token repeated
        tie_word_embeddings=True,
        eos_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "built-by.json").write_text(json.dumps({"seed": seed}), encoding="utf-8")
    return folder
