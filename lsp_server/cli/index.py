"""``pilotfish index [DIR]``: build or refresh a repository's index, with progress and a summary."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ...code_index.config import IndexConfig
from ...code_index.embed import BACKENDS
from ...code_index.indexer import Index, IndexSummary, Progress
from .. import paths
from ..errors import UserError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``index``."""
    parser = subparsers.add_parser(
        "index", help="index a repository: symbols, lexical, docs and embeddings"
    )
    parser.add_argument("dir", nargs="?", type=Path, default=None,
                        help="repository folder (default: the enclosing git repository)")
    parser.add_argument("--full", action="store_true", help="redo every file, not only changes")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="symbols and lexical search only")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="gitignore-style pattern to leave out (repeatable)")
    parser.add_argument("--data-dir", default=None, help="override the index data folder")
    parser.add_argument("--embed-backend", default="auto", choices=BACKENDS,
                        help="embedding backend (PILOTFISH_EMBED_BACKEND overrides it)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="threads for embeddings (default 0: every core; the server "
                        "embeds in the background with one)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def repo_and_data_dir(folder: Path | None, data_dir: str | None) -> tuple[Path, Path]:
    """The repository root (given, else the enclosing repository) and its data folder."""
    if folder is not None:
        if not folder.exists():
            raise UserError(f"{folder}: no such folder")
        if not folder.is_dir():
            raise UserError(f"{folder}: is a file, not a folder")
        root = folder.resolve()
    else:
        root = paths.find_repo_root(Path.cwd())
    return root, paths.repo_data_dir(root, data_dir or "")


class _Bar:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.phase = ""

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.phase == "done":
            if self.tty:
                sys.stderr.write("\r\033[K")
            return
        if p.phase == self.phase and now - self.last < (0.1 if self.tty else 2.0) and (
            p.done != p.total
        ):
            return
        self.last, self.phase = now, p.phase
        pct = p.percentage
        if self.tty:
            filled = int(30 * (pct or 0) / 100)
            bar = "#" * filled + "-" * (30 - filled)
            sys.stderr.write(f"\r\033[K[{bar}] {pct or 0:3d}% {p.message}")
        else:
            sys.stderr.write(f"{p.message}\n")
        sys.stderr.flush()


def print_summary(summary: IndexSummary, root: Path, data_dir: Path) -> None:
    """The human-readable summary."""
    print(f"indexed {root}")
    print(f"  files: {summary.files} ({summary.changed} changed, {summary.removed} removed)")
    print(f"  symbols: {summary.symbols}  chunks: {summary.chunks}  docs: {summary.docs}"
          f"  dependency modules: {summary.dependency_files}")
    if summary.skipped:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items(),
                                                         key=lambda kv: -kv[1]))
        print(f"  skipped: {sum(summary.skipped.values())} ({parts})")
    print(f"  time: {summary.seconds:.1f} s (files {summary.parse_seconds:.1f} s, "
          f"embeddings {summary.embed_seconds:.1f} s for {summary.embedded} chunks)")
    if summary.cancelled:
        print("  interrupted: the index holds what was done; run again to finish")
    print(f"  data: {data_dir}")


def run(args: argparse.Namespace) -> int:
    """Build the index."""
    root, data_dir = repo_and_data_dir(args.dir, args.data_dir)
    if args.threads < 0:
        raise UserError(f"--threads {args.threads}: must be 0 (every core) or more")
    # In the foreground every core embeds (the server keeps one for the model).
    config = IndexConfig(embeddings=not args.no_embeddings, exclude=tuple(args.exclude),
                         embed_backend=args.embed_backend, embed_threads=args.threads)
    index = Index(root, data_dir, config)
    try:
        summary = index.build(_Bar(), full=args.full)
    finally:
        index.close()
    if args.json:
        print(json.dumps({"root": str(root), "dataDir": str(data_dir), **summary.to_json()},
                         indent=2))
    else:
        print_summary(summary, root, data_dir)
    return 0
