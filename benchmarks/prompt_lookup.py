"""Prompt-lookup decoding on vs off in the llama.cpp backend: speed, acceptance, same output.

Run:  python benchmarks/prompt_lookup.py --per-kind 12 --threads 1 --json /tmp/pl.json

Requests are built by the engine (its prompt and stop rules, no retrieval) at positions of
real stdlib modules, three kinds:
- ``mid-line``: a line cut after its first words (the rest of the line deleted), single-line;
- ``body``: a function's body deleted and the cursor on its first line, multi-line;
- ``copy``: a line whose first words repeat the line above's (``self.x = ...`` after
  ``self.y = ...``, one more ``add_argument(``), cut after those words: code that copies;
- ``dup-body``: a short function's signature written again under another name right after
  it, the cursor in the new body, multi-line: code that copies a whole block.
``--kinds`` picks some of them.
Each prompt is evaluated once untimed, so that both measured runs reuse its whole KV cache and
time only the decoding (the warm case of typing); then lookup on and off run in alternating
order (on-off, off-on, ...) on the same generator. Reported per kind: decode tok/s (medians of
the per-request rates and of on/off ratios), request latency p50/p95, the drafted tokens'
acceptance rate, and how often both runs produced the same tokens.

With ``--batch-costs``: the wall and CPU time of one llama.cpp decode call of 1..17 tokens with
logits at every position (what verifying a draft costs), 7 interleaved rounds, medians.
With ``--replay RUN.json --costs COSTS.json``: the recorded greedy tokens of a run replayed
under a grid of policies (k_max, min_draft, warmup, n-gram sizes), each step charged the
measured cost of its batch: the modelled decode cost with lookup relative to without.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import statistics
import threading
import time
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.engine import CompletionEngine, Pending
from pilotfish.lsp_server.engine.generate import GenerationRequest
from pilotfish.lsp_server.engine.llamacpp_backend import LlamaCppGenerator
from pilotfish.lsp_server.engine.lookup import DraftPolicy
from pilotfish.lsp_server.models.resolve import resolve_model
from pilotfish.lsp_server.settings import CompletionSettings

MODULES = ("textwrap", "argparse", "json.decoder", "csv", "dataclasses", "logging.handlers")


@dataclass(frozen=True)
class Case:
    """One request: the document, the cursor, and its kind."""

    kind: str
    module: str
    text: str
    line: int
    column: int


def source_of(module: str) -> str:
    """The stdlib module's source."""
    return Path(inspect.getfile(import_module(module))).read_text(encoding="utf-8")


def cut_line(lines: list[str], at: int, column: int) -> tuple[str, int]:
    """The document with line ``at`` cut at ``column``; the cursor's column."""
    out = [*lines[:at], lines[at][:column], *lines[at + 1 :]]
    return "\n".join(out), column


def words_end(line: str, words: int) -> int:
    """Column after the first ``words`` words of ``line`` (with what follows them up to a space)."""
    ends = [m.end() for m in re.finditer(r"\S+\s*", line)]
    return ends[min(words, len(ends)) - 1]


