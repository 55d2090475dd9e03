"""``python -m pilotfish.training train|eval``: the child process the server and CLI launch."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from ..lsp_server.errors import UserError
from .config import add_arguments, from_args
from .history import RepoError
from .progress import Reporter


def build_parser() -> argparse.ArgumentParser:
    """``train`` and ``eval``, each with every ``TrainConfig`` flag."""
    parser = argparse.ArgumentParser(prog="python -m pilotfish.training")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="mine history, train, evaluate, export an adapter")
    add_arguments(train)
    evaluate = sub.add_parser("eval", help="evaluate an adapter on commits after its split")
    evaluate.add_argument("--adapter", default="", help="adapter name (default: current)")
    add_arguments(evaluate)
    return parser


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (the server cancelling) behaves as Ctrl-C: checkpoint, then exit.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors are one line on stderr and a non-zero exit."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _terminate)
    try:
        config = from_args(args)
    except ValueError as exc:
        print(f"pilotfish training: error: {exc}", file=sys.stderr)
        return 2
    report = Reporter(json_lines=config.json_progress)
    from .pipeline import run_eval, run_train

    try:
        if args.command == "train":
            return run_train(config, report)
        return run_eval(config, args.adapter, report)
    except (RepoError, UserError) as exc:
        print(f"pilotfish training: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pilotfish training: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
