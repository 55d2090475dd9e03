"""Latency benchmark: a real stdlib module typed into the real server over LSP, llama.cpp beside it.

Run:  python benchmarks/latency.py --module textwrap --start-line 120 --lines 12
      python benchmarks/latency.py --repo DIR --file REL --start-line 120 --lines 12 \
          [--retrieval-tokens 0]

With ``--repo`` the block is typed into a file of a copy of that repository, with the index on
(no embeddings: the default 0.5B is served similar code, which needs none) and retrieval as
served (``--retrieval-tokens 0`` turns it off: the side-by-side baseline); the server indexes
the copy before typing starts, and the report says how often the snippets shown changed from
one model run to the next (each change puts new text at the top of the prompt).

1. Starts ``pilotfish serve`` and opens a copy of the module with a block of lines removed.
2. Types that block back at human speed (seeded gaps, longer after spaces and newlines, the
   editor's auto-indent inserted at once), sending ``didChange`` + ``inlineCompletion`` per
   keystroke and ``$/cancelRequest`` for the request a keystroke supersedes, as VS Code does.
3. Reports end-to-end p50/p95 of answered requests, per-stage medians of model-served ones,
   the engine's counts (model runs, cache and typing-through hit rates), tokens/s, peak RSS.
4. Replays the states the server sent to the model in this process, side by side: the pilotfish
   engine (llama.cpp backend, moving the KV of the text after the cursor), the same engine
   reusing only the common prefix (exact), and plain llama-cpp-python (``Llama.generate`` on
   the same prompt for the same number of tokens), warm (consecutive, each with its own KV
   cache) and cold (caches reset); prints their ratios and how often the outputs agree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from engine_lsp_client import LspClient, Sent

MODEL = "qwen2.5-coder-0.5b"


@dataclass
class Keystroke:
    """One edit of the trace and the completion request that followed it."""

    index: int
    text: str
    line: int
    column: int
    typed: str
    sent: Sent | None = None
    result: Any = None
    explain: dict[str, Any] | None = None


@dataclass
class Trace:
    """The document before typing, and the edits that type the block back."""

    path: Path
    initial: str
    keystrokes: list[Keystroke] = field(default_factory=list)
    gaps_s: list[float] = field(default_factory=list)


def build_trace(
    source: str, start: int, count: int, seed: int, speed: float, append: bool = False
) -> tuple[str, list[tuple[str, int, int, str]], list[float]]:
    """The initial text, the edits (text, line, column, typed) and the gaps before each."""
    lines = source.split("\n")
    block = "\n".join(lines[start : start + count]) + "\n"
    before = "\n".join(lines[:start]) + "\n"
    after = "" if append else "\n".join(lines[start + count :])
    rng = random.Random(seed)
    edits: list[tuple[str, int, int, str]] = []
    gaps: list[float] = []
    typed = ""
    i = 0
    while i < len(block):
        ch = block[i]
        piece = ch
        if ch == "\n":
            # The editor's auto-indent: the next line's indentation arrives with the newline.
            j = i + 1
            while j < len(block) and block[j] in " \t":
                j += 1
            piece = block[i:j]
        prev = typed[-1:] if typed else "\n"
        gap = rng.lognormvariate(-2.05, 0.35)  # about 130 ms within a word
        if prev in " ,.(":
            gap += 0.06
        if prev == "\n" or typed.endswith(" " * 4):
            gap += 0.45 + (1.5 if rng.random() < 0.15 else 0.0)
        typed += piece
        i += len(piece)
        text = before + typed + after
        head = before + typed
        line = head.count("\n")
        column = len(head) - (head.rfind("\n") + 1)
        edits.append((text, line, column, piece))
        gaps.append(gap / speed)
    return before + after, edits, gaps


def utf16_column(text: str, line: int, column: int) -> int:
    """LSP positions count UTF-16 code units."""
    row = text.split("\n")[line][:column]
    return len(row.encode("utf-16-le")) // 2


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def drive_server(
    args: argparse.Namespace, trace: Trace, edits: list[tuple[str, int, int, str]]
) -> dict[str, Any]:
    """Type the trace into the server and collect what it answered."""
    log = open(args.workdir / "server.log", "w")  # noqa: SIM115
    client = await LspClient.start(
        [sys.executable, "-m", "pilotfish.lsp_server", "serve", "--log-level", "INFO"], stderr=log
    )
    options = {
        "model": {"name": args.model, "backend": args.backend, "threads": args.threads},
        "index": {"enable": args.repo is not None, "embeddings": False},
        "dataDir": str(args.workdir / "data"),
        "completion": {
            "contextTokens": args.context_tokens,
            "retrievalTokens": args.retrieval_tokens,
            "debounceMs": args.debounce_ms,
            "debounceMaxMs": args.debounce_max_ms,
        },
    }
    root = (args.workdir / "repo" if args.repo else trace.path.parent).as_uri()
    await client.call(
        "initialize",
        {
            "processId": os.getpid(),
            "rootUri": root,
            "capabilities": {"window": {"workDoneProgress": True}},
            "initializationOptions": options,
        },
    )
    client.notify("initialized", {})
    uri = trace.path.as_uri()
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": trace.initial}},
    )
    load_started = time.perf_counter()
    while True:
        status = await client.call(
            "workspace/executeCommand", {"command": "pilotfish.status", "arguments": []}
        )
        if status.get("loaded"):
            break
        if status.get("error"):
            raise SystemExit(f"server could not load the model: {status['error']}")
        await asyncio.sleep(0.2)
    load_s = time.perf_counter() - load_started
    index_s = 0.0
    if args.repo is not None:  # type into an indexed repository, as a user would
        index_started = time.perf_counter()
        while not (status.get("index") or {}).get("ready"):
            if (status.get("index") or {}).get("error"):
                raise SystemExit(f"the index failed: {status['index']['error']}")
            await asyncio.sleep(0.5)
            status = await client.call(
                "workspace/executeCommand", {"command": "pilotfish.status", "arguments": []}
            )
        index_s = time.perf_counter() - index_started

    # Warm-up: the first completion at the cursor, as when the file is opened and the cursor
    # placed; it pays the cold prefill and is reported on its own.
    warm_started = time.perf_counter()
    await client.call(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": args.start_line, "character": 0},
            "context": {"triggerKind": 1},
        },
    )
    first_ms = (time.perf_counter() - warm_started) * 1000

    explains: list[asyncio.Task[None]] = []

    async def explain(k: Keystroke) -> None:
        assert k.sent is not None
        try:
            k.result = await k.sent.done
        except asyncio.CancelledError:
            return
        items = (k.result or {}).get("items") or [] if isinstance(k.result, dict) else []
        if items and items[0].get("command"):
            cid = items[0]["command"]["arguments"][0]["id"]
            k.explain = await client.call(
                "workspace/executeCommand",
                {"command": "pilotfish.explainCompletion", "arguments": [{"id": cid}]},
            )

    version = 1
    started = time.perf_counter()
    for index, ((text, line, column, piece), gap) in enumerate(
        zip(edits, trace.gaps_s, strict=True)
    ):
        await asyncio.sleep(gap)
        for k in trace.keystrokes[-3:]:
            if k.sent is not None:
                client.cancel(k.sent)
        version += 1
        client.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
        )
        k = Keystroke(index, text, line, column, piece)
        k.sent = client.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": utf16_column(text, line, column)},
                "context": {"triggerKind": 2},
            },
        )
        trace.keystrokes.append(k)
        explains.append(asyncio.create_task(explain(k)))
    typing_s = time.perf_counter() - started
    # Requests cancelled by the editor may never be answered (LSP allows either).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*explains, return_exceptions=True), 120)
    status = await client.call(
        "workspace/executeCommand", {"command": "pilotfish.status", "arguments": []}
    )
    rss = peak_rss_mb(client.process.pid)
    await client.stop()
    log.close()
    return {
        "status": status,
        "peak_rss_mb": rss,
        "load_s": round(load_s, 1),
        "index_s": round(index_s, 1),
        "typing_s": round(typing_s, 1),
        "first_request_ms": round(first_ms, 1),
    }


def summarize_lsp(trace: Trace, server: dict[str, Any]) -> dict[str, Any]:
    """Percentiles of what the editor saw, and per-stage medians of model-served requests."""
    answered = [k for k in trace.keystrokes if k.sent and k.sent.answered and not k.sent.error]
    cancelled = [k for k in trace.keystrokes if k.sent and (k.sent.cancelled or k.sent.error)]
    lat = [(k.sent.answered - k.sent.sent) * 1000 for k in answered if k.sent and k.sent.answered]
    by_source: dict[str, list[float]] = {}
    stages: dict[str, list[float]] = {}
    tokens_per_s: list[float] = []
    prompt_tokens: list[float] = []
    reused_tokens: list[float] = []
    snippet_sets: list[tuple[str, ...]] = []
    for k in answered:
        assert k.sent is not None and k.sent.answered is not None
        source = (k.explain or {}).get("source", "empty")
        by_source.setdefault(source, []).append((k.sent.answered - k.sent.sent) * 1000)
        if k.explain and source == "model":
            for stage, ms in k.explain["timings"].items():
                stages.setdefault(stage, []).append(ms)
            prompt_tokens.append(k.explain["prompt_tokens"])
            snippet_sets.append(tuple(
                f"{x['path']}:{x['start_line']}-{x['end_line']}"
                for x in k.explain.get("snippets", [])))
            reused_tokens.append(k.explain["reused_tokens"])
            decode = k.explain["timings"].get("decode", 0)
            if decode > 0 and k.explain["new_tokens"] > 1:
                tokens_per_s.append((k.explain["new_tokens"] - 1) / (decode / 1000))
    completions = server["status"].get("completions", {})
    return {
        "keystrokes": len(trace.keystrokes),
        "answered": len(answered),
        "cancelled_by_editor": len(cancelled),
        "e2e_p50_ms": pct(lat, 0.5),
        "e2e_p95_ms": pct(lat, 0.95),
        "by_source": {
            s: {"n": len(v), "p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95)}
            for s, v in by_source.items()
        },
        "stages_p50_ms": {s: pct(v, 0.5) for s, v in stages.items()},
        "stages_p95_ms": {s: pct(v, 0.95) for s, v in stages.items()},
        "decode_tokens_per_s_p50": pct(tokens_per_s, 0.5),
        "model_prompt_tokens_p50": pct(prompt_tokens, 0.5),
        "model_reused_tokens_p50": pct(reused_tokens, 0.5),
        # How often the model was shown snippets, and shown other ones than the run before.
        "model_runs_with_snippets": sum(1 for x in snippet_sets if x),
        "snippets_changed": sum(1 for a, b in itertools.pairwise(snippet_sets) if a != b),
        "engine": completions,
        "peak_rss_mb": server["peak_rss_mb"],
        "load_s": server["load_s"],
        "index_s": server["index_s"],
        "first_request_ms": server["first_request_ms"],
        "typing_s": server["typing_s"],
    }


def plain_generate(llm: Any, prompt: str, n: int) -> tuple[float, float]:
    """Plain llama-cpp-python: greedy ``generate`` of ``n`` tokens; (total ms, first-token ms).

    The cached prefix is set up as llama.cpp's own server does (common prefix, last prompt
    token evaluated again): ``Llama.generate``'s own prefix matching trips its
    ``assert self.n_tokens > 0`` on some consecutive prompts in 0.3.36.
    """
    start = time.perf_counter()
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    cached = list(llm._input_ids)
    same = 0
    while same < min(len(cached), len(ids)) and cached[same] == ids[same]:
        same += 1
    llm.n_tokens = min(same, len(ids) - 1)
    first = start
    tokens = llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
    for count, _ in enumerate(tokens, start=1):
        if count == 1:
            first = time.perf_counter()
        if count >= n:
            break
    end = time.perf_counter()
    return (end - start) * 1000, (first - start) * 1000


def side_by_side(args: argparse.Namespace, trace: Trace) -> dict[str, Any]:
    """Replay the model-served states through the engine and plain llama.cpp, interleaved.

    Two engines run each state: the default one, which moves the KV of the text after the
    cursor instead of evaluating it again, and one that reuses only the common prefix (as
    before; its output is exact); their outputs are compared state by state.
    """
    from pilotfish.lsp_server.engine.context import CompletionRequest
    from pilotfish.lsp_server.engine.engine import CompletionEngine
    from pilotfish.lsp_server.engine.llamacpp_backend import (
        LlamaCppGenerator,
        default_threads,
        open_llama,
    )
    from pilotfish.lsp_server.models.resolve import resolve_model
    from pilotfish.lsp_server.settings import CompletionSettings

    gguf = resolve_model(args.model).gguf
    assert gguf is not None
    threads = args.threads or default_threads()  # what the server used
    generators = {
        "engine": LlamaCppGenerator(gguf, model_id=args.model, threads=threads),
        "prefix_only": LlamaCppGenerator(
            gguf, model_id=args.model, threads=threads, reuse_tail=False
        ),
    }
    settings = CompletionSettings(retrieval_tokens=0, context_tokens=args.context_tokens)
    plain = open_llama(
        gguf, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    # The states an editor shows a suggestion for: keystrokes followed by a pause.
    pauses = [
        k for k, gap in zip(trace.keystrokes, [*trace.gaps_s[1:], 9.9], strict=True) if gap > 0.4
    ]
    states = pauses[: args.replay]

    def request(k: Keystroke) -> CompletionRequest:
        return CompletionRequest(
            text=k.text, line=k.line, column=k.column, path=str(trace.path), document_key="bench"
        )

    def run(engines: dict[str, CompletionEngine], k: Keystroke, cold: bool) -> dict[str, Any]:
        if cold:
            for generator in generators.values():
                generator.reset()
            plain.reset()
        row: dict[str, Any] = {}
        new_tokens = 1
        for name, engine in engines.items():
            # Each state is a model run here: forget the suggestion shown for the previous
            # state, which the user may have typed through (the KV cache stays warm).
            engine._shown.clear()
            t = time.perf_counter()
            c0 = time.process_time()
            c = engine.complete(request(k), threading.Event())
            if c.source != "model":
                return {}  # typed through a suggestion of an earlier state: no model call
            new_tokens = max(new_tokens, c.new_tokens)
            row[name] = {
                "ms": (time.perf_counter() - t) * 1000,
                "cpu_s": time.process_time() - c0,
                "prefill_ms": c.timings.get("prefill", 0.0),
                "prompt_tokens": c.prompt_tokens,
                "reused": c.reused_tokens,
                "new_tokens": c.new_tokens,
                "text": c.text,
                "prompt": c.prompt,
                "overhead_ms": c.timings["total"]
                - c.timings.get("prefill", 0)
                - c.timings.get("decode", 0),
            }
        plain_ms, plain_first = plain_generate(plain, row["engine"]["prompt"], new_tokens)
        row["plain"] = {"ms": plain_ms, "prefill_ms": plain_first}
        return row

    def engines() -> dict[str, CompletionEngine]:
        return {
            name: CompletionEngine(generator, settings, cache_size=0)
            for name, generator in generators.items()
        }

    warm_engines = engines()
    warm = [r for k in states if (r := run(warm_engines, k, cold=False))]
    cold_rows = [r for k in states[: args.cold] if (r := run(engines(), k, cold=True))]

    def block(rows: list[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            return {}
        out: dict[str, Any] = {"n": len(rows)}
        p = [r["plain"]["ms"] for r in rows]
        out["plain_p50_ms"] = pct(p, 0.5)
        out["plain_p95_ms"] = pct(p, 0.95)
        for name in generators:
            e = [r[name]["ms"] for r in rows]
            out[name] = {
                "p50_ms": pct(e, 0.5),
                "p95_ms": pct(e, 0.95),
                "cpu_s_p50": pct([r[name]["cpu_s"] for r in rows], 0.5),
                "prefill_p50_ms": pct([r[name]["prefill_ms"] for r in rows], 0.5),
                "prefill_p95_ms": pct([r[name]["prefill_ms"] for r in rows], 0.95),
                "ratio_to_plain_of_medians": round(statistics.median(e) / statistics.median(p), 3),
                "median_pair_ratio_to_plain": round(
                    statistics.median(a / b for a, b in zip(e, p, strict=True)), 3
                ),
                "overhead_p50_ms": pct([r[name]["overhead_ms"] for r in rows], 0.5),
                "prompt_tokens_p50": pct([r[name]["prompt_tokens"] for r in rows], 0.5),
                "reused_tokens_p50": pct([r[name]["reused"] for r in rows], 0.5),
                "new_tokens_p50": pct([r[name]["new_tokens"] for r in rows], 0.5),
            }
        out["median_pair_ratio_engine_to_prefix_only"] = round(
            statistics.median(r["engine"]["ms"] / r["prefix_only"]["ms"] for r in rows), 3
        )
        out["same_text_as_prefix_only"] = sum(
            r["engine"]["text"] == r["prefix_only"]["text"] for r in rows
        )
        out["texts"] = [[r["engine"]["text"], r["prefix_only"]["text"]] for r in rows]
        return out

    return {"threads": threads, "warm": block(warm), "cold": block(cold_rows)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--module", default="textwrap", help="stdlib module whose source is typed")
    parser.add_argument(
        "--start-line", type=int, default=120, help="0-based first line of the typed block"
    )
    parser.add_argument("--lines", type=int, default=12, help="lines typed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--speed", type=float, default=1.0, help="typing speed factor (2 = twice as fast)"
    )
    parser.add_argument(
        "--append", action="store_true", help="type at the end of the file (no text after)"
    )
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--backend", default="llamacpp")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--context-tokens", type=int, default=1536)
    parser.add_argument("--repo", type=Path, default=None,
                        help="type into a file of (a copy of) this repository, index on")
    parser.add_argument("--file", default=None, help="with --repo: the file typed, relative")
    parser.add_argument("--retrieval-tokens", type=int, default=None,
                        help="default: 384 with --repo (as served), else 0")
    parser.add_argument("--debounce-ms", type=int, default=60)
    parser.add_argument("--debounce-max-ms", type=int, default=200)
    parser.add_argument("--replay", type=int, default=40, help="model-served states replayed warm")
    parser.add_argument("--cold", type=int, default=3, help="of which replayed cold too")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    args.workdir = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    if args.repo is not None:
        if not args.file:
            parser.error("--repo needs --file")
        shutil.copytree(args.repo, args.workdir / "repo", ignore=shutil.ignore_patterns(".git"))
        path = args.workdir / "repo" / args.file
        source = path.read_text(encoding="utf-8")
    else:
        module = import_module(args.module)
        source = Path(inspect.getfile(module)).read_text(encoding="utf-8")
        path = args.workdir / Path(inspect.getfile(module)).name
    if args.retrieval_tokens is None:
        args.retrieval_tokens = 384 if args.repo is not None else 0
    initial, edits, gaps = build_trace(
        source, args.start_line, args.lines, args.seed, args.speed, args.append
    )
    path.write_text(initial, encoding="utf-8")
    trace = Trace(path=path, initial=initial, gaps_s=gaps)

    server = asyncio.run(drive_server(args, trace, edits))
    lsp = summarize_lsp(trace, server)
    print(json.dumps({"lsp": lsp}, indent=1), flush=True)
    replay = side_by_side(args, trace)
    result = {
        "command": " ".join(sys.argv),
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "trace": {
            "module": args.file if args.repo else args.module,
            "repo": str(args.repo) if args.repo else None,
            "retrieval_tokens": args.retrieval_tokens,
            "start_line": args.start_line,
            "lines": args.lines,
            "chars": sum(len(e[3]) for e in edits),
            "seed": args.seed,
        },
        "lsp": lsp,
        "side_by_side": replay,
    }
    print(json.dumps({"side_by_side": replay, "machine": result["machine"]}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
