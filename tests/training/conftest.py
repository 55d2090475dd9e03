"""Fixtures: scratch git histories, a tiny offline tokenizer and a tiny random Qwen2 model."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS = '''
def add(a, b):
    """Return the sum."""
    return a + b


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

import os
for name in os.listdir("."):
    print(name, len(name))
'''


def git(repo: Path, *args: str, date: str = "2024-01-01T00:00:00") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
        "GIT_AUTHOR_NAME": os.environ.get("T_AUTHOR", "Dev"),
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


CommitFn = Callable[..., str]


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[], tuple[Path, CommitFn]]:
    """A fresh repository and a ``commit(files, message, author=...)`` helper."""

    def factory() -> tuple[Path, CommitFn]:
        root = tmp_path / "proj"
        root.mkdir()
        git(root, "init", "-q")
        counter = {"n": 0}

        def commit(files: dict[str, str | None], message: str, author: str = "Dev") -> str:
            counter["n"] += 1
            for rel, text in files.items():
                path = root / rel
                if text is None:
                    path.unlink()
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            git(root, "add", "-A")
            date = f"2024-01-{counter['n']:02d}T12:00:00"
            os.environ["T_AUTHOR"] = author
            try:
                git(root, "commit", "-q", "-m", message, date=date)
            finally:
                os.environ.pop("T_AUTHOR", None)
            return git(root, "rev-parse", "HEAD").strip()

        return root, commit

    return factory


def python_history(commit: CommitFn, n: int = 8) -> None:
    """A small history of a Python package where each commit adds a function."""
    base = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n"
    commit({"pkg/geometry.py": base, "README.md": "# proj\n"}, "start")
    text = base
    for i in range(1, n):
        text += (
            f"\n\ndef scaled_{i}(value, factor={i}):\n"
            f"    result = value * factor + {i}\n"
            f"    return round(result, {i % 3})\n"
        )
        files = {"pkg/geometry.py": text}
        if i % 3 == 0:
            files[f"pkg/util_{i}.py"] = f"def helper_{i}(x):\n    return x - {i}\n"
        commit(files, f"add scaled_{i}")


@pytest.fixture
def history() -> Callable[..., None]:
    """The :func:`python_history` helper."""
    return python_history


@pytest.fixture
def run_git() -> Callable[..., str]:
    """The :func:`git` helper."""
    return git


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 causal LM (4 layers, untied) whose tokenizer has the FIM tokens."""
    from tiny_model import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny-model"),
        corpus=CORPUS * 4,
        hidden_size=32,
        layers=4,
        initializer_range=0.5,
        tie_word_embeddings=False,
    )
