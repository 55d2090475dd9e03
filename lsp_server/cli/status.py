"""``pilotfish status``: model, device, data directory and what is loaded."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ...code_index.store import DB_NAME, Store
from .. import adapters
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
    """Print the status: a few readable lines, or everything as JSON with ``--json``."""
    repo = (args.repo or find_repo_root(Path.cwd())).resolve()
    runtime = Runtime(settings_from_args(args), repo)
    try:
        if args.load:
            runtime.engine()
        status: dict[str, Any] = runtime.status()
    finally:
        runtime.close()
    status["models"] = list_models()
    data_dir = Path(str(status["dataDir"])) if status.get("dataDir") else None
    if data_dir is not None:
        status["index"] = {**status["index"], **index_on_disk(data_dir)}
        current = adapters.current(data_dir)
        status["currentAdapter"] = current.name if current else None
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    print("\n".join(describe(status)))
    return 0


def index_on_disk(data_dir: Path) -> dict[str, object]:
    """What the repository's saved index holds (nothing is created when there is none)."""
    if not (data_dir / DB_NAME).is_file():
        return {"built": False}
    store = Store(data_dir)
    try:
        return {"built": True, "saved": store.get_meta("state") or "empty", **store.counts()}
    except Exception as exc:  # a damaged index is rebuilt by the next `pilotfish index`
        return {"built": True, "saved": "unreadable", "statusError": str(exc)}
    finally:
        store.close()


def describe(status: dict[str, Any]) -> list[str]:
    """The status as aligned ``name  value`` lines for a terminal."""
    model = f"{status['model']} (backend {status['backend']}, {status['device']})"
    if status.get("loaded"):
        model += f", loaded in {status['loadSeconds']} s"
    elif status.get("error"):
        model += f", failed to load: {status['error']}"
    else:
        model += ", not loaded (--load to try)"
    index: dict[str, Any] = status.get("index") or {}
    if index.get("state") == "disabled":
        index_line = f"disabled ({index.get('message') or 'index.enable = false'})"
    elif not index.get("built"):
        index_line = "not built yet: run `pilotfish index`"
    else:
        index_line = (
            f"{index.get('saved')}: {index.get('files', 0):,} files, "
            f"{index.get('symbols', 0):,} symbols, {index.get('chunks', 0):,} chunks, "
            f"{index.get('docs', 0):,} doc sections, {index.get('embeddings', 0):,} vectors"
        )
    pulled = [
        f"{row['name']} "
        + ("pulled" if row["pulled"] else f"missing: pilotfish model pull {row['name']}")
        for row in status.get("models", [])
    ]
    rows = [
        ("repository", status.get("repoRoot")),
        ("model", model),
        ("adapter", status.get("adapter") or status.get("currentAdapter") or "none (base model)"),
        ("index", index_line),
        ("data", status.get("dataDir")),
        ("models", f"{'; '.join(pulled)} (in {status.get('modelsDir')})"),
    ]
    if status.get("loaded"):
        latency: dict[str, Any] = status.get("latency") or {}
        rows.append(("completions",
                     f"p50 {latency.get('p50Ms')} ms, p95 {latency.get('p95Ms')} ms"))
    return [f"{name:<11} {value}" for name, value in rows]
