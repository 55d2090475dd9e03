"""The OpenAI-compatible remote backend: URL and stream parsing, and a real llama.cpp server."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.engine import CompletionEngine
from pilotfish.lsp_server.engine.generate import GenerationRequest
from pilotfish.lsp_server.engine.remote_backend import (
    Endpoint,
    OpenAIGenerator,
    RemoteError,
    family_for,
    sse_events,
)
from pilotfish.lsp_server.settings import CompletionSettings

MODEL_DIR = Path.home() / ".local/share/pilotfish/models/qwen2.5-coder-0.5b"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8000", Endpoint(scheme="http", host="h", port=8000, path="/v1/completions")),
        ("http://h:8000/v1", Endpoint(scheme="http", host="h", port=8000, path="/v1/completions")),
        (
            "https://h/x/v1/completions",
            Endpoint(scheme="https", host="h", port=443, path="/x/v1/completions"),
        ),
        ("localhost:9", Endpoint(scheme="http", host="localhost", port=9, path="/v1/completions")),
    ],
)
def test_endpoint_parse(url: str, expected: Endpoint) -> None:
    assert Endpoint.parse(url) == expected


def test_endpoint_rejects_other_schemes() -> None:
    with pytest.raises(ValueError):
        Endpoint.parse("ftp://h/v1")


def test_sse_events_stop_at_done() -> None:
    lines = [
        b": ping\n",
        b'data: {"choices": [{"text": "a"}]}\n',
        b"\n",
        b"data: [DONE]\n",
        b'data: {"x": 1}\n',
    ]
    assert list(sse_events(iter(lines))) == [{"choices": [{"text": "a"}]}]


@pytest.mark.parametrize(
    ("name", "family", "expected"),
    [
        ("qwen2.5-coder-0.5b", "qwen2.5-coder", "qwen2.5-coder"),
        ("bigcode/starcoder2-3b", None, "starcoder2"),
        ("my-team-model", None, "qwen2.5-coder"),
    ],
)
def test_family_for(name: str, family: str | None, expected: str) -> None:
    assert family_for(name, family).name == expected


def test_unreachable_server_is_a_remote_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        generator = OpenAIGenerator(f"http://127.0.0.1:{port}", model_id="qwen2.5-coder-0.5b")
        with pytest.raises(RemoteError):
            generator.generate(
                GenerationRequest(prompt="x", max_tokens=2, stop=()), threading.Event()
            )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# llama_cpp.server's main, loading the model as pilotfish does (llama.cpp's extra buffer types
# off on CPUs with AMX, where they crash: llamacpp_backend.extra_buffers_enabled).
SERVER_MAIN = """
import runpy, sys
from pilotfish.lsp_server.engine.llamacpp_backend import extra_buffers_enabled, model_params
sys.argv[0] = "llama_cpp.server"
with model_params(extra_buffers=extra_buffers_enabled()):
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server with the pulled GGUF."""
    gguf = MODEL_DIR / "model.gguf"
    if not gguf.is_file():
        pytest.skip("the qwen2.5-coder-0.5b model is not pulled")
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVER_MAIN,
            "--model",
            str(gguf),
            "--port",
            str(port),
            "--n_threads",
            "2",
            "--n_ctx",
            "4096",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/v1/models", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not start")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


SOURCE = '''import math


def circle_area(radius: float) -> float:
    """Area of a circle."""
    return math.pi * radius ** 2


def circle_circumference(radius: float) -> float:
    """Circumference of a circle."""
    return '''


@pytest.mark.model
def test_remote_engine_matches_local_llamacpp(llama_server: str) -> None:
    """Same prompt, same postprocessing: the remote answer equals the local backend's."""
    from pilotfish.lsp_server.engine.backends import local_token_counter
    from pilotfish.lsp_server.engine.llamacpp_backend import LlamaCppGenerator

    settings = CompletionSettings(retrieval_tokens=0)
    request = CompletionRequest(
        text=SOURCE, line=SOURCE.count("\n"), column=len("    return "), path="geo.py"
    )
    remote = CompletionEngine(
        OpenAIGenerator(
            llama_server,
            model_id="qwen2.5-coder-0.5b",
            count_tokens=local_token_counter("qwen2.5-coder-0.5b"),
        ),
        settings,
    )
    got = remote.complete(request)
    local = CompletionEngine(
        LlamaCppGenerator(MODEL_DIR / "model.gguf", model_id="qwen2.5-coder-0.5b", threads=2),
        settings,
    )
    want = local.complete(request)
    assert got.source == "model" and got.backend == "openai"
    assert got.prompt == want.prompt and got.prompt_tokens == want.prompt_tokens
    # Both right; the texts themselves may differ: the server evaluates the prompt in one
    # batch, the local backend in chunks, and on AVX-512 kernels that reorders sums enough to
    # flip a near-tie (`2 * math.pi * radius` vs `math.pi * radius * 2` on this machine).
    for text in (got.text, want.text):
        assert "pi" in text and "radius" in text and "\n" not in text, text


@pytest.mark.model
def test_remote_cancel_closes_the_stream(llama_server: str) -> None:
    """A cancel mid-stream returns at once with ``cancelled``, and the server serves on."""
    generator = OpenAIGenerator(llama_server, model_id="qwen2.5-coder-0.5b")
    cancel = threading.Event()
    prompt = "<|fim_prefix|># a long list of numbers\nnumbers = [<|fim_suffix|>]\n<|fim_middle|>"
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    started = time.perf_counter()
    result = generator.generate(
        GenerationRequest(prompt=prompt, max_tokens=2000, stop=(), max_lines=0), cancel
    )
    elapsed = time.perf_counter() - started
    assert result.stop_reason == "cancelled"
    assert elapsed < 2.5, elapsed  # 2,000 tokens at ~40 tok/s would take far longer
    after = generator.generate(
        GenerationRequest(
            prompt="<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>", max_tokens=4, stop=()
        ),
        threading.Event(),
    )
    assert after.stop_reason in ("length", "stop", "lines") and after.new_tokens > 0


@pytest.mark.parametrize("backend", ["openai", "auto"])
def test_load_generator_builds_the_remote_client(backend: str) -> None:
    from pilotfish.lsp_server.engine.backends import load_generator
    from pilotfish.lsp_server.settings import ModelSettings

    settings = ModelSettings(
        backend=backend,  # type: ignore[arg-type]
        url="http://127.0.0.1:9/v1",
        name="bigcode/starcoder2-3b",
        remote_model="team-coder",
    )
    generator = load_generator(settings)
    assert isinstance(generator, OpenAIGenerator)
    assert generator.endpoint.path == "/v1/completions"
    assert generator.template.name == "starcoder2" and generator.remote_model == "team-coder"
    assert generator.count_tokens("abcdefgh") == 3  # no local tokenizer: an estimate


def test_remote_backend_needs_a_url() -> None:
    from pilotfish.lsp_server.engine.backends import load_generator
    from pilotfish.lsp_server.errors import UserError
    from pilotfish.lsp_server.settings import ModelSettings

    with pytest.raises(UserError):
        load_generator(ModelSettings(backend="openai"))
