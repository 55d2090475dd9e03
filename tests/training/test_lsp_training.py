"""Over LSP: pilotfish.train trains in a child process and the server serves the new adapter."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = Path(__file__).with_name("serve_with_training.py")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, str(SERVER)]))
async def client(
    lsp_client: LanguageClient,
    make_repo,
    history,
    tiny_model_dir: Path,
    tmp_path: Path,
):
    root, commit = make_repo()
    history(commit, n=8)
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True)
            ),
            root_uri=root.as_uri(),
            initialization_options={
                "model": {"name": str(tiny_model_dir), "backend": "transformers", "device": "cpu"},
                "index": {"enable": False},
                "dataDir": str(tmp_path / "data"),
            },
        )
    )
    lsp_client.data_dir = tmp_path / "data"  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while not (await command(lsp_client, "pilotfish.status"))["loaded"]:
        assert time.monotonic() < deadline, "tiny model did not load"
        await asyncio.sleep(0.2)
    yield
    await lsp_client.shutdown_session()


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )


async def test_train_command_hot_reloads_the_promoted_adapter(client: LanguageClient) -> None:
    assert (await command(client, "pilotfish.status"))["adapter"] is None
    started = await command(
        client,
        "pilotfish.train",
        {
            "maxSteps": 2,
            "maxEval": 2,
            "holdoutCommits": 2,
            "threshold": -1,
            "name": "lsp1",
            "retrieval": False,
            "device": "cpu",
        },
    )
    assert started == {"started": True}
    again = await command(client, "pilotfish.train", {})
    assert again["started"] is False and "in progress" in again["reason"]
    deadline = time.monotonic() + 300
    while (await command(client, "pilotfish.status"))["adapter"] != "lsp1":
        assert time.monotonic() < deadline, [m.message for m in client.messages]
        await asyncio.sleep(0.5)
    assert any("training done; serving adapter lsp1" in m.message for m in client.messages)
    assert client.progress_reports, "no $/progress was relayed"
    listed = await command(client, "pilotfish.adapters")
    assert [a["name"] for a in listed] == ["lsp1"] and listed[0]["current"]

    # An adapter of another base model is refused; the one in use stays.
    data: Path = client.data_dir  # type: ignore[attr-defined]
    other = data / "adapters" / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"base_model": {"id": "some-other-model"}}))
    assert (await command(client, "pilotfish.useAdapter", "other"))["ok"] is True
    deadline = time.monotonic() + 30
    while not any("refused" in m.message for m in client.messages):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert (await command(client, "pilotfish.status"))["adapter"] == "lsp1"
    refusal = next(m.message for m in client.messages if "refused" in m.message)
    assert "trained on some-other-model" in refusal
