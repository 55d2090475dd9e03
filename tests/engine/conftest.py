"""Shared fixtures of the engine tests: cursor contexts from marked text, the tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pilotfish.code_index.types import CursorContext

sys.path.insert(0, str(Path(__file__).parent))

CURSOR = "|"


def ctx_at(marked: str, language: str = "python") -> CursorContext:
    """A context from text with one ``|`` marking the cursor."""
    prefix, suffix = marked.split(CURSOR, 1)
    return CursorContext(prefix=prefix, suffix=suffix, language=language, line=prefix.count("\n"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model folder with FIM tokens (built in a few seconds)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