def shared_head(a: str, b: str) -> int:
    """Length of the common start of two lines, cut back to a word or punctuation boundary."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    while n > 0 and b[n - 1].isalnum() and n < len(b) and b[n].isalnum():
        n -= 1
    return n


def cases(per_kind: int) -> list[Case]:
    """``per_kind`` cases of each kind, spread over the modules, in a fixed order."""
    found: dict[str, list[Case]] = {"mid-line": [], "body": [], "copy": [], "dup-body": []}
    for module in MODULES:
        lines = source_of(module).split("\n")
        mid, body, copy, dup = [], [], [], []
        for i in range(40, len(lines) - 1):
            line, above = lines[i], lines[i - 1]
            stripped = line.strip()
            indent = len(line) - len(stripped)
            if len(stripped) >= 30 and not stripped.startswith(("#", '"', "'")):
                head = shared_head(above, line)
                if head - indent >= 8 and len(line) - head >= 6:
                    text, column = cut_line(lines, i, head)
                    copy.append(Case("copy", module, text, i, column))
                elif head <= indent and len(stripped.split()) >= 4:
                    text, column = cut_line(lines, i, words_end(line, 2))
                    mid.append(Case("mid-line", module, text, i, column))
            if re.match(r"\s*def \w+\(.*\):\s*$", line):
                end = i + 1
                inner = len(lines[end]) - len(lines[end].lstrip())
                while end < len(lines) and (
                    not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) >= inner
                ):
                    end += 1
                if inner > indent and end - i > 3:
                    kept = [*lines[: i + 1], " " * inner, "", *lines[end:]]
                    body.append(Case("body", module, "\n".join(kept), i + 1, inner))
                if inner > indent and 4 <= end - i <= 14:
                    # The same signature again under another name, right after the function.
                    while not lines[end - 1].strip():
                        end -= 1
                    twin = re.sub(r"def (\w+)", r"def \1_checked", line, count=1)
                    kept = [*lines[:end], "", twin, " " * inner, "", *lines[end:]]
                    dup.append(Case("dup-body", module, "\n".join(kept), end + 2, inner))
        for kind, found_here in (
            ("mid-line", mid),
            ("body", body),
            ("copy", copy),
            ("dup-body", dup),
        ):
            step = max(1, len(found_here) // per_kind)
            found[kind].extend(found_here[::step])
    out: list[Case] = []
    for all_of_kind in found.values():
        step = max(1, len(all_of_kind) // per_kind)
        out.extend(all_of_kind[::step][:per_kind])
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-kind", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--k-max", type=int, default=DraftPolicy.k_max)
    parser.add_argument("--min-draft", type=int, default=DraftPolicy.min_draft)
    parser.add_argument("--warmup", type=int, default=DraftPolicy.warmup)
    parser.add_argument("--kinds", default="mid-line,body,copy,dup-body")
    parser.add_argument("--json", default="")
    parser.add_argument("--batch-costs", action="store_true")
    parser.add_argument("--replay", default="", help="a --json output to replay")
    parser.add_argument("--costs", default="", help="a --batch-costs --json output")
    args = parser.parse_args()
    if args.batch_costs:
        batch_costs(args)
        return
    if args.replay:
        replay(args)
        return

    model = resolve_model("qwen2.5-coder-0.5b")
    assert model.gguf is not None
    gen = LlamaCppGenerator(model.gguf, model_id=model.name, threads=args.threads)
    policy = DraftPolicy(k_max=args.k_max, min_draft=args.min_draft, warmup=args.warmup)
    settings = CompletionSettings(
        retrieval_tokens=0, skip_inside_word=False, max_tokens=args.max_tokens
    )
    engine = CompletionEngine(gen, settings, cache_size=0)
    rows: list[dict[str, object]] = []
    load = [os.getloadavg()[0]]
    kinds = args.kinds.split(",")
    for n, case in enumerate(c for c in cases(args.per_kind) if c.kind in kinds):
        pending = engine.prepare(
            CompletionRequest(
                text=case.text, line=case.line, column=case.column, path=f"{case.module}.py"
            )
        )
        if not isinstance(pending, Pending):
            continue
        request = GenerationRequest(
            prompt=pending.prompt.text,
            max_tokens=args.max_tokens,
            stop=engine.template.stop,
            max_lines=pending.max_lines,
        )
        gen.draft_policy = None
        gen.generate(request, threading.Event())  # the prompt into the KV cache
        row: dict[str, object] = {"kind": case.kind, "module": case.module, "line": case.line}
        for on in (True, False) if n % 2 == 0 else (False, True):
            gen.draft_policy = policy if on else None
            wall, cpu = time.perf_counter(), time.process_time()
            out = gen.generate(request, threading.Event())
            side = "on" if on else "off"
            row[f"{side}_ms"] = (time.perf_counter() - wall) * 1000
            row[f"{side}_cpu_ms"] = (time.process_time() - cpu) * 1000
            row[f"{side}_tok_s"] = out.new_tokens / max(out.decode_ms + out.prefill_ms, 1e-9) * 1000
            row[f"{side}_text"] = out.text
            row[f"{side}_tokens"] = out.new_tokens
            if not on:
                # The tokens, for replaying other policies (the cache holds all but the last).
                llm = gen._llm
                n_prompt = out.prompt_tokens
                row["prompt_ids"] = [int(t) for t in llm.input_ids[:n_prompt]]
                row["off_ids"] = [int(t) for t in llm.input_ids[n_prompt : llm.n_tokens]]
            if on:
                row["drafted"] = gen.lookup_stats.drafted
                row["accepted"] = gen.lookup_stats.accepted
                row["steps"] = gen.lookup_stats.steps
        load.append(os.getloadavg()[0])
        rows.append(row)
        print(
            json.dumps({k: v for k, v in row.items() if not k.endswith(("_text", "_ids"))}),
            flush=True,
        )
    print(f"\nthreads {args.threads}, policy {policy}, load1 {min(load):.2f}-{max(load):.2f}")
    table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


def batch_costs(args: argparse.Namespace) -> None:
    """Median wall and CPU ms of one decode call of ``b`` tokens with all logits."""
    model = resolve_model("qwen2.5-coder-0.5b")
    assert model.gguf is not None
    gen = LlamaCppGenerator(model.gguf, model_id=model.name, threads=args.threads)
    llm = gen._llm  # the raw decode call is what is measured
    ids = llm.tokenize(source_of("textwrap").encode(), add_bos=False, special=True)
    gen.generate(  # 800 tokens of context in the cache
        GenerationRequest(prompt=llm.detokenize(ids[:800]).decode(), max_tokens=1, stop=()),
        threading.Event(),
    )
    base = llm.n_tokens
    sizes = [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 17]
    times: dict[int, list[tuple[float, float]]] = {b: [] for b in sizes}
    for rep in range(7):
        for b in sizes if rep % 2 == 0 else sizes[::-1]:
            llm.n_tokens = base
            llm._ctx.kv_cache_seq_rm(-1, base, -1)
            wall, cpu = time.perf_counter(), time.process_time()
            llm._batch.set_batch(batch=ids[base : base + b], n_past=base, logits_all=True)
            llm._ctx.decode(llm._batch)
            times[b].append(
                ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
            )
    one = statistics.median(c for _, c in times[1])
    costs = {}
    for b in sizes:
        wall = statistics.median(w for w, _ in times[b])
        cpu = statistics.median(c for _, c in times[b])
        costs[b] = cpu / one
        print(f"batch {b:2d}: wall {wall:6.1f} ms  cpu {cpu:6.1f} ms  = {cpu / one:4.2f} steps")
    print(f"threads {args.threads}, load1 {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(costs))


def replay(args: argparse.Namespace) -> None:
    """Modelled cost of a grid of policies on a run's recorded tokens (1.0 = no lookup)."""
    from pilotfish.lsp_server.engine.lookup import propose

    rows = json.loads(Path(args.replay).read_text())["rows"]
    table_costs = {int(b): c for b, c in json.loads(Path(args.costs).read_text()).items()}

    def cost(b: int) -> float:  # between measured sizes: the next larger one
        return table_costs[min((s for s in table_costs if s >= b), default=max(table_costs))]

    grid = [
        (k, m, w, n)
        for k in (8, 12, 16)
        for m in (4, 8, 12)
        if m <= k
        for w in (1, 2, 3, 4, 6, 8)
        for n in (1, 2, 3)
    ]
    results = []
    for k_max, min_draft, warmup, min_ngram in grid:
        spent: dict[str, float] = {}
        plain: dict[str, float] = {}
        for row in rows:
            prompt, tokens = row["prompt_ids"], row["off_ids"]
            policy = DraftPolicy(k_max=k_max, min_draft=min_draft, warmup=warmup)
            at, steps = 0, 0.0
            while at < len(tokens):
                room = min(k_max, args.max_tokens - at - 1)
                draft = propose([*prompt, *tokens[:at]], room, min_ngram=min_ngram)
                if policy.wants(draft):
                    accepted = 0
                    while (
                        accepted < len(draft)
                        and at + accepted < len(tokens)
                        and draft[accepted] == tokens[at + accepted]
                    ):
                        accepted += 1
                    policy.record(len(draft), accepted)
                    steps += cost(len(draft) + 1)
                    at += accepted + 1
                else:
                    policy.observe(draft, tokens[at])
                    steps += 1
                    at += 1
            for kind in (row["kind"], "all"):
                spent[kind] = spent.get(kind, 0.0) + steps
                plain[kind] = plain.get(kind, 0.0) + len(tokens)
        ratios = {kind: spent[kind] / plain[kind] for kind in spent}
        results.append(((k_max, min_draft, warmup, min_ngram), ratios))
    results.sort(key=lambda r: r[1]["all"])
    print("k_max min_draft warmup min_ngram: modelled decode cost / plain (lower is better)")
    default = (DraftPolicy.k_max, DraftPolicy.min_draft, DraftPolicy.warmup, 1)
    shown = [r for r in results if r[0] == default] + results[:12]
    for (k_max, min_draft, warmup, min_ngram), ratios in shown:
        print(
            f"{k_max:5d} {min_draft:9d} {warmup:6d} {min_ngram:9d}: "
            + "  ".join(f"{kind} {ratio:.3f}" for kind, ratio in sorted(ratios.items()))
        )


