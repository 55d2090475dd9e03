"""Fit the learned fusion's weights (code_index/fusion.py) on held-out lines of real code.

    python benchmarks/fusion_weights.py [--repo DIR ...] [--lines 400] [--l2 0.001]
        [--seed 0] [--hidden 8] [--epochs 200] [--fit-seed 0] [--write]

Cases are those of ``retrieval_recall.py`` (a held-out line that uses a name defined once, in
another file), at both cursor positions (line start, typed up to the name), taken from
repositories that recall benchmark does not report on: by default stdlib packages (idlelib,
unittest, logging, http, tkinter, lib2to3, distutils where this Python still ships them) and
the libraries installed beside pilotfish (rich, jinja2, requests, starlette, pygls, peft).
A candidate is the target when it covers the definition's first line and shows its name (the
recall benchmark's ``pilotfish_shown``). For each case the retriever's candidates and their
evidence are taken as served (``Retriever.last_evidence``); the model (``fusion.Model``: a
linear term and one small tanh layer over fusion.py's features) is fitted with a listwise loss
(softmax over a case's candidates, the definition the line uses as the target): the linear
term alone first (gradient descent), then both together (Adam, full batch, seeded). It prints
recall@1/5/10 of the shipped and of the fitted model on these cases; ``--write`` replaces
``code_index/fusion_model.json`` (``fusion.Model.save``: a temporary file, then renamed).
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


def fit_linear(groups: list[Group], l2: float, iters: int = 600, lr: float = 0.3) -> np.ndarray:
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


def fit(groups: list[Group], l2: float, hidden: int = 8, epochs: int = 200, lr: float = 0.01,
        seed: int = 0) -> fusion.Model:
    """The linear fit, then the linear term and a ``hidden``-unit tanh layer fitted together.

    The hidden layer starts small and random (its output weights at zero, so the first model
    is the linear one) and Adam minimises the same listwise loss over all cases at once.
    """
    usable = [(x, y / y.sum()) for x, y in groups if y.any()]
    x_all = np.vstack([x for x, _ in usable])
    y_all = np.concatenate([y for _, y in usable])
    case = np.repeat(np.arange(len(usable)), [len(x) for x, _ in usable])
    rng = np.random.default_rng(seed)
    params = {"linear": fit_linear(groups, l2),
              "hidden": rng.normal(0.0, 0.1, (x_all.shape[1], hidden)),
              "bias": np.zeros(hidden), "out": np.zeros(hidden)}
    moment = {k: np.zeros_like(v) for k, v in params.items()}
    square = {k: np.zeros_like(v) for k, v in params.items()}
    for step in range(1, epochs + 1):
        h = np.tanh(x_all @ params["hidden"] + params["bias"])
        s = x_all @ params["linear"] + h @ params["out"]
        top = np.full(len(usable), -np.inf)
        np.maximum.at(top, case, s)
        e = np.exp(s - top[case])
        g = (e / np.bincount(case, e)[case] - y_all) / len(usable)  # d loss / d score
        gh = np.outer(g, params["out"]) * (1 - h * h)
        grads = {"linear": x_all.T @ g, "hidden": x_all.T @ gh, "bias": gh.sum(axis=0),
                 "out": h.T @ g}
        for k, grad in grads.items():
            if k != "bias":
                grad = grad + l2 * params[k]
            moment[k] = 0.9 * moment[k] + 0.1 * grad
            square[k] = 0.999 * square[k] + 0.001 * grad * grad
            params[k] -= lr * (moment[k] / (1 - 0.9**step)) / (
                np.sqrt(square[k] / (1 - 0.999**step)) + 1e-8)
    return fusion.Model(**params)


def recall(groups: list[Group], model: fusion.Model) -> list[float]:
    """Recall@k of ordering each case's candidates by the model (ties: the retriever's order)."""
    hits = dict.fromkeys(KS, 0)
    for x, y in groups:
        order = np.argsort(-model.score(x), kind="stable")
        found = np.flatnonzero(y[order])
        for k in KS:
            hits[k] += bool(found.size and found[0] < k)
    return [round(hits[k] / max(1, len(groups)), 3) for k in KS]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repo", type=Path, action="append", default=None)
    parser.add_argument("--lines", type=int, default=400,
                        help="cases per repository and cursor position")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=8, help="hidden units (0: linear only)")
    parser.add_argument("--epochs", type=int, default=200, help="Adam steps (full batch)")
    parser.add_argument("--fit-seed", type=int, default=0, help="the hidden layer's start")
    parser.add_argument("--write", action="store_true",
                        help=f"replace {fusion.MODEL_PATH.name} with the fitted model")
    args = parser.parse_args()
    groups: list[Group] = []
    started = time.perf_counter()
    for repo in args.repo or training_repos():
        found = collect(repo.resolve(), args.lines, args.seed)
        print(f"{repo}: {len(found)} cases", flush=True)
        groups.extend(found)
    model = fit(groups, args.l2, args.hidden, args.epochs if args.hidden else 0,
                seed=args.fit_seed)
    print(f"\n{len(groups)} cases, {time.perf_counter() - started:.0f} s")
    print("| model | recall@1 | recall@5 | recall@10 |\n|---|---|---|---|")
    for name, each in (("shipped (fusion_model.json)", fusion.MODEL), ("fitted now", model)):
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r in recall(groups, each)) + " |")
    if args.write:
        repos = ", ".join(sorted({r.name for r in (args.repo or training_repos())}))
        model.save(fusion.MODEL_PATH,
                   f"benchmarks/fusion_weights.py --lines {args.lines} --seed {args.seed} "
                   f"--l2 {args.l2} --hidden {args.hidden} --epochs {args.epochs} "
                   f"--fit-seed {args.fit_seed}; {len(groups)} cases of {repos}")
        print(f"wrote {fusion.MODEL_PATH}")


if __name__ == "__main__":
    main()
