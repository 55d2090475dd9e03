"""What the prompt's other-file snippets hold for held-out lines, without running the model.

    python benchmarks/window_hits.py --repo DIR [--repo DIR ...] [--commits 10] [--cross 150]
        [--position before-name] [--conditions jaccard,pilotfish] [--json OUT]

The cross-file held-out lines of ``completion_quality.py`` (same cases, same documents, same
engine and prompt stage, the served model's tokenizer), but instead of completing each line it
checks the snippets the prompt would show:

* ``line``: one of them holds the held-out line itself (stripped), so a model could copy it;
* ``next name``: one of them holds the next identifier the line needs after what is typed
  (for ``before-name``, the cross-file name itself);
* ``shown``: the prompt shows any snippet at all.

A cheap proxy for a retrieval change (seconds, not the hour a 72-line completion run takes on
two cores): exact match can only come from context on lines whose answer the context holds.
It also counts the lines that exist verbatim in another file with at least three characters
typed (``elsewhere``: a search for lines that start as typed would find them), and how many of
those the condition's snippets show (``elsewhere shown``): how much such a lookup could add.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from pathlib import Path

from completion_quality import (
    EXTRA_CONDITIONS,
    Jaccard,
    Trees,
    case_request,
    collect,
    conditions_for,
)
from pilotfish.lsp_server.engine.backends import load_generator
from pilotfish.lsp_server.engine.engine import CompletionEngine, Pending
from pilotfish.lsp_server.indexing import IndexService
from pilotfish.lsp_server.settings import CompletionSettings, Settings

IDENT = re.compile(r"[A-Za-z_]\w*")


def lines_by_file(jaccard: Jaccard) -> dict[str, set[str]]:
    """Each Python file's stripped lines, from the baseline's windows (they cover every line)."""
    out: dict[str, set[str]] = {}
    for rel, _, _, text, _ in jaccard.windows:
        out.setdefault(rel, set()).update(line.strip() for line in text.split("\n"))
    return out


def count(repo_root: Path, conditions: list[str], commits: int, cross: int, seed: int,
          position: str, rows: list[dict[str, object]] | None = None
          ) -> dict[str, dict[str, int]]:
    """Per condition, how many cross-file lines its snippets hold; ``rows`` gets each line's."""
    settings = Settings().model
    generator = load_generator(settings)  # its tokenizer budgets the prompt; it never runs
    totals: dict[str, dict[str, int]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="pf-hits-"))
    trees = Trees(repo_root, scratch)
    try:
        cases = [c for c in collect(repo_root, trees, commits, cross, cross, seed) if c.cross_name]
        jaccards: dict[str, Jaccard] = {}
        files: dict[str, dict[str, set[str]]] = {}
        for case in cases:
            service: IndexService = trees.get(case.parent)
            root = service.repo_root
            if case.parent not in jaccards:
                jaccards[case.parent] = Jaccard(root)
                files[case.parent] = lines_by_file(jaccards[case.parent])
            request, typed = case_request(repo_root, case, position, root)
            target = case.target.strip()
            rest = case.target[len(typed):].strip()
            match = IDENT.match(rest)
            next_name = match.group(0) if match else ""
            # The line starts with what is typed: a lookup by that finds it where it exists.
            elsewhere = len(typed.strip()) >= 3 and any(
                target in lines for rel, lines in files[case.parent].items() if rel != case.path)
            chosen = conditions_for(conditions, service, jaccards[case.parent], settings.name)
            detail: dict[str, object] = {"repo": repo_root.name, "path": case.path,
                                         "line": case.line + 1, "target": target}
            for name, (retrieve, style, line_start) in chosen.items():
                engine = CompletionEngine(generator, CompletionSettings(), retrieve,
                                          context_style=style, context_at_line_start=line_start)
                prepared = engine.prepare(request)
                shown = prepared.prompt.snippets if isinstance(prepared, Pending) else ()
                texts = [s.text for s in shown]
                line_hit = any(target == line.strip() for t in texts for line in t.split("\n"))
                name_hit = bool(next_name) and any(
                    re.search(rf"\b{re.escape(next_name)}\b", t) for t in texts)
                row = totals.setdefault(name, dict.fromkeys(
                    ("lines", "line", "next name", "shown", "elsewhere", "elsewhere shown"), 0))
                row["lines"] += 1
                row["line"] += line_hit
                row["next name"] += name_hit
                row["shown"] += bool(shown)
                row["elsewhere"] += elsewhere
                row["elsewhere shown"] += elsewhere and line_hit
                detail[name] = {"line": line_hit, "name": name_hit,
                                "snippets": [f"{s.path}:{s.start_line}-{s.end_line}"
                                             for s in shown]}
            if rows is not None:
                rows.append(detail)
    finally:
        trees.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, action="append", required=True)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--cross", type=int, default=150, help="cross-file lines per repository")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--position", choices=("line-start", "before-name", "in-name"),
                        default="before-name")
    parser.add_argument("--conditions", default="jaccard,pilotfish",
                        help=f"comma-separated: jaccard, pilotfish, {', '.join(EXTRA_CONDITIONS)}")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the totals and each line's snippets and hits")
    args = parser.parse_args()
    conditions = [c for c in args.conditions.split(",") if c and c != "in-file"]
    totals: dict[str, dict[str, int]] = {}
    lines: list[dict[str, object]] = []
    for repo in args.repo:
        for name, row in count(repo.resolve(), conditions, args.commits, args.cross, args.seed,
                               args.position, lines).items():
            into = totals.setdefault(name, dict.fromkeys(row, 0))
            for key, value in row.items():
                into[key] += value
    print("| condition | lines | holds the line | holds the next name | shows any | "
          "line elsewhere, shown |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in totals.items():
        n = max(1, row["lines"])
        print(f"| {name} | {row['lines']} | {row['line']} ({100 * row['line'] / n:.1f}%) | "
              f"{row['next name']} ({100 * row['next name'] / n:.1f}%) | {row['shown']} | "
              f"{row['elsewhere shown']} of {row['elsewhere']} |")
    if args.json:
        args.json.write_text(json.dumps({"totals": totals, "rows": lines}, indent=2))


if __name__ == "__main__":
    main()
