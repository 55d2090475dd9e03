"""Where pilotfish keeps its data: pulled models, per-repository indexes and adapters."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import platformdirs

HOME_ENV = "PILOTFISH_HOME"


def home() -> Path:
    """The root of pilotfish's data; ``$PILOTFISH_HOME`` overrides the platform default."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("pilotfish", appauthor=False))


def models_dir() -> Path:
    """Pulled and converted models, one folder each."""
    return home() / "models"


def repo_data_dir(repo_root: Path, override: str = "") -> Path:
    """The data directory of one repository, keyed by its resolved root path.

    The key keeps the folder's name readable and a hash of the full path makes it unique.
    """
    if override:
        return Path(override).expanduser()
    root = repo_root.resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name).strip("-") or "root"
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return home() / "repos" / f"{slug}-{digest}"


def find_repo_root(start: Path) -> Path:
    """The nearest enclosing folder with a ``.git`` entry, else the start folder itself."""
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder
