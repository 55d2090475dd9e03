"""Precision rules for completion context: which retrieved pieces code at the cursor can use.

Measured on held-out lines (BENCHMARKS.md "Completion quality"), a small code model does worse
with context it cannot use than with none: a JavaScript test driver in a Python prompt, test-only
helpers offered to library code. The prompt stage applies these rules before snippets cost
prompt tokens (shared with training, so adapters learn from the same selection).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from .languages import language_of_path, normalize_language

# Languages whose files can use each other's definitions.
_FAMILY = {
    "javascript": "js", "typescript": "js", "tsx": "js",
    "c": "c", "cpp": "c",
}
_DOCS = {"markdown", "rst"}

_TEST_PARTS = {"test", "tests", "testing", "__tests__", "spec", "specs"}
_TEST_NAME = re.compile(
    r"^(test_.*|.*_test|.*_tests|conftest|.*\.(test|spec)|.*Test|.*Tests)$"
)


def family(language: str | None) -> str:
    """The group of languages that share definitions (JS/TS, C/C++), else the language."""
    lang = normalize_language(language or "")
    return _FAMILY.get(lang, lang)


def usable_language(snippet_path: str, language: str) -> bool:
    """Whether code at ``snippet_path`` can be used from a ``language`` file.

    Documentation always can; code of another language family (a JavaScript test driver for a
    Python file) cannot; files of unknown type are left to the other rules.
    """
    other = language_of_path(snippet_path)
    if other is None or other in _DOCS or not language:
        return True
    return family(other) == family(language)


def is_test_path(path: str) -> bool:
    """Whether ``path`` is test code by the common conventions of its ecosystem."""
    pure = PurePosixPath(path.replace("\\", "/"))
    if any(part.lower() in _TEST_PARTS for part in pure.parts[:-1]):
        return True
    return bool(_TEST_NAME.match(pure.name.split(".", 1)[0] if pure.suffix else pure.name)
                or _TEST_NAME.match(pure.stem))
