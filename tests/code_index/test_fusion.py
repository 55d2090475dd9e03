"""Learned fusion (fusion.py) and the cursor facts it is served with."""

from __future__ import annotations

import math

import pytest
from pilotfish.code_index import fusion
from pilotfish.code_index.retrieve import open_call, pending_imports, python_imports


def _evidence(**changes: object) -> fusion.Evidence:
    base: dict[str, object] = dict(
        ranks=(0, 0, None), kind="function", same_file=False,
        same_directory=False, verbatim=True, lines=5, line_start=False,
    )
    base.update(changes)
    return fusion.Evidence(**base)  # type: ignore[arg-type]


def _score(e: fusion.Evidence) -> float:
    return fusion.scores([e])[0]


def test_one_weight_per_feature() -> None:
    assert len(fusion.features(_evidence())) == len(fusion.FEATURES) == len(fusion.WEIGHTS)


def test_features_by_hand() -> None:
    row = dict(zip(fusion.FEATURES, fusion.features(_evidence(
        ranks=(0, None, 3), kind="method", same_directory=True, lines=9, line_start=True,
    )), strict=True))
    assert [row[f"inverse_rank_{n}"] for n in fusion.LISTS] == [1.0, 0.0, 0.25]
    assert [row[f"in_{n}"] for n in fusion.LISTS] == [1.0, 0.0, 1.0]
    assert row["log_rank_uses"] == 0.0
    assert row["log_rank_nearest"] == fusion.ABSENT_LOG_RANK
    assert row["log_rank_lexical"] == pytest.approx(math.log(4) / 3)
    assert row["lists"] == pytest.approx(2 / 3)
    assert [k for k in fusion.KINDS if row[f"kind_{k}"]] == ["method"]
    assert (row["same_directory"], row["same_file"], row["outline"]) == (1.0, 0.0, 0.0)
    assert row["log_lines"] == pytest.approx(math.log(10) / 5)
    assert row["line_start_x_inverse_rank_lexical"] == 0.25
    assert dict(zip(fusion.FEATURES, fusion.features(_evidence(kind="outline")),
                    strict=True))["outline"] == 1.0


def test_better_ranks_score_higher() -> None:
    top = _score(_evidence(ranks=(0, 0, None)))
    assert top > _score(_evidence(ranks=(5, 3, None)))
    assert (_score(_evidence(ranks=(5, 3, None)))
            > _score(_evidence(ranks=(30, None, None))))


def test_the_cursors_own_file_and_local_variables_rank_lower() -> None:
    assert _score(_evidence(same_file=True)) < _score(_evidence())
    assert _score(_evidence(kind="variable")) < _score(_evidence(kind="function"))


def test_open_call() -> None:
    assert open_call("x = f(a, ") == "f"
    assert open_call("    self.run(cmd, [1, 2], ") == "run"
    assert open_call("g(h(1), ") == "g"
    assert open_call("print(x)") is None
    assert open_call("if (a") is None  # a keyword is not a callee
    assert open_call("items = [f(x), ") is None  # inside a list, not a call
    assert open_call("x = f(" + "a, " * 10_000) is None  # only a bounded tail is read


def test_pending_imports_are_the_names_not_used_yet() -> None:
    text = (
        "from .shapes import area, Polygon\n"
        "from .util import helper as h\n"
        "import os\n"
        "\n"
        "def f(r):\n"
        "    return area(r) + h(r)\n"
    )
    assert pending_imports(text, python_imports(text)) == ["Polygon"]
    documented = text + '"""Polygon is for later."""\n'  # prose that names it counts as a use
    assert pending_imports(documented, python_imports(documented)) == []


def test_scores_in_one_product_equal_one_by_one() -> None:
    many = [_evidence(ranks=(r, None if r % 2 else r + 1, 3), line_start=r % 3 == 0,
                      kind=k) for r, k in zip(range(9), [*fusion.KINDS, "", "", ""], strict=True)]
    assert fusion.scores(many) == pytest.approx([_score(e) for e in many])
    assert fusion.scores([]) == []
