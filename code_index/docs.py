"""Documentation chunks: repository Markdown/RST by heading, and dependencies' API docs.

Dependency docs come from source only (parsed with tree-sitter, never imported or run): Python
modules the code imports, found in the workspace's own environment, and ``.d.ts`` files of
imported npm packages in ``node_modules``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .types import Citation, DocChunk

log = logging.getLogger(__name__)

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}\s*$")
_MAX_DOC_CHARS = 1500


def _doc_id(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=8).hexdigest()


def split_markdown(rel: str, text: str, abs_path: str) -> list[DocChunk]:
    """Sections of a Markdown file, one per heading (code fences do not start sections)."""
    sections: list[tuple[str, int, list[str]]] = [(Path(rel).stem, 1, [])]
    fence = False
    for number, line in enumerate(text.split("\n"), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        match = None if fence else _MD_HEADING.match(line)
        if match:
            sections.append((match.group(2), number, []))
        else:
            sections[-1][2].append(line)
    return _chunks(rel, abs_path, sections)


def split_rst(rel: str, text: str, abs_path: str) -> list[DocChunk]:
    """Sections of a reStructuredText file, one per underlined title."""
    lines = text.split("\n")
    sections: list[tuple[str, int, list[str]]] = [(Path(rel).stem, 1, [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _RST_UNDERLINE.match(nxt) and len(nxt.strip()) >= len(line.strip()):
            sections.append((line.strip(), i + 1, []))
            i += 2
            continue
        if not _RST_UNDERLINE.match(line):
            sections[-1][2].append(line)
        i += 1
    return _chunks(rel, abs_path, sections)


def _chunks(rel: str, abs_path: str, sections: list[tuple[str, int, list[str]]]) -> list[DocChunk]:
    out: list[DocChunk] = []
    for title, line, body in sections:
        text = "\n".join(body).strip()
        if not text:
            continue
        out.append(
            DocChunk(
                id=_doc_id(rel, str(line), title),
                title=title,
                text=text[:_MAX_DOC_CHARS],
                citation=Citation(path=abs_path, line=line),
                origin="repo",
            )
        )
    return out


# ---- Python dependencies -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DependencyModule:
    """A dependency's source file to index for its public API."""

    module: str
    path: Path
    package: str
    version: str
    language: str


def find_site_packages(root: Path, python: str = "") -> list[Path]:
    """The workspace environment's site-packages: configured interpreter, .venv, venv, $VIRTUAL_ENV.

    The interpreter is never run: its environment folder is found next to it.
    """
    candidates: list[Path] = []
    if python:
        exe = Path(python).expanduser()
        candidates.append(exe.parent.parent)
    candidates += [root / ".venv", root / "venv", root / "env"]
    env = os.environ.get("VIRTUAL_ENV")
    if env:
        candidates.append(Path(env))
    found: list[Path] = []
    for base in candidates:
        for pattern in ("lib/python3*/site-packages", "Lib/site-packages"):
            for hit in sorted(glob.glob(str(base / pattern))):
                p = Path(hit)
                if p.is_dir() and p not in found:
                    found.append(p)
        if found:
            break
    return found


def _dist_versions(site: Path) -> dict[str, tuple[str, str]]:
    """Top-level module name -> (distribution name, version) from ``*.dist-info``."""
    out: dict[str, tuple[str, str]] = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        tops: list[str] = []
        top_file = info / "top_level.txt"
        if top_file.exists():
            tops = [t.strip() for t in top_file.read_text(errors="replace").split() if t.strip()]
        record = info / "RECORD"
        if not tops and record.exists():
            for line in record.read_text(errors="replace").splitlines()[:200]:
                head = line.split(",", 1)[0].split("/", 1)[0]
                if head and not head.endswith((".dist-info", ".data")) and head != "..":
                    tops.append(head.removesuffix(".py"))
        for top in tops or [name.replace("-", "_").lower()]:
            out.setdefault(top, (name, version))
    return out


def resolve_python_modules(modules: set[str], sites: list[Path]) -> list[DependencyModule]:
    """Source files of imported modules found in site-packages (not the stdlib, not the repo)."""
    out: list[DependencyModule] = []
    stdlib = set(sys.stdlib_module_names)
    for site in sites:
        versions = _dist_versions(site)
        for module in sorted(modules):
            top = module.split(".")[0]
            if not top or top in stdlib:
                continue
            dist = versions.get(top)
            if dist is None:
                continue
            rel = Path(*module.split("."))
            for candidate in (site / rel / "__init__.py", site / f"{rel}.py",
                              site / rel / "__init__.pyi", site / f"{rel}.pyi"):
                if candidate.is_file():
                    out.append(DependencyModule(
                        module=module, path=candidate, package=dist[0], version=dist[1],
                        language="python",
                    ))
                    break
    return out


def resolve_typescript_modules(modules: set[str], root: Path) -> list[DependencyModule]:
    """``.d.ts`` entry files of imported npm packages (their own types, else ``@types``)."""
    out: list[DependencyModule] = []
    nm = root / "node_modules"
    if not nm.is_dir():
        return out
    for module in sorted(modules):
        if module.startswith((".", "/")) or not module:
            continue
        parts = module.split("/")
        pkg = "/".join(parts[:2]) if module.startswith("@") else parts[0]
        for folder in (nm / pkg, nm / "@types" / pkg.replace("@", "").replace("/", "__")):
            manifest = folder / "package.json"
            if not manifest.is_file():
                continue
            try:
                meta = json.loads(manifest.read_text(encoding="utf-8", errors="replace"))
            except ValueError:
                continue
            types = meta.get("types") or meta.get("typings") or "index.d.ts"
            entry = (folder / str(types)).resolve()
            if entry.suffix != ".ts" and entry.with_suffix(".d.ts").is_file():
                entry = entry.with_suffix(".d.ts")
            try:
                entry.relative_to(nm.resolve())
            except ValueError:
                continue  # never follow a link out of node_modules
            if entry.is_file():
                out.append(DependencyModule(
                    module=module, path=entry, package=str(meta.get("name", pkg)),
                    version=str(meta.get("version", "")), language="typescript",
                ))
                break
    return out


def is_public(name: str) -> bool:
    """Whether a name is part of a module's public API by convention."""
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))
