"""Document sync hooks: keep the index up to date with open buffers and watched files."""

from __future__ import annotations

from lsprotocol import types

from ..convert import uri_to_path
from ..server import PilotfishServer


def register(server: PilotfishServer) -> None:
    """Register didOpen/didChange/didSave/didChangeWatchedFiles."""

    def update(ls: PilotfishServer, uri: str) -> None:
        index = ls.runtime.index if ls.runtime else None
        path = uri_to_path(uri)
        if index is None or path is None:
            return
        document = ls.workspace.get_text_document(uri)
        index.did_change(path, document.source)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PilotfishServer, params: types.DidOpenTextDocumentParams) -> None:
        update(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PilotfishServer, params: types.DidChangeTextDocumentParams) -> None:
        update(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PilotfishServer, params: types.DidSaveTextDocumentParams) -> None:
        update(ls, params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched(ls: PilotfishServer, params: types.DidChangeWatchedFilesParams) -> None:
        index = ls.runtime.index if ls.runtime else None
        if index is None:
            return
        for change in params.changes:
            path = uri_to_path(change.uri)
            if path is None:
                continue
            if change.type == types.FileChangeType.Deleted:
                index.did_delete(path)
            elif ls.workspace.text_documents.get(change.uri) is None:
                # Open buffers win over the disk; closed files are re-read.
                try:
                    index.did_change(path, path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError):
                    index.did_delete(path)
