"""Learned fusion (fusion.py) and the cursor facts it is served with."""

from __future__ import annotations

from pilotfish.code_index import fusion
from pilotfish.code_index.retrieve import open_call, pending_imports, python_imports


def _evidence(**changes: object) -> fusion.Evidence:
    base: dict[str, object] = dict(
        ranks=(0, 0, None), kind="function", outline=False, same_file=False,
        same_directory=False, verbatim=True, lines=5, line_start=False,
    )
    base.update(changes)
    return fusion.Evidence(**base)  # type: ignore[arg-type]


def test_one_weight_per_feature() -> None:
    assert len(fusion.features(_evidence())) == len(fusion.FEATURES) == len(fusion.WEIGHTS)


def test_better_ranks_score_higher() -> None:
    top = fusion.score(_evidence(ranks=(0, 0, None)))
    assert top > fusion.score(_evidence(ranks=(5, 3, None)))
    assert (fusion.score(_evidence(ranks=(5, 3, None)))
            > fusion.score(_evidence(ranks=(30, None, None))))


def test_the_cursors_own_file_and_local_variables_rank_lower() -> None:
    assert fusion.score(_evidence(same_file=True)) < fusion.score(_evidence())
    assert fusion.score(_evidence(kind="variable")) < fusion.score(_evidence(kind="function"))


def test_open_call() -> None:
    assert open_call("x = f(a, ") == "f"
    assert open_call("    self.run(cmd, [1, 2], ") == "run"
    assert open_call("g(h(1), ") == "g"
    assert open_call("print(x)") is None
    assert open_call("if (a") is None  # a keyword is not a callee
    assert open_call("items = [f(x), ") is None  # inside a list, not a call


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
