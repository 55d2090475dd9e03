"""Recall@k of the cross-file definition a held-out line uses: pilotfish vs Jaccard windows.

    python benchmarks/retrieval_recall.py [--repo DIR ...] [--lines 300] [--dense] [--json OUT]

For each repository (real code no one here wrote: by default GitPython and two stdlib
packages), it samples lines that name something defined in exactly one other file of the
repository (import lines excluded). The line is held out: the cursor sits at its start with
the lines above as prefix and the lines below as suffix. A method is a hit at k when one of its
first k results is in the defining file and covers the definition's first line;
``pilotfish_shown`` also requires the name in the snippet's text (a class outline clipped
before the method, or a summary that leaves it out, does not count there);
``pilotfish_served`` is ``pilotfish_shown`` over what a completion served definitions gets
(a model with an adapter, or larger than the 0.5B): the engine's retrieval budget (384 tokens)
and its snippet count; its recall@10 is recall within the budget.
With ``--dense`` the fusion includes dense candidates, and ``dense_only`` ranks the
retriever's dense query's nearest chunks alone (the embedding backend is the default's, or
PILOTFISH_EMBED_BACKEND).

Baseline (Copilot / RepoCoder): 20-line windows (stride 10) of every other file, ranked by
Jaccard similarity of their identifier sets with the last 20 lines before the cursor.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import shutil
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.types import CursorContext
from pilotfish.lsp_server.settings import CompletionSettings

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KS = (1, 5, 10)
SERVED_TOKENS = CompletionSettings().retrieval_tokens  # the engine's retrieval budget


@dataclass(frozen=True)
class Case:
    """A held-out line and the definition it uses."""

    path: str
    line: int  # 1-based held-out line
    name: str
    target_path: str
    target_line: int


def default_repos() -> list[Path]:
    import git  # GitPython, installed with pilotfish

    stdlib = Path(sysconfig.get_path("stdlib"))
    return [Path(git.__file__).parent, stdlib / "asyncio", stdlib / "email"]


_BUILTIN_ATTRS = frozenset(
    a for t in (str, bytes, list, dict, set, tuple, int, float, object, BaseException)
    for a in dir(t)
)


def code_uses(source: str) -> dict[int, set[str]] | None:
    """Per 1-based line, the names the line uses as code referring to something global.

    Parsed with ``ast``, independently of the retriever: a bare name counts only if the file
    does not bind it itself (assignment, parameter, loop/with/except target; imports are
    fine), an attribute counts unless builtin types have one of that name (``" ".join``).
    Names in comments and docstrings do not count.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    uses: dict[int, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in bound:
                uses.setdefault(node.lineno, set()).add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr not in _BUILTIN_ATTRS:
            uses.setdefault(node.end_lineno or node.lineno, set()).add(node.attr)
    return uses


def collect_cases(index: Index, root: Path, n: int, seed: int,
                  criterion: str = "ast") -> list[Case]:
    db = index.store.reader()
    defs: dict[str, list[tuple[str, int]]] = {}
    for name, qual, path, start, kind in db.execute(
        "SELECT s.name, s.qualified_name, f.path, COALESCE(s.outer_start_line, s.start_line), "
        "s.kind FROM symbols s JOIN files f ON f.id=s.file_id "
        "WHERE f.origin='repo' AND f.language='python'"
    ):
        defs.setdefault(name, []).append((path, start))
        if kind not in ("function", "method", "class", "constant") or len(name) < 4:
            defs[name].append(("", 0))  # fields and variables make a name ambiguous here
        elif kind == "method" and "." not in qual:
            defs[name].append(("", 0))
    cases: list[Case] = []
    files = [
        r[0]
        for r in db.execute(
            "SELECT path FROM files WHERE origin='repo' AND language='python' ORDER BY path"
        )
    ]
    for rel in files:
        source = (root / rel).read_text(encoding="utf-8", errors="replace")
        lines = source.split("\n")
        ast_uses = code_uses(source) if criterion == "ast" else None
        if criterion == "ast" and ast_uses is None:
            continue
        for i, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith(
                ("#", "import ", "from ", "def ", "class ", "@", '"', "'")
            ):
                continue
            code = re.sub(r"#.*|'[^']*'|\"[^\"]*\"", "", line)
            for name in dict.fromkeys(IDENT.findall(code)):
                places = defs.get(name)
                if not places or name.startswith("__"):
                    continue
                # Used as code (called, dotted, or a value), not a word in prose.
                if not re.search(rf"(\.{name}\b|\b{name}\s*[(.\[)\],:]|=\s*{name}\b)", code):
                    continue
                if ast_uses is not None and name not in ast_uses.get(i, ()):
                    continue  # a local, a builtin type's method, or prose
                if len(places) > 1:
                    continue  # defined more than once: the target is ambiguous
                if places[0][0] == rel:
                    continue
                target_path, target_line = places[0]
                cases.append(Case(rel, i, name, target_path, target_line))
                break
    random.Random(seed).shuffle(cases)
    return cases[:n]


class Jaccard:
    """20-line windows of every file with their identifier sets."""

    def __init__(self, root: Path, files: list[str], size: int = 20, stride: int = 10) -> None:
        self.windows: list[tuple[str, int, int, frozenset[str]]] = []
        for rel in files:
            lines = (root / rel).read_text(encoding="utf-8", errors="replace").split("\n")
            for start in range(0, max(1, len(lines) - size + stride), stride):
                chunk = lines[start : start + size]
                self.windows.append(
                    (rel, start + 1, start + len(chunk), frozenset(IDENT.findall("\n".join(chunk))))
                )

    def rank(self, query: str, exclude: str, k: int) -> list[tuple[str, int, int]]:
        q = frozenset(IDENT.findall(query))
        scored = []
        for rel, lo, hi, ids in self.windows:
            if rel == exclude or not ids:
                continue
            inter = len(q & ids)
            if inter:
                scored.append((inter / len(q | ids), rel, lo, hi))
        scored.sort(key=lambda t: -t[0])
        return [(rel, lo, hi) for _, rel, lo, hi in scored[:k]]


def hit_rank(results: list[tuple[str, int, int]], case: Case,
             texts: list[str] | None = None) -> int | None:
    """The first rank covering the definition's line (and, given ``texts``, showing its name).

    With ``texts``, a class outline clipped before the method, or a long body whose snippet
    is only its signature, does not count: the name must be in what a prompt would show.
    """
    for rank, (path, lo, hi) in enumerate(results, start=1):
        if path == case.target_path and lo <= case.target_line <= hi and (
            texts is None or re.search(rf"\b{re.escape(case.name)}\b", texts[rank - 1])
        ):
            return rank
    return None


def cursor_at(root: Path, case: Case, position: str) -> tuple[list[str], str, CursorContext]:
    """The file's lines, what is typed of the held-out line, and the cursor there.

    ``line-start``: only the indentation is typed; ``before-name``: the line up to the name the
    model must produce.
    """
    lines = (root / case.path).read_text(encoding="utf-8", errors="replace").split("\n")
    target = lines[case.line - 1]
    if position == "before-name":
        cut = re.search(rf"\b{case.name}\b", target)
        head = target[: cut.start()] if cut else target
    else:
        head = target[: len(target) - len(target.lstrip())]
    ctx = CursorContext(
        prefix="\n".join(lines[: case.line - 1]) + "\n" + head,
        suffix="\n" + "\n".join(lines[case.line :]),
        language="python",
        path=str(root / case.path),
        repo_root=str(root),
        line=case.line - 1,
    )
    return lines, head, ctx


def dense_only(index: Index, ctx: CursorContext, rel: str) -> list[tuple[str, int, int]]:
    """The nearest chunks of the retriever's dense query alone, other files only."""
    embedder, vectors = index.embedder(), index.vectors
    assert embedder is not None and vectors is not None
    lines_before = ctx.prefix.split("\n")[-14:]
    text = "\n".join([*lines_before[-6:], ctx.suffix.split("\n", 1)[0]])  # as the retriever
    hits = vectors.search(embedder.embed_query(f"{rel}\n{text}"), 40)
    ids = [h[0] for h in hits]
    rows = {r[0]: r[1:] for r in index.store.reader().execute(
        "SELECT c.id, f.path, c.start_line, c.end_line FROM chunks c JOIN files f "
        f"ON f.id=c.file_id WHERE c.id IN ({','.join('?' * len(ids))})", ids)}
    spans = [rows[i] for i in ids if i in rows and rows[i][0] != rel]
    return [(str(p), int(lo), int(hi)) for p, lo, hi in spans][: max(KS)]


def evaluate(
    root: Path, n: int, dense: bool, seed: int, position: str = "line-start",
    criterion: str = "ast", show_misses: int = 0,
) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="pf-recall-"))
    try:
        cfg = IndexConfig(embeddings=dense, dependency_docs=False, dense_budget_ms=None)
        index = Index(root, data, cfg)
        t0 = time.perf_counter()
        summary = index.build(embed=dense)
        build_s = time.perf_counter() - t0
        if dense:
            index.open_vectors()
        cases = collect_cases(index, root, n, seed, criterion)
        files = [
            r[0]
            for r in index.store.reader().execute(
                "SELECT path FROM files WHERE origin='repo' AND language='python'"
            )
        ]
        jaccard = Jaccard(root, files)
        ranks: dict[str, list[int | None]] = {"pilotfish": [], "pilotfish_shown": [],
                                              "pilotfish_served": [], "jaccard": []}
        if dense:
            ranks["dense_only"] = []
        latencies: list[float] = []
        shown = 0
        for case in cases:
            lines, head, ctx = cursor_at(root, case, position)
            target = lines[case.line - 1]
            t = time.perf_counter()
            snippets = index.retrieve(ctx, budget_tokens=10**6, max_snippets=max(KS))
            latencies.append((time.perf_counter() - t) * 1000)
            spans = [(s.path, s.start_line, s.end_line) for s in snippets]
            rank = hit_rank(spans, case)
            ranks["pilotfish"].append(rank)
            ranks["pilotfish_shown"].append(hit_rank(spans, case, [s.text for s in snippets]))
            # What a completion gets: the engine's token budget and snippet count.
            served = index.retrieve(ctx, budget_tokens=SERVED_TOKENS)
            ranks["pilotfish_served"].append(hit_rank(
                [(s.path, s.start_line, s.end_line) for s in served], case,
                [s.text for s in served]))
            if (rank is None or rank > 5) and shown < show_misses:
                shown += 1
                print(f"MISS {case.path}:{case.line} `{case.name}` -> {case.target_path}:"
                      f"{case.target_line} (rank {rank}): {target.strip()[:90]}")
                for s in snippets[:5]:
                    print(f"    {s.path}:{s.start_line}  {s.reason[:80]}")
            if dense:
                ranks["dense_only"].append(hit_rank(dense_only(index, ctx, case.path), case))
            query = "\n".join([*lines[max(0, case.line - 21) : case.line - 1], head])
            ranks["jaccard"].append(hit_rank(jaccard.rank(query, case.path, max(KS)), case))
        embedder = index.embedder() if dense else None
        backend = embedder.backend if embedder else None
        index.close()
        result: dict[str, object] = {
            "repo": str(root),
            "embedder": backend,
            "files": summary.files,
            "chunks": summary.chunks,
            "cases": len(cases),
            "build_seconds": round(build_s, 1),
            "dense": dense,
            "position": position,
            "cases_by": criterion,
        }
        for method, rs in ranks.items():
            result[method] = {
                f"recall@{k}": round(sum(1 for r in rs if r and r <= k) / max(1, len(rs)), 3)
                for k in KS
            }
        latencies.sort()
        result["pilotfish_ms_p50"] = round(latencies[len(latencies) // 2], 1) if latencies else 0
        return result
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, action="append", default=None)
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--dense", action="store_true", help="also embed (slow on CPU)")
    parser.add_argument(
        "--position",
        choices=["line-start", "before-name"],
        default="line-start",
        help="cursor at the held-out line's start, or typed up to the name it uses",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cases",
        choices=["ast", "regex"],
        default="ast",
        help="ast: the name is used as code per Python's ast (not a local variable, not a "
        "builtin type's method, not prose); regex: the first criterion (names in docstrings, "
        "locals and str.join count)",
    )
    parser.add_argument("--show-misses", type=int, default=0, metavar="N",
                        help="print N held-out lines pilotfish missed at k=5, with its top 5")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = []
    for repo in args.repo or default_repos():
        result = evaluate(repo.resolve(), args.lines, args.dense, args.seed, args.position,
                          args.cases, args.show_misses)
        print(json.dumps(result), flush=True)
        results.append(result)
    total = sum(int(r["cases"]) for r in results)  # type: ignore[arg-type]
    overall: dict[str, dict[str, float]] = {}
    for method in ("pilotfish", "pilotfish_shown", "pilotfish_served", "jaccard", "dense_only"):
        if not all(method in r for r in results):
            continue
        overall[method] = {
            f"recall@{k}": round(
                sum(
                    r[method][f"recall@{k}"] * int(r["cases"])  # type: ignore[index]
                    for r in results
                )
                / max(1, total),
                3,
            )
            for k in KS
        }
    print(json.dumps({"overall": overall, "cases": total}), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"repos": results, "overall": overall}, indent=2))


if __name__ == "__main__":
    main()
