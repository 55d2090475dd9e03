"""``textDocument/inlineCompletion``: ghost-text suggestions from the completion engine."""

from __future__ import annotations

from lsprotocol import types

from ..server import PilotfishServer
from .suggest import accepted_command, suggest


def register(server: PilotfishServer) -> None:
    """Register the inline completion handler (advertised only with options: STACK.md)."""

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: PilotfishServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        if ls.runtime is None or not ls.settings.completion.enable:
            return None
        completion = await suggest(
            ls,
            params.text_document.uri,
            params.position,
            selection_active=params.context.selected_completion_info is not None,
        )
        if completion is None:
            return types.InlineCompletionList(items=[])
        return types.InlineCompletionList(
            items=[
                types.InlineCompletionItem(
                    insert_text=completion.text,
                    range=types.Range(start=params.position, end=params.position),
                    command=accepted_command(completion),
                )
            ]
        )
