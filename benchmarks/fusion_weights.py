"""Fit the learned fusion's weights (code_index/fusion.py) on held-out lines of real code.

    python benchmarks/fusion_weights.py [--repo DIR ...] [--lines 200] [--l2 0.001]

Cases are those of ``retrieval_recall.py`` (a held-out line that uses a name defined once, in
another file), at both cursor positions (line start, typed up to the name), taken from
repositories that recall benchmark does not report on: by default stdlib packages (idlelib,
unittest, logging, http, tkinter, lib2to3, distutils where this Python still ships them) and
the libraries installed beside pilotfish (rich, jinja2, requests, starlette, pygls, peft).
A candidate is the target when it covers the definition's first line and shows its name (the
recall benchmark's ``pilotfish_shown``). For each case the retriever's candidates and their
evidence are taken as served (``Retriever.last_evidence``); the model is linear over
fusion.py's features, fitted with a listwise loss (softmax over a case's candidates, the
definition the line uses as the target). It prints recall@1/5/10 of the shipped and of the
fitted weights on these cases, and the fitted ``WEIGHTS`` to paste into fusion.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
from pilotfish.code_index import fusion
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from retrieval_recall import collect_cases, cursor_at, default_repos

KS = (1, 5, 10)
STDLIB_PACKAGES = ("idlelib", "unittest", "logging", "http", "tkinter", "lib2to3", "distutils")
INSTALLED = ("rich", "jinja2", "requests", "starlette", "pygls", "peft")


def training_repos() -> list[Path]:
    """The default training repositories that exist here, none of the recall benchmark's."""
    stdlib = Path(sysconfig.get_path("stdlib"))
    repos = [stdlib / name for name in STDLIB_PACKAGES if (stdlib / name).is_dir()]
    for name in INSTALLED:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            repos.append(Path(next(iter(spec.submodule_search_locations))))
    reported = {p.resolve() for p in default_repos()}
    reported |= {stdlib / name for name in ("multiprocessing", "xml", "importlib")}
    return [r for r in repos if r.resolve() not in reported]


Group = tuple[np.ndarray, np.ndarray]  # a case's feature rows, and which rows are the target


def collect(root: Path, lines: int, seed: int) -> list[Group]:
    data = Path(tempfile.mkdtemp(prefix="pf-fusion-"))
    try:
        index = Index(root, data, IndexConfig(embeddings=False, dependency_docs=False,
                                              dense_budget_ms=None))
        index.build(embed=False)
        groups: list[Group] = []
        for position in ("line-start", "before-name"):
            for case in collect_cases(index, root, lines, seed, "ast"):
                _, _, ctx = cursor_at(root, case, position)
                index.retrieve(ctx, budget_tokens=10**6, max_snippets=max(KS))
                rows, cursor = index.retriever.last_evidence
                if not rows:
                    continue
                x = fusion.matrix([e for e, _ in rows], cursor)
                # The target must be shown, not only covered: a class's range covers its
                # methods' lines, and a label without the name would learn "longer is better".
                shows = re.compile(rf"\b{re.escape(case.name)}\b")
                y = np.array([float(c.path == case.target_path
                                    and c.start_line <= case.target_line <= c.end_line
                                    and bool(shows.search(c.text)))
                              for _, c in rows])
                groups.append((x, y))
        index.close()
        return groups
    finally:
        shutil.rmtree(data, ignore_errors=True)


def fit(groups: list[Group], l2: float, iters: int = 600, lr: float = 0.3) -> np.ndarray:
    """Linear weights minimising the softmax cross-entropy of each case's target."""
    usable = [(x, y / y.sum()) for x, y in groups if y.any()]
    w = np.zeros(usable[0][0].shape[1])
    for _ in range(iters):
        grad = np.zeros_like(w)
        for x, y in usable:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += x.T @ (p - y)
        w -= lr * (grad / len(usable) + l2 * w)
    return w


def recall(groups: list[Group], w: np.ndarray) -> list[float]:
    """Recall@k of ordering each case's candidates by ``x @ w`` (ties: the retriever's order)."""
    hits = dict.fromkeys(KS, 0)
    for x, y in groups:
        order = np.argsort(-(x @ w), kind="stable")
        found = np.flatnonzero(y[order])
        for k in KS:
            hits[k] += bool(found.size and found[0] < k)
    return [round(hits[k] / max(1, len(groups)), 3) for k in KS]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repo", type=Path, action="append", default=None)
    parser.add_argument("--lines", type=int, default=200, help="cases per repository")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--l2", type=float, default=1e-3)
    args = parser.parse_args()
    groups: list[Group] = []
    started = time.perf_counter()
    for repo in args.repo or training_repos():
        found = collect(repo.resolve(), args.lines, args.seed)
        print(f"{repo}: {len(found)} cases", flush=True)
        groups.extend(found)
    w = fit(groups, args.l2)
    shipped = np.array(fusion.WEIGHTS)
    print(f"\n{len(groups)} cases, {time.perf_counter() - started:.0f} s")
    print("| weights | recall@1 | recall@5 | recall@10 |\n|---|---|---|---|")
    for name, weights in (("shipped (fusion.WEIGHTS)", shipped), ("fitted now", w)):
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r in recall(groups, weights)) + " |")
    print("\nWEIGHTS: tuple[float, ...] = (")
    for name, value in zip(fusion.FEATURES, w, strict=True):
        print(f"    {value:.3f},  # {name}")
    print(")")


if __name__ == "__main__":
    main()
