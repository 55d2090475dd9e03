"""Does int8 lose dense-retrieval quality? fp32 vs int8 nearest neighbours on real code.

    python benchmarks/embed_int8.py [--package NAME ...] [--queries 300] [--json OUT]

The chunks of a few stdlib packages (copied into one folder, indexed as pilotfish indexes
them) are embedded by ONNX Runtime fp32 and by dynamic int8. Queries are what the retriever
embeds for a completion: the file's path, the 6 lines before a random cursor and the first
line after it (``Retriever._dense_candidates``), embedded through ``embed_query`` by each
backend. For every query each backend's exact top-k neighbours (inner product, chunks of the
query's own file left out, as the retriever leaves out the cursor's region) are compared:
overlap@k = |top-k fp32 & top-k int8| / k, and whether the first neighbour is the same.
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

DEFAULT_PACKAGES = ("email", "asyncio", "json", "logging", "http", "concurrent", "urllib")
KS = (1, 5, 10)


def query_texts(root: Path, files: list[str], n: int, seed: int) -> list[tuple[str, str]]:
    """(file, query text) at random cursors, shaped like the retriever's dense query."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    while len(out) < n:
        rel = rng.choice(files)
        lines = (root / rel).read_text(encoding="utf-8", errors="replace").split("\n")
        if len(lines) < 20:
            continue
        line = rng.randrange(8, len(lines) - 1)
        head = lines[line][: len(lines[line]) - len(lines[line].lstrip())]
        before = [*lines[line - 6 : line], head][-6:]
        text = "\n".join([*before, lines[line + 1]])
        if text.strip():
            out.append((rel, f"{rel}\n{text}"))
    return out


def top_k(vectors: np.ndarray, query: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    scores = np.where(allowed, vectors @ query, -np.inf)
    best = np.argpartition(-scores, k)[:k]
    return [int(i) for i in best[np.argsort(-scores[best])]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--package", action="append", default=None,
                        help="stdlib package to include (default: a few mid-sized ones)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    stdlib = Path(sysconfig.get_path("stdlib"))
    work = Path(tempfile.mkdtemp(prefix="pf-int8-"))
    try:
        root = work / "corpus"
        for name in args.package or DEFAULT_PACKAGES:
            shutil.copytree(stdlib / name, root / name,
                            ignore=shutil.ignore_patterns("__pycache__", "test*"))
        index = Index(root, work / "data", IndexConfig(embeddings=False, dependency_docs=False))
        index.build(embed=False)
        db = index.store.reader()
        rows = db.execute("SELECT f.path, c.text FROM chunks c JOIN files f ON f.id=c.file_id "
                          "ORDER BY c.id").fetchall()
        files = [r[0] for r in db.execute("SELECT path FROM files WHERE language='python'")]
        index.close()
        texts = [f"{path}\n{text[:2000]}" for path, text in rows]  # as the indexer embeds
        chunk_files = np.array([path for path, _ in rows])
        queries = query_texts(root, files, args.queries, args.seed)
        cfg = IndexConfig()
        result: dict[str, object] = {"chunks": len(texts), "queries": len(queries),
                                     "packages": args.package or list(DEFAULT_PACKAGES)}
        vectors: dict[str, np.ndarray] = {}
        query_vectors: dict[str, np.ndarray] = {}
        for backend in ("onnx", "onnx-int8"):
            embedder = load_embedder(max_tokens=cfg.embed_max_tokens,
                                     batch_size=cfg.embed_batch_size, threads=args.threads,
                                     backend=backend)
            t0, c0 = time.perf_counter(), time.process_time()
            vectors[backend] = embedder.embed_array(texts)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            query_vectors[backend] = np.stack([embedder.embed_query(q) for _, q in queries])
            result[backend] = {"seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
                               "chunks_per_cpu_second": round(len(texts) / cpu, 1)}
            print(json.dumps({backend: result[backend]}), flush=True)
        fp32, int8 = vectors["onnx"], vectors["onnx-int8"]
        cosine = (fp32 * int8).sum(1)
        query_cosine = (query_vectors["onnx"] * query_vectors["onnx-int8"]).sum(1)
        overlap: dict[int, list[float]] = {k: [] for k in KS}
        for i, (rel, _) in enumerate(queries):
            allowed = chunk_files != rel
            a = top_k(fp32, query_vectors["onnx"][i], allowed, max(KS))
            b = top_k(int8, query_vectors["onnx-int8"][i], allowed, max(KS))
            for k in KS:
                overlap[k].append(len(set(a[:k]) & set(b[:k])) / k)
        result["chunk_cosine"] = {"min": round(float(cosine.min()), 4),
                                  "p01": round(float(np.quantile(cosine, 0.01)), 4),
                                  "median": round(float(np.median(cosine)), 4)}
        result["query_cosine"] = {"min": round(float(query_cosine.min()), 4),
                                  "median": round(float(np.median(query_cosine)), 4)}
        result["overlap"] = {
            f"@{k}": {"mean": round(statistics.fmean(v), 3),
                      "p10": round(float(np.quantile(v, 0.10)), 3)}
            for k, v in overlap.items()
        }
        result["load_average"] = round(os.getloadavg()[0], 1)
        print(json.dumps(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
