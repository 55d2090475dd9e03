"""Options and file reading shared by the CLI's subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..errors import UserError
from ..indexing import IndexService
from ..runtime import Runtime
from ..settings import Settings, out_of_range

INDEX_WAIT_S = 600.0


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
    settings = dataclasses.replace(
        s, model=model, completion=completion, index=index, data_dir=args.data_dir or ""
    )
    problems = out_of_range(settings)
    if problems:  # `--max-tokens -5`: the same bounds as the server's settings
        raise UserError("; ".join(problems).replace("completion.maxTokens", "--max-tokens"))
    return settings


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


def start_index(runtime: Runtime, path: Path, explicit_repo: bool) -> IndexService | None:
    """Refresh the repository index in the background (the model loads meanwhile).

    ``None`` with ``--no-index``, and for a file outside any git repository unless ``--repo``
    named the folder: indexing whatever folder holds a loose file could mean a home directory.
    """
    index, root = runtime.index, runtime.repo_root
    loose = root is not None and not (root / ".git").exists()
    if index is not None and loose and not explicit_repo:
        print(
            f"pilotfish: {path} is not in a git repository: using the file alone "
            "(--repo DIR uses a folder's code)",
            file=sys.stderr,
        )
        return None
    if index is not None:
        print("pilotfish: updating the index…", file=sys.stderr)
        index.start()
    return index


def wait_for_index(index: IndexService | None) -> None:
    """Wait for ``start_index``'s index; past ``INDEX_WAIT_S`` go on without it, and say so."""
    if index is not None and not index.wait_ready(timeout=INDEX_WAIT_S):
        print(
            f"pilotfish: the index is not ready after {INDEX_WAIT_S:.0f} s; going on without it "
            "(run `pilotfish index` first)",
            file=sys.stderr,
        )
