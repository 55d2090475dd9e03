"""Serving speed of the transformers backend with the exact Qwen2.5-Coder shapes, random weights.

    python benchmarks/gpu_engine.py --size 1.5b --tokenizer DIR [--prompt-tokens 2000] [--runs 5]

Real weights cannot travel to a lent GPU machine and speed does not depend on them: the model
is built from the published shapes (``train_speed.SIZES``), saved once, and served through
``TransformersGenerator`` exactly as the server does, with the real Qwen tokenizer (``DIR``
holds ``tokenizer.json`` and ``tokenizer_config.json``, e.g. a copy of the pulled model's).
Two configurations side by side, alternating: the CUDA default (static KV cache, decode step
captured as CUDA graphs) and the named baseline, a dynamic cache with eager decode. For each:
a cold request (whole prompt + 16 new tokens: the end-to-end latency of a single-line
suggestion), a warm request (the same prompt with a few characters typed: prefix reuse), and
decode throughput (256 new tokens). Prints one JSON line per configuration.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from train_speed import SIZES

if TYPE_CHECKING:
    from pilotfish.lsp_server.engine.hf_backend import TransformersGenerator


def _prompt(tokens: int, count: Callable[[str], int]) -> str:
    """A FIM prompt of about ``tokens`` tokens of Python-looking text."""
    body, i = [], 0
    while count("".join(body)) < tokens:
        body.append("".join(f"    value_{i}_{j} = compute(value_{i}, {j})\n" for j in range(8)))
        i += 1
    return f"<|fim_prefix|>def build():\n{''.join(body)}    return<|fim_suffix|>\n<|fim_middle|>"


def measure(generator: TransformersGenerator, prompt: str, runs: int) -> dict[str, float]:
    from pilotfish.lsp_server.engine.generate import GenerationRequest

    def once(text: str, new: int, cold: bool) -> tuple[float, float]:
        if cold:
            generator.reset()
        started = time.perf_counter()
        result = generator.generate(
            GenerationRequest(prompt=text, max_tokens=new, stop=(), max_lines=0),
            threading.Event(),
        )
        total = (time.perf_counter() - started) * 1000
        return total, result.new_tokens / max(result.decode_ms / 1000, 1e-9)

    once(prompt, 16, cold=True)  # warm-up: CUDA graphs are captured on the first decode steps
    cold = [once(prompt, 16, cold=True)[0] for _ in range(runs)]
    warm = []
    for i in range(runs):
        once(prompt, 16, cold=False)
        warm.append(once(prompt.replace("return<|fim", f"return v{i}<|fim"), 16, cold=False)[0])
    speed = [once(prompt, 256, cold=True)[1] for _ in range(max(2, runs // 2))]
    return {
        "cold_p50_ms": round(statistics.median(cold), 1),
        "cold_max_ms": round(max(cold), 1),
        "warm_p50_ms": round(statistics.median(warm), 1),
        "decode_tok_s": round(statistics.median(speed), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="1.5b")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--prompt-tokens", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import torch
    from pilotfish.lsp_server.engine.hf_backend import TransformersGenerator
    from transformers import Qwen2Config, Qwen2ForCausalLM

    work = Path(tempfile.mkdtemp(prefix="gpu-engine-"))
    try:
        config = Qwen2Config(vocab_size=151936, max_position_embeddings=32768,
                             rope_theta=1_000_000.0, **SIZES[args.size])
        torch.manual_seed(0)
        Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(work, safe_serialization=True)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(args.tokenizer / name, work / name)
        configs = {
            "static+graphs": {},
            "dynamic+eager (baseline)": {"static_cache": False, "compile_decode": False},
        }
        for name, options in configs.items():
            generator = TransformersGenerator(work, model_id=f"random-{args.size}",
                                              device=args.device, int8=False, **options)
            prompt = _prompt(args.prompt_tokens, generator.count_tokens)
            row = {"config": name, "size": args.size, "device": generator.device,
                   "prompt_tokens": generator.count_tokens(prompt),
                   **measure(generator, prompt, args.runs)}
            if generator.device == "cuda":
                row["gpu"] = torch.cuda.get_device_name()
                row["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            print(json.dumps(row), flush=True)
            del generator
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
