"""``textDocument/inlineCompletion``: ghost-text suggestions from the completion engine."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from ..convert import to_engine_position, uri_to_path
from ..engine.context import CompletionRequest, PositionError
from ..engine.engine import CompletionEngine
from ..runtime import Runtime
from ..server import PilotfishServer

log = logging.getLogger(__name__)

ACCEPTED_COMMAND = "pilotfish.completionAccepted"


MODEL_WAIT_S = 120.0


async def _loaded_engine(runtime: Runtime) -> CompletionEngine | None:
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


def register(server: PilotfishServer) -> None:
    """Register the inline completion handler (advertised only with options: STACK.md)."""

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: PilotfishServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        runtime = ls.runtime
        if runtime is None or not ls.settings.completion.enable:
            return None
        engine = await _loaded_engine(runtime)
        if engine is None:
            return None
        document = ls.workspace.get_text_document(params.text_document.uri)
        text = document.source
        line, column = to_engine_position(text, params.position)
        path = uri_to_path(document.uri)
        selected = params.context.selected_completion_info
        request = CompletionRequest(
            text=text,
            line=line,
            column=column,
            path=str(path) if path else None,
            language_id=document.language_id or "",
            repo_root=str(runtime.repo_root) if runtime.repo_root else None,
            selection_active=selected is not None,
            document_key=document.uri,
        )
        try:
            completion = await ls.scheduler.complete(engine, request)
        except PositionError:
            return None
        if completion is None or not completion.text:
            return types.InlineCompletionList(items=[])
        if completion.source == "model":
            ls.push_status()
        return types.InlineCompletionList(
            items=[
                types.InlineCompletionItem(
                    insert_text=completion.text,
                    range=types.Range(start=params.position, end=params.position),
                    command=types.Command(
                        title="pilotfish: accepted",
                        command=ACCEPTED_COMMAND,
                        arguments=[{"id": completion.id}],
                    ),
                )
            ]
        )
