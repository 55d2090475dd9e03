from __future__ import annotations

import json
from pathlib import Path

import pytest
from pilotfish.lsp_server import adapters
from pilotfish.lsp_server.cli import main as pilotfish
from pilotfish.training.__main__ import main as training

FLAGS = [
    "--device",
    "cpu",
    "--max-steps",
    "2",
    "--max-eval",
    "3",
    "--holdout-commits",
    "2",
    "--eval-every",
    "1",
    "--batch-size",
    "2",
    "--grad-accum",
    "1",
    "--threads",
    "1",
]


def test_train_produces_a_gated_adapter_with_report_and_gguf(
    make_repo,
    history,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys,
) -> None:
    root, commit = make_repo()
    history(commit, n=10)
    data = tmp_path / "data"
    rc = training(
        [
            "train",
            "--repo",
            str(root),
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(data),
            "--name",
            "t1",
            "--threshold",
            "-1",
            "--no-retrieval",
            "--json-progress",
            *FLAGS,
        ]
    )
    assert rc == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    stages = [e["stage"] for e in lines]
    assert stages[0] == "mine" and stages[-1] == "done"
    assert {"train", "eval", "export"} <= set(stages)
    assert any(e.get("step") == 2 and e.get("total") == 2 for e in lines if e["stage"] == "train")

    info = adapters.get(data, "t1")
    assert info.current  # the threshold of -1 point lets a no-worse adapter through
    m = info.manifest
    assert m["base_model"]["id"] == tiny_model_dir.name and len(m["base_model"]["sha256"]) == 64
    assert m["repository"]["root"] == str(root)
    assert m["commits"]["train"] == 8 and m["commits"]["heldout"] == 2
    assert m["prompt_template"] == {"name": "qwen2.5-coder", "version": "2"}
    assert m["metrics"]["gate"]["passed"] is True
    assert set(m["metrics"]["conditions"]) == {"base", "adapter"}
    assert m["dataset"]["examples"]["span"] > 0 and m["training"]["steps"] == 2
    assert m["pilotfish_version"] and m["created_at"]
    for f in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "adapter.gguf",
        "report.md",
        "report.json",
        "loss.png",
        "metrics.png",
    ):
        assert (info.path / f).is_file(), f


