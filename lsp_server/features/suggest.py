"""What both completion features share: wait for the model, build the request, ask the engine."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from ..convert import to_engine_position, uri_to_path
from ..engine.context import CompletionRequest, PositionError
from ..engine.engine import Completion, CompletionEngine
from ..runtime import Runtime
from ..server import PilotfishServer

ACCEPTED_COMMAND = "pilotfish.completionAccepted"

MODEL_WAIT_S = 120.0


async def loaded_engine(runtime: Runtime) -> CompletionEngine | None:
    """The engine, waiting (cancellably) while the model loads in the background.

    Clients such as Neovim 0.12's native inline completion do not ask again on their own, so
    the first request after start-up is held rather than answered empty; a newer keystroke
    cancels it with ``$/cancelRequest`` as usual.
    """
    deadline = asyncio.get_running_loop().time() + MODEL_WAIT_S
    while runtime.loaded is None:
        if runtime.load_error is not None or asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.2)
    return runtime.loaded


async def suggest(
    ls: PilotfishServer, uri: str, position: types.Position, *, selection_active: bool = False
) -> Completion | None:
    """The engine's suggestion at ``position`` of an open document (``None``: nothing to show)."""
    runtime = ls.runtime
    if runtime is None or not ls.settings.completion.enable:
        return None
    engine = await loaded_engine(runtime)
    if engine is None:
        return None
    document = ls.workspace.get_text_document(uri)
    text = document.source
    line, column = to_engine_position(text, position, ls.position_encoding)
    path = uri_to_path(document.uri)
    request = CompletionRequest(
        text=text,
        line=line,
        column=column,
        path=str(path) if path else None,
        language_id=document.language_id or "",
        repo_root=str(runtime.repo_root) if runtime.repo_root else None,
        selection_active=selection_active,
        document_key=document.uri,
    )
    try:
        completion = await ls.scheduler.complete(engine, request)
    except PositionError:
        return None
    if completion is None or not completion.text:
        return None
    if completion.source == "model":
        ls.push_status()
    return completion


def accepted_command(completion: Completion) -> types.Command:
    """The command a client runs when the user accepts ``completion`` (acceptance counts)."""
    return types.Command(
        title="pilotfish: accepted", command=ACCEPTED_COMMAND, arguments=[{"id": completion.id}]
    )
