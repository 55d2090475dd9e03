"""Raw JSON-RPC against `pilotfish serve`: malformed and late requests still get answers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest
from pilotfish.lsp_server.protocol import FramedInput


class RawClient:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pilotfish.lsp_server", "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

    def send(self, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def response(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            headers: dict[str, str] = {}
            while (line := self.proc.stdout.readline()) not in (b"\r\n", b""):
                key, value = line.decode().split(":", 1)
                headers[key.lower()] = value.strip()
            msg = json.loads(self.proc.stdout.read(int(headers["content-length"])))
            if "id" in msg and ("result" in msg or "error" in msg):
                return msg


@pytest.fixture
def raw() -> RawClient:
    client = RawClient()
    client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "capabilities": {},
        "initializationOptions": {"completion": {"enable": False}, "index": {"enable": False}},
    }})
    assert client.response()["id"] == 1
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    yield client
    client.proc.kill()


HOVER = {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 0}}


@pytest.mark.parametrize(
    "params",
    [
        {"textDocument": {"uri": "file:///x.py"}, "position": {"line": -1, "character": 0}},
        {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 0.5}},
        None,
    ],
)
def test_invalid_params_are_answered(raw: RawClient, params: object) -> None:
    raw.send({"jsonrpc": "2.0", "id": 7, "method": "textDocument/hover", "params": params})
    reply = raw.response()
    assert reply["id"] == 7
    # Answered with an error rather than dropped: invalid params, or an internal error where
    # pygls' converter let the value through (a float character) and the handler refused it.
    assert reply["error"]["code"] in (-32602, -32603)
    # The server is still alive and answers a valid request.
    raw.send({"jsonrpc": "2.0", "id": 8, "method": "workspace/executeCommand",
              "params": {"command": "pilotfish.status"}})
    assert raw.response()["result"]["version"]


def test_requests_after_shutdown_get_invalid_request(raw: RawClient) -> None:
    raw.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    assert raw.response() == {"id": 2, "jsonrpc": "2.0", "result": None}
    raw.send({"jsonrpc": "2.0", "id": 3, "method": "textDocument/hover", "params": HOVER})
    assert raw.response()["error"]["code"] == -32600
    raw.send({"jsonrpc": "2.0", "method": "exit"})
    assert raw.proc.wait(timeout=20) == 0


# -- framing: what reaches pygls is canonical, whatever the client wrote --------------------


def _drain(framed: FramedInput) -> list[bytes]:
    """The messages pygls would read: headers canonical, bodies exactly the announced bytes."""
    bodies = []
    while (line := framed.readline()) != b"":
        length = int(line.split(b":")[1])
        assert framed.readline() == b"\r\n"
        bodies.append(framed.read(length))
    return bodies


@pytest.mark.parametrize(
    "stream",
    [
        b"Content-Length: 2\r\n\r\n{}",
        b"content-length: 2\r\n\r\n{}",  # any case
        b"Content-Length: 2\n\n{}",  # LF-only line ends
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH:2\r\n\r\n{}",
        b"\r\nContent-Length: 2\r\n\r\n{}",  # a stray blank line first
    ],
)
def test_framing_accepts_header_variants(stream: bytes) -> None:
    assert _drain(FramedInput(io.BytesIO(stream))) == [b"{}"]


def test_framing_skips_oversized_and_unframed_messages() -> None:
    big = b"x" * 100
    stream = (
        b"Content-Length: 100\r\n\r\n" + big  # over the limit: read and dropped
        + b"Content-Length: 2\r\n\r\n[]"
        + b"Content-Length: -5\r\n\r\n"  # no usable length: the block is dropped
        + b"X-Other: 1\r\n\r\n"  # no length at all
        + b"Content-Length: 2\r\n\r\n{}"
    )
    assert _drain(FramedInput(io.BytesIO(stream), max_bytes=50)) == [b"[]", b"{}"]


def test_server_survives_huge_length_and_lowercase_headers() -> None:
    client = RawClient()
    assert client.proc.stdin is not None
    # A claimed 2**62-byte message: pygls alone dies of MemoryError/OverflowError here.
    client.proc.stdin.write(b"Content-Length: 4611686018427387904\r\n\r\n")
    client.proc.stdin.flush()
    try:
        with pytest.raises(subprocess.TimeoutExpired):  # still running: it skips, waiting
            client.proc.wait(timeout=3)
    finally:
        client.proc.kill()
    client = RawClient()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "capabilities": {}, "initializationOptions": {"index": {"enable": False}}}}).encode()
    assert client.proc.stdin is not None
    client.proc.stdin.write(b"content-length: %d\n\n" % len(body) + body)
    client.proc.stdin.flush()
    try:
        assert client.response()["result"]["capabilities"]
    finally:
        client.proc.kill()
