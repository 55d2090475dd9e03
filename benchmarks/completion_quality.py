"""Line-completion quality on held-out lines of a real history: in-file vs Jaccard vs pilotfish.

    python benchmarks/completion_quality.py [--repo DIR] [--commits 30] [--lines 36]
        [--cross 20] [--seed 0] [--position line-start|before-name|in-name] [--conditions ...]
        [--model NAME] [--json OUT] [--reuse EARLIER.json]

Held-out lines are lines that the newest first-parent commits of ``--repo`` (default: this
repository) added to Python files. The document is the file after the commit with the line
blanked (cursor after its indentation, the rest of the file as suffix); the repository context
is the tree of the commit's parent (``git archive`` into a temporary folder, indexed there), so
nothing the commit added can leak in through retrieval. A line is *cross-file* when it uses,
as code, a function, class, method or constant that the parent's index defines only in other
files and that the edited file does not define (import lines excluded).

Three conditions run through the same :class:`CompletionEngine`, the same loaded model and the
same settings (greedy decoding, default prompt budgets); only the ``retrieve`` callable differs:

* ``in-file``: no retrieval;
* ``jaccard``: the Copilot / RepoCoder baseline: 20-line windows (stride 10) of every other
  Python file of the parent tree, ranked by Jaccard similarity of their identifier sets with
  the 20 lines before the cursor, handed over as snippets (the prompt stage keeps what fits);
* ``pilotfish``: :meth:`IndexService.retrieve` on the parent tree's index (no embeddings),
  shown as the server shows it (at line start too): for models whose registry entry leaves
  definitions out (the 0.5B), only the similar-code windows that beat the file's own, as
  comments; for the others led by similar code.

More conditions for presentation experiments (``--conditions``, comma-separated), all with
the snippets shown at the start of a line too: ``pilotfish-always`` (as retrieved),
``pilotfish-comments`` (the same snippets as comment lines at the top of the file instead of
the repository-level format), ``pilotfish-defs`` (only definitions: symbol and doc snippets, at
most two), ``pilotfish-defs-comments`` (both), ``pilotfish-top2`` (the two best snippets,
whatever their source), ``jaccard+pilotfish`` (the best Jaccard window, then pilotfish's snippets),
``pilotfish-similar`` (led by similar code, as the models with definitions are served, whatever
the model), ``pilotfish-similar-only`` (only the similar-code windows that beat the file's own;
none: the file alone; the 0.5B's served ``pilotfish`` mid-line), ``jaccard-comments`` and
``pilotfish-comments-served`` (the baseline's and the served snippets as comment lines; the
served ``pilotfish`` shows them as the model is served: comments for the 0.5B since session 9),
``pilotfish-repo-served`` (the served snippets in the repository-level format),
``pilotfish-not-at-line-start`` (the served snippets, but nothing where nothing is typed on the
line: what the 0.5B was served before session 11; session 10's ``pilotfish-served-everywhere``
is today's ``pilotfish``). Each
row records every snippet's reason (similar-code windows give their Jaccard score there) and
``jaccard_top``, the baseline's best window score for the line.

Scored on the completion's first line against the held-out line: exact match, edit similarity
(1 - Levenshtein / max length) and identifier F1 (the metrics of ``training/evaluate.py``).
Prints one JSON line per case, then Markdown tables (all lines, cross-file lines, other lines).
Each completion records a digest of its prompt (with the model, backend and limits); ``--reuse``
with an earlier run's ``--json`` (same case options) keeps the predictions whose prompt is
unchanged, so measuring a retrieval change costs model time only on the lines it changed;
within a run, conditions that send the same prompt run the model once.
The sample is stratified (``--cross`` of the lines are cross-file), so "all" is not the
history's natural mix.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import git
from pilotfish.code_index.types import CursorContext, Snippet
from pilotfish.lsp_server.engine.backends import load_generator
from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.engine import Completion, CompletionEngine, Pending, RetrieveFn
from pilotfish.lsp_server.engine.generate import Generator
from pilotfish.lsp_server.engine.templates import ContextStyle
from pilotfish.lsp_server.indexing import IndexService
from pilotfish.lsp_server.models.registry import served_retrieval
from pilotfish.lsp_server.settings import CompletionSettings, IndexSettings, Settings
from pilotfish.training.evaluate import score
from pilotfish.training.history import file_changes, first_parent_commits

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CONDITIONS = ("in-file", "jaccard", "pilotfish")
EXTRA_CONDITIONS = (
    "pilotfish-always", "pilotfish-comments", "pilotfish-defs", "pilotfish-defs-comments",
    "pilotfish-similar", "pilotfish-similar-only",
    "pilotfish-top2", "jaccard+pilotfish", "jaccard-comments", "pilotfish-comments-served",
    "pilotfish-repo-served", "pilotfish-not-at-line-start",
)
METRICS = ("exact_match", "edit_similarity", "identifier_f1")
DEF_KINDS = ("function", "method", "class", "constant")


@dataclass(frozen=True)
class Case:
    """One held-out line: the commit that added it and where."""

    commit: str
    parent: str
    path: str
    line: int  # 0-based
    indent: str
    target: str
    cross_name: str  # the other file's name it uses, or "" when not cross-file


def candidate_lines(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, str, str]]:
    """(0-based line, indentation, code) of added lines worth completing."""
    lines = text.split("\n")
    out = []
    in_doc = False
    doc_lines: set[int] = set()
    for i, line in enumerate(lines):  # lines inside triple-quoted strings are prose
        quotes = line.count('"""') + line.count("'''")
        if in_doc or quotes:
            doc_lines.add(i)
        if quotes % 2:
            in_doc = not in_doc
    for start, end in spans:
        for i in range(start, min(end, len(lines))):
            code = lines[i].strip()
            if len(code) < 4 or code.startswith("#") or i in doc_lines:
                continue
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip(" \t"))]
            out.append((i, indent, code))
    return out


