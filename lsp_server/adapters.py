"""The adapter registry of one repository: trained LoRA adapters, their manifests, the current one.

Layout under the repository's data folder::

    adapters/<name>/            PEFT adapter (+ adapter.gguf for llama.cpp) and manifest.json
    adapters/CURRENT            name of the adapter in use (replaced atomically)

The server and the CLI share it; training writes new adapters into it (staged, then renamed).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine.templates import TEMPLATES
from .errors import UserError

if TYPE_CHECKING:
    from .engine.generate import Generator

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True, kw_only=True)
class AdapterInfo:
    """One stored adapter: its folder, its manifest, and whether it is the current one."""

    name: str
    path: Path
    manifest: dict[str, Any]
    current: bool = False

    @property
    def base_model(self) -> str:
        """The base model id the adapter was trained on."""
        base = self.manifest.get("base_model") or {}
        return str(base.get("id", "")) if isinstance(base, dict) else ""

    def to_json(self) -> dict[str, object]:
        """``pilotfish adapters list --json`` row."""
        return {
            "name": self.name,
            "path": str(self.path),
            "current": self.current,
            "manifest": self.manifest,
        }


def adapters_dir(data_dir: Path) -> Path:
    """Where a repository's adapters live."""
    return data_dir / "adapters"


def read_manifest(folder: Path) -> dict[str, Any]:
    """An adapter folder's manifest (empty if missing or unreadable)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def current_name(data_dir: Path) -> str | None:
    """Name of the current adapter, if one is set and still present."""
    try:
        name = (adapters_dir(data_dir) / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not name or not (adapters_dir(data_dir) / name / MANIFEST).is_file():
        return None
    return name


def list_adapters(data_dir: Path) -> list[AdapterInfo]:
    """Every stored adapter with a manifest, oldest first."""
    root = adapters_dir(data_dir)
    if not root.is_dir():
        return []
    current = current_name(data_dir)
    found = [
        AdapterInfo(name=p.name, path=p, manifest=read_manifest(p), current=p.name == current)
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda a: (str(a.manifest.get("created_at", "")), a.name))


def get(data_dir: Path, name: str) -> AdapterInfo:
    """The adapter called ``name``; :class:`UserError` naming the ones there are if missing."""
    for info in list_adapters(data_dir):
        if info.name == name:
            return info
    names = ", ".join(a.name for a in list_adapters(data_dir)) or "none yet (run pilotfish train)"
    raise UserError(f"no adapter named {name!r}; adapters: {names}")


def current(data_dir: Path) -> AdapterInfo | None:
    """The adapter in use, if any."""
    name = current_name(data_dir)
    return get(data_dir, name) if name else None


def use(data_dir: Path, name: str | None) -> AdapterInfo | None:
    """Make ``name`` current (``None``: the base model); the pointer is replaced atomically."""
    info = get(data_dir, name) if name else None
    root = adapters_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".current-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write((name or "") + "\n")
    os.replace(tmp, root / CURRENT)
    return info


def remove(data_dir: Path, name: str) -> None:
    """Delete an adapter; removing the current one falls back to the base model."""
    info = get(data_dir, name)
    if info.current:
        use(data_dir, None)
    trash = info.path.with_name(f".trash-{name}")
    shutil.rmtree(trash, ignore_errors=True)
    info.path.rename(trash)  # atomic disappearance, then the slow delete
    shutil.rmtree(trash, ignore_errors=True)


def install(data_dir: Path, staged: Path, name: str) -> Path:
    """Move a fully written adapter folder into the registry under ``name`` (one rename)."""
    check_name(name)
    if not (staged / MANIFEST).is_file():
        raise ValueError(f"{staged} has no {MANIFEST}")
    root = adapters_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    dest = root / name
    if dest.exists():
        raise UserError(f"an adapter named {name!r} exists already; pick another --name")
    staged.rename(dest)
    return dest


def check_name(name: str) -> None:
    """Raise :class:`UserError` unless ``name`` is a safe folder name."""
    if not _NAME.match(name) or ".." in name:
        raise UserError(f"bad adapter name {name!r}: letters, digits, '.', '_' and '-' only")


def staging_dir(data_dir: Path, name: str) -> Path:
    """A fresh folder on the registry's file system to write an adapter into before install."""
    check_name(name)
    root = adapters_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix=f".staging-{name}-"))


def incompatibility(info: AdapterInfo, model_id: str, model_sha256: str = "") -> str | None:
    """Why the adapter cannot serve on this base model (one line), or ``None`` if it can."""
    base = info.manifest.get("base_model") or {}
    wanted_id = str(base.get("id", "")) if isinstance(base, dict) else ""
    wanted_sha = str(base.get("sha256", "")) if isinstance(base, dict) else ""
    if wanted_id and wanted_id != model_id:
        return (
            f"adapter {info.name} was trained on {wanted_id}, but the model in use is "
            f"{model_id}; switch the model or train a new adapter"
        )
    if wanted_sha and model_sha256 and wanted_sha != model_sha256:
        return (
            f"adapter {info.name} was trained on other weights of {model_id} "
            f"(sha256 {wanted_sha[:12]} vs {model_sha256[:12]}); train a new adapter"
        )
    return None


def apply(
    generator: Generator, data_dir: Path, setting: str = "auto", model_sha256: str = ""
) -> str:
    """Serve with the adapter ``setting`` names: ``auto`` (the current one), ``none``, a folder.

    Returns a one-line outcome for logs and messages. An adapter trained on another base model
    is refused and the generator keeps what it had.
    """
    if setting == "none":
        if generator.adapter is not None:
            generator.set_adapter(None)
        return "serving the base model (adapters disabled)"
    if setting != "auto":
        folder = Path(setting).expanduser()
        info = AdapterInfo(name=folder.name, path=folder, manifest=read_manifest(folder))
    else:
        found = current(data_dir)
        if found is None:
            if generator.adapter is not None:
                generator.set_adapter(None)
            return "no current adapter; serving the base model"
        info = found
    problem = incompatibility(info, generator.model_id, model_sha256)
    if problem:
        log.warning("%s", problem)
        return f"refused: {problem}"
    generator.set_adapter(info.path)
    trained = (info.manifest or {}).get("prompt_template") or {}
    template = TEMPLATES.get(str(trained.get("name", "")))
    if template is not None and str(trained.get("version", "")) != template.version:
        note = (f"adapter {info.name} was trained on prompt template {template.name} "
                f"v{trained.get('version')}, the server renders v{template.version}: "
                "retrain it (`pilotfish train`) for prompts that match")
        log.warning("%s", note)
        return f"serving adapter {info.name} ({note})"
    return f"serving adapter {info.name}"
