"""The CLI as a user runs it: a real subprocess, one clear error line for mistakes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PILOTFISH = [sys.executable, "-m", "pilotfish.lsp_server"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PILOTFISH, *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "calc.py"
    path.write_text("def add(a, b):\n    return \n\n\nprint(add(1, 2))\n")
    return path


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("{src}:9:1", "line 9 is past the end of the file"),
        ("{src}:2:40", "column 40 is past the end of line 2"),
        ("{src}:0:1", "1-based"),
        ("{src}:two:1", "PATH:LINE:COL"),
        ("{dir}/missing.py:1:1", "no such file"),
        ("{dir}:1:1", "is a directory"),
    ],
)
def test_user_mistakes_are_one_line(source: Path, location: str, message: str) -> None:
    proc = run("complete", location.format(src=source, dir=source.parent), "--no-index")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_option_out_of_range_is_one_line(source: Path) -> None:
    proc = run("complete", f"{source}:2:12", "--no-index", "--max-tokens", "-5")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "pilotfish: error: --max-tokens = -5 (expected 1..4096)"


def test_a_data_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "m.py").write_text("x = 1\n")
    proc = run("index", str(tmp_path / "repo"), "--data-dir", str(blocker / "data"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("pilotfish: error:") and str(blocker / "data") in last


def test_non_utf8_and_binary_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"x = '\xe9'\n")
    proc = run("complete", f"{latin}:1:1", "--no-index")
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr
    blob = tmp_path / "blob.py"
    blob.write_bytes(b"\x00\x01\x02")
    proc = run("complete", f"{blob}:1:1", "--no-index")
    assert proc.returncode == 2 and "binary" in proc.stderr


def test_missing_model_names_the_command(source: Path, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "PILOTFISH_HOME": str(tmp_path / "empty-home")}
    proc = run("complete", f"{source}:2:12", "--no-index", env=env)
    assert proc.returncode == 2
    assert "pilotfish model pull qwen2.5-coder-0.5b" in proc.stderr


def test_model_list_json() -> None:
    proc = run("model", "list", "--json")
    assert proc.returncode == 0
    names = [row["name"] for row in json.loads(proc.stdout)]
    assert {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"} <= set(names)


@pytest.mark.model
def test_complete_with_the_real_model(source: Path, real_model: str) -> None:
    proc = run("complete", f"{source}:2:12", "--no-index", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "a + b" in result["completion"]
    assert result["model"] == real_model
    assert result["snippets"] == []
    assert result["timings"]["total"] > 0


@pytest.mark.model
def test_pull_is_idempotent_for_the_real_model(real_model: str) -> None:
    proc = run("model", "pull", real_model)
    assert proc.returncode == 0
    assert "already pulled" in proc.stderr


@pytest.mark.model
def test_loose_file_is_completed_alone_not_its_whole_folder(source: Path, real_model: str) -> None:
    proc = run("complete", f"{source}:2:12", "--json")  # tmp_path holds no git repository
    assert proc.returncode == 0, proc.stderr
    assert "not in a git repository: using the file alone" in proc.stderr
    assert json.loads(proc.stdout)["snippets"] == []


def test_home_and_root_folders_are_never_indexed() -> None:
    from pilotfish.lsp_server.runtime import Runtime, too_broad_to_index
    from pilotfish.lsp_server.settings import Settings

    assert too_broad_to_index(Path.home()) and too_broad_to_index(Path("/"))
    assert not too_broad_to_index(Path(__file__).resolve().parents[2])
    runtime = Runtime(Settings(), Path.home())
    try:
        assert runtime.index is None
        assert "home or root folder" in runtime.status()["index"]["message"]  # type: ignore[index]
    finally:
        runtime.close()
