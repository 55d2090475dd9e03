"""Export: the PEFT adapter, its GGUF LoRA twin for llama.cpp, and manifest.json, atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..lsp_server import __version__, adapters
from ..lsp_server.engine.llamacpp_backend import ADAPTER_GGUF

PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def model_sha256(model_dir: Path, known: str = "") -> str:
    """The base model's hash: the pulled bundle's (when known), else of its safetensors files."""
    if known:
        return known
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def write_gguf_lora(peft_dir: Path, out: Path, architecture: str) -> int:
    """Write llama.cpp's GGUF LoRA format from a PEFT adapter; return the tensor pairs written.

    As llama.cpp's ``convert_lora_to_gguf.py`` does: base tensor names mapped to GGUF names with
    ``.lora_a`` (r x in) and ``.lora_b`` (out x r) appended, and the alpha in the metadata.
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((peft_dir / "adapter_config.json").read_text())
    tensors = load_file(str(peft_dir / "adapter_model.safetensors"))
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(architecture)
    if arch is None:
        raise ValueError(f"no GGUF architecture named {architecture!r}")
    n_blocks = 1 + max(
        (int(k.split(".layers.")[1].split(".")[0]) for k in tensors if ".layers." in k), default=0
    )
    names = gguf.get_tensor_name_map(arch, n_blocks)
    writer = gguf.GGUFWriter(str(out), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(config["lora_alpha"]))
    pairs = 0
    for key in sorted(tensors):
        if ".lora_A." not in key:
            continue
        base = key.split(".lora_A.")[0].removeprefix("base_model.model.") + ".weight"
        name = names.get_name(base, try_suffixes=(".weight",))
        if name is None:
            raise ValueError(f"cannot map {base} to a GGUF tensor name")
        a = tensors[key].astype(np.float32)
        b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
        pairs += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return pairs


def build_manifest(
    *,
    name: str,
    base_model: dict[str, Any],
    repository: dict[str, Any],
    commits: dict[str, Any],
    dataset: dict[str, Any],
    training: dict[str, Any],
    metrics: dict[str, Any],
    template: dict[str, str],
    lora: dict[str, Any],
) -> dict[str, Any]:
    """The file contract between training and the server (see DESIGN.md)."""
    return {
        "format": 1,
        "name": name,
        "base_model": base_model,
        "repository": repository,
        "commits": commits,
        "dataset": dataset,
        "training": {k: v for k, v in training.items() if not k.endswith("_curve")},
        "metrics": metrics,
        "prompt_template": template,
        "lora": lora,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pilotfish_version": __version__,
    }


def export_adapter(
    peft_dir: Path,
    data_dir: Path,
    name: str,
    manifest: dict[str, Any],
    *,
    gguf_architecture: str | None,
    extra_files: tuple[Path, ...] = (),
) -> Path:
    """Stage the adapter folder (PEFT files, GGUF, report files, manifest last), then install it.

    A crash leaves at most a hidden staging folder, never a half-written adapter.
    """
    staged = adapters.staging_dir(data_dir, name)
    try:
        for file in PEFT_FILES:
            shutil.copy2(peft_dir / file, staged / file)
        if gguf_architecture:
            write_gguf_lora(staged, staged / ADAPTER_GGUF, gguf_architecture)
        for extra in extra_files:
            if extra.is_file():
                shutil.copy2(extra, staged / extra.name)
        (staged / adapters.MANIFEST).write_text(json.dumps(manifest, indent=2))
        return adapters.install(data_dir, staged, name)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
