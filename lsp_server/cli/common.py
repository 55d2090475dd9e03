"""Options and file reading shared by the CLI's subcommands."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..errors import UserError
from ..settings import Settings


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--device``, ``--max-tokens``, ``--data-dir``."""
    parser.add_argument("--model", default=None, help="model name, folder or .gguf")
    parser.add_argument(
        "--backend", default=None, choices=["auto", "transformers", "llamacpp", "openai"]
    )
    parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    parser.add_argument("--url", default=None, help="OpenAI-compatible server (backend openai)")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--no-index", action="store_true", help="in-file context only")
    parser.add_argument("--data-dir", default=None, help="override the repository data folder")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Default settings with the command line's overrides applied."""
    s = Settings()
    model = dataclasses.replace(
        s.model,
        **{
            k: v
            for k, v in {
                "name": args.model,
                "backend": args.backend,
                "device": args.device,
                "url": args.url,
            }.items()
            if v is not None
        },
    )
    completion = s.completion
    if args.max_tokens is not None:
        completion = dataclasses.replace(completion, max_tokens=args.max_tokens)
    index = dataclasses.replace(s.index, enable=not args.no_index)
    return dataclasses.replace(
        s, model=model, completion=completion, index=index, data_dir=args.data_dir or ""
    )


def read_source_file(path: Path) -> str:
    """A source file's text; one clear error for missing, unreadable, binary or non-UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    if b"\0" in data[:8192]:
        raise UserError(f"{path}: looks binary, not source text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: is not UTF-8 text (invalid byte at offset {exc.start})") from None
