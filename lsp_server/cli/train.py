"""``pilotfish train``, ``eval`` and ``adapters``: training runs as a child process.

The server package never imports ``training`` (a crash or out-of-memory there must not take the
editor's server down), so ``train`` and ``eval`` run ``python -m pilotfish.training`` and relay
its output and exit code; ``adapters`` works on the registry directly.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from .. import adapters
from ..errors import UserError
from ..paths import find_repo_root, repo_data_dir

# The flags of ``pilotfish train`` forwarded as they are; every other training option can be
# passed after ``--`` (see ``python -m pilotfish.training train --help``).
_FORWARDED: tuple[tuple[str, type, str], ...] = (
    ("--max-commits", int, "learn from the newest N commits only"),
    ("--max-steps", int, "stop training after N optimizer steps"),
    ("--max-eval", int, "evaluate on at most N held-out lines"),
    ("--holdout-commits", int, "newest commits held out for evaluation (default 10%%)"),
    ("--time-budget", str, "wall-clock training budget, e.g. 30m (the CPU path)"),
    ("--model", str, "base model (default: qwen2.5-coder-0.5b)"),
    ("--device", str, "auto, cpu or cuda"),
    ("--name", str, "adapter name"),
    ("--threshold", float, "exact-match points the adapter must gain to be promoted"),
    ("--epochs", float, "passes over the examples"),
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``train``, ``eval`` and ``adapters``."""
    train = subparsers.add_parser(
        "train",
        help="train a LoRA adapter on the repository's history (gated, then made current)",
        description="Extra training options go after `--`.",
    )
    _common(train)
    for flag, kind, text in _FORWARDED:
        train.add_argument(flag, type=kind, default=None, help=text)
    train.add_argument("--resume", action="store_true", help="continue an interrupted run")
    train.add_argument("--no-promote", action="store_true", help="never make it current")
    train.add_argument("--json-progress", action="store_true", help="JSON-lines progress")
    train.add_argument("extra", nargs="*", help="more options for the training process")
    train.set_defaults(func=run, training_command="train")

    evaluate = subparsers.add_parser(
        "eval", help="score an adapter against the base model on commits after its training"
    )
    _common(evaluate)
    evaluate.add_argument("--adapter", default=None, help="adapter name (default: current)")
    evaluate.add_argument("--max-eval", type=int, default=None)
    evaluate.add_argument("--device", default=None)
    evaluate.add_argument("--json-progress", action="store_true")
    evaluate.set_defaults(func=run, training_command="eval")

    manage = subparsers.add_parser("adapters", help="list, use or remove trained adapters")
    _common(manage)
    actions = manage.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="adapters of this repository")
    listing.add_argument("--json", action="store_true", help="each adapter's folder and manifest")
    use = actions.add_parser("use", help="make an adapter current ('none': the base model)")
    use.add_argument("name")
    rm = actions.add_parser("rm", help="delete an adapter")
    rm.add_argument("name")
    manage.set_defaults(func=run_adapters)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", type=Path, default=None, help="repository (default: here)")
    parser.add_argument("--data-dir", default=None, help="override the repository data folder")


def _repo(args: argparse.Namespace) -> Path:
    return (args.repo or find_repo_root(Path.cwd())).resolve()


def training_argv(args: argparse.Namespace) -> list[str]:
    """The child's command line for ``args`` of ``train`` or ``eval``."""
    argv = [sys.executable, "-m", "pilotfish.training", args.training_command]
    argv += ["--repo", str(_repo(args))]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.training_command == "eval":
        if args.adapter:
            argv += ["--adapter", args.adapter]
        if args.max_eval is not None:
            argv += ["--max-eval", str(args.max_eval)]
        if args.device:
            argv += ["--device", args.device]
    else:
        for flag, _, _ in _FORWARDED:
            value = getattr(args, flag[2:].replace("-", "_"))
            if value is not None:
                argv += [flag, str(value)]
        if args.resume:
            argv.append("--resume")
        if args.no_promote:
            argv.append("--no-promote")
        argv += list(args.extra)
    if args.json_progress:
        argv.append("--json-progress")
    return argv


def run(args: argparse.Namespace) -> int:
    """Run the training process in the foreground and return its exit code."""
    try:
        return subprocess.call(training_argv(args))
    except KeyboardInterrupt:
        # The child got the same Ctrl-C and saves a checkpoint; `train --resume` goes on.
        return 130


def run_adapters(args: argparse.Namespace) -> int:
    """``adapters list|use|rm``."""
    data_dir = repo_data_dir(_repo(args), args.data_dir or "")
    if args.action == "list":
        found = adapters.list_adapters(data_dir)
        if args.json:
            print(json.dumps([a.to_json() for a in found], indent=2))
            return 0
        if not found:
            print("no adapters yet: run `pilotfish train`")
        for a in found:
            gate = (a.manifest.get("metrics") or {}).get("gate") or {}
            mark = "*" if a.current else " "
            print(
                f"{mark} {a.name}  base={a.base_model}  created={a.manifest.get('created_at', '?')}"
                f"  gate={'passed' if gate.get('passed') else 'not passed'}  {a.path}"
            )
        return 0
    if args.action == "use":
        name = None if args.name == "none" else args.name
        info = adapters.use(data_dir, name)
        print(f"current adapter: {info.name}" if info else "current adapter: none (base model)")
        return 0
    if args.action == "rm":
        adapters.remove(data_dir, args.name)
        print(f"removed {args.name}")
        return 0
    raise UserError(f"unknown action {args.action}")
