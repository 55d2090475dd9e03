from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pilotfish.lsp_server import adapters
from pilotfish.lsp_server.errors import UserError


def _stage(
    data_dir: Path, name: str, base: str = "qwen2.5-coder-0.5b", sha: str = "ab" * 32,
    template: dict[str, str] | None = None,
) -> Path:
    staged = adapters.staging_dir(data_dir, name)
    (staged / "adapter_config.json").write_text("{}")
    manifest: dict[str, object] = {
        "name": name, "base_model": {"id": base, "sha256": sha}, "created_at": name,
    }
    if template is not None:
        manifest["prompt_template"] = template
    (staged / adapters.MANIFEST).write_text(json.dumps(manifest))
    return adapters.install(data_dir, staged, name)


def test_registry_list_use_rm(tmp_path: Path) -> None:
    assert adapters.list_adapters(tmp_path) == []
    assert adapters.current(tmp_path) is None
    _stage(tmp_path, "a1")
    _stage(tmp_path, "a2")
    assert [a.name for a in adapters.list_adapters(tmp_path)] == ["a1", "a2"]
    adapters.use(tmp_path, "a2")
    current = adapters.current(tmp_path)
    assert current is not None and current.name == "a2" and current.current
    assert current.base_model == "qwen2.5-coder-0.5b"
    with pytest.raises(UserError, match="no adapter named 'zz'; adapters: a1, a2"):
        adapters.use(tmp_path, "zz")
    adapters.remove(tmp_path, "a2")  # the current one: back to the base model
    assert adapters.current(tmp_path) is None
    assert [a.name for a in adapters.list_adapters(tmp_path)] == ["a1"]
    assert not any(
        p.name.startswith(".") for p in adapters.adapters_dir(tmp_path).iterdir() if p.is_dir()
    )


def test_install_refuses_overwrite_and_bad_names(tmp_path: Path) -> None:
    _stage(tmp_path, "a1")
    with pytest.raises(UserError, match="exists already"):
        _stage(tmp_path, "a1")
    with pytest.raises(UserError, match="bad adapter name"):
        _stage(tmp_path, "../evil")


class FakeGenerator:
    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.adapter: str | None = None
        self.calls: list[Path | None] = []

    def set_adapter(self, adapter: Path | None) -> None:
        self.calls.append(adapter)
        self.adapter = adapter.name if adapter else None


def test_apply_serves_current_and_refuses_another_base(tmp_path: Path) -> None:
    gen = FakeGenerator("qwen2.5-coder-0.5b")
    assert "no current adapter" in adapters.apply(gen, tmp_path)  # type: ignore[arg-type]
    _stage(tmp_path, "good")
    _stage(tmp_path, "other", base="qwen2.5-coder-1.5b")
    adapters.use(tmp_path, "good")
    assert adapters.apply(gen, tmp_path) == "serving adapter good"  # type: ignore[arg-type]
    assert gen.adapter == "good"
    adapters.use(tmp_path, "other")
    outcome = adapters.apply(gen, tmp_path)  # type: ignore[arg-type]
    assert outcome.startswith("refused: adapter other was trained on qwen2.5-coder-1.5b")
    assert gen.adapter == "good"  # kept what it had
    adapters.use(tmp_path, "good")
    wrong_hash = adapters.apply(gen, tmp_path, model_sha256="cd" * 32)  # type: ignore[arg-type]
    assert wrong_hash.startswith("refused") and "other weights" in wrong_hash
    assert "base model" in adapters.apply(gen, tmp_path, "none")  # type: ignore[arg-type]
    assert gen.adapter is None


def test_use_pointer_is_atomic_under_concurrent_readers(tmp_path: Path) -> None:
    _stage(tmp_path, "a1")
    _stage(tmp_path, "a2")
    seen: set[str | None] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(adapters.current_name(tmp_path))

    t = threading.Thread(target=reader)
    t.start()
    for i in range(200):
        adapters.use(tmp_path, "a1" if i % 2 else "a2")
    stop.set()
    t.join()
    assert seen <= {"a1", "a2", None}


def test_adapter_trained_on_an_older_prompt_template_is_served_with_a_warning(
    tmp_path: Path,
) -> None:
    from pilotfish.lsp_server.engine.templates import TEMPLATES

    gen = FakeGenerator("qwen2.5-coder-0.5b")
    now = TEMPLATES["qwen2.5-coder"].version
    _stage(tmp_path, "fresh", template={"name": "qwen2.5-coder", "version": now})
    _stage(tmp_path, "old", template={"name": "qwen2.5-coder", "version": "0"})
    adapters.use(tmp_path, "fresh")
    assert adapters.apply(gen, tmp_path) == "serving adapter fresh"  # type: ignore[arg-type]
    adapters.use(tmp_path, "old")
    outcome = adapters.apply(gen, tmp_path)  # type: ignore[arg-type]
    assert outcome.startswith("serving adapter old (") and "retrain" in outcome
    assert gen.adapter == "old"
