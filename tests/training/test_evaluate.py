from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pilotfish.lsp_server.engine.generate import Generation, GenerationRequest
from pilotfish.lsp_server.models.registry import ServedRetrieval, served_retrieval
from pilotfish.lsp_server.settings import CompletionSettings
from pilotfish.training.evaluate import (
    bootstrap_difference,
    edit_similarity,
    evaluate,
    identifier_f1,
    levenshtein,
    score,
    write_report,
)
from pilotfish.training.examples import EvalCase


@pytest.mark.parametrize(
    ("a", "b", "d"), [("", "", 0), ("abc", "abc", 0), ("kitten", "sitting", 3), ("", "ab", 2)]
)
def test_levenshtein(a: str, b: str, d: int) -> None:
    assert levenshtein(a, b) == d == levenshtein(b, a)


@pytest.mark.parametrize(
    ("pred", "target", "em", "es", "f1"),
    [
        ("return a + b", "return a + b", 1.0, 1.0, 1.0),
        ("  return a + b ", "return a + b", 1.0, 1.0, 1.0),
        ("return a - b", "return a + b", 0.0, 1 - 1 / 12, 1.0),
        ("x = foo(y)", "x = bar(y)", 0.0, 1 - 3 / 10, 2 / 3),
        ("", "return a", 0.0, 0.0, 0.0),
    ],
)
def test_line_metrics(pred: str, target: str, em: float, es: float, f1: float) -> None:
    s = score(pred, target)
    assert s["exact_match"] == em
    assert s["edit_similarity"] == pytest.approx(es)
    assert s["identifier_f1"] == pytest.approx(f1)
    assert edit_similarity(pred, target) == pytest.approx(es)
    assert identifier_f1(pred, target) == pytest.approx(f1)


def test_bootstrap_interval_brackets_the_mean_and_sees_no_difference_in_ties() -> None:
    a = [0.0] * 20 + [100.0] * 20
    b = [0.0] * 10 + [100.0] * 30
    d = bootstrap_difference(a, b, seed=1)
    assert d.mean == pytest.approx(25.0)
    assert d.low <= d.mean <= d.high and d.low > 0
    tie = bootstrap_difference(a, a)
    assert tie.mean == tie.low == tie.high == 0.0
    with pytest.raises(ValueError):
        bootstrap_difference([], [])


class ScriptedGenerator:
    """Knows the answers only with the adapter; writes 'pass' otherwise."""

    backend = "fake"
    device = "cpu"
    model_id = "qwen2.5-coder-0.5b"  # stands in for the default model's serving policy

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self._adapter: str | None = None
        self.prompts: list[str] = []

    @property
    def adapter(self) -> str | None:
        return self._adapter

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def has_token(self, text: str) -> bool:
        return text in {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}

    def set_adapter(self, adapter: Path | None) -> None:
        self._adapter = adapter.name if adapter else None

    def generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        self.prompts.append(request.prompt)
        text = "pass"
        if self._adapter:
            for key, answer in self.answers.items():
                if key in request.prompt:
                    text = answer
        return Generation(text=text + "\n", prompt_tokens=1, new_tokens=1)


def _cases() -> list[EvalCase]:
    out = []
    for i in range(12):
        text = f"def f{i}(x):\n    \n"
        out.append(
            EvalCase(
                commit="c", path=f"m{i}.py", text=text, line=1, column=4, target=f"return x * {i}"
            )
        )
    return out


def test_gate_promotes_an_adapter_that_wins_and_reports(tmp_path: Path) -> None:
    cases = _cases()
    gen = ScriptedGenerator({f"def f{i}(x)": f"return x * {i}" for i in range(12)})
    seen: list[ServedRetrieval] = []

    def retrievers(policy: ServedRetrieval):
        def retrieve(ctx, budget):
            seen.append(policy)
            return []

        return retrieve

    result = evaluate(
        cases,
        gen,
        tmp_path / "adapter-x",
        root=tmp_path,
        retrievers=retrievers,
        settings=CompletionSettings(skip_inside_word=False),
    )
    assert set(result.conditions) == {"base", "base+retrieval", "adapter", "adapter+retrieval"}
    assert result.conditions["base"]["exact_match"] == 0.0
    assert result.conditions["adapter+retrieval"]["exact_match"] == 100.0
    assert result.gate["passed"] is True
    assert result.gate["compared"] == ["base+retrieval", "adapter+retrieval"]
    # Only +retrieval conditions retrieve, each as it is served, at line start too (every case
    # here): the base model its own way, the adapter what it was trained on.
    assert seen == [served_retrieval(gen.model_id)] * len(cases) + [
        served_retrieval(gen.model_id, adapter=True)] * len(cases)
    assert gen.adapter is None  # left as found
    files = write_report(
        tmp_path / "r",
        result,
        cases,
        {"train_curve": [(1, 2.0), (2, 1.0)], "val_curve": [(2, 1.5)]},
    )
    names = {p.name for p in files}
    assert {"report.json", "report.md"} <= names
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| adapter+retrieval | 100.0 |" in md and "Gate: passed" in md


def test_gate_refuses_an_adapter_that_does_not_help(tmp_path: Path) -> None:
    gen = ScriptedGenerator({})
    result = evaluate(
        _cases(),
        gen,
        tmp_path / "a",
        root=tmp_path,
        retrievers=None,
        settings=CompletionSettings(skip_inside_word=False),
    )
    assert set(result.conditions) == {"base", "adapter"}
    assert result.gate["passed"] is False
    assert "no retriever" in result.gate["reason"]


def test_each_condition_is_shown_snippets_in_its_served_format(tmp_path: Path) -> None:
    from pilotfish.code_index.types import Snippet

    cases = _cases()[:2]
    gen = ScriptedGenerator({})
    snippet = Snippet(path=str(tmp_path / "lib.py"), start_line=1, end_line=1,
                      text="def helper_area(r):\n    return r * r\n", score=1.0,
                      source="similar", reason="t")
    evaluate(cases, gen, tmp_path / "adapter-x", root=tmp_path,
             retrievers=lambda policy: lambda ctx, budget: [snippet],
             settings=CompletionSettings(skip_inside_word=False))
    # base, base+retrieval, adapter, adapter+retrieval: two prompts each.
    with_snippets = [p for p in gen.prompts if "helper_area" in p]
    assert len(gen.prompts) == 8 and len(with_snippets) == 4
    base, adapted = with_snippets[:2], with_snippets[2:]
    # The 0.5B is served its snippets as comments; its adapter, in the repository-level format.
    assert all("# def helper_area(r):" in p and "<|file_sep|>" not in p for p in base), base[0]
    assert all("<|file_sep|>" in p for p in adapted), adapted[0]
