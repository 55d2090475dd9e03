"""A tiny random Qwen2 model with an offline byte-level BPE tokenizer, for plumbing tests.

Shared by the engine and training tests (``from tiny_model import build_tiny_model``; pytest puts
``tests/`` on the path through its conftest).
"""

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


def build_tiny_model(
    folder: Path,
    *,
    seed: int = 0,
    corpus: str | None = None,
    hidden_size: int = 64,
    layers: int = 2,
    initializer_range: float = 0.6,
    tie_word_embeddings: bool = True,
) -> Path:
    """Write a tokenizer and a small Qwen2 model with random weights into ``folder``.

    ``corpus`` trains the tokenizer (default: the source of a stdlib module, realistic Python).
    A wide ``initializer_range`` gives varied greedy output rather than one token repeated, and
    logits strong enough for a LoRA to move them in a few steps.
    """
    import json as corpus_module

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    if corpus is None:
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
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    fast.add_special_tokens({"additional_special_tokens": list(FIM_TOKENS[1:])})
    fast.save_pretrained(str(folder))

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=initializer_range,
        tie_word_embeddings=tie_word_embeddings,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "built-by.json").write_text(json.dumps({"seed": seed}), encoding="utf-8")
    return folder
