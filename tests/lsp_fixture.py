"""How tests start the real server under a real LSP client (pytest-lsp), in one place."""

from __future__ import annotations

import functools
import sys

import pytest_lsp
from pytest_lsp import ClientServerConfig

SERVE = ClientServerConfig(server_command=[sys.executable, "-m", "pilotfish.lsp_server", "serve"])

server_client = functools.partial(
    pytest_lsp.fixture, scope="module", loop_scope="module", config=SERVE
)
"""Decorator for a module-scoped fixture whose ``lsp_client`` talks to ``pilotfish serve``."""
