"""Shared test configuration: markers and the real model's location."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pilotfish.lsp_server.models.pull import model_dir, read_manifest
from pilotfish.lsp_server.models.registry import DEFAULT_MODEL

# Shared helpers (tiny_model.py) import by name; --import-mode=importlib leaves sys.path alone.
sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests skip without CUDA; model tests fail loudly when the model is not pulled."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        has_cuda = False
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


@pytest.fixture(scope="session")
def real_model() -> str:
    """The default model's name; fails (not skips) when it has not been pulled."""
    if not read_manifest(model_dir(DEFAULT_MODEL)):
        pytest.fail(f"the real model is not pulled: run `pilotfish model pull {DEFAULT_MODEL}`")
    return DEFAULT_MODEL
