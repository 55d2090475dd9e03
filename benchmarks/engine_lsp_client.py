"""A minimal LSP client over stdio for benchmarks: requests, notifications, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    """One request in flight or answered, with its timing."""

    id: int
    method: str
    sent: float
    done: asyncio.Future[Any]
    answered: float | None = None
    error: dict[str, Any] | None = None
    cancelled: bool = False


@dataclass
class LspClient:
    """Talks JSON-RPC to a server subprocess; answers the server's own requests with defaults."""

    process: asyncio.subprocess.Process
    pending: dict[int, Sent] = field(default_factory=dict)
    notifications: list[tuple[str, Any]] = field(default_factory=list)
    _next: int = 0
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, command: list[str], stderr: Any = None) -> LspClient:
        """Spawn the server and start reading its messages."""
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=64 * 1024 * 1024,
        )
        client = cls(process)
        client._reader = asyncio.create_task(client._read())
        return client

    def _write(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params: Any) -> Sent:
        """Send a request; await ``sent.done`` for its result."""
        self._next += 1
        sent = Sent(
            self._next, method, time.perf_counter(), asyncio.get_running_loop().create_future()
        )
        self.pending[sent.id] = sent
        self._write({"jsonrpc": "2.0", "id": sent.id, "method": method, "params": params})
        return sent

    async def call(self, method: str, params: Any, timeout: float = 600) -> Any:
        """Send a request and wait for its result."""
        return await asyncio.wait_for(self.request(method, params).done, timeout)

    def notify(self, method: str, params: Any) -> None:
        """Send a notification."""
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def cancel(self, sent: Sent) -> None:
        """``$/cancelRequest``, as an editor sends for a superseded completion request."""
        if not sent.done.done():
            sent.cancelled = True
            self.notify("$/cancelRequest", {"id": sent.id})

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            length = 0
            while True:
                line = await stdout.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(await stdout.readexactly(length))
            if "id" in message and "method" in message:
                # The server asks something (progress tokens, configuration): say yes/null.
                self._write({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "id" in message:
                sent = self.pending.pop(message["id"], None)
                if sent is not None and not sent.done.done():
                    sent.answered = time.perf_counter()
                    sent.error = message.get("error")
                    sent.done.set_result(message.get("result"))
            else:
                self.notifications.append((message.get("method", ""), message.get("params")))

    async def stop(self) -> None:
        """``shutdown`` + ``exit`` and wait for the process."""
        with contextlib.suppress(Exception):
            await self.call("shutdown", None, timeout=30)
            self.notify("exit", None)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
        if self._reader is not None:
            self._reader.cancel()
