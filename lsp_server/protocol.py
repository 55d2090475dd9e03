"""JSON-RPC hardening pygls 2.1 lacks: sane framing, and an answer to every request.

pygls drops a request whose params fail validation (negative or float positions, null params,
a bad enum) after logging, so the client waits forever; and it ignores requests after
``shutdown`` where LSP asks for InvalidRequest. This protocol answers both with errors.
Its stdin loop also accepts only ``Content-Length`` spelled exactly so, with CRLF line ends,
and allocates whatever length a header claims; :class:`FramedInput` sits in front of it.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)


class PilotfishProtocol(LanguageServerProtocol):
    """pygls' protocol plus error replies for malformed and post-shutdown requests."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Structure a message; a request that cannot be structured is answered with an error."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "id" in data and "method" in data:
                error = exc if isinstance(exc, JsonRpcInvalidParams) else JsonRpcInvalidParams()
                log.warning("invalid params for %s (id %s)", data.get("method"), data.get("id"))
                self._reply_error(data["id"], error, f"invalid params for {data['method']}")
                return _Answered(data)
            raise

    def handle_message(self, message: Any) -> None:
        """Dispatch a message; answered ones stop here, late requests get InvalidRequest."""
        if isinstance(message, _Answered):
            return
        method = getattr(message, "method", None)
        if (
            self._shutdown
            and method not in (None, types.EXIT)
            and getattr(message, "id", None) is not None
        ):
            self._reply_error(message.id, JsonRpcInvalidRequest(), "server is shutting down")
            return
        super().handle_message(message)

    def _reply_error(self, msg_id: Any, error: JsonRpcException, message: str) -> None:
        self._send_data(
            types.ResponseErrorMessage(
                id=msg_id,
                error=types.ResponseError(code=error.code, message=message),
            )
        )


class _Answered:
    """A request already answered with an error; nothing more to do for it."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""A message claiming more than this is skipped (read and dropped), not allocated."""
_SKIP_CHUNK = 1 << 20
_HEADER = re.compile(rb"^\s*([A-Za-z][\w-]*)\s*:\s*(.*?)\s*$")


class FramedInput:
    """The client's byte stream re-framed as pygls expects it: canonical headers only.

    Accepts header names in any case, LF-only line ends and extra headers; a message without a
    usable length, or longer than :data:`MAX_MESSAGE_BYTES`, is logged and skipped so that
    the stream stays in step and the server lives on (pygls would desynchronise, or die of
    MemoryError). It offers the ``readline`` / ``read`` pair pygls' stdin reader calls.
    """

    def __init__(self, raw: BinaryIO, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._raw = raw
        self._max = max_bytes
        self._lines: deque[bytes] = deque()

    def readline(self) -> bytes:
        """The next canonical header line (``b""`` at the end of the stream)."""
        while not self._lines:
            length = self._next_length()
            if length is None:
                return b""
            self._lines.extend((b"Content-Length: %d\r\n" % length, b"\r\n"))
        return self._lines.popleft()

    def read(self, n: int) -> bytes:
        """The message body pygls asks for after the headers."""
        return self._raw.read(n)

    def _next_length(self) -> int | None:
        """Read one header block; the body length of the next message worth handing on."""
        while True:
            length: int | None = None
            lines = 0
            while True:
                line = self._raw.readline()
                if not line:
                    return None
                if not line.strip():
                    if lines:
                        break
                    continue  # stray blank lines between messages
                lines += 1
                match = _HEADER.match(line)
                if match and match.group(1).lower() == b"content-length":
                    value = match.group(2)
                    length = int(value) if value.isdigit() else -1
                elif match is None:
                    log.error("dropping a malformed header line: %r", line[:80])
            if length is not None and 0 < length <= self._max:
                return length
            if length is None or length <= 0:
                log.error("message without a valid Content-Length header; skipped")
                continue
            log.error("message of %d bytes exceeds the %d-byte limit; skipped", length, self._max)
            self._skip(length)

    def _skip(self, n: int) -> None:
        while n > 0:
            chunk = self._raw.read(min(n, _SKIP_CHUNK))
            if not chunk:
                return
            n -= len(chunk)