def test_gate_failure_keeps_adapter_but_not_current(
    make_repo,
    history,
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    root, commit = make_repo()
    history(commit, n=6)
    data = tmp_path / "data"
    rc = training(
        [
            "train",
            "--repo",
            str(root),
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(data),
            "--name",
            "t2",
            "--threshold",
            "50",
            "--no-retrieval",
            "--no-gguf",
            *FLAGS,
        ]
    )
    assert rc == 0
    assert adapters.current(data) is None
    assert not (adapters.get(data, "t2").path / "adapter.gguf").exists()


def _repo_only_docs(make_repo) -> Path:
    root, commit = make_repo()
    commit({"README.md": "# a\n"}, "docs")
    commit({"README.md": "# a\nmore\n"}, "more docs")
    return root


@pytest.mark.parametrize("case", ["not-git", "no-supported-files", "one-commit"])
def test_bad_repositories_exit_with_one_line(
    case: str,
    make_repo,
    tmp_path: Path,
    tiny_model_dir: Path,
    capfd,
) -> None:
    if case == "not-git":
        root = tmp_path / "plain"
        root.mkdir()
        expected = "not a git repository"
    elif case == "no-supported-files":
        root = _repo_only_docs(make_repo)
        expected = "no supported files"
    else:
        root, commit = make_repo()
        commit({"a.py": "x = 1\n"}, "one")
        expected = "at least 2 are needed"
    # Through the user-facing CLI: it runs the training child and relays its exit code.
    rc = pilotfish(
        [
            "train",
            "--repo",
            str(root),
            "--data-dir",
            str(tmp_path / "d"),
            "--model",
            str(tiny_model_dir),
            "--device",
            "cpu",
        ]
    )
    err = capfd.readouterr().err.strip().splitlines()
    assert rc == 2
    errors = [line for line in err if "error" in line]
    assert errors == err[-1:] and err[-1].startswith("pilotfish training: error:")
    assert expected in err[-1]


def test_adapters_cli(tmp_path: Path, capsys) -> None:
    data = tmp_path / "d"
    staged = adapters.staging_dir(data, "x1")
    (staged / adapters.MANIFEST).write_text(json.dumps({"base_model": {"id": "m"}}))
    adapters.install(data, staged, "x1")
    assert pilotfish(["adapters", "--data-dir", str(data), "use", "x1"]) == 0
    assert pilotfish(["adapters", "--data-dir", str(data), "list", "--json"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("[") :])
    assert rows[0]["name"] == "x1" and rows[0]["current"] and rows[0]["path"].endswith("x1")
    assert pilotfish(["adapters", "--data-dir", str(data), "use", "nope"]) == 2
    assert pilotfish(["adapters", "--data-dir", str(data), "rm", "x1"]) == 0
    assert adapters.list_adapters(data) == []


def test_eval_scores_an_adapter_on_commits_after_its_split(
    make_repo, history, tiny_model_dir: Path, tmp_path: Path, capsys
) -> None:
    root, commit = make_repo()
    history(commit, n=6)
    data = tmp_path / "data"
    common = ["--repo", str(root), "--model", str(tiny_model_dir), "--data-dir", str(data)]
    assert training(["train", *common, "--name", "e1", "--no-retrieval", *FLAGS]) == 0
    # New work lands after training; eval scores the adapter on it.
    text = (root / "pkg/geometry.py").read_text()
    commit({"pkg/geometry.py": text + "\n\ndef later(v):\n    return v * 1000 + 7\n"}, "later")
    capsys.readouterr()
    out = tmp_path / "eval"
    rc = training(
        [
            "eval",
            *common,
            "--adapter",
            "e1",
            "--no-retrieval",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--max-eval",
            "2",
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())["evaluation"]
    assert report["cases"] >= 1 and set(report["conditions"]) == {"base", "adapter"}
    assert {c["commit"] for c in report["per_case"]} == {next(iter(report["per_case"]))["commit"]}
    # Another base model is refused with one line.
    other = tmp_path / "other-model"
    import shutil

    shutil.copytree(tiny_model_dir, other)
    rc = training(
        [
            "eval",
            "--repo",
            str(root),
            "--model",
            str(other),
            "--data-dir",
            str(data),
            "--adapter",
            "e1",
            "--no-retrieval",
            "--device",
            "cpu",
        ]
    )
    assert rc == 2
    assert "was trained on" in capsys.readouterr().err


def test_interrupted_run_resumes_to_an_exported_adapter(
    make_repo, history, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    root, commit = make_repo()
    history(commit, n=6)
    data = tmp_path / "data"
    argv = [
        "train",
        "--repo",
        str(root),
        "--model",
        str(tiny_model_dir),
        "--data-dir",
        str(data),
        "--name",
        "r1",
        "--no-retrieval",
        *FLAGS[:2],
        "--max-steps",
        "6",
        "--max-eval",
        "2",
        "--holdout-commits",
        "2",
        "--batch-size",
        "1",
        "--grad-accum",
        "1",
        "--eval-every",
        "2",
        "--threads",
        "1",
    ]
    child = subprocess.Popen(
        [sys.executable, "-m", "pilotfish.training", *argv, "--json-progress"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        event = json.loads(line)
        if event.get("step") == 3 and event["stage"] == "train":
            child.send_signal(signal.SIGTERM)  # what the server's cancel does
            break
    assert child.wait(timeout=120) == 130
    state = json.loads((data / "runs" / "r1" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3
    assert adapters.list_adapters(data) == []
    assert training([*argv, "--resume"]) == 0
    info = adapters.get(data, "r1")
    assert info.manifest["training"]["steps"] == 6
