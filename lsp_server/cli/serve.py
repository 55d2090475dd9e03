"""``pilotfish serve``: the language server over stdio (stdout carries the protocol)."""

from __future__ import annotations

import argparse
import logging
import sys


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    parser = subparsers.add_parser("serve", help="run the language server over stdio")
    parser.add_argument("--log-file", default=None, help="also log to this file")
    parser.add_argument("--log-level", default="INFO")
    # vscode-languageclient appends --stdio with TransportKind.stdio; stdio is all we speak.
    parser.add_argument("--stdio", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until the client exits."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(
        level=args.log_level.upper(),
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # pygls logs every JSON-RPC message at INFO: that floods editors' log panes.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("pygls").setLevel(logging.WARNING)
    from ..server import serve_stdio

    serve_stdio()
    return 0
