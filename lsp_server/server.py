"""The pilotfish language server: state, lifecycle and registration of the feature modules."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..code_index.languages import indexed_suffixes
from . import __version__
from .convert import UTF16, uri_to_path
from .errors import UserError
from .indexing import IndexProgress
from .protocol import FramedInput, PilotfishProtocol
from .runtime import Runtime
from .scheduler import Scheduler
from .settings import Settings, parse_settings_or_default, settings_to_wire

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "pilotfish/status"


class PilotfishServer(LanguageServer):
    """A pygls server carrying pilotfish's session state (no pygls internals overridden)."""

    def __init__(self) -> None:
        super().__init__("pilotfish", __version__, protocol_cls=PilotfishProtocol)
        self.settings = Settings()
        self.runtime: Runtime | None = None
        self.scheduler = Scheduler(
            self.settings.completion.debounce_ms, self.settings.completion.debounce_max_ms
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._progress_tokens = 0
        self.pending_warning: str | None = None
        self.initialization_options: object = None
        """What ``initialize`` brought; later configuration is laid over it (``layered``)."""

    # -- state -------------------------------------------------------------------------------

    @property
    def position_encoding(self) -> str:
        """The position encoding negotiated at ``initialize`` (UTF-16 unless the client chose).

        Neovim offers UTF-8 first (``utf-8, utf-16, utf-32``), and pygls takes the client's
        first choice.
        """
        encoding = self.workspace.position_encoding
        return str(encoding) if encoding else UTF16

    def configure(self, raw: object, root: Path | None) -> str | None:
        """Apply settings from the client; return an error message if they were invalid."""
        settings, error = parse_settings_or_default(raw)
        old = self.runtime
        reuse = (
            old is not None
            and old.repo_root == root
            and settings.model == self.settings.model
            and settings.index == self.settings.index
            and settings.data_dir == self.settings.data_dir
        )
        self.settings = settings
        self.scheduler.debounce_ms = settings.completion.debounce_ms
        self.scheduler.debounce_max_ms = settings.completion.debounce_max_ms
        if reuse and old is not None:
            old.settings = settings
            if old.loaded is not None:
                old.loaded.settings = settings.completion
        else:
            if old is not None:
                old.close()
            self.runtime = Runtime(settings, root)
        return error

    async def watch_files(self) -> None:
        """Ask the client to report changes on disk (``workspace/didChangeWatchedFiles``).

        Clients send those events only for registered watchers, and only clients that can
        register them dynamically are asked; the others update the index from their buffers.
        A branch switch or a code generator then reaches the index without a reindex.
        """
        caps = self.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps else None
        if self.runtime is None or self.runtime.index is None:
            return
        if watched is None or not watched.dynamic_registration:
            return
        suffixes = ",".join(s.lstrip(".") for s in indexed_suffixes())
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern=f"**/*.{{{suffixes}}}")]
        )
        try:
            await self.client_register_capability_async(types.RegistrationParams(registrations=[
                types.Registration(id="pilotfish-watched-files",
                                   method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                   register_options=options)
            ]))
        except Exception as exc:  # a client that refuses: buffers still keep the index fresh
            log.info("file watcher registration refused: %s", exc)

    def start_background_work(self) -> None:
        """Load the model and build the index without blocking requests."""
        runtime = self.runtime
        if runtime is None:
            return
        if self.settings.completion.enable:
            threading.Thread(
                target=self._load_model, args=(runtime,), daemon=True, name="pilotfish-load"
            ).start()
        if runtime.index is not None:
            runtime.index.start(self.progress_reporter("pilotfish: indexing"))

    def _load_model(self, runtime: Runtime) -> None:
        report = self.progress_reporter("pilotfish: loading model")
        report(IndexProgress(message=runtime.settings.model.name))
        try:
            runtime.engine()
            report(IndexProgress(message="ready", done=True))
        except UserError as exc:
            report(IndexProgress(message=str(exc), done=True))
            self.call_soon(self.show_message, f"pilotfish: {exc}", types.MessageType.Error)
        except Exception as exc:  # a broken model must not kill the server
            log.exception("model failed to load")
            report(IndexProgress(message=f"failed: {exc}", done=True))
            self.call_soon(
                self.show_message,
                f"pilotfish: model failed to load: {exc}",
                types.MessageType.Error,
            )
        self.push_status()

    # -- talking to the client (thread-safe) ------------------------------------------------

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the event loop (pygls is not thread-safe)."""
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(fn, *args)

    def show_message(self, message: str, kind: types.MessageType) -> None:
        """``window/showMessage`` (call on the loop)."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def push_status(self) -> None:
        """Send ``pilotfish/status`` with the current status (from any thread)."""
        if self.runtime is None:
            return
        status = self.status()
        self.call_soon(self.protocol.notify, STATUS_NOTIFICATION, status)

    def status(self) -> dict[str, object]:
        """The status object of ``pilotfish.status`` and ``pilotfish/status``."""
        base: dict[str, object] = self.runtime.status() if self.runtime else {"loaded": False}
        base["version"] = __version__
        base["settings"] = settings_to_wire(self.settings)
        return base

    def progress_reporter(self, title: str) -> Callable[[IndexProgress], None]:
        """A thread-safe callback that relays progress as ``$/progress`` and status pushes."""
        self._progress_tokens += 1
        token = f"pilotfish-{self._progress_tokens}"
        state = {"begun": False, "ended": False}
        supported = self._client_supports_progress()

        def send(progress: IndexProgress) -> None:
            if not supported or state["ended"]:
                return
            if not state["begun"]:
                state["begun"] = True
                self.work_done_progress.create(token)
                self.work_done_progress.begin(
                    token,
                    types.WorkDoneProgressBegin(
                        title=title,
                        message=progress.message,
                        percentage=progress.percentage,
                        cancellable=False,
                    ),
                )
            if progress.done:
                state["ended"] = True
                self.work_done_progress.end(
                    token, types.WorkDoneProgressEnd(message=progress.message)
                )
            else:
                self.work_done_progress.report(
                    token,
                    types.WorkDoneProgressReport(
                        message=progress.message, percentage=progress.percentage
                    ),
                )

        def report(progress: IndexProgress) -> None:
            self.call_soon(send, progress)
            if progress.done:
                self.push_status()

        return report

    def _client_supports_progress(self) -> bool:
        caps = self.client_capabilities
        return bool(caps and caps.window and caps.window.work_done_progress)


def workspace_root(params: types.InitializeParams) -> Path | None:
    """The repository root from the first workspace folder, ``rootUri`` or ``rootPath``."""
    if params.workspace_folders:
        return uri_to_path(params.workspace_folders[0].uri)
    if params.root_uri:
        return uri_to_path(params.root_uri)
    if params.root_path:
        return Path(params.root_path)
    return None


def create_server() -> PilotfishServer:
    """A server with every feature module registered."""
    from .features import (
        commands,
        completion,
        documents,
        hover,
        inline_completion,
        lifecycle,
        training,
    )

    server = PilotfishServer()
    features = (lifecycle, documents, inline_completion, completion, hover, commands, training)
    for feature in features:
        feature.register(server)
    return server


def serve_stdio() -> None:
    """Serve over stdin/stdout until the client exits.

    The protocol gets a private copy of the stdout descriptor and descriptor 1 is pointed at
    stderr: native libraries (llama.cpp, tokenizers) print to fd 1 and would corrupt the
    JSON-RPC stream otherwise.
    """
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    stdin = FramedInput(sys.stdin.buffer)
    create_server().start_io(stdin=stdin, stdout=protocol_out)  # type: ignore[arg-type]  # pygls calls only readline/read
