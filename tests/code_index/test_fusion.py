"""Learned fusion (fusion.py) and the cursor facts it is served with."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pilotfish.code_index import fusion
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.retrieve import open_call, pending_imports, python_imports


def _evidence(**changes: object) -> fusion.Evidence:
    base: dict[str, object] = dict(
        ranks=(0, 0, None), kind="function", same_file=False,
        same_directory=False, verbatim=True, lines=5,
    )
    base.update(changes)
    return fusion.Evidence(**base)  # type: ignore[arg-type]


MID_LINE = fusion.Cursor.at("def f():\n    x = ", "\n")
LINE_START = fusion.Cursor.at("def f():\n    ", "\n")


def _score(e: fusion.Evidence, cursor: fusion.Cursor = MID_LINE) -> float:
    return fusion.scores([e], cursor)[0]


def test_the_shipped_model_has_one_row_per_feature() -> None:
    model = fusion.MODEL
    assert (len(fusion.features(_evidence(), MID_LINE)) == len(fusion.FEATURES)
            == len(model.linear) == model.hidden.shape[0])
    assert model.hidden.shape[1] == len(model.bias) == len(model.out) > 0
    assert np.abs(model.out).sum() > 0  # the hidden layer takes part


def test_the_model_file_round_trips_and_refuses_other_features(tmp_path: Path) -> None:
    data = fusion.MODEL.to_json("test")
    again = fusion.Model.from_json(json.loads(json.dumps(data)))
    x = fusion.matrix([_evidence(), _evidence(kind="class", ranks=(3, None, 0))], MID_LINE)
    assert again.score(x) == pytest.approx(fusion.MODEL.score(x), abs=1e-3)
    stale = dict(data, features={k: v for k, v in data["features"].items()
                                 if k != "typed_words"})
    with pytest.raises(ValueError, match="typed_words"):
        fusion.Model.from_json(stale)
    saved = tmp_path / "saved.json"
    fusion.MODEL.save(saved, "test")
    assert fusion.load_model(saved).score(x) == pytest.approx(fusion.MODEL.score(x), abs=1e-3)
    assert json.loads(saved.read_text(encoding="utf-8")) == data
    broken = tmp_path / "model.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ImportError, match="cannot load"):
        fusion.load_model(broken)


def test_features_by_hand() -> None:
    row = dict(zip(fusion.FEATURES, fusion.features(_evidence(
        ranks=(0, None, 3), kind="method", same_directory=True, lines=9, name="read_tree",
        uses=math.e - 1, bare_uses=0.0, definitions=2, pending_import=True,
    ), fusion.Cursor.at("class Index:\n    def write_tree(self):\n        tree = 1\n    ",
                        "\n", ["write_tree", "Index"])), strict=True))
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
    assert (row["log_uses"], row["log_bare_uses"]) == (pytest.approx(1.0), 0.0)
    assert row["log_definitions"] == pytest.approx(math.log(3) / 3)
    assert row["pending_import"] == row["line_start_x_pending_import"] == 1.0
    assert row["scope_words"] == 0.5  # "tree" of read_tree is in write_tree
    assert row["near_words"] == 0.5  # ... and on the line before
    assert row["typed_words"] == row["chunk"] == row["used_just_before"] == 0.0
    assert dict(zip(fusion.FEATURES, fusion.features(_evidence(kind="outline"), MID_LINE),
                    strict=True))["outline"] == 1.0


def test_cursor_facts() -> None:
    dotted = fusion.Cursor.at("import os\nrepo = load()\nx = repo.", "\nnext_line(a)\n")
    assert dotted.after_dot and not dotted.after_operator and not dotted.line_start
    assert dotted.typed == {"repo"}
    assert dotted.recent == {"import", "os", "repo", "load"}
    assert {"next", "line", "os", "load"} <= dotted.near
    assert fusion.Cursor.at("    return ", "").after_operator
    assert fusion.Cursor.at("    f(a, ", "").after_operator
    assert not fusion.Cursor.at("    return_code", "").after_operator
    assert fusion.words("remove_password_if_present") == {"remove", "password", "if", "present"}
    assert fusion.words("HTTPServerError2") == {"http", "server", "error"}


def test_the_words_typed_on_the_line_point_at_the_definition() -> None:
    typed = fusion.Cursor.at("    working_tree = ", "\n")
    assert (_score(_evidence(name="working_tree_dir"), typed)
            > _score(_evidence(name="index_path"), typed))


def test_a_name_defined_many_times_ranks_lower() -> None:
    assert _score(_evidence(name="run", definitions=1)) > _score(_evidence(name="run",
                                                                         definitions=30))


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
    many = [_evidence(ranks=(r, None if r % 2 else r + 1, 3), kind=k, name=f"name_{r}",
                      uses=r / 2, definitions=r % 4)
            for r, k in zip(range(9), [*fusion.KINDS, "", "", ""], strict=True)]
    for cursor in (MID_LINE, LINE_START):
        assert fusion.scores(many, cursor) == pytest.approx([_score(e, cursor) for e in many])
    assert fusion.scores([], MID_LINE) == []


def test_definition_counts_follow_the_index(tmp_path: Path) -> None:
    """The counts fusion reads are cached per name, and an edit to the index drops the cache."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("def helper():\n    return 1\n")
    (root / "pkg" / "b.py").write_text("X = 1\n")
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        index.build()
        db = index.store.reader()
        counts = index.retriever._definition_counts  # the cache under test
        assert counts(db, ["helper", "missing"]) == {"helper": 1, "missing": 0}
        (root / "pkg" / "b.py").write_text("def helper():\n    return 2\n")
        index.update_file(root / "pkg" / "b.py")
        assert counts(index.store.reader(), ["helper"]) == {"helper": 2}
        index.delete_file("pkg/a.py")
        assert counts(index.store.reader(), ["helper"]) == {"helper": 1}
    finally:
        index.close()