def definitions(service: IndexService) -> dict[str, set[str]]:
    """Name -> repository Python files defining it (functions, methods, classes, constants)."""
    store = service.store()
    assert store is not None
    defs: dict[str, set[str]] = {}
    for name, path, kind in store.reader().execute(
        "SELECT s.name, f.path, s.kind FROM symbols s JOIN files f ON f.id=s.file_id "
        "WHERE f.origin='repo' AND f.language='python'"
    ):
        if kind in DEF_KINDS and len(name) >= 4 and not name.startswith("__"):
            defs.setdefault(name, set()).add(path)
    return defs


def cross_file_name(code: str, path: str, file_text: str, defs: dict[str, set[str]]) -> str:
    """A name the line uses as code that only other files define, or ``""``."""
    if code.startswith(("import ", "from ", "def ", "class ", "@")):
        return ""
    bare = re.sub(r"#.*|'[^']*'|\"[^\"]*\"", "", code)
    for name in dict.fromkeys(IDENT.findall(bare)):
        places = defs.get(name)
        if not places or path in places:
            continue
        # Defined, assigned or bound in this file (a local that shares the name): not cross-file.
        if re.search(
            rf"^\s*(def|class)\s+{name}\b|\b{name}\s*(:[^=\n]*)?=(?!=)|"
            rf"\bfor\s+{name}\b|\bas\s+{name}\b|[(,]\s*{name}\s*[:,)=]",
            file_text,
            re.M,
        ):
            continue
        if re.search(rf"(\.{name}\b|\b{name}\s*[(.\[)\],:]|=\s*{name}\b)", bare):
            return name
    return ""


