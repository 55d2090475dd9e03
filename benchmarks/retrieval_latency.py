"""Retrieval latency at about 100k chunks: symbol + lexical, then with dense (FAISS HNSW).

    python benchmarks/retrieval_latency.py [--corpus DIR] [--queries 300] [--data DIR]
                                           [--symbol-lexical-only] [--similar] [--typing]
                                           [--json OUT]

The corpus is the CPython stdlib plus the installed ``transformers`` package, copied into one
folder (about 110k chunks). Cursors are random lines of random Python files of the corpus;
each query is one ``Index.retrieve`` call with a 384-token budget, as the engine makes it.
Dense search uses the real MiniLM for the query embedding and an HNSW index over one random
unit vector per chunk (embedding 100k chunks on 2 CPU cores would take over an hour; the
search cost does not depend on the vectors' values). ``--similar`` adds the two ways similar
code is served (registry.py's ``served_retrieval``): leading the definitions (the 1.5B and
larger) and alone (the default 0.5B without an adapter, ``only_similar``).

Random cursors seldom meet a cached file (the similar-code stage caches 256 files' windows), so
they are the cold case. ``--typing`` measures what typing asks instead: in each of
``queries / 30`` random files, ten consecutive lines, each at three points (after the
indentation, mid-line, the end), in order, as an editor asks while the user types down a
function.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.embed import load_embedder
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.types import CursorContext
from pilotfish.code_index.vectors import VectorIndex


def build_corpus(target: Path) -> None:
    import transformers

    if target.exists():
        return
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(
        sysconfig.get_path("stdlib"),
        tmp / "stdlib",
        symlinks=True,
        ignore=shutil.ignore_patterns("site-packages", "__pycache__"),
    )
    shutil.copytree(
        Path(transformers.__file__).parent,
        tmp / "transformers",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    tmp.rename(target)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def python_files(index: Index) -> list[str]:
    """The corpus's Python files, as the index lists them."""
    return [
        r[0]
        for r in index.store.reader().execute(
            "SELECT path FROM files WHERE origin='repo' AND language='python' ORDER BY path"
        )
    ]


def cursor_at(root: Path, rel: str, lines: list[str], line: int, col: int) -> CursorContext:
    """The cursor at 0-based ``line`` and ``col`` of the file ``rel`` (its ``lines``)."""
    text = lines[line]
    return CursorContext(
        prefix="\n".join(lines[:line]) + "\n" + text[:col],
        suffix=text[col:] + "\n" + "\n".join(lines[line + 1 :]),
        language="python",
        path=str(root / rel),
        repo_root=str(root),
        line=line,
    )


def contexts(index: Index, root: Path, n: int, seed: int) -> list[CursorContext]:
    """Random cursors: a random line and column of a random Python file."""
    rng = random.Random(seed)
    files = python_files(index)
    out = []
    while len(out) < n:
        rel = rng.choice(files)
        lines = (root / rel).read_text(encoding="utf-8", errors="replace").split("\n")
        if len(lines) < 20:
            continue
        line = rng.randrange(10, len(lines))
        out.append(cursor_at(root, rel, lines, line, rng.randrange(0, len(lines[line]) + 1)))
    return out


