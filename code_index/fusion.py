"""Learned fusion: which candidate is the definition the line being written uses.

The retriever builds three ranked lists for a cursor: definitions ranked by the evidence of
their uses in the file, definitions of the names nearest the cursor, and lexical (BM25)
chunks. Reciprocal-rank fusion weighs a rank the same whatever the list and whatever the
candidate is; here a linear model over each candidate's ranks and a few plain facts about it
(what kind of definition, how long, whether it lies in the cursor's file or directory) gives
the score, and candidates are ordered by it.

The weights were fitted with a listwise (softmax) loss on held-out lines of repositories that
are not the ones the recall benchmark reports on: ``python benchmarks/fusion_weights.py``
refits them and prints this module's ``WEIGHTS``; BENCHMARKS.md records the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KINDS = ("class", "function", "method", "variable", "field", "constant")
LISTS = ("uses", "nearest", "lexical")

FEATURES: tuple[str, ...] = (
    *(f"inverse_rank_{name}" for name in LISTS),
    *(f"in_{name}" for name in LISTS),
    *(f"log_rank_{name}" for name in LISTS),
    "lists",
    *(f"kind_{kind}" for kind in KINDS),
    "outline",
    "same_file",
    "same_directory",
    "verbatim",
    "log_lines",
    *(f"line_start_x_inverse_rank_{name}" for name in LISTS),
)

# Fitted by benchmarks/fusion_weights.py (listwise softmax, L2 1e-3); one per FEATURES entry.
WEIGHTS: tuple[float, ...] = (
    -0.204,  # inverse_rank_uses
    -0.501,  # inverse_rank_nearest
    0.023,  # inverse_rank_lexical
    -0.445,  # in_uses
    -0.308,  # in_nearest
    0.439,  # in_lexical
    -1.816,  # log_rank_uses
    -2.087,  # log_rank_nearest
    -0.307,  # log_rank_lexical
    -0.105,  # lists
    1.267,  # kind_class
    0.920,  # kind_function
    0.972,  # kind_method
    -1.614,  # kind_variable
    -1.845,  # kind_field
    0.767,  # kind_constant
    1.017,  # outline
    -2.128,  # same_file
    -0.459,  # same_directory
    -0.019,  # verbatim
    0.644,  # log_lines
    0.010,  # line_start_x_inverse_rank_uses
    -0.152,  # line_start_x_inverse_rank_nearest
    -0.061,  # line_start_x_inverse_rank_lexical
)

ABSENT_LOG_RANK = 1.5  # the log-rank feature of a list that does not hold the candidate


@dataclass(frozen=True)
class Evidence:
    """What fusion knows about one candidate."""

    ranks: tuple[int | None, int | None, int | None]  # 0-based, per LISTS; None: not in it
    kind: str  # the definition's kind ("class", ...); "outline" for API lists; "" for chunks
    same_file: bool
    same_directory: bool
    verbatim: bool  # the snippet shows the whole range, not a summary of it
    lines: int
    line_start: bool  # nothing typed on the cursor's line yet


def matrix(evidence: Sequence[Evidence]) -> np.ndarray:
    """The feature rows of ``evidence`` (columns in the order of FEATURES)."""
    ranks = np.array([[-1 if r is None else r for r in e.ranks] for e in evidence],
                     dtype=float).reshape(len(evidence), len(LISTS))
    present = ranks >= 0
    placed = np.maximum(ranks, 0)
    inverse = np.where(present, 1.0 / (1.0 + placed), 0.0)
    facts = np.array([[e.kind == "outline", e.same_file, e.same_directory, e.verbatim,
                       e.line_start] for e in evidence], dtype=float).reshape(len(evidence), 5)
    kinds = np.array([[e.kind == kind for kind in KINDS] for e in evidence],
                     dtype=float).reshape(len(evidence), len(KINDS))
    lines = np.log1p(np.maximum(1, [e.lines for e in evidence])) / 5
    return np.hstack([
        inverse, present, np.where(present, np.log1p(placed) / 3, ABSENT_LOG_RANK),
        present.mean(axis=1, keepdims=True), kinds, facts[:, :4], lines.reshape(-1, 1),
        inverse * facts[:, 4:5],
    ])


def features(e: Evidence) -> list[float]:
    """The feature vector of ``e``, in the order of FEATURES."""
    return matrix([e])[0].tolist()


_WEIGHTS = np.array(WEIGHTS)


def scores(evidence: Sequence[Evidence]) -> list[float]:
    """Each candidate's learned score: higher is likelier to be the definition used."""
    if not evidence:
        return []
    return (matrix(evidence) @ _WEIGHTS).tolist()


if len(FEATURES) != len(WEIGHTS):  # a refit pasted with the wrong length must not load
    raise ImportError(f"fusion: {len(WEIGHTS)} weights for {len(FEATURES)} features")

__all__ = ["FEATURES", "KINDS", "WEIGHTS", "Evidence", "features", "matrix", "scores"]
