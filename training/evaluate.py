"""The evaluation gate: base vs adapter, in-file vs +retrieval, through the server's engine."""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..lsp_server.engine.context import CompletionRequest
from ..lsp_server.engine.engine import CompletionEngine
from ..lsp_server.engine.generate import Generator
from ..lsp_server.models.registry import served_retrieval
from ..lsp_server.settings import CompletionSettings
from .examples import EvalCase
from .progress import Event
from .retrieval import Retrievers

log = logging.getLogger(__name__)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CONDITIONS = ("base", "base+retrieval", "adapter", "adapter+retrieval")
METRICS = ("exact_match", "edit_similarity", "identifier_f1")


# -- metrics (pure) ------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(prediction: str, target: str) -> float:
    """1 - Levenshtein / max length (1.0 for two empty strings)."""
    p, t = prediction.strip(), target.strip()
    if not p and not t:
        return 1.0
    return 1.0 - levenshtein(p, t) / max(len(p), len(t))


def identifier_f1(prediction: str, target: str) -> float:
    """F1 of the identifiers (as multisets) of prediction and target."""
    p, t = Counter(_IDENT.findall(prediction)), Counter(_IDENT.findall(target))
    if not p and not t:
        return 1.0
    common = sum((p & t).values())
    if not common:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(t.values())
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, target: str) -> dict[str, float]:
    """The three metrics of one line (exact match as 0/1)."""
    return {
        "exact_match": float(prediction.strip() == target.strip()),
        "edit_similarity": edit_similarity(prediction, target),
        "identifier_f1": identifier_f1(prediction, target),
    }


@dataclass(frozen=True, kw_only=True)
class Difference:
    """Mean paired difference (b - a) with a bootstrap interval, in the metric's units."""

    mean: float
    low: float
    high: float
    confidence: float


def bootstrap_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 2000,
    confidence: float = 0.9,
    seed: int = 0,
) -> Difference:
    """Paired bootstrap of mean(b) - mean(a); hole sets are small, so the interval matters."""
    if len(a) != len(b) or not a:
        raise ValueError("paired samples of equal, non-zero length are needed")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    return Difference(
        mean=sum(diffs) / n,
        low=means[int(tail * resamples)],
        high=means[min(resamples - 1, int((1 - tail) * resamples))],
        confidence=confidence,
    )


# -- running the conditions ------------------------------------------------------------------


@dataclass
class EvalReport:
    """Per-condition predictions and metrics, the differences, and the gate's decision."""

    cases: int = 0
    conditions: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    differences: dict[str, dict[str, float]] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)

    def to_json(self, cases: Sequence[EvalCase] = ()) -> dict[str, object]:
        """JSON-able report, with each case's target and predictions when ``cases`` is given."""
        out: dict[str, object] = {
            "cases": self.cases,
            "conditions": self.conditions,
            "differences": self.differences,
            "gate": self.gate,
        }
        if cases:
            out["per_case"] = [
                {
                    "commit": c.commit,
                    "path": c.path,
                    "line": c.line + 1,
                    "target": c.target,
                    "predictions": {k: v[i] for k, v in self.predictions.items()},
                }
                for i, c in enumerate(cases)
            ]
        return out


def run_condition(
    engine: CompletionEngine,
    cases: Sequence[EvalCase],
    root: Path,
    report: Callable[[Event], None],
    name: str,
) -> list[str]:
    """First line of the engine's completion for each held-out line."""
    out: list[str] = []
    for i, case in enumerate(cases):
        completion = engine.complete(
            CompletionRequest(
                text=case.text,
                line=case.line,
                column=case.column,
                path=str(root / case.path),
                repo_root=str(root),
            )
        )
        first = completion.text.split("\n", 1)[0] if completion.text else ""
        out.append(first)
        report(Event(stage="eval", step=i + 1, total=len(cases), message=name))
    return out


def evaluate(
    cases: Sequence[EvalCase],
    generator: Generator,
    adapter: Path | None,
    *,
    root: Path,
    retrievers: Retrievers | None,
    settings: CompletionSettings,
    threshold: float = 0.0,
    seed: int = 0,
    report: Callable[[Event], None] = lambda e: None,
) -> EvalReport:
    """Score the four conditions (two without a retriever) and decide whether to promote.

    Each condition is served as the server would serve it (the registry's ``served_retrieval``):
    the base model with its own retrieval and snippet format, the adapter with what it was
    trained on. ``retrievers`` makes the retriever for each.
    """
    result = EvalReport(cases=len(cases))
    plan: list[tuple[str, Path | None, bool]] = [("base", None, False)]
    if retrievers is not None:
        plan.append(("base+retrieval", None, True))
    if adapter is not None:
        plan.append(("adapter", adapter, False))
        if retrievers is not None:
            plan.append(("adapter+retrieval", adapter, True))
    current: Path | None = None
    for name, wanted, with_retrieval in plan:
        if wanted != current:
            generator.set_adapter(wanted)
            current = wanted
        policy = served_retrieval(generator.model_id, adapter=wanted is not None)
        retrieve = retrievers(policy) if retrievers is not None and with_retrieval else None
        engine = CompletionEngine(generator, settings, retrieve,
                                  context_style=policy.context_style)
        predictions = run_condition(engine, cases, root, report, name)
        result.predictions[name] = predictions
        result.scores[name] = [score(p, c.target) for p, c in zip(predictions, cases, strict=True)]
        result.conditions[name] = {
            m: 100 * sum(s[m] for s in result.scores[name]) / max(1, len(cases)) for m in METRICS
        }
    if current is not None:
        generator.set_adapter(None)
    result.gate = _gate(result, threshold, seed)
    return result


