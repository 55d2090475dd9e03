"""Backend comparison on CPU: the engine on llama.cpp and on transformers, same requests.

Run:  python benchmarks/engine_backends.py --module textwrap --line 305 --keystrokes 3

One cold request at a point of a stdlib module, then a few warm ones as the next characters
of that line are typed; each backend gets the same requests in the same order (alternating,
so both see the same load), with the same number of new tokens forced (no early stop).

With ``--suffix-study STATES`` it instead compares, on mid-file typing states of the latency
harness's trace (comma-separated keystroke indexes), the llama.cpp backend's exact output
(common prefix reused only) with its output when the KV of the text after the cursor is moved
from ``--stale`` keystrokes earlier (first 0 / 32 / 64 tokens evaluated again), and with
SPM order (suffix first) and a 64-token suffix, one line of greedy output each:
  python benchmarks/engine_backends.py --suffix-study 141,272,301,318,40,80,170,235

With ``--thread-pairs N``: N pairs of the same cold request (the first 2,400 characters of the
module as prefix, the next 800 as suffix, 16 tokens) on 1 and 2 llama.cpp threads,
alternating, with wall and CPU time (this process's, all threads) and the load average.
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
    parser.add_argument("--suffix-study", default="", help="keystroke indexes (see above)")
    parser.add_argument("--stale", type=int, default=8, help="keystrokes the moved KV is old")
    parser.add_argument("--thread-pairs", type=int, default=0, help="1 vs 2 threads (see above)")
    args = parser.parse_args()
    if args.thread_pairs:
        thread_pairs(args)
        return
    if args.suffix_study:
        suffix_study(args)
        return

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
    results: dict[str, list[dict[str, object]]] = {name: [] for name in backends}
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


def thread_pairs(args: argparse.Namespace) -> None:
    """1 vs 2 threads on the same cold prompt, alternating (A B, B A, ...)."""
    import os

    model = resolve_model("qwen2.5-coder-0.5b")
    assert model.gguf is not None
    source = Path(inspect.getfile(import_module(args.module))).read_text(encoding="utf-8")
    prompt = f"<|fim_prefix|>{source[:2400]}<|fim_suffix|>{source[2400:3200]}<|fim_middle|>"
    gens = {t: LlamaCppGenerator(model.gguf, model_id=model.name, threads=t) for t in (1, 2)}
    for i in range(args.thread_pairs):
        for threads in (1, 2) if i % 2 == 0 else (2, 1):
            gen = gens[threads]
            gen.reset()
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            out = gen.generate(
                GenerationRequest(prompt=prompt, max_tokens=16, stop=(), max_lines=0),
                threading.Event(),
            )
            row = {
                "threads": threads,
                "wall_s": round(time.perf_counter() - wall, 2),
                "cpu_s": round(time.process_time() - cpu, 2),
                "prefill_s": round(out.prefill_ms / 1000, 2),
                "decode_tok_s": round((out.new_tokens - 1) / max(out.decode_ms / 1000, 1e-9), 1),
                "prompt_tokens": out.prompt_tokens,
                "load1": round(load, 2),
            }
            print(json.dumps(row), flush=True)


def suffix_study(args: argparse.Namespace) -> None:
    """Outputs with the suffix's KV moved vs exact, on mid-file states of the latency trace."""
    import sys

    from pilotfish.lsp_server.engine.engine import CompletionEngine, Pending
    from pilotfish.lsp_server.engine.prompt import keep_head
    from pilotfish.lsp_server.settings import CompletionSettings

    sys.path.insert(0, str(Path(__file__).parent))
    from latency import build_trace

    model = resolve_model("qwen2.5-coder-0.5b")
    assert model.gguf is not None
    gen = LlamaCppGenerator(model.gguf, model_id=model.name, threads=args.threads or 2)
    settings = CompletionSettings(retrieval_tokens=0, skip_inside_word=False)
    engine = CompletionEngine(gen, settings, cache_size=0)
    source = Path(inspect.getfile(import_module(args.module))).read_text(encoding="utf-8")
    start, count = 300, 9  # the block of `benchmarks/latency.py --start-line 300 --lines 9`
    _, edits, _ = build_trace(source, start, count, 0, 1.0)
    prompts = []
    for text, line, column, _ in edits:
        request = CompletionRequest(
            text=text, line=line, column=column, path="textwrap.py", document_key="d"
        )
        pending = engine.prepare(request)
        assert isinstance(pending, Pending)
        prompts.append(pending.prompt)
    t = engine.template

    def run(text: str, *, tail: bool = True, refresh: int = 0, cold: bool = False) -> dict:
        if cold:
            gen.reset()
        # Study knobs: the generator's reuse settings, switched per run.
        gen._reuse_tail, gen._tail_refresh = tail, refresh
        c0 = time.process_time()
        out = gen.generate(
            GenerationRequest(prompt=text, max_tokens=24, stop=t.stop, max_lines=1),
            threading.Event(),
        )
        lines = [line for line in out.text.split("\n") if line.strip()]
        return {
            "text": lines[0] if lines else "",
            "prefill_ms": round(out.prefill_ms),
            "cpu_s": round(time.process_time() - c0, 2),
            "prompt": out.prompt_tokens,
            "reused": out.reused_tokens,
        }

    rows = []
    for k in [int(x) for x in args.suffix_study.split(",")]:
        p = prompts[k]
        row: dict = {"k": k}
        for refresh in (0, 32, 64):
            # The cache as it was `stale` keystrokes ago (exact), then this state moved onto it.
            run(prompts[k - args.stale].text, tail=False, cold=True)
            row[f"moved_refresh{refresh}"] = run(p.text, refresh=refresh)
        run(prompts[k - 1].text, tail=False, cold=True)
        row["exact"] = run(p.text, tail=False)
        row["spm"] = run(f"{t.suffix}{p.suffix}{t.prefix}{p.prefix}{t.middle}", cold=True)
        short = keep_head(p.suffix, 64, gen.count_tokens)
        row["suffix64"] = run(f"{t.prefix}{p.prefix}{t.suffix}{short}{t.middle}", cold=True)
        rows.append(row)
        print(json.dumps(row), flush=True)
    same = {
        name: sum(r[name]["text"] == r["exact"]["text"] for r in rows)
        for name in rows[0]
        if name not in ("k", "exact")
    }
    print(json.dumps({"states": len(rows), "same_text_as_exact": same}))


if __name__ == "__main__":
    main()
