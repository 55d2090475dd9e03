"""Hover faithfulness and latency over real code: the standard library's own modules.

A scratch workspace holds copies of a few stdlib modules (real code nobody here wrote). For
every call of a function defined in the workspace, the hover is built as the server builds it
(index lookups, numbered sources) and the model explains it; the table reports the share of
explanations with a valid citation, the share of invalid markers, the share of sentences with
a marker, and p50/p95 latency of the deterministic part and of the full explanation.

    python benchmarks/hover_faithfulness.py --symbols 12
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.lsp_server.engine.backends import load_generator
from pilotfish.lsp_server.hover import Explainer
from pilotfish.lsp_server.settings import ModelSettings

MODULES = ("textwrap.py", "shlex.py", "fnmatch.py", "glob.py", "tokenize.py", "csv.py",
           "ftplib.py", "configparser.py")


def call_sites(root: Path, names: set[str], limit: int) -> list[tuple[Path, int, int, str]]:
    """(file, line, column, name) of calls to workspace functions, one per name."""
    seen: set[str] = set()
    out = []
    for path in sorted(root.glob("*.py")):
        for number, line in enumerate(path.read_text().split("\n")):
            for match in re.finditer(r"(?<![\w.])([a-z][a-z0-9_]{3,})\(", line):
                name = match.group(1)
                if name in names and name not in seen and not line.lstrip().startswith("def "):
                    seen.add(name)
                    out.append((path, number, match.start(1), name))
    return out[:limit]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=12)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    stdlib = Path(sysconfig.get_path("stdlib"))
    root = Path(tempfile.mkdtemp(prefix="pilotfish-hover-bench-"))
    for name in MODULES:
        shutil.copy(stdlib / name, root / name)
    index = Index(root, root / ".data", IndexConfig(embeddings=False, dependency_docs=False))
    index.build()
    names = {r[0] for r in index.store.reader().execute(
        "SELECT name FROM symbols WHERE kind IN ('function','method')")}
    sites = call_sites(root, names, args.symbols)
    generator = load_generator(ModelSettings(name=args.model))
    explainer = Explainer(root)

    rows = []
    for path, line, column, name in sites:
        text = path.read_text()
        started = time.perf_counter()
        quick = explainer.hover(text, line, column, path=str(path), store=index.store,
                                generator=None, budget_s=0)
        deterministic_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        full = explainer.hover(text, line, column, path=str(path), store=index.store,
                               generator=generator, budget_s=600)
        full_ms = (time.perf_counter() - started) * 1000
        exp = full.explanation if full else None
        rows.append({
            "symbol": name, "resolved": bool(quick and quick.symbol),
            "sources": len(full.sources) if full else 0,
            "valid": exp.valid_markers if exp else 0, "invalid": exp.invalid_markers if exp else 0,
            "sentences": exp.sentences if exp else 0, "cited": exp.cited_sentences if exp else 0,
            "deterministic_ms": deterministic_ms, "full_ms": full_ms,
        })
        print(f"{name:<24} sources={rows[-1]['sources']} valid={rows[-1]['valid']} "
              f"invalid={rows[-1]['invalid']} {full_ms:7.0f} ms", flush=True)
    explainer.close()

    explained = [r for r in rows if r["sentences"]]
    markers = sum(r["valid"] + r["invalid"] for r in rows)
    summary = {
        "symbols": len(rows),
        "resolved": sum(r["resolved"] for r in rows) / max(1, len(rows)),
        "with_valid_citation": sum(r["valid"] > 0 for r in explained) / max(1, len(explained)),
        "invalid_marker_share": sum(r["invalid"] for r in rows) / max(1, markers),
        "sentences_with_marker": sum(r["cited"] for r in rows)
        / max(1, sum(r["sentences"] for r in rows)),
        "deterministic_p50_ms": statistics.median(r["deterministic_ms"] for r in rows),
        "deterministic_p95_ms": pct([r["deterministic_ms"] for r in rows], 0.95),
        "full_p50_ms": statistics.median(r["full_ms"] for r in rows),
        "full_p95_ms": pct([r["full_ms"] for r in rows], 0.95),
    }
    print("\n| metric | value |\n|---|---|")
    for key, value in summary.items():
        print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
