from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pilotfish.lsp_server.engine.generate import Generation, GenerationRequest
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
    seen_snippets: list[int] = []

    def retrieve(ctx, budget):
        seen_snippets.append(budget)
        return []

    result = evaluate(
        cases,
        gen,
        tmp_path / "adapter-x",
        root=tmp_path,
        retrieve=retrieve,
        settings=CompletionSettings(skip_inside_word=False),
    )
    assert set(result.conditions) == {"base", "base+retrieval", "adapter", "adapter+retrieval"}
    assert result.conditions["base"]["exact_match"] == 0.0
    assert result.conditions["adapter+retrieval"]["exact_match"] == 100.0
    assert result.gate["passed"] is True
    assert result.gate["compared"] == ["base+retrieval", "adapter+retrieval"]
    # Only +retrieval conditions retrieve, and at the start of a line (every case here) only with
    # the adapter: the base model is served without context there, so it is measured so too.
    assert len(seen_snippets) == len(cases)
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
        retrieve=None,
        settings=CompletionSettings(skip_inside_word=False),
    )
    assert set(result.conditions) == {"base", "adapter"}
    assert result.gate["passed"] is False
    assert "no retriever" in result.gate["reason"]


def test_a_model_that_uses_context_everywhere_is_measured_with_it_at_line_start(
    tmp_path: Path,
) -> None:
    cases = _cases()
    gen = ScriptedGenerator({})
    gen.model_id = "qwen2.5-coder-1.5b"  # type: ignore[misc]
    seen: list[int] = []

    def retrieve(ctx, budget):
        seen.append(budget)
        return []

    evaluate(cases, gen, None, root=tmp_path, retrieve=retrieve,  # type: ignore[arg-type]
             settings=CompletionSettings(skip_inside_word=False))
    assert len(seen) == len(cases)  # base+retrieval retrieves at line start, as served
