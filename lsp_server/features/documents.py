"""Document sync hooks: keep the index up to date with open buffers and watched files."""

from __future__ import annotations

from lsprotocol import types

from ..convert import uri_to_path
from ..server import PilotfishServer


def register(server: PilotfishServer) -> None:
    """Register didOpen/didChange/didSave/didClose/didChangeWatchedFiles."""

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

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PilotfishServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.scheduler.forget(uri)
        index = ls.runtime.index if ls.runtime else None
        path = uri_to_path(uri)
        if index is not None and path is not None:
            index.did_close(path)  # the disk is the truth again

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
            else:
                # The index reads the file itself, with its binary/UTF-8/secret checks; open
                # buffers keep winning over the disk.
                index.did_change_on_disk(path)
