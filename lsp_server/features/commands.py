"""``workspace/executeCommand``: status, reindex, explain a completion, enable, feedback."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from ..server import PilotfishServer
from .suggest import ACCEPTED_COMMAND

log = logging.getLogger(__name__)


def _first_arg(args: Any) -> Any:
    if isinstance(args, list | tuple) and args:
        return args[0]
    return None


def register(server: PilotfishServer) -> None:
    """Register the commands."""

    @server.command("pilotfish.status")
    def status(ls: PilotfishServer, *args: Any) -> dict[str, object]:
        return ls.status()

    @server.command("pilotfish.reindex")
    def reindex(ls: PilotfishServer, *args: Any) -> dict[str, object]:
        index = ls.runtime.index if ls.runtime else None
        if index is None:
            return {"started": False, "reason": "indexing is disabled"}
        index.reindex(ls.progress_reporter("pilotfish: reindexing"))
        return {"started": True}

    @server.command("pilotfish.explainCompletion")
    def explain_completion(ls: PilotfishServer, *args: Any) -> dict[str, object] | None:
        engine = ls.runtime.loaded if ls.runtime else None
        if engine is None:
            return None
        arg = _first_arg(args)
        wanted = arg.get("id") if isinstance(arg, dict) else None
        completion = engine.recent(wanted)
        return completion.to_json() if completion else None

    @server.command("pilotfish.setEnabled")
    def set_enabled(ls: PilotfishServer, *args: Any) -> dict[str, object]:
        import dataclasses

        arg = _first_arg(args)
        enabled = bool(arg) if arg is not None else not ls.settings.completion.enable
        completion = dataclasses.replace(ls.settings.completion, enable=enabled)
        ls.settings = dataclasses.replace(ls.settings, completion=completion)
        if ls.runtime is not None:
            ls.runtime.settings = ls.settings
        ls.push_status()
        return {"enabled": enabled}

    @server.command(ACCEPTED_COMMAND)
    def accepted(ls: PilotfishServer, *args: Any) -> None:
        arg = _first_arg(args)
        log.info("completion accepted: %s", arg.get("id") if isinstance(arg, dict) else arg)

    @server.command("pilotfish.completionDismissed")
    def dismissed(ls: PilotfishServer, *args: Any) -> None:
        arg = _first_arg(args)
        log.info("completion dismissed: %s", arg.get("id") if isinstance(arg, dict) else arg)

    del status, reindex, explain_completion, set_enabled, accepted, dismissed
    _ = types
