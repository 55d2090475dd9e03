"""Learned fusion: which candidate is the definition the line being written uses.

The retriever builds three ranked lists for a cursor: definitions ranked by the evidence of
their uses in the file, definitions of the names nearest the cursor, and lexical (BM25)
chunks. Reciprocal-rank fusion weighs a rank the same whatever the list and whatever the
candidate is; here a learned model over each candidate's ranks, a few plain facts about it
(what kind of definition, how long, whether it lies in the cursor's file or directory, how
often its name is used around the cursor and defined in the repository) and how its name
matches the cursor (the words typed on the line, the enclosing function's name, the lines
around) gives the score, and candidates are ordered by it. The model is a linear term plus one
small hidden layer (``Model``): ``x . linear + tanh(x . hidden + bias) . out``; the hidden
units learn interactions between features that a linear term cannot (the ``line_start_x_*``
features are such interactions written by hand; the hidden layer finds others).

The weights were fitted with a listwise (softmax) loss on held-out lines of repositories that
are not the ones the recall benchmark reports on, and ship as ``fusion_model.json`` beside this
module (one entry per feature, by name): ``python benchmarks/fusion_weights.py --write``
refits it; BENCHMARKS.md records the run.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("class", "function", "method", "variable", "field", "constant")
LISTS = ("uses", "nearest", "lexical")
MEMBER_KINDS = ("method", "field")
TOP_LEVEL_KINDS = ("class", "function")

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
    "log_uses",  # the proximity-weighted uses of the name around the cursor
    "log_bare_uses",  # ... of which unqualified (`f(...)`, not `x.f`)
    "log_definitions",  # how many definitions of the name the repository has
    "pending_import",  # imported by the file and not used yet
    "used_just_before",  # the name is in one of the 5 lines before the cursor's
    "chunk",  # a lexical chunk, not a named definition
    "member_after_dot",  # a method or field where the line ends with `x.`
    "top_level_after_dot",  # a class or function there
    "top_level_after_operator",  # a class or function after `=`, `(`, `,`, `return`, ...
    "typed_words",  # share of the name's words typed on the cursor's line
    "scope_words",  # ... in the names of the enclosing function and class
    "near_words",  # ... in the 3 lines before and the 2 after
    *(f"line_start_x_{name}" for name in ("log_uses", "log_bare_uses", "log_definitions",
                                          "pending_import")),
)

ABSENT_LOG_RANK = 1.5  # the log-rank feature of a list that does not hold the candidate
RECENT_LINES = 5
NEAR_BEFORE, NEAR_AFTER = 3, 2
_IDENT = re.compile(r"[A-Za-z_]\w*")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_OPERATOR_END = re.compile(
    r"(?:[=(,\[:]|\b(?:return|raise|in|not|and|or|yield|await|if|elif|while))[ \t]*$")


@functools.lru_cache(maxsize=1 << 16)
def words(name: str) -> frozenset[str]:
    """The lower-cased words of an identifier, one-letter words left out.

    ``remove_password`` and ``RemovePassword`` are both {remove, password}.
    """
    return frozenset(w.lower() for part in name.split("_") for w in _WORD.findall(part)
                     if len(w) > 1)


def _words_of(text: str) -> frozenset[str]:
    return frozenset().union(*(words(n) for n in set(_IDENT.findall(text))))


@dataclass(frozen=True)
class Cursor:
    """What fusion knows about the cursor: the same for every candidate."""

    line_start: bool  # nothing typed on the cursor's line yet
    after_dot: bool  # the line ends with `x.`: a member comes next
    after_operator: bool  # it ends with `=`, `(`, `,`, `return`...: a value comes next
    typed: frozenset[str]  # words of the identifiers typed on the line
    scope: frozenset[str]  # words of the enclosing function's and class's names
    near: frozenset[str]  # words of the identifiers of the lines around
    recent: frozenset[str]  # identifiers of the lines just before the cursor's

    @classmethod
    def at(cls, prefix: str, suffix: str, scope_names: Sequence[str] = ()) -> Cursor:
        """The cursor between ``prefix`` and ``suffix``, in ``scope_names`` (innermost first).

        Only the last lines of ``prefix`` and the first of ``suffix`` are read.
        """
        tail = prefix[-4000:].split("\n")
        head, before = tail[-1], tail[:-1]
        after = suffix[:2000].split("\n")[1 : 1 + NEAR_AFTER]
        stripped = head.rstrip()
        return cls(
            line_start=not head.strip(),
            after_dot=stripped.endswith("."),
            after_operator=bool(_OPERATOR_END.search(stripped)),
            typed=_words_of(head),
            scope=frozenset().union(*(words(n) for n in scope_names[:2])),
            near=_words_of("\n".join([*before[-NEAR_BEFORE:], *after])),
            recent=frozenset(_IDENT.findall("\n".join(before[-RECENT_LINES:]))),
        )


@dataclass(frozen=True)
class Evidence:
    """What fusion knows about one candidate."""

    ranks: tuple[int | None, int | None, int | None]  # 0-based, per LISTS; None: not in it
    kind: str  # the definition's kind ("class", ...); "outline" for API lists; "" for chunks
    same_file: bool
    same_directory: bool
    verbatim: bool  # the snippet shows the whole range, not a summary of it
    lines: int
    name: str = ""  # the defined name; "" for a chunk
    uses: float = 0.0  # the name's proximity-weighted uses around the cursor
    bare_uses: float = 0.0  # ... unqualified
    definitions: int = 0  # definitions of the name in the repository
    pending_import: bool = False


def _share(name_words: frozenset[str], of: frozenset[str]) -> float:
    return len(name_words & of) / len(name_words) if name_words else 0.0


def matrix(evidence: Sequence[Evidence], cursor: Cursor) -> np.ndarray:
    """The feature rows of ``evidence`` at ``cursor`` (columns in the order of FEATURES)."""
    n = len(evidence)
    ranks = np.array([[-1 if r is None else r for r in e.ranks] for e in evidence],
                     dtype=float).reshape(n, len(LISTS))
    present = ranks >= 0
    placed = np.maximum(ranks, 0)
    inverse = np.where(present, 1.0 / (1.0 + placed), 0.0)
    facts = np.array([[e.kind == "outline", e.same_file, e.same_directory, e.verbatim]
                      for e in evidence], dtype=float).reshape(n, 4)
    kinds = np.array([[e.kind == kind for kind in KINDS] for e in evidence],
                     dtype=float).reshape(n, len(KINDS))
    lines = np.log1p(np.maximum(1, [e.lines for e in evidence])) / 5
    per_name = []
    for e in evidence:
        name_words = words(e.name)
        member, top = e.kind in MEMBER_KINDS, e.kind in TOP_LEVEL_KINDS
        per_name.append([
            np.log1p(e.uses), np.log1p(e.bare_uses), np.log1p(e.definitions) / 3,
            e.pending_import, bool(e.name) and e.name in cursor.recent, not e.name,
            cursor.after_dot and member, cursor.after_dot and top,
            cursor.after_operator and top, _share(name_words, cursor.typed),
            _share(name_words, cursor.scope), _share(name_words, cursor.near),
        ])
    names = np.array(per_name, dtype=float).reshape(n, 12)
    start = float(cursor.line_start)
    return np.hstack([
        inverse, present, np.where(present, np.log1p(placed) / 3, ABSENT_LOG_RANK),
        present.mean(axis=1, keepdims=True), kinds, facts, lines.reshape(-1, 1),
        inverse * start, names, names[:, :4] * start,
    ])


def features(e: Evidence, cursor: Cursor) -> list[float]:
    """The feature vector of ``e`` at ``cursor``, in the order of FEATURES."""
    return matrix([e], cursor)[0].tolist()


@dataclass(frozen=True)
class Model:
    """score = x . linear + tanh(x . hidden + bias) . out, over the columns of FEATURES."""

    linear: np.ndarray  # (features,)
    hidden: np.ndarray  # (features, units)
    bias: np.ndarray  # (units,)
    out: np.ndarray  # (units,)

    def score(self, x: np.ndarray) -> np.ndarray:
        """The scores of the rows of ``x`` (one row of FEATURES per candidate)."""
        return x @ self.linear + np.tanh(x @ self.hidden + self.bias) @ self.out

    def to_json(self, fitted: str = "") -> dict[str, Any]:
        """The file format: each feature's weights under its name, so a reader sees them."""
        return {
            "fitted": fitted,
            "features": {name: {"linear": round(float(self.linear[i]), 4),
                                "hidden": [round(float(v), 4) for v in self.hidden[i]]}
                         for i, name in enumerate(FEATURES)},
            "bias": [round(float(v), 4) for v in self.bias],
            "out": [round(float(v), 4) for v in self.out],
        }

    def save(self, path: Path, fitted: str = "") -> None:
        """Write the model to ``path`` atomically, one line per feature (weights side by side)."""
        data = self.to_json(fitted)
        features = ",\n".join(f"  {json.dumps(name)}: {json.dumps(weights)}"
                               for name, weights in data["features"].items())
        text = (f'{{\n "fitted": {json.dumps(fitted)},\n "features": {{\n{features}\n }},\n'
                f' "bias": {json.dumps(data["bias"])},\n "out": {json.dumps(data["out"])}\n}}\n')
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        """The model of ``to_json``'s format; its features must be exactly FEATURES."""
        weights = data["features"]
        if list(weights) != list(FEATURES):
            missing = sorted(set(FEATURES) - set(weights))
            extra = sorted(set(weights) - set(FEATURES))
            raise ValueError(f"the model's features are not fusion.FEATURES (missing {missing}, "
                             f"unknown {extra}, or out of order): refit it with "
                             "`python benchmarks/fusion_weights.py --write`")
        out = np.array(data["out"], dtype=float)
        hidden = np.array([weights[name]["hidden"] for name in FEATURES], dtype=float)
        if hidden.shape != (len(FEATURES), len(out)) or len(data["bias"]) != len(out):
            raise ValueError(f"the model's hidden layer has shape {hidden.shape}, "
                             f"{len(data['bias'])} biases and {len(out)} outputs")
        return cls(linear=np.array([weights[name]["linear"] for name in FEATURES], dtype=float),
                   hidden=hidden, bias=np.array(data["bias"], dtype=float), out=out)


MODEL_PATH = Path(__file__).with_name("fusion_model.json")


def load_model(path: Path = MODEL_PATH) -> Model:
    """The fitted model shipped beside this module."""
    try:
        return Model.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A stale or broken model file is a packaging bug: fail at import, loudly.
        raise ImportError(f"fusion: cannot load {path}: {exc}") from exc


MODEL = load_model()


def scores(evidence: Sequence[Evidence], cursor: Cursor) -> list[float]:
    """Each candidate's learned score: higher is likelier to be the definition used."""
    if not evidence:
        return []
    return MODEL.score(matrix(evidence, cursor)).tolist()


__all__ = ["FEATURES", "KINDS", "MODEL", "MODEL_PATH", "Cursor", "Evidence", "Model",
           "features", "load_model", "matrix", "scores", "words"]