def _gate(result: EvalReport, threshold: float, seed: int) -> dict[str, Any]:
    """Adapter+retrieval must beat base+retrieval on exact match by more than ``threshold``.

    Without a retriever the in-file pair decides, and the report says so.
    """
    pairs = [
        ("base", "base+retrieval"),
        ("base", "adapter"),
        ("base+retrieval", "adapter+retrieval"),
        ("adapter", "adapter+retrieval"),
    ]
    for a, b in pairs:
        if a in result.scores and b in result.scores and result.cases:
            for metric in METRICS:
                d = bootstrap_difference(
                    [s[metric] * 100 for s in result.scores[a]],
                    [s[metric] * 100 for s in result.scores[b]],
                    seed=seed,
                )
                result.differences[f"{b} - {a}: {metric}"] = {
                    "mean": round(d.mean, 2),
                    "low": round(d.low, 2),
                    "high": round(d.high, 2),
                    "confidence": d.confidence,
                }
    if "adapter+retrieval" in result.scores:
        a, b = "base+retrieval", "adapter+retrieval"
    elif "adapter" in result.scores:
        a, b = "base", "adapter"
    else:
        return {"passed": False, "reason": "no adapter to evaluate"}
    if not result.cases:
        return {"passed": False, "reason": "no held-out lines to evaluate on"}
    em = result.differences[f"{b} - {a}: exact_match"]
    es = result.differences[f"{b} - {a}: edit_similarity"]
    # Exact match must improve by more than the threshold, and edit similarity must not be
    # worse with 90% confidence: an adapter that wins a few exact lines but garbles the rest
    # does not ship.
    passed = em["mean"] > threshold and es["high"] >= 0
    return {
        "passed": passed,
        "compared": [a, b],
        "metric": "exact_match",
        "threshold": threshold,
        "difference": em,
        "edit_similarity_difference": es,
        "reason": (
            f"{b} exact match {em['mean']:+.1f} points vs {a} "
            f"(90% CI {em['low']:+.1f}..{em['high']:+.1f}); threshold {threshold:+.1f}"
            + ("" if "retrieval" in a else "; no retriever, so in-file conditions decide")
        ),
    }


# -- report files ----------------------------------------------------------------------------


def write_report(
    folder: Path,
    result: EvalReport,
    cases: Sequence[EvalCase],
    train_summary: dict[str, Any] | None = None,
    title: str = "pilotfish adapter report",
) -> list[Path]:
    """``report.json``, ``report.md`` and PNG plots (loss curves, metric bars)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"evaluation": result.to_json(cases), "training": train_summary or {}}
    (folder / "report.json").write_text(json.dumps(data, indent=2))
    written = [folder / "report.json", folder / "report.md"]
    lines = [f"# {title}", "", f"Held-out lines: {result.cases}", ""]
    lines += ["| condition | exact match | edit similarity | identifier F1 |", "|---|---|---|---|"]
    for name in CONDITIONS:
        if name in result.conditions:
            c = result.conditions[name]
            lines.append(
                f"| {name} | {c['exact_match']:.1f} | {c['edit_similarity']:.1f} | "
                f"{c['identifier_f1']:.1f} |"
            )
    lines += ["", "| difference | mean | 90% CI |", "|---|---|---|"]
    for key, d in result.differences.items():
        lines.append(f"| {key} | {d['mean']:+.1f} | {d['low']:+.1f} .. {d['high']:+.1f} |")
    gate = result.gate
    lines += [
        "",
        f"**Gate: {'passed' if gate.get('passed') else 'not passed'}** — {gate.get('reason', '')}",
    ]
    if train_summary:
        lines += ["", "## Training", ""]
        lines += [f"- {k}: {v}" for k, v in train_summary.items() if not k.endswith("_curve")]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    written += _plots(folder, result, train_summary or {})
    return written


def _plots(folder: Path, result: EvalReport, train_summary: dict[str, Any]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed; the report has no plots")
        return []
    written: list[Path] = []
    train_curve = train_summary.get("train_curve") or []
    val_curve = train_summary.get("val_curve") or []
    if train_curve:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([s for s, _ in train_curve], [v for _, v in train_curve], label="train")
        if val_curve:
            ax.plot([s for s, _ in val_curve], [v for _, v in val_curve], "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("loss per middle token")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "loss.png", dpi=100)
        plt.close(fig)
        written.append(folder / "loss.png")
    if result.conditions:
        names = [n for n in CONDITIONS if n in result.conditions]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        width = 0.8 / len(METRICS)
        for k, metric in enumerate(METRICS):
            ax.bar(
                [i + k * width for i in range(len(names))],
                [result.conditions[n][metric] for n in names],
                width,
                label=metric.replace("_", " "),
            )
        ax.set_xticks([i + width for i in range(len(names))], names)
        ax.set_ylabel("score (0-100)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "metrics.png", dpi=100)
        plt.close(fig)
        written.append(folder / "metrics.png")
    return written
