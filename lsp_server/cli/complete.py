"""``pilotfish complete PATH:LINE:COL``: the completion at one point of a file on disk."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine.context import CompletionRequest, PositionError, offset_of
from ..errors import UserError
from ..paths import find_repo_root
from ..runtime import Runtime
from .common import (
    add_model_options,
    read_source_file,
    settings_from_args,
    start_index,
    wait_for_index,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``complete``."""
    parser = subparsers.add_parser(
        "complete", help="print the completion at PATH:LINE:COL (1-based, as compilers print)"
    )
    parser.add_argument("location", metavar="PATH:LINE:COL")
    parser.add_argument("--repo", type=Path, default=None, help="repository root (default: found)")
    parser.add_argument("--json", action="store_true", help="print completion, snippets, timings")
    add_model_options(parser)
    parser.set_defaults(func=run)


def parse_location(location: str) -> tuple[Path, int, int]:
    """Split ``PATH:LINE:COL`` into a path and 0-based line and column."""
    parts = location.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise UserError(f"expected PATH:LINE:COL with 1-based numbers, got {location!r}")
    line, col = int(parts[1]), int(parts[2])
    if line < 1 or col < 1:
        raise UserError(f"LINE and COL are 1-based, got {line}:{col}")
    return Path(parts[0]), line - 1, col - 1


def run(args: argparse.Namespace) -> int:
    """Complete at the location and print the suggestion (or JSON)."""
    path, line, col = parse_location(args.location)
    text = read_source_file(path)
    try:
        offset_of(text, line, col)  # fail on a bad position before loading the model
    except PositionError as exc:
        raise UserError(f"{path}: {exc}") from exc
    repo = (args.repo or find_repo_root(path)).resolve()
    runtime = Runtime(settings_from_args(args), repo)
    request = CompletionRequest(
        text=text, line=line, column=col, path=str(path.resolve()), repo_root=str(repo)
    )
    try:
        index = start_index(runtime, path, explicit_repo=args.repo is not None)
        engine = runtime.engine()
        wait_for_index(index)
        completion = engine.complete(request)
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(completion.to_json(), indent=2))
    else:
        print(completion.text)
    return 0
