"""``initialize``, ``initialized``, ``workspace/didChangeConfiguration`` and ``shutdown``."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from ..server import PilotfishServer, workspace_root
from ..settings import layered

log = logging.getLogger(__name__)


def register(server: PilotfishServer) -> None:
    """Register the lifecycle handlers."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: PilotfishServer, params: types.InitializeParams) -> None:
        root = workspace_root(params)
        ls.initialization_options = params.initialization_options
        error = ls.configure(params.initialization_options, root)
        if error:
            log.warning("initializationOptions: %s", error)
            ls.pending_warning = error  # shown once the client is ready for messages

    @server.feature(types.INITIALIZED)
    async def initialized(ls: PilotfishServer, params: types.InitializedParams) -> None:
        ls.loop = asyncio.get_running_loop()
        error, ls.pending_warning = ls.pending_warning, None
        if error:
            ls.show_message(
                f"pilotfish: {error}", types.MessageType.Warning
            )
        ls.start_background_work()
        await ls.watch_files()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: PilotfishServer, params: types.DidChangeConfigurationParams
    ) -> None:
        if not isinstance(params.settings, dict) or not params.settings:
            return  # pull-model clients send null; keep what we have
        root = ls.runtime.repo_root if ls.runtime else None
        previous = ls.runtime
        error = ls.configure(layered(ls.initialization_options, params.settings), root)
        if error:
            ls.show_message(
                f"pilotfish: {error}", types.MessageType.Warning
            )
        if ls.runtime is not previous:
            ls.start_background_work()
        ls.push_status()

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: PilotfishServer, params: None) -> None:
        ls.scheduler.shutdown()
        if ls.runtime is not None:
            ls.runtime.close()
