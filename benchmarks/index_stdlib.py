"""Index benchmark: the CPython stdlib (symbols + lexical, then embeddings) and one-file updates.

    python benchmarks/index_stdlib.py [--root DIR] [--embed-sample 2000] [--backends LIST]
                                      [--threads N] [--batch-size N] [--json OUT]

Phase 1 indexes every file (parse + symbols + chunks + FTS5) without embeddings; phase 2 embeds
a sample of the chunks with the default MiniLM (the whole stdlib would take long on 2 cores);
phase 3 re-indexes one ~2,000-line file after an edit, as the server does on didSave.
With several embedding backends (``--backends torch,onnx,onnx-int8``) the same sample is
embedded by each in turn, twice, alternating (a paired comparison on a shared machine), and
each backend's vectors are compared with the first's (cosine).
Peak memory is the process's max RSS after each phase (it only grows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(sysconfig.get_path("stdlib")))
    parser.add_argument("--embed-sample", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--backends", default="auto",
                        help="comma-separated embedding backends: auto, torch, onnx, onnx-int8")
    parser.add_argument("--threads", type=int, default=1, help="embedding threads")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="chunks per forward pass (0: the default, by device)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="pf-bench-"))
    out: dict[str, object] = {"root": str(args.root)}
    try:
        index = Index(args.root, data, IndexConfig(embeddings=False, dependency_docs=False))
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = index.build()
        out["phase1_seconds"] = round(time.perf_counter() - started, 1)
        out["phase1_cpu_seconds"] = round(time.process_time() - cpu_started, 1)
        out["phase1_peak_rss_mb"] = round(peak_mb())
        out["load_average"] = round(os.getloadavg()[0], 1)
        out["summary"] = summary.to_json()
        db = index.store.reader()
        out["indexed_bytes"] = db.execute(
            "SELECT sum(size) FROM files WHERE origin='repo'"
        ).fetchone()[0]
        out["indexed_lines"] = db.execute(
            "SELECT sum(end_line - start_line + 1) FROM chunks"
        ).fetchone()[0]
        print(json.dumps(out, indent=2), flush=True)

        # Phase 3 first (cheap): one-file incremental update of a ~2,000-line file.
        rows = db.execute("SELECT path FROM files WHERE language='python'").fetchall()
        sizes = []
        for (rel,) in rows:
            text = (args.root / rel).read_text(encoding="utf-8", errors="replace")
            sizes.append((abs(text.count("\n") - 2000), rel, text))
        _, rel, text = min(sizes)
        times = []
        for n in range(args.updates):
            edited = text + f"\n\ndef added_function_{n}(x):\n    return x + {n}\n"
            t0 = time.perf_counter()
            assert index.update_file(args.root / rel, edited) == "updated"
            times.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        assert index.update_file(args.root / rel, edited) == "unchanged"
        unchanged_ms = (time.perf_counter() - t0) * 1000
        index.update_file(args.root / rel, text)
        out["incremental"] = {
            "file": rel,
            "lines": text.count("\n") + 1,
            "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "unchanged_ms": round(unchanged_ms, 2),
        }
        print(json.dumps(out["incremental"]), flush=True)
        index.close()

        # Phase 2: embeddings on a sample of chunks (throughput in chunks/s).
        if args.embed_sample:
            import numpy as np
            from pilotfish.code_index.embed import load_embedder

            cfg = IndexConfig(dependency_docs=False)
            embedders = {
                name: load_embedder(max_tokens=cfg.embed_max_tokens,
                                    batch_size=args.batch_size or cfg.embed_batch_size,
                                    threads=args.threads,
                                    backend=name)
                for name in args.backends.split(",")
            }
            index = Index(args.root, data, cfg)
            texts = [
                f"{p}\n{t[:2000]}"
                for p, t in index.store.reader()
                .execute(
                    "SELECT f.path, c.text FROM chunks c JOIN files f ON f.id=c.file_id "
                    "ORDER BY c.id LIMIT ?",
                    (args.embed_sample,),
                )
                .fetchall()
            ]
            index.close()
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in embedders}
            first: np.ndarray | None = None
            cosine: dict[str, float] = {}
            for _ in range(2):
                for name, embedder in embedders.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    vectors = embedder.embed_array(texts)
                    runs[name].append((time.perf_counter() - t0, time.process_time() - c0))
                    if first is None:
                        first = vectors
                    cosine[name] = round(float((vectors * first).sum(1).min()), 4)
            out["embeddings"] = {
                name: {
                    "backend": embedders[name].backend,
                    "chunks": len(texts),
                    "seconds": [round(w, 1) for w, _ in pairs],
                    "chunks_per_second": [round(len(texts) / w, 1) for w, _ in pairs],
                    # The process's CPU time: on an idle machine the threads would have the
                    # cores to themselves, so this is the idle throughput per core.
                    "chunks_per_cpu_second": [round(len(texts) / c, 1) for _, c in pairs],
                    "min_cosine_to_first": cosine[name],
                }
                for name, pairs in runs.items()
            }
            out["embeddings_setup"] = {
                "threads": args.threads,
                "max_tokens": cfg.embed_max_tokens,
                "batch_size": {name: e.batch_size for name, e in embedders.items()},
                "load_average": round(os.getloadavg()[0], 1),
                "peak_rss_mb_after": round(peak_mb()),
            }
            print(json.dumps({"embeddings": out["embeddings"],
                              "setup": out["embeddings_setup"]}), flush=True)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
