"""``pilotfish explain PATH:LINE:COL``: the hover of a symbol, waiting for the explanation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine.context import PositionError, offset_of
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
from .complete import parse_location


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``explain``."""
    parser = subparsers.add_parser(
        "explain", help="explain the symbol at PATH:LINE:COL with cited sources (as hover does)"
    )
    parser.add_argument("location", metavar="PATH:LINE:COL")
    parser.add_argument("--repo", type=Path, default=None, help="repository root (default: found)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-explain", action="store_true", help="sources only, no model")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the model"
    )
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the hover Markdown (or JSON) for the location."""
    path, line, col = parse_location(args.location)
    text = read_source_file(path)
    try:
        offset_of(text, line, col)
    except PositionError as exc:
        raise UserError(f"{path}: {exc}") from exc
    repo = (args.repo or find_repo_root(path)).resolve()
    runtime = Runtime(settings_from_args(args), repo)
    try:
        index = start_index(runtime, path, explicit_repo=args.repo is not None)
        if not args.no_explain:
            runtime.engine()
        wait_for_index(index)
        result = runtime.hover(text, line, col, path=str(path.resolve()), budget_s=args.timeout)
    finally:
        runtime.close()
    if result is None:
        raise UserError(f"{path}:{line + 1}:{col + 1}: no identifier at this position")
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.to_markdown())
    return 0
