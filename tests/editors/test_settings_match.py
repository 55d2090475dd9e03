"""The VS Code extension's settings (package.json) agree with the server's settings."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pilotfish.lsp_server import settings as server_settings

PACKAGE_JSON = Path(__file__).parents[2] / "editors" / "vscode" / "package.json"
# Settings only the client reads; the server never sees them.
CLIENT_ONLY = ("server.", "trace.")
FIX = "run `python editors/vscode/scripts/sync_settings.py` to update package.json"
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


def _contributed() -> dict[str, dict[str, Any]]:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    props: dict[str, dict[str, Any]] = package["contributes"]["configuration"]["properties"]
    out = {}
    for name, prop in props.items():
        assert name.startswith("pilotfish."), name
        key = name.removeprefix("pilotfish.")
        if not key.startswith(CLIENT_ONLY):
            out[key] = prop
    return out


def _server_types() -> dict[str, Any]:
    """Each dotted camelCase setting name with its annotated Python type."""
    out: dict[str, Any] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = prefix + server_settings._camel(f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], key + ".")
            else:
                out[key] = hints[f.name]

    walk(server_settings.Settings, "")
    return out


def test_same_names() -> None:
    client = set(_contributed())
    server = set(server_settings.defaults_schema())
    assert client - server == set(), (
        f"package.json declares settings the server does not know: {FIX}"
    )
    assert server - client == set(), f"the server has settings package.json does not declare: {FIX}"


@pytest.mark.parametrize("key", sorted(server_settings.defaults_schema()))
def test_same_type_and_default(key: str) -> None:
    default = server_settings.defaults_schema()[key]
    prop = _contributed().get(key)
    assert prop is not None, f"pilotfish.{key} missing from package.json: {FIX}"
    assert prop["type"] == JSON_TYPES[type(default)], FIX
    assert prop["default"] == default, FIX
    assert type(prop["default"]) is type(default) or isinstance(default, float)
    if isinstance(default, list):
        assert prop["items"]["type"] == "string"


@pytest.mark.parametrize(
    "key",
    sorted(k for k, t in _server_types().items() if typing.get_origin(t) is typing.Literal),
)
def test_same_choices(key: str) -> None:
    choices = list(typing.get_args(_server_types()[key]))
    assert _contributed()[key].get("enum") == choices, FIX


def test_options_as_sent_parse_on_the_server() -> None:
    """The nested tree the extension sends (built from package.json defaults) is accepted."""
    tree: dict[str, Any] = {}
    for key, prop in _contributed().items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = prop["default"]
    parsed = server_settings.parse_settings({"pilotfish": tree})
    assert parsed == server_settings.Settings()