class Trees:
    """Parent trees extracted with ``git archive`` and indexed once each."""

    def __init__(self, repo_root: Path, scratch: Path) -> None:
        self.repo_root = repo_root
        self.scratch = scratch
        self._open: dict[str, IndexService] = {}

    def get(self, sha: str) -> IndexService:
        if sha not in self._open:
            root = self.scratch / sha[:12]
            root.mkdir(parents=True)
            archive = subprocess.run(
                ["git", "-C", str(self.repo_root), "archive", sha],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
            service = IndexService(
                root, self.scratch / f"{sha[:12]}.data", IndexSettings(embeddings=False)
            )
            service.start()
            if not service.wait_ready(300):
                raise RuntimeError(f"index of {sha[:12]} not ready")
            self._open[sha] = service
        return self._open[sha]

    def close(self) -> None:
        for service in self._open.values():
            service.close()


def collect(
    repo_root: Path, trees: Trees, commits: int, lines: int, cross: int, seed: int
) -> list[Case]:
    """A stratified sample: ``cross`` cross-file lines, the rest other lines."""
    repo = git.Repo(repo_root)
    pool: list[Case] = []
    history = [c for c in first_parent_commits(repo, max_commits=commits) if c.parent]
    for commit in history:
        assert commit.parent is not None
        changes = [c for c in file_changes(repo, commit) if c.path.endswith(".py")]
        if not changes:
            continue
        defs = definitions(trees.get(commit.parent))
        for change in changes:
            spans = [(s.start, s.end) for s in change.spans]
            for i, indent, code in candidate_lines(change.text, spans):
                name = cross_file_name(code, change.path, change.text, defs)
                pool.append(Case(commit.sha, commit.parent, change.path, i, indent, code, name))
    rng = random.Random(seed)
    rng.shuffle(pool)
    seen: set[str] = set()
    picked_cross: list[Case] = []
    picked_other: list[Case] = []
    for case in pool:  # one case per distinct line text
        if case.target in seen:
            continue
        seen.add(case.target)
        if case.cross_name and len(picked_cross) < cross:
            picked_cross.append(case)
        elif not case.cross_name and len(picked_other) < lines - cross:
            picked_other.append(case)
    return picked_cross + picked_other


class Jaccard:
    """The baseline retriever over one tree: 20-line windows ranked by identifier Jaccard."""

    def __init__(self, root: Path, size: int = 20, stride: int = 10, k: int = 8) -> None:
        self.root = root
        self.k = k
        self.windows: list[tuple[str, int, int, str, frozenset[str]]] = []
        for file in sorted(root.rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            if rel.startswith(".") or "/." in rel:
                continue
            lines = file.read_text(encoding="utf-8", errors="replace").split("\n")
            for start in range(0, max(1, len(lines) - size + stride), stride):
                chunk = "\n".join(lines[start : start + size])
                ids = frozenset(IDENT.findall(chunk))
                if ids:
                    end = start + min(size, len(lines) - start)
                    self.windows.append((rel, start + 1, end, chunk, ids))

    def __call__(self, ctx: CursorContext, budget_tokens: int) -> list[Snippet]:
        query = frozenset(IDENT.findall("\n".join(ctx.prefix.split("\n")[-21:])))
        here = Path(ctx.path).relative_to(self.root).as_posix() if ctx.path else ""
        scored = []
        for rel, lo, hi, text, ids in self.windows:
            if rel == here:
                continue
            inter = len(query & ids)
            if inter:
                scored.append((inter / len(query | ids), rel, lo, hi, text))
        scored.sort(key=lambda t: -t[0])
        return [
            Snippet(
                path=rel,
                start_line=lo,
                end_line=hi,
                text=text,
                score=s,
                source="lexical",
                reason=f"jaccard {s:.3f}",
            )
            for s, rel, lo, hi, text in scored[: self.k]
        ]


def definitions_only(retrieve: RetrieveFn, keep: int = 2) -> RetrieveFn:
    """Only the retriever's definitions (symbol and doc snippets), at most ``keep``."""

    def wrapped(ctx: CursorContext, budget: int) -> list[Snippet]:
        return [s for s in retrieve(ctx, budget) if s.source in ("symbol", "doc")][:keep]

    return wrapped


def conditions_for(
    names: Sequence[str], service: IndexService, jaccard: Jaccard, model: str,
) -> dict[str, tuple[RetrieveFn | None, ContextStyle, bool]]:
    """Each named condition's retriever, snippet style and line-start rule.

    The rule is whether snippets are shown where nothing is typed on the line yet (served: yes,
    since session 11). The served ``pilotfish`` retrieves as ``Runtime`` serves ``model`` (the
    registry's ``served_retrieval``: similar code only for the 0.5B; led by it for the others).
    """

    def pilotfish(ctx: CursorContext, budget: int) -> Sequence[Snippet]:
        return service.retrieve(ctx, budget_tokens=budget)

    policy = served_retrieval(model)

    def served(ctx: CursorContext, budget: int) -> Sequence[Snippet]:
        return service.retrieve(ctx, budget_tokens=budget, similar_code=policy.similar_code,
                                only_similar=policy.only_similar)

    def similar(ctx: CursorContext, budget: int) -> Sequence[Snippet]:
        return service.retrieve(ctx, budget_tokens=budget, similar_code=True)

    table: dict[str, tuple[RetrieveFn | None, ContextStyle, bool]] = {
        "in-file": (None, "repo", True),
        "jaccard": (jaccard, "repo", True),  # the Copilot-style baseline: always on
        "jaccard-comments": (jaccard, "comments", True),
        "pilotfish": (served, policy.context_style, True),
        "pilotfish-comments-served": (served, "comments", True),
        "pilotfish-repo-served": (served, "repo", True),
        # Served before session 11 to the 0.5B: nothing shown where nothing is typed.
        "pilotfish-not-at-line-start": (served, policy.context_style, False),
        "pilotfish-always": (pilotfish, "repo", True),
        "pilotfish-comments": (pilotfish, "comments", True),
        "pilotfish-defs": (definitions_only(pilotfish), "repo", True),
        "pilotfish-defs-comments": (definitions_only(pilotfish), "comments", True),
        "pilotfish-similar": (similar, "repo", True),
        "pilotfish-similar-only": (
            lambda ctx, budget: [s for s in similar(ctx, budget) if s.source == "similar"],
            "repo", True,
        ),
        "pilotfish-top2": (lambda ctx, budget: list(pilotfish(ctx, budget))[:2], "repo", True),
        "jaccard+pilotfish": (
            lambda ctx, budget: [*jaccard(ctx, budget)[:1], *pilotfish(ctx, budget)], "repo", True
        ),
    }
    return {name: table[name] for name in names}


def typed_part(case: Case, position: str) -> str:
    """What is already typed on the held-out line when the completion is asked for.

    ``line-start``: nothing (the cursor after the indentation). ``before-name``: the line up to
    the cross-file name it uses (nothing for other lines), the moment an editor asks again
    after the user typed ``x = `` or ``obj.``; ``in-name``: two letters of the name more (what
    retrieval's typed-prefix lookup needs). The rest of the line is the target.
    """
    if position == "line-start" or not case.cross_name:
        return ""
    match = re.search(rf"\b{re.escape(case.cross_name)}\b", case.target)
    if match is None:
        return ""
    typed = 2 if position == "in-name" else 0  # the first letters of the name, as typed
    return case.target[: match.start() + typed]


def case_request(repo_root: Path, case: Case, position: str, tree: Path
                 ) -> tuple[CompletionRequest, str]:
    """A held-out line's completion request, and what is typed on the line.

    The document is the file after its commit with the line blanked up to what is typed at
    ``position``; the paths are those of the parent's tree extracted at ``tree``.
    """
    post = git.Repo(repo_root).commit(case.commit).tree / case.path
    text_lines = post.data_stream.read().decode("utf-8").split("\n")
    typed = typed_part(case, position)
    doc = "\n".join([*text_lines[: case.line], case.indent + typed, *text_lines[case.line + 1 :]])
    request = CompletionRequest(
        text=doc,
        line=case.line,
        column=len(case.indent) + len(typed),
        path=str(tree / case.path),
        language_id="python",
        repo_root=str(tree),
    )
    return request, typed


def run(
    repo_root: Path,
    commits: int,
    lines: int,
    cross: int,
    seed: int,
    conditions: Sequence[str] = CONDITIONS,
    position: str = "line-start",
    model: str = "",
    reuse: dict[tuple[str, str, int], dict[str, object]] | None = None,
) -> dict[str, object]:
    """Collect the cases, run the conditions, return per-case rows and the summary.

    ``reuse``: rows of an earlier run by (commit, path, line); a condition whose prompt is
    byte-for-byte the one that run sent, to the same model, backend and limits (its ``prompt``
    digest), keeps that run's prediction instead of running the model again (decoding is
    greedy), so a retrieval change costs model time only on the lines whose prompt it changed.
    """
    reuse = reuse or {}
    scratch = Path(tempfile.mkdtemp(prefix="pf-quality-"))
    trees = Trees(repo_root, scratch)
    try:
        t0 = time.perf_counter()
        cases = collect(repo_root, trees, commits, lines, cross, seed)
        collect_s = time.perf_counter() - t0
        settings = Settings().model
        if model:
            settings = replace(settings, name=model)
        generator: Generator = load_generator(settings)
        completion = CompletionSettings()
        jaccards: dict[str, Jaccard] = {}
        rows: list[dict[str, object]] = []
        done: dict[str, str] = {}  # this run's predictions by prompt digest
        for case in cases:
            service = trees.get(case.parent)
            root = service.repo_root
            if case.parent not in jaccards:
                jaccards[case.parent] = Jaccard(root)
            request, typed = case_request(repo_root, case, position, root)
            doc = request.text
            target = case.target[len(typed) :]
            row: dict[str, object] = {**asdict(case)}
            baseline = jaccards[case.parent](
                CursorContext(prefix="\n".join(doc.split("\n")[: case.line + 1]), suffix="",
                              language="python", path=str(root / case.path)), 0)
            row["jaccard_top"] = round(baseline[0].score, 4) if baseline else 0.0
            chosen = conditions_for(conditions, service, jaccards[case.parent], settings.name)
            for name, (retrieve, style, line_start) in chosen.items():
                engine = CompletionEngine(generator, completion, retrieve, context_style=style,
                                          context_at_line_start=line_start)
                started = time.perf_counter()
                prepared = engine.prepare(request)
                # What decides the text: the model, its backend and the engine's cache key
                # (prompt, adapter, token and line limits).
                digest = (hashlib.sha256(repr((generator.model_id, generator.backend,
                                               prepared.key)).encode()).hexdigest()[:16]
                          if isinstance(prepared, Pending) else "")
                earlier = reuse.get((case.commit, case.path, case.line), {}).get(name)
                if digest and isinstance(earlier, dict) and earlier.get("prompt") == digest:
                    row[name] = {**earlier, "reused": True}  # the same prompt, greedy: same text
                    continue
                if digest and digest in done:  # another condition sent this prompt: same text
                    first, seconds = done[digest], 0.0
                    shown = prepared.prompt.snippets if isinstance(prepared, Pending) else ()
                else:
                    result = (prepared if isinstance(prepared, Completion)
                              else engine.run(prepared, threading.Event()))
                    first = result.text.split("\n", 1)[0] if result.text else ""
                    seconds, shown = time.perf_counter() - started, tuple(result.snippets)
                    if digest:
                        done[digest] = first
                row[name] = {
                    "prediction": first,
                    "seconds": round(seconds, 2),
                    "snippets": [f"{s.path}:{s.start_line}-{s.end_line}" for s in shown],
                    "reasons": [s.reason for s in shown],
                    "prompt": digest,
                    **{k: round(v, 4) for k, v in score(first, target).items()},
                }
            print(json.dumps(row), flush=True)
            rows.append(row)
        return {
            "rows": rows,
            "collect_seconds": round(collect_s, 1),
            "model": generator.model_id,
            "backend": generator.backend,
        }
    finally:
        trees.close()
        shutil.rmtree(scratch, ignore_errors=True)


def summarise(
    rows: Sequence[dict[str, object]], conditions: Sequence[str] = CONDITIONS
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean of each metric per condition, for all lines, cross-file lines and the others."""
    groups = {
        "all": list(rows),
        "cross-file": [r for r in rows if r["cross_name"]],
        "other": [r for r in rows if not r["cross_name"]],
    }
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group, members in groups.items():
        out[group] = {}
        for cond in conditions:
            out[group][cond] = {
                m: round(100 * sum(r[cond][m] for r in members) / max(1, len(members)), 1)  # type: ignore[index]
                for m in METRICS
            }
            out[group][cond]["n"] = len(members)
    return out


def markdown(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """The summary as one Markdown table."""
    head = "| lines | n | condition | exact match | edit similarity | identifier F1 |"
    out = [head, "|---|---:|---|---:|---:|---:|"]
    for group, conds in summary.items():
        for cond, m in conds.items():
            out.append(
                f"| {group} | {int(m['n'])} | {cond} | {m['exact_match']:.1f} | "
                f"{m['edit_similarity']:.1f} | {m['identifier_f1']:.1f} |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--commits", type=int, default=30, help="newest first-parent commits")
    parser.add_argument("--lines", type=int, default=36)
    parser.add_argument("--cross", type=int, default=20, help="how many of them cross-file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--position",
        choices=("line-start", "before-name", "in-name"),
        default="line-start",
        help="where on the held-out line the cursor is (see typed_part)",
    )
    parser.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help=f"comma-separated, from {', '.join(CONDITIONS + EXTRA_CONDITIONS)}",
    )
    parser.add_argument("--model", default="", help="a model name (default: the served one)")
    parser.add_argument(
        "--reuse", type=Path, default=None,
        help="the --json of an earlier run with the same case options: lines whose prompt is "
        "unchanged keep its predictions (the model runs only where the prompt changed)",
    )
    args = parser.parse_args()
    conditions = [c for c in args.conditions.split(",") if c]
    unknown = set(conditions) - set(CONDITIONS + EXTRA_CONDITIONS)
    if unknown:
        parser.error(f"unknown conditions: {', '.join(sorted(unknown))}")
    reuse: dict[tuple[str, str, int], dict[str, object]] = {}
    if args.reuse:
        for row in json.loads(args.reuse.read_text())["rows"]:
            reuse[(row["commit"], row["path"], row["line"])] = row
    started = time.perf_counter()
    result = run(
        args.repo.resolve(), args.commits, args.lines, args.cross, args.seed, conditions,
        args.position, args.model, reuse,
    )
    rows: list[dict[str, object]] = result["rows"]  # type: ignore[assignment]
    summary = summarise(rows, conditions)
    print(markdown(summary))
    reused = sum(1 for r in rows for c in conditions
                 if isinstance(r.get(c), dict) and r[c].get("reused"))  # type: ignore[union-attr]
    print(
        f"{len(rows)} lines, {time.perf_counter() - started:.0f} s, "
        f"{result['model']} on {result['backend']}"
        + (f"; {reused} of {len(rows) * len(conditions)} completions reused" if args.reuse else "")
    )
    if args.json:
        args.json.write_text(json.dumps({**result, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
