"""What a LoRA adapter costs llama.cpp on CPU: the served GGUF with and without ``adapter.gguf``.

    python benchmarks/lora_overhead.py [--pairs 2] [--threads 1] [--layers 4]

Builds a LoRA shaped like the CPU training path's (r 16, alpha 32, every projection of the top
``--layers`` layers, random B so that it is not a no-op), exports it with the project's own
``write_gguf_lora``, then times a prefill of the first 2,400 characters of ``textwrap.py`` and
32 greedy tokens, base and adapter alternating, in CPU time of the calling thread (with one
thread llama.cpp computes there), so other work on the machine does not count.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from pilotfish.lsp_server.engine.llamacpp_backend import open_llama
from pilotfish.lsp_server.models.pull import model_dir
from pilotfish.lsp_server.models.registry import DEFAULT_MODEL
from pilotfish.training.config import DEFAULT_TARGETS
from pilotfish.training.export import write_gguf_lora
from transformers import AutoModelForCausalLM


def build_adapter(model: Path, out: Path, layers: int) -> Path:
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
    n = base.config.num_hidden_layers
    config = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32,
                        target_modules=list(DEFAULT_TARGETS),
                        layers_to_transform=list(range(n - layers, n)), layers_pattern="layers")
    tuned = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    tuned.save_pretrained(str(out))
    write_gguf_lora(out, out / "adapter.gguf", "qwen2")
    return out / "adapter.gguf"


def timed(gguf: Path, lora: Path | None, text: str, threads: int) -> tuple[int, float, float]:
    llm = open_llama(gguf, n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                lora_path=str(lora) if lora else None, verbose=False)
    ids = llm.tokenize(text.encode(), add_bos=False)
    started = time.thread_time()
    llm.eval(ids)
    prefill = time.thread_time() - started
    started = time.thread_time()
    for n, _ in enumerate(llm.generate(ids, temp=0.0, top_k=1), start=1):
        if n >= 32:
            break
    return len(ids), prefill, time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    model = model_dir(DEFAULT_MODEL)
    lora = build_adapter(model, Path(tempfile.mkdtemp(prefix="lora-overhead-")), args.layers)
    text = Path(textwrap.__file__).read_text()[:2400]
    print("| run | prompt tokens | prefill CPU s | 32-token decode CPU s |\n|---|---|---|---|")
    for _ in range(args.pairs):
        for name, path in (("base", None), ("with the LoRA", lora)):
            n, prefill, decode = timed(model / "model.gguf", path, text, args.threads)
            print(f"| {name} | {n} | {prefill:.2f} | {decode:.2f} |", flush=True)


if __name__ == "__main__":
    main()
