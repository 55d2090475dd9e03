"""Brings package.json's `pilotfish.*` server settings in line with the server's settings.

Run after a server setting is added, removed or changes its default:
    python editors/vscode/scripts/sync_settings.py
Names, types, defaults and choices come from `pilotfish.lsp_server.settings`; a new setting's
description comes from the attribute docstring in settings.py (edit it in package.json after).
Hand-written descriptions and the client-only `pilotfish.server.*` / `pilotfish.trace.*` stay.
tests/editors/test_settings_match.py checks the result.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import typing
from pathlib import Path
from typing import Any

from pilotfish.lsp_server import settings as S

PACKAGE_JSON = Path(__file__).resolve().parents[1] / "package.json"
CLIENT_ONLY = ("pilotfish.server.", "pilotfish.trace.")
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


def _docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string right after `name: type = default`) of a dataclass."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    out = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            out[node.target.id] = " ".join(nxt.value.value.replace("``", "`").split())
    return out


def server_settings() -> dict[str, dict[str, Any]]:
    """`pilotfish.<dotted key>` -> package.json property, from the server's dataclasses."""
    defaults = S.defaults_schema()
    out: dict[str, dict[str, Any]] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        docs = _docstrings(cls)
        for f in dataclasses.fields(cls):
            key = prefix + S._camel(f.name)  # the wire naming rule
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, key + ".")
                continue
            default = defaults[key]
            prop: dict[str, Any] = {"type": JSON_TYPES[type(default)], "default": default}
            if isinstance(default, list):
                prop["items"] = {"type": "string"}
            if typing.get_origin(hint) is typing.Literal:
                prop["enum"] = list(typing.get_args(hint))
            prop["markdownDescription"] = docs.get(f.name, f"Server setting `{key}`.")
            out["pilotfish." + key] = prop

    walk(S.Settings, "")
    return out


def main() -> None:
    """Rewrite package.json's server settings; print what was added or removed."""
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    old: dict[str, dict[str, Any]] = package["contributes"]["configuration"]["properties"]
    new = {k: v for k, v in old.items() if k.startswith(CLIENT_ONLY)}
    for key, prop in server_settings().items():
        kept = old.get(key, {})
        merged = {**prop}
        if "markdownDescription" in kept:
            merged["markdownDescription"] = kept["markdownDescription"]
        if "enum" not in prop and "enum" in kept:  # client-side choices for free-form strings
            merged["enum"] = kept["enum"]
        new[key] = merged
        if key not in old:
            print(f"added {key}")
    for key in old.keys() - new.keys():
        print(f"removed {key}")
    package["contributes"]["configuration"]["properties"] = new
    PACKAGE_JSON.write_text(
        json.dumps(package, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
