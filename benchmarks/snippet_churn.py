"""How often the snippets at the top of the prompt change while a block is typed (no model).

    python benchmarks/snippet_churn.py --repo DIR --file REL --start-line 82 --lines 14

Replays ``latency.py``'s typing trace of a file of (a copy of) ``DIR`` through
``Index.retrieve`` as the default 0.5B is served (similar code only; no embeddings) and counts
the keystrokes after which the snippets differ from the previous ones: as retrieved, and as
``lsp_server/engine/sticky.py`` keeps them, for several reaches. Each change makes the model
evaluate the whole prompt again.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
from pathlib import Path

from latency import build_trace
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.types import CursorContext
from pilotfish.lsp_server.engine.sticky import Shown, sticky_snippets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--start-line", type=int, default=82)
    parser.add_argument("--lines", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pf-churn-"))
    try:
        root = work / "repo"
        shutil.copytree(args.repo, root, ignore=shutil.ignore_patterns(".git"))
        index = Index(root, work / "data", IndexConfig(embeddings=False))
        index.build()
        source = (root / args.file).read_text(encoding="utf-8")
        _, edits, _ = build_trace(source, args.start_line, args.lines, args.seed, 1.0)
        retrieved = []
        for text, line, col, _ in edits:
            lines = text.split("\n")
            ctx = CursorContext(
                prefix="\n".join([*lines[:line], lines[line][:col]]),
                suffix="\n".join([lines[line][col:], *lines[line + 1:]]),
                language="python", path=str(root / args.file), repo_root=str(root), line=line)
            retrieved.append((line, index.retrieve(ctx, budget_tokens=384, only_similar=True)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    keys = [tuple((s.path, s.start_line) for s in snips) for _, snips in retrieved]
    changed = sum(a != b for a, b in itertools.pairwise(keys))
    print(f"{len(edits)} keystrokes; as retrieved, the snippets changed {changed} times")
    for reach in (0, 4, 6, 8, 12):
        shown: Shown | None = None
        changes = 0
        for line, snips in retrieved:
            kept = sticky_snippets(shown, line, snips, reach=reach)
            if shown is not None and kept.snippets != shown.snippets:
                changes += 1
            shown = kept
        print(f"sticky, reach {reach:2d} lines: {changes} changes")


if __name__ == "__main__":
    main()