def typing_contexts(index: Index, root: Path, n: int, seed: int) -> list[CursorContext]:
    """Cursors as typing makes them: ten consecutive lines of a file, three points on each."""
    rng = random.Random(seed)
    files = python_files(index)
    out: list[CursorContext] = []
    while len(out) < n:
        rel = rng.choice(files)
        lines = (root / rel).read_text(encoding="utf-8", errors="replace").split("\n")
        if len(lines) < 40:
            continue
        first = rng.randrange(10, len(lines) - 10)
        for line in range(first, first + 10):
            text = lines[line]
            indent = len(text) - len(text.lstrip())
            for col in dict.fromkeys((indent, (indent + len(text)) // 2, len(text))):
                out.append(cursor_at(root, rel, lines, line, col))
    return out[:n]


def measure(index: Index, ctxs: list[CursorContext], similar: bool = False,
            only_similar: bool = False) -> dict[str, float]:
    total: list[float] = []
    parts: dict[str, list[float]] = {"symbol": [], "lexical": [], "dense": []}
    for ctx in ctxs[:10]:  # warm caches
        index.retrieve(ctx, budget_tokens=384, similar_code=similar, only_similar=only_similar)
    cpu: list[float] = []
    for ctx in ctxs:
        c0, t0 = time.thread_time(), time.perf_counter()
        index.retrieve(ctx, budget_tokens=384, similar_code=similar, only_similar=only_similar)
        total.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        timings = index.retriever.last_timings
        parts["symbol"].append(timings.symbol)
        parts["lexical"].append(timings.lexical)
        parts["dense"].append(timings.dense)
    out = {
        "p50_ms": round(statistics.median(total), 1),
        "p95_ms": round(percentile(total, 0.95), 1),
        "max_ms": round(max(total), 1),
        # CPU time of the calling thread: close to the wall time on an idle machine (this
        # one is shared with other work; the load average is recorded with the numbers).
        "cpu_p50_ms": round(statistics.median(cpu), 1),
        "cpu_p95_ms": round(percentile(cpu, 0.95), 1),
        "load_average": round(os.getloadavg()[0], 1),
    }
    for name, values in parts.items():
        out[f"{name}_p50_ms"] = round(statistics.median(values), 1)
        out[f"{name}_p95_ms"] = round(percentile(values, 0.95), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "pf-corpus")
    parser.add_argument("--data", type=Path, default=None, help="keep the index here")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--symbol-lexical-only", action="store_true",
                        help="skip the dense measurements (for A/B runs of the ranking)")
    parser.add_argument("--similar", action="store_true",
                        help="also measure symbol + lexical led by similar code (similar.py), "
                        "and similar code alone (what the default 0.5B is served)")
    parser.add_argument("--typing", action="store_true",
                        help="also the cursors typing makes (consecutive lines of a file)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    build_corpus(args.corpus)
    data = args.data or Path(tempfile.mkdtemp(prefix="pf-latency-"))
    result: dict[str, object] = {}
    index = Index(args.corpus, data, IndexConfig(embeddings=False, dependency_docs=False))
    t0 = time.perf_counter()
    summary = index.build(embed=False)
    result["build_seconds"] = round(time.perf_counter() - t0, 1)
    result["files"], result["chunks"], result["symbols"] = (
        summary.files,
        summary.chunks,
        summary.symbols,
    )
    print(json.dumps(result), flush=True)
    t0 = time.perf_counter()
    index.retriever.warm()  # what a build or the server's start does
    result["warm_seconds"] = round(time.perf_counter() - t0, 1)
    ctxs = contexts(index, args.corpus, args.queries, args.seed)
    # (name, similar code leading, similar code alone): the retrieval paths served (registry.py)
    paths = [("symbol_lexical", False, False)] + (
        [("with_similar_code", True, False), ("similar_code_only", False, True)]
        if args.similar else [])
    for name, similar, only in paths:
        result[name] = measure(index, ctxs, similar=similar, only_similar=only)
        print(json.dumps(result[name]), flush=True)
    if args.typing:
        typed = typing_contexts(index, args.corpus, args.queries, args.seed)
        result["typing"] = {name: measure(index, typed, similar=similar, only_similar=only)
                            for name, similar, only in paths}
        print(json.dumps({"typing": result["typing"]}), flush=True)
    if args.symbol_lexical_only:
        index.close()
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return

    embedder = load_embedder()
    ids = np.array(
        [r[0] for r in index.store.reader().execute("SELECT id FROM chunks")], dtype=np.int64
    )
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(ids), embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vindex = VectorIndex(data, embedder.dim, "random", exact_limit=50_000)
    t0 = time.perf_counter()
    vindex.build_from(ids, vectors)
    assert vindex.kind == "hnsw"
    result["hnsw_build_seconds"] = round(time.perf_counter() - t0, 1)
    index.retriever.set_dense(vindex, embedder)
    index.retriever.dense_budget_ms = None  # dense on every query
    result["with_dense"] = measure(index, ctxs)
    index.retriever.dense_budget_ms = 30.0  # the default: dense only while it fits 30 ms
    result["dense_within_budget"] = measure(index, ctxs)
    result["dense_within_budget"]["dense_skipped"] = index.retriever.dense_skipped
    print(json.dumps(result["with_dense"]), flush=True)
    index.close()
    if args.data is None:
        shutil.rmtree(data, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
