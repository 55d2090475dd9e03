"""Precision rules for completion context: language families and test code."""

from __future__ import annotations

import pytest
from pilotfish.code_index.relevance import is_test_path, usable_language


@pytest.mark.parametrize(
    ("path", "language", "usable"),
    [
        ("pkg/util.py", "python", True),
        ("drive.mjs", "python", False),
        ("src/a.ts", "javascript", True),  # JS and TS use each other
        ("src/a.tsx", "typescript", True),
        ("lib/x.h", "cpp", True),
        ("main.go", "rust", False),
        ("docs/guide.md", "go", True),  # documentation serves every language
        ("setup.cfg", "python", False),
        ("Makefile", "python", True),  # unknown type: left to the other rules
    ],
)
def test_usable_language(path: str, language: str, usable: bool) -> None:
    assert usable_language(path, language) is usable


@pytest.mark.parametrize(
    ("path", "test"),
    [
        ("tests/unit/test_x.py", True),
        ("pkg/test_x.py", True),
        ("pkg/conftest.py", True),
        ("pkg/x_test.go", True),
        ("src/app.spec.ts", True),
        ("src/__tests__/app.js", True),
        ("src/main/java/FooTest.java", True),
        ("pkg/testing_utils.py", False),
        ("pkg/contest.py", False),
        ("src/latest.ts", False),
    ],
)
def test_is_test_path(path: str, test: bool) -> None:
    assert is_test_path(path) is test