def table(rows: list[dict[str, object]]) -> None:
    """One line per kind and one for all requests."""
    print(
        f"{'kind':9} {'n':>3} {'tok/s off':>9} {'tok/s on':>8} {'ratio':>6} "
        f"{'p50 off':>8} {'p50 on':>7} {'p95 off':>8} {'p95 on':>7} {'cpu ratio':>9} "
        f"{'drafted':>7} {'accept':>6} {'same':>5}"
    )
    kinds = sorted({str(r["kind"]) for r in rows})
    for kind in [*kinds, "all"]:
        sel = [r for r in rows if kind in ("all", r["kind"])]
        if not sel:
            continue

        def col(name: str, sel: list[dict[str, object]] = sel) -> list[float]:
            return [float(r[name]) for r in sel]  # type: ignore[arg-type]

        ratio = statistics.median(
            a / b for a, b in zip(col("on_tok_s"), col("off_tok_s"), strict=True)
        )
        cpu = statistics.median(
            a / b for a, b in zip(col("on_cpu_ms"), col("off_cpu_ms"), strict=True)
        )
        drafted, accepted = sum(col("drafted")), sum(col("accepted"))
        same = sum(r["on_text"] == r["off_text"] for r in sel)
        print(
            f"{kind:9} {len(sel):3d} {statistics.median(col('off_tok_s')):9.1f} "
            f"{statistics.median(col('on_tok_s')):8.1f} {ratio:6.2f} "
            f"{percentile(col('off_ms'), 0.5):8.0f} {percentile(col('on_ms'), 0.5):7.0f} "
            f"{percentile(col('off_ms'), 0.95):8.0f} {percentile(col('on_ms'), 0.95):7.0f} "
            f"{cpu:9.2f} {drafted:7.0f} {accepted / max(drafted, 1):6.2f} {same:3d}/{len(sel)}"
        )


if __name__ == "__main__":
    main()
