from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pilotfish.lsp_server.features.training import progress_of, training_argv
from pilotfish.lsp_server.runtime import Runtime
from pilotfish.lsp_server.settings import IndexSettings, Settings


@pytest.mark.parametrize(
    ("line", "message", "percentage"),
    [
        ('{"stage": "mine", "message": "12 commits"}', "mine: 12 commits", None),
        (
            json.dumps(
                {
                    "stage": "train",
                    "message": "",
                    "step": 3,
                    "total": 10,
                    "percentage": 30,
                    "metrics": {"loss": 1.23456},
                }
            ),
            "train 3/10 loss 1.235",
            30,
        ),
        ("not json", None, None),
        ("[1, 2]", None, None),
    ],
)
def test_progress_lines_become_progress(
    line: str, message: str | None, percentage: int | None
) -> None:
    progress = progress_of(line)
    if message is None:
        assert progress is None
    else:
        assert progress is not None
        assert progress.message == message and progress.percentage == percentage


def test_training_argv_uses_the_workspace_and_options(tmp_path: Path) -> None:
    settings = Settings()
    import dataclasses

    settings = dataclasses.replace(
        settings, index=IndexSettings(enable=False), data_dir=str(tmp_path / "d")
    )
    runtime = Runtime(settings, tmp_path)
    argv = training_argv(runtime, {"maxSteps": 5, "timeBudget": "30m", "unknown": 1})
    assert argv[:5] == [sys.executable, "-m", "pilotfish.training", "train", "--json-progress"]
    joined = " ".join(argv)
    assert f"--repo {tmp_path}" in joined and f"--data-dir {tmp_path / 'd'}" in joined
    assert "--max-steps 5" in joined and "--time-budget 30m" in joined
    assert "unknown" not in joined
    assert "--model qwen2.5-coder-0.5b" in joined
