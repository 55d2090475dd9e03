"""Remote backend: prompts sent to an OpenAI-compatible ``/v1/completions`` server, streamed."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .generate import Generation, GenerationRequest, StopReason, StopScanner
from .templates import TEMPLATES, FimTemplate

log = logging.getLogger(__name__)

# Characters per token of code when no tokenizer is at hand; errs towards more tokens so that
# estimated prompts stay within the server's context.
_CHARS_PER_TOKEN = 3.2

_FAMILY_HINTS = (
    ("qwen", "qwen2.5-coder"),
    ("starcoder", "starcoder2"),
    ("deepseek", "deepseek-coder"),
    ("codellama", "codellama"),
)


class RemoteError(RuntimeError):
    """The remote server refused or failed a request."""


def family_for(name: str, known_family: str | None = None) -> FimTemplate:
    """The FIM template of a model: its bundle's family, else a hint in its name, else Qwen."""
    if known_family and known_family in TEMPLATES:
        return TEMPLATES[known_family]
    lowered = name.lower()
    for hint, family in _FAMILY_HINTS:
        if hint in lowered:
            return TEMPLATES[family]
    return TEMPLATES["qwen2.5-coder"]


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where the server is: scheme, host, port and the path of ``/v1/completions``."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Accept ``http://host:port``, ``.../v1`` or the full ``.../v1/completions`` URL."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        path = parts.path.rstrip("/")
        if not path.endswith("/completions"):
            path = (path if path.endswith("/v1") else path + "/v1") + "/completions"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(scheme=parts.scheme, host=parts.hostname, port=port, path=path)


def sse_events(lines: Iterator[bytes]) -> Iterator[dict[str, object]]:
    """The JSON payloads of a server-sent event stream, up to ``data: [DONE]``."""
    for raw in lines:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        if data:
            event = json.loads(data)
            if isinstance(event, dict):
                yield event  # pyright: ignore[reportUnknownArgumentType]


def _choice(event: dict[str, object]) -> tuple[str, str | None]:
    """The text and finish reason of an event's first choice."""
    choices = event.get("choices")
    if isinstance(choices, list) and choices:
        first: object = choices[0]  # pyright: ignore[reportUnknownVariableType]
        if isinstance(first, dict):
            text: object = first.get("text")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            finish: object = first.get("finish_reason")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            return (
                text if isinstance(text, str) else "",
                finish if isinstance(finish, str) else None,
            )
    return "", None


class OpenAIGenerator:
    """Sends the engine's prompts to an OpenAI-compatible server and streams the answer.

    Cancelling shuts the connection's socket down, which ends the stream at once; servers
    (vLLM, llama.cpp's) stop generating when their client goes away. The adapter is served as
    a LoRA module: its folder name is sent as the request's ``model``.
    """

    backend = "openai"
    device = "remote"

    def __init__(
        self,
        url: str,
        *,
        model_id: str,
        remote_model: str = "",
        api_key: str = "",
        template: FimTemplate | None = None,
        count_tokens: Callable[[str], int] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.endpoint = Endpoint.parse(url)
        self.model_id = model_id
        self.remote_model = remote_model or model_id
        self._api_key = api_key
        self.template = template or family_for(model_id)
        self._count = count_tokens
        self._timeout_s = timeout_s
        self._adapter: str | None = None
        self._lock = threading.Lock()

    @property
    def adapter(self) -> str | None:
        """Name of the LoRA module requested, if any."""
        return self._adapter

    def count_tokens(self, text: str) -> int:
        """Tokens with the local tokenizer when the model is pulled, else an estimate."""
        if self._count is not None:
            return self._count(text)
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    def has_token(self, text: str) -> bool:
        """The configured family's FIM tokens; the server's vocabulary is not visible here."""
        return text in self.template.special_tokens() or text in self.template.stop

    def set_adapter(self, adapter: Path | None) -> None:
        """Request the LoRA module named like the adapter folder (``None``: the base model)."""
        self._adapter = adapter.name if adapter else None

    def _connect(self) -> http.client.HTTPConnection:
        if self.endpoint.scheme == "https":
            return http.client.HTTPSConnection(
                self.endpoint.host, self.endpoint.port, timeout=self._timeout_s
            )
        return http.client.HTTPConnection(
            self.endpoint.host, self.endpoint.port, timeout=self._timeout_s
        )

    def generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        """Stream a completion; stop on a stop string, enough lines, the limit or ``cancel``."""
        body = {
            "model": self._adapter or self.remote_model,
            "prompt": request.prompt,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            # The OpenAI API takes at most four stop strings; the scanner applies them all.
            body["stop"] = list(request.stop[:4])
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        start = time.perf_counter()
        scanner = StopScanner(request.stop, request.max_lines)
        reason: StopReason = "length"
        pieces = 0
        prompt_tokens = 0
        first_at: float | None = None
        conn = self._connect()
        done = threading.Event()
        watcher = threading.Thread(target=_close_on_cancel, args=(conn, cancel, done), daemon=True)
        try:
            conn.request("POST", self.endpoint.path, json.dumps(body).encode(), headers)
            watcher.start()
            response = conn.getresponse()
            if response.status != 200:
                detail = response.read(2000).decode("utf-8", "replace")
                raise RemoteError(f"{self.endpoint.host} answered {response.status}: {detail}")
            for event in sse_events(iter(response.readline, b"")):
                usage = event.get("usage")
                if isinstance(usage, dict):
                    prompt_tokens = int(usage.get("prompt_tokens") or 0)  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
                text, finish = _choice(event)
                if finish:
                    reason = "length" if finish == "length" else "stop"
                if not text:
                    continue
                if first_at is None:
                    first_at = time.perf_counter()
                pieces += 1
                stop = scanner.feed(text)
                if stop:
                    reason = stop
                    break
                if cancel.is_set():
                    break
        except (OSError, http.client.HTTPException) as exc:
            if not cancel.is_set():
                raise RemoteError(f"{self.endpoint.host}:{self.endpoint.port}: {exc}") from exc
        finally:
            done.set()
            conn.close()
        if cancel.is_set():
            reason = "cancelled"
        end = time.perf_counter()
        first = first_at or end
        return Generation(
            text=scanner.text,
            prompt_tokens=prompt_tokens or self.count_tokens(request.prompt),
            new_tokens=pieces,
            prefill_ms=(first - start) * 1000,
            decode_ms=(end - first) * 1000,
            stop_reason=reason,
        )


def _close_on_cancel(
    conn: http.client.HTTPConnection, cancel: threading.Event, done: threading.Event
) -> None:
    """Shut the socket down when ``cancel`` is set, so a blocked read returns at once."""
    while not done.is_set():
        if cancel.wait(0.02):
            sock = conn.sock
            if sock is not None and not done.is_set():
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return
