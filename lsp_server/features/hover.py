"""``textDocument/hover``: the symbol's signature, docs and a cited explanation, in Markdown."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from ..convert import to_engine_position, uri_to_path
from ..server import PilotfishServer


def register(server: PilotfishServer) -> None:
    """Register the hover handler."""

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: PilotfishServer, params: types.HoverParams) -> types.Hover | None:
        runtime = ls.runtime
        if runtime is None or not ls.settings.hover.enable:
            return None
        document = ls.workspace.get_text_document(params.text_document.uri)
        line, column = to_engine_position(document.source, params.position, ls.position_encoding)
        path = uri_to_path(document.uri)
        result = await asyncio.to_thread(
            runtime.hover, document.source, line, column,
            path=str(path) if path else None, language_id=document.language_id or "",
        )
        if result is None:
            return None
        show = ls.settings.hover.unverified == "show"
        if client_reads_markdown(ls):
            return types.Hover(contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=result.to_markdown(show_unverified=show)))
        return types.Hover(contents=types.MarkupContent(
            kind=types.MarkupKind.PlainText, value=result.to_plaintext(show_unverified=show)))


def client_reads_markdown(ls: PilotfishServer) -> bool:
    """Whether the client renders Markdown hovers (those that say nothing are assumed to)."""
    caps = ls.client_capabilities
    hover = caps.text_document.hover if caps and caps.text_document else None
    formats = hover.content_format if hover else None
    return not formats or types.MarkupKind.Markdown in formats
