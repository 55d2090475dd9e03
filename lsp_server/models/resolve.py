"""Resolve a configured model name (bundle, folder, ``.gguf`` or hub id) to files on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .pull import GGUF_NAME, model_dir, read_manifest
from .registry import BUNDLES


@dataclass(frozen=True, kw_only=True)
class ResolvedModel:
    """A model's files: a transformers folder, a GGUF file, or both."""

    name: str
    folder: Path | None
    gguf: Path | None
    sha256: str = ""


def resolve_model(name: str) -> ResolvedModel:
    """Find the files of ``name``; raise :class:`UserError` naming the command that fixes it."""
    if name in BUNDLES:
        folder = model_dir(name)
        manifest = read_manifest(folder)
        if not manifest:
            raise UserError(f"model {name!r} is not pulled yet: run `pilotfish model pull {name}`")
        gguf = folder / GGUF_NAME
        return ResolvedModel(
            name=name,
            folder=folder,
            gguf=gguf if gguf.is_file() else None,
            sha256=str(manifest.get("sha256", "")),
        )
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"model file {path} does not exist")
        return ResolvedModel(name=path.stem, folder=None, gguf=path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{path} is not a model folder (no config.json)")
        ggufs = sorted(path.glob("*.gguf"))
        return ResolvedModel(
            name=path.name, folder=path.resolve(), gguf=ggufs[0] if ggufs else None
        )
    if "/" in name and not path.exists():
        folder = model_dir(name)
        if read_manifest(folder):
            return ResolvedModel(name=name, folder=folder, gguf=None)
        raise UserError(f"model {name!r} is not pulled yet: run `pilotfish model pull {name}`")
    known = ", ".join(BUNDLES)
    raise UserError(
        f"unknown model {name!r}: use one of {known}, a Hugging Face id, a folder or a .gguf file"
    )
