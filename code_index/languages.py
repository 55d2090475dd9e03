"""Which tree-sitter grammar and tag query serve each language, loaded once on first use."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePath

from tree_sitter import Language, Parser, Query

log = logging.getLogger(__name__)

LANGUAGE_BY_SUFFIX: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
}

# Other text files worth lexical/dense search even without a grammar.
PLAIN_TEXT_SUFFIXES: dict[str, str] = {
    ".rb": "ruby",
    ".lua": "lua",
    ".sh": "shellscript",
    ".kt": "kotlin",
    ".swift": "swift",
    ".cs": "csharp",
    ".php": "php",
    ".scala": "scala",
    ".sql": "sql",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".cfg": "ini",
    ".ini": "ini",
    ".txt": "plaintext",
}

DOC_SUFFIXES: dict[str, str] = {".md": "markdown", ".markdown": "markdown", ".rst": "rst"}

# LSP language ids and common spellings that name the same grammar.
_ALIASES = {
    "typescriptreact": "tsx",
    "javascriptreact": "javascript",
    "py": "python",
    "js": "javascript",
    "ts": "typescript",
    "golang": "go",
    "rs": "rust",
    "c++": "cpp",
    "cuda": "cpp",
    "objective-c": "c",
}


def normalize_language(language_id: str) -> str:
    """The grammar name for an LSP language id (``typescriptreact`` -> ``tsx``)."""
    lowered = language_id.lower()
    return _ALIASES.get(lowered, lowered)


def indexed_suffixes() -> list[str]:
    """Every file suffix the index reads (code, plain-text languages, docs), sorted."""
    return sorted({*LANGUAGE_BY_SUFFIX, *PLAIN_TEXT_SUFFIXES, *DOC_SUFFIXES})


def language_of_path(path: str | PurePath) -> str | None:
    """The language of a file by its suffix: a grammar name, a plain-text language or a doc."""
    suffix = PurePath(path).suffix.lower()
    return (
        LANGUAGE_BY_SUFFIX.get(suffix)
        or PLAIN_TEXT_SUFFIXES.get(suffix)
        or DOC_SUFFIXES.get(suffix)
    )


@dataclass(frozen=True)
class LanguageSpec:
    """A grammar with its definitions query."""

    name: str
    language: Language
    query: Query

    def parser(self) -> Parser:
        """A new parser for this grammar (parsers are not thread-safe; make one per thread)."""
        return Parser(self.language)


def _load_language(name: str) -> Language | None:
    # Imported lazily so that a missing optional grammar only disables its language.
    try:
        if name == "python":
            import tree_sitter_python as mod

            return Language(mod.language())
        if name == "javascript":
            import tree_sitter_javascript as mod

            return Language(mod.language())
        if name in ("typescript", "tsx"):
            import tree_sitter_typescript as ts

            return Language(ts.language_tsx() if name == "tsx" else ts.language_typescript())
        if name == "go":
            import tree_sitter_go as mod

            return Language(mod.language())
        if name == "rust":
            import tree_sitter_rust as mod

            return Language(mod.language())
        if name == "java":
            import tree_sitter_java as mod

            return Language(mod.language())
        if name == "c":
            import tree_sitter_c as mod

            return Language(mod.language())
        if name == "cpp":
            import tree_sitter_cpp as mod

            return Language(mod.language())
    except ImportError as exc:
        log.warning("tree-sitter grammar for %s is not installed: %s", name, exc)
    return None


def _query_source(name: str) -> str:
    file = "typescript.scm" if name == "tsx" else f"{name}.scm"
    package = __name__.rsplit(".", 1)[0]
    return resources.files(package).joinpath("queries", file).read_text(encoding="utf-8")


@functools.cache
def get_spec(name: str) -> LanguageSpec | None:
    """The grammar and query for a language name, or ``None`` when there is no grammar."""
    name = normalize_language(name)
    if name not in set(LANGUAGE_BY_SUFFIX.values()):
        return None
    language = _load_language(name)
    if language is None:
        return None
    return LanguageSpec(name=name, language=language, query=Query(language, _query_source(name)))


def has_grammar(name: str) -> bool:
    """Whether symbols can be extracted for this language."""
    return normalize_language(name) in set(LANGUAGE_BY_SUFFIX.values())
