"""``pilotfish search QUERY``: ranked snippets from the repository index, with citations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...code_index.config import IndexConfig
from ...code_index.indexer import Index
from ..errors import UserError
from .index import repo_and_data_dir


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``search``."""
    parser = subparsers.add_parser("search", help="search the repository index")
    parser.add_argument("query", help="identifiers or words to look for")
    parser.add_argument("--repo", type=Path, default=None,
                        help="repository folder (default: the enclosing git repository)")
    parser.add_argument("-k", "--limit", type=int, default=10, help="how many results")
    parser.add_argument("--no-dense", action="store_true", help="skip the embedding model")
    parser.add_argument("--data-dir", default=None, help="override the index data folder")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Search and print."""
    if not args.query.strip():
        raise UserError("the query is empty")
    if args.limit < 1:
        raise UserError("--limit must be at least 1")
    root, data_dir = repo_and_data_dir(args.repo, args.data_dir)
    if not (data_dir / "index.db").exists():
        raise UserError(f"{root} has no index yet: run `pilotfish index {root}` first")
    index = Index(root, data_dir, IndexConfig(embeddings=not args.no_dense))
    try:
        if index.state() == "empty":
            raise UserError(f"{root} has no index yet: run `pilotfish index {root}` first")
        if not args.no_dense and index.store.embedding_counts()[0]:
            index.open_vectors()
        results = index.search(args.query, k=args.limit)
    finally:
        index.store.close()
    if args.json:
        print(json.dumps({"query": args.query, "root": str(root),
                          "results": [s.to_json() for s in results]}, indent=2))
        return 0
    if not results:
        print("no results")
        return 1
    for n, s in enumerate(results, start=1):
        link = s.citation.link() if s.citation else s.path
        print(f"{n}. {s.path}:{s.start_line}-{s.end_line}  [{s.source} {s.score:.3f}] {s.reason}")
        print(f"   {link}")
        for line in s.text.splitlines()[:8]:
            print(f"     {line}")
        print()
    return 0
