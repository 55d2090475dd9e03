"""Backend comparison on CPU: the engine on llama.cpp and on transformers, same requests.

Run:  python benchmarks/engine_backends.py --module textwrap --line 305 --keystrokes 3

One cold request at a point of a stdlib module, then a few warm ones as the next characters
of that line are typed; each backend gets the same requests in the same order (alternating,
so both see the same load), with the same number of new tokens forced (no early stop).
"""

from __future__ import annotations

import argparse
import inspect
import json
import threading
import time
from importlib import import_module
from pathlib import Path

from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.generate import GenerationRequest
from pilotfish.lsp_server.engine.llamacpp_backend import LlamaCppGenerator, default_threads
from pilotfish.lsp_server.engine.prompt import PromptBudget, build_prompt
from pilotfish.lsp_server.engine.templates import TEMPLATES
from pilotfish.lsp_server.models.resolve import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", default="textwrap")
    parser.add_argument("--line", type=int, default=305, help="0-based line typed")
    parser.add_argument("--keystrokes", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--context-tokens", type=int, default=1536)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    from pilotfish.lsp_server.engine.context import build_context
    from pilotfish.lsp_server.engine.hf_backend import TransformersGenerator

    source = Path(inspect.getfile(import_module(args.module))).read_text(encoding="utf-8")
    lines = source.split("\n")
    target = lines[args.line]
    indent = len(target) - len(target.lstrip())
    model = resolve_model("qwen2.5-coder-0.5b")
    assert model.gguf is not None and model.folder is not None
    threads = args.threads or default_threads()
    backends = {
        "llamacpp": LlamaCppGenerator(model.gguf, model_id=model.name, threads=threads),
        "transformers-int8": TransformersGenerator(
            model.folder, model_id=model.name, device="cpu", threads=threads
        ),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in backends}
    for step in range(args.keystrokes + 1):
        column = indent + 4 + step
        request = CompletionRequest(
            text=source, line=args.line, column=column, path=f"{args.module}.py"
        )
        ctx = build_context(request)
        for name, generator in backends.items():
            prompt = build_prompt(
                ctx,
                TEMPLATES["qwen2.5-coder"],
                generator.count_tokens,
                PromptBudget(infile_tokens=args.context_tokens, retrieval_tokens=0),
            )
            started = time.perf_counter()
            out = generator.generate(
                GenerationRequest(
                    prompt=prompt.text, max_tokens=args.new_tokens, stop=(), max_lines=0
                ),
                threading.Event(),
            )
            results[name].append(
                {
                    "kind": "cold" if step == 0 else "warm",
                    "total_ms": round((time.perf_counter() - started) * 1000, 1),
                    "prefill_ms": round(out.prefill_ms, 1),
                    "decode_tok_s": round(
                        (out.new_tokens - 1) / max(out.decode_ms / 1000, 1e-9), 1
                    ),
                    "prompt_tokens": out.prompt_tokens,
                    "reused": out.reused_tokens,
                    "new_tokens": out.new_tokens,
                }
            )
            print(name, results[name][-1], flush=True)
    print(json.dumps({"threads": threads, "results": results}, indent=1))


if __name__ == "__main__":
    main()
