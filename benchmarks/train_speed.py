"""LoRA training speed and peak memory with the exact Qwen2.5-Coder shapes, random weights.

    python benchmarks/train_speed.py --size 0.5b --steps 20 --device cuda

Real weights cannot travel to the lent GPU machine, and speed does not depend on them: the
model is built from the published config (same shapes, same cost per token), saved with a
byte-level tokenizer-free setup, and trained through ``pilotfish.training.train.train`` on
synthetic sequences shaped like served prompts (about 1,900 prompt tokens, a short middle).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
    "1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=1900)
    parser.add_argument("--middle-tokens", type=int, default=40)
    parser.add_argument("--top-layers", type=int, default=-1)
    args = parser.parse_args()

    import torch
    from pilotfish.training.config import TrainConfig
    from pilotfish.training.dataset import Tokenised
    from pilotfish.training.train import train
    from transformers import Qwen2Config, Qwen2ForCausalLM

    work = Path(tempfile.mkdtemp(prefix="train-speed-"))
    config = Qwen2Config(
        vocab_size=151936, max_position_embeddings=32768, rope_theta=1_000_000.0, **SIZES[args.size]
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(work / "model", safe_serialization=True)
    rng = random.Random(0)
    items = []
    for _ in range(args.batch_size * args.grad_accum * (args.steps + 1)):
        n_prompt = args.prompt_tokens + rng.randint(-200, 0)
        ids = tuple(rng.randrange(151000) for _ in range(n_prompt + args.middle_tokens))
        items.append(Tokenised(ids=ids, prompt_len=n_prompt, weight=1.0))
    cfg = TrainConfig(
        device=args.device,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_steps=args.steps,
        epochs=100,
        eval_every=10**9,
        top_layers=args.top_layers,
    )
    started = time.monotonic()
    result = train(cfg, work / "model", items, [], work / "run", pad_id=0, report=lambda e: None)
    out = {
        "size": args.size,
        "device": result.device,
        "gpu": torch.cuda.get_device_name() if result.device == "cuda" else None,
        "steps": result.steps,
        "tokens": result.tokens,
        "train_seconds": round(result.seconds, 1),
        "tokens_per_second": round(result.tokens_per_second, 1),
        "peak_memory_mb": round(result.peak_memory_mb, 0) if result.peak_memory_mb else None,
        "wall_seconds": round(time.monotonic() - started, 1),
        "examples_10k_minutes": round(
            10_000
            * (args.prompt_tokens + args.middle_tokens)
            / max(result.tokens_per_second, 1e-9)
            / 60,
            1,
        ),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
