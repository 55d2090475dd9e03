"""JSON-RPC hardening pygls 2.1 lacks: every request gets an answer, even a malformed one.

pygls drops a request whose params fail validation (negative or float positions, null params,
a bad enum) after logging, so the client waits forever; and it ignores requests after
``shutdown`` where LSP asks for InvalidRequest. This protocol answers both with errors.
"""

from __future__ import annotations

import logging
from typing import Any

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
