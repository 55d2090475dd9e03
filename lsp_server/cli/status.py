"""``pilotfish status``: model, device, data directory and what is loaded."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..models.pull import list_models
from ..paths import find_repo_root
from ..runtime import Runtime
from .common import add_model_options, settings_from_args


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``status``."""
    parser = subparsers.add_parser("status", help="show model, device, data folder, index state")
    parser.add_argument("--repo", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load", action="store_true", help="load the model to check it works")
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the status."""
    repo = (args.repo or find_repo_root(Path.cwd())).resolve()
    runtime = Runtime(settings_from_args(args), repo)
    try:
        if args.load:
            runtime.engine()
        status = runtime.status()
    finally:
        runtime.close()
    status["models"] = list_models()
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    for key, value in status.items():
        if key == "models":
            for row in list_models():
                mark = "pulled" if row["pulled"] else "missing (pilotfish model pull)"
                print(f"  model {row['name']}: {mark}")
        else:
            print(f"{key}: {value}")
    return 0
