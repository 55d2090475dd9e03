"""Retrieval: symbol-table, lexical (FTS5 BM25) and dense (FAISS) candidates, fused and budgeted."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

import numpy as np

from . import fusion
from .languages import normalize_language
from .pytypes import TypeHint, return_annotation, scan_types
from .similar import QUERY_LINES, CursorLines, WindowCache, in_file_floor, query_identifiers
from .store import Store, fts_query
from .symbols import KEYWORDS, identifiers_in
from .types import Citation, CursorContext, Snippet, SnippetSource

log = logging.getLogger(__name__)

RRF_K = 20
WEIGHTS: dict[str, float] = {
    "symbol": 2.0, "doc": 1.5, "lexical": 1.0, "dense": 1.0, "similar": 1.0,
}
# `pilotfish search`: docs on a par with code, or a sentence's matching docstrings fill the
# first dozen places (doc rank 12 outscored code rank 1) and no code is shown.
SEARCH_WEIGHTS: dict[str, float] = {**WEIGHTS, "doc": 1.0}
MAX_SNIPPET_LINES = 24
TYPING_PACKAGES = frozenset({"typing", "typing_extensions", "mypy_extensions"})
"""Dependencies whose definitions completions never show: the typing plumbing every model
knows (``Any``, ``TYPE_CHECKING``, ``overload``), not the repository's API."""
MAX_SNIPPETS = 8
# Similar-code windows ahead of the definitions when asked: with the 1.5B at line start the
# Jaccard baseline (windows only, as many as fit) beat one window followed by definitions (35 vs
# 30 % exact match on 20 cross-file lines, BENCHMARKS.md "Completion quality", session 3).
LEAD_WINDOWS = 2
WINDOWS_PER_FILE = 2  # one file's best windows that do not overlap (its helpers and their uses)
TYPED_LEAD = 3  # definitions of what is being typed that go ahead of the fused ranking
MAX_NEIGHBOUR_BYTES = 64_000  # read whole for similar code (~1,500 lines); larger: near matches
SNIPPET_OVERHEAD_TOKENS = 8  # the `<|file_sep|>path` line around each snippet
CURSOR_WINDOW_BEFORE = 80  # same-file lines likely already in the prompt's prefix
CURSOR_WINDOW_AFTER = 30
AMBIGUOUS_DEFINITIONS = 12  # a name defined this often says little about which one is meant
FEW_DEFINITIONS = 3  # more than this: only the best-placed definition is kept
MAX_LOOKUP_NAMES = 96
MAX_QUERY_TERMS = 6
DENSE_BUDGET_MS = 30.0  # retrieval's share of a completion's latency (None: always dense)
MAX_SYMBOL_CANDIDATES = 40
MAX_CACHED_NAMES = 50_000  # definition counts kept between requests
MAX_DF_FRACTION = 0.01  # terms in more chunks than this are left out of lexical queries
MIN_COMMON_DF = 50
MEMBER_PENALTY = 8
AMBIGUOUS_PENALTY = 8
_KIND_RANK = {"class": 0, "interface": 0, "struct": 0, "enum": 0, "type": 1, "function": 1,
              "method": 2, "constant": 2, "macro": 2, "module": 3, "variable": 3, "field": 4}
_IMPORT_RE = re.compile(
    r"^\s*from\s+([\w.]+)\s+import\s+\(?([\w\s,]+)|^\s*import\s+([\w.]+)"
    r"|^\s*import\s+.*?from\s+['\"]([^'\"]+)['\"]",
    re.MULTILINE,
)


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPED_RE = re.compile(r"(?:([A-Za-z_]\w*)\s*\.\s*)?([A-Za-z_]\w*)?$")
_RAISE_RE = re.compile(r"(?:^|[\s;:])(?:raise|except)\s+(?:\(\s*)?([A-Za-z_]\w*)?$")
_EXCEPTION_NAME = re.compile(r"(Error|Exception|Warning|Exit|Interrupt)$")
_OBJECT_RE = re.compile(r"(?<![\w.])((?:self\.)?[A-Za-z_]\w*)[ \t]*\.[ \t]*([A-Za-z_]\w*)?$")


_FIXTURE_RE = re.compile(r"^[ \t]*@(?:pytest\.)?fixture\b", re.MULTILINE)


def nested_function(kind: str, qualified_name: str, path: str) -> bool:
    """A Python function defined inside another: a local, which no other code can name."""
    return kind == "function" and "." in qualified_name and path.endswith((".py", ".pyi"))


def pytest_fixture(summary: str) -> bool:
    """A definition decorated as a pytest fixture: tests receive it as a parameter, by name.

    Code never calls it or reads it as an attribute, so a name or ``obj.name`` near the cursor
    that matches a fixture (``runtime.index`` and a fixture ``index``) is a coincidence.
    """
    return bool(_FIXTURE_RE.search(summary.split("def ", 1)[0]))


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


class _Vectors(Protocol):
    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    @property
    def size(self) -> int: ...


class _Embedder(Protocol):
    def embed_query(self, text: str, *, max_tokens: int = 64) -> np.ndarray: ...


def estimate_tokens(text: str) -> int:
    """A cheap token estimate for code (about 3.5 characters per token)."""
    return int(len(text) / 3.5) + 1


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One retrieved piece before fusion."""

    path: str  # repo-relative, or absolute for dependencies
    abs_path: str
    start_line: int
    end_line: int
    text: str
    source: SnippetSource
    reason: str
    same_file: bool = False
    verbatim: bool = True  # False for outlines (signatures of a long body): they never overlap
    kind: str = ""  # the definition's kind ("class", "method", ...); "outline" for API lists
    name: str = ""  # the defined name, for symbol candidates


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Stage timings of the last retrieval, in milliseconds."""

    symbol: float = 0.0
    lexical: float = 0.0
    dense: float = 0.0
    total: float = 0.0


_PLAIN_WORD = re.compile(r"[a-z]+")


def names_in_query(query: str, words: list[str]) -> list[str]:
    """The words of a search query that are looked up as symbol names.

    A sentence ("parse unknown input safely and return an error") is searched by what it says:
    its plain lower-case words would find the symbols that happen to be named like English
    words (a schema library's ``and`` and ``unknown``) ahead of the code that does what it
    asks. There only code-shaped words are names: ``parse_safely``, ``safeParse``, ``HTTP2``,
    or a plain word written as code (``error()``, ``obj.error``, a backquoted `error`). A
    query of one or two words is all names.
    """
    if len(query.split()) < 3:
        return words
    return [w for w in words if not _PLAIN_WORD.fullmatch(w) or re.search(
        rf"`{w}`|(?<![\w.]){w}\s*\(|\.{w}\b|\b{w}\.\w", query)]


def _clip(text: str, max_lines: int = MAX_SNIPPET_LINES) -> str:
    lines = text.rstrip().split("\n")
    if len(lines) <= max_lines:
        return "\n".join(lines)
    return "\n".join([*lines[:max_lines], "…"])


def _display_path(path: str) -> str:
    for marker in ("/site-packages/", "/node_modules/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _module_paths(prefix: str) -> tuple[dict[str, str], set[str]]:
    """Names imported by the file before the cursor -> module; and module path fragments."""
    names: dict[str, str] = {}
    modules: set[str] = set()
    for m in _IMPORT_RE.finditer(prefix):
        module = m.group(1) or m.group(3) or m.group(4) or ""
        fragment = module.strip("./").replace(".", "/")
        if fragment:
            modules.add(fragment)
        for name in re.findall(r"\w+", m.group(2) or ""):
            if name not in ("as", "import"):
                names[name] = fragment
    return names, modules


def names_by_distance(prefix: str, suffix: str, first: list[str], *, before: int = 1500,
                      after: int = 300, limit: int = 256) -> list[str]:
    """Identifiers of the text around the cursor, nearest first (``first`` lead).

    The name a line is about to use is often imported at the top or used a little below,
    not only in the last lines, so the whole neighbourhood counts, ordered by line distance.
    """
    distance: dict[str, int] = {}
    for name in first:
        distance.setdefault(name, 0)
    before_lines = prefix.split("\n")[-before:]
    for offset, line in enumerate(reversed(before_lines)):
        for name in _IDENT_RE.findall(line):
            if name not in distance and len(name) > 2 and name not in KEYWORDS:
                distance[name] = offset
    for offset, line in enumerate(suffix.split("\n", after)[:after]):
        for name in _IDENT_RE.findall(line):
            if len(name) > 2 and name not in KEYWORDS and distance.get(name, 10**6) > offset:
                distance[name] = offset
    return sorted(distance, key=lambda n: distance[n])[:limit]


# ---- evidence: which names the file uses, how, and how close to the cursor ---------------------

USE_DECAY_LINES = 12.0  # a use this many lines away counts half as much as one at the cursor
SCOPE_BONUS = 2.0  # uses inside the enclosing function/class say more than the rest of the file
MAX_SCAN_BEFORE = 1000
MAX_SCAN_AFTER = 400
BOUND_WINDOW = 400  # lines before the cursor searched for local bindings (half as many after)
MEMBER_WEIGHT = 0.5  # `x.name` with an unknown `x`: any same-named member may be meant
RESOLVED_WEIGHT = 3.0  # a use that imports or a class resolve to one definition is certain
PENDING_WEIGHT = 1.0  # shared by the names a file imports but does not use yet
OPEN_CALL_CHARS = 400  # how far back on the cursor's line an open call is looked for
MAX_CLASS_DEPTH = 3
MAX_BASE_OUTLINES = 2  # base classes' outlines after `obj.` / `self.` (outside the file)
MAX_CLASS_LOOKUPS = 10  # `self.x` / `Class.x` resolutions per request (a few queries each)
MAX_TYPE_LOOKUPS = 8  # variables' types resolved per request (`x = make()`: one query each)
MAX_DUCK_VARIABLES = 16  # variables typed by the members used on them, most used first
DUCK_MAX_DEFINITIONS = 40  # members defined more often than this do not take part
_CHAIN_RE = re.compile(r"[A-Za-z_]\w*(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*")
_SCOPE_RE = re.compile(r"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)")
_PY_FROM_RE = re.compile(
    r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.MULTILINE
)
_PY_IMPORT_RE = re.compile(r"^[ \t]*import[ \t]+([^\n#]+)", re.MULTILINE)
_SELF_NAMES = ("self", "cls")
_HASH_COMMENTS = frozenset({"python", "ruby", "bash", "shellscript", "r", "perl"})
_STRINGS = r"""\"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'"""
_STRING_OR_COMMENT = {  # prose and literals are not uses of a definition
    "#": re.compile(r'"""[\s\S]*?"""|' + r"'''[\s\S]*?'''|" + _STRINGS + r"|#[^\n]*"),
    "//": re.compile(r"/\*[\s\S]*?\*/|" + _STRINGS + r"|//[^\n]*"),
}


_CLASS_LINE = re.compile(r"^([ \t]*)class[ \t]+\w+")


def class_attribute_hint(prefix: str, suffix: str, chain: str) -> TypeHint | None:
    """The type of ``self.attr`` from anywhere in the class around the cursor.

    The near-cursor scan sees ``BOUND_WINDOW`` lines; an attribute is usually given its type
    in ``__init__`` (``self.repo = repo`` with ``repo: Repo``), often further up, and the class
    line itself may be out of that window. This finds the nearest ``class`` line above the
    cursor indented less than the cursor's line and scans that class's whole body (to where its
    indentation ends), only when the near scan found nothing.
    """
    before = prefix.split("\n")
    cursor_indent = len(before[-1]) - len(before[-1].lstrip(" \t"))
    found = next(((i, m) for i in range(len(before) - 2, -1, -1)
                  if (m := _CLASS_LINE.match(before[i])) and len(m.group(1)) < cursor_indent),
                 None)
    if found is None:
        return None
    start, indent = found[0], len(found[1].group(1))
    after: list[str] = []
    for line in suffix.split("\n")[1:2000]:
        if line.strip() and len(line) - len(line.lstrip(" \t")) <= indent:
            break
        after.append(line)
    raw = [*before[start:], *after]
    code = strip_prose("\n".join(raw)).split("\n")
    return scan_types(raw, code).hint(chain, len(before) - start - 1)



def strip_prose(text: str, comment: str = "#") -> str:
    """The text with comments and string literals blanked, keeping its lines."""
    return _STRING_OR_COMMENT[comment].sub(lambda m: "\n" * m.group(0).count("\n"), text)


@dataclass(frozen=True)
class PyImport:
    """What an alias in the file stands for: a module, or a name from a module."""

    level: int  # leading dots of a relative import
    module: str  # dotted module, "" for `from . import x`
    attr: str | None = None  # the imported name; None for `import module [as alias]`


@dataclass
class NameUses:
    """How one identifier is used around the cursor, weighted by proximity."""

    bare: float = 0.0
    qualified: dict[str, float] = field(default_factory=dict)  # qualifier chain -> weight

    @property
    def total(self) -> float:
        """All the evidence for the name, however it was qualified."""
        return self.bare + sum(self.qualified.values())


def python_imports(text: str) -> dict[str, PyImport]:
    """Aliases bound by the file's Python imports (``from .x import a as b``, ``import a.b``)."""
    out: dict[str, PyImport] = {}
    for m in _PY_FROM_RE.finditer(text):
        level, module = len(m.group(1)), m.group(2)
        for part in m.group(3).strip("() \t").split(","):
            bits = part.split()
            if not bits or not _IDENT_RE.fullmatch(bits[0]):
                continue
            alias = bits[2] if len(bits) == 3 and bits[1] == "as" else bits[0]
            out[alias] = PyImport(level, module, bits[0])
    for m in _PY_IMPORT_RE.finditer(text):
        for part in m.group(1).split(","):
            bits = part.split()
            if not bits or not re.fullmatch(r"[\w.]+", bits[0]):
                continue
            alias = bits[2] if len(bits) == 3 and bits[1] == "as" else bits[0]
            out[alias] = PyImport(0, bits[0])
    return out


def open_call(line_head: str) -> str | None:
    """The function whose call is open at the end of ``line_head`` (``x = f(a, `` -> ``f``).

    Only the last ``OPEN_CALL_CHARS`` are read: a minified line must not cost a keystroke.
    """
    line_head = line_head[-OPEN_CALL_CHARS:]
    depth = 0
    for i in range(len(line_head) - 1, -1, -1):
        ch = line_head[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                if ch != "(":
                    return None
                m = re.search(r"([A-Za-z_]\w*)\s*$", line_head[:i])
                return m.group(1) if m and m.group(1) not in KEYWORDS else None
            depth -= 1
    return None


def pending_imports(text: str, imports: dict[str, PyImport]) -> list[str]:
    """The names ``text`` imports (``from m import f``) and mentions nowhere else.

    Code imports a name to use it: where the file does not use it yet, the line being written
    is the likeliest place. The test is one substring count per name (the import itself is
    the one occurrence), so a name in a docstring, in ``__all__`` or inside a longer
    identifier counts as used: when in doubt, not pending.
    """
    return [alias for alias, imp in imports.items()
            if imp.attr is not None and text.count(alias) == 1]


# `x = ...`, `x: T = ...`, `x += ...`; a space before `=` tells it from a keyword argument
# on its own line (`    name=name,`), which PEP 8 writes without one.
_ASSIGN_RE = re.compile(
    r"^[ \t]*([A-Za-z_][\w \t,*()\[\].]*?)(?:[ \t]*:[^=\n]+|[ \t]+)"
    r"(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=)", re.MULTILINE,
)
_BINDER_RE = re.compile(
    r"\bfor[ \t]+([\w \t,()]+?)[ \t]+in\b|\bas[ \t]+([A-Za-z_]\w*)|\b([A-Za-z_]\w*)[ \t]*:="
    r"|\bdef[ \t]+\w+[ \t]*\(([^)]*)\)|\blambda\b([^:]*):"
)


def bound_names(code: str) -> tuple[set[str], set[str]]:
    """Names the (comment- and string-free) Python code binds, and ``self`` attributes it sets.

    Bindings are variables, parameters, loop and ``as`` targets. A bare use of such a name is
    a local, not another file's definition.
    """
    names: set[str] = set()
    attrs: set[str] = set()
    for m in _ASSIGN_RE.finditer(code):
        targets = re.sub(r"\[[^\]]*\]", "[]", m.group(1))
        if targets.split(None, 1)[0] in KEYWORDS or re.search(r"\w[ \t]*\(", targets):
            continue  # `def f(a = 1)`, `if x == y`, `f(a = 1)`: not an assignment
        for token in re.split(r"[\s,()*]+", targets):
            if _IDENT_RE.fullmatch(token):
                names.add(token)
            elif token.startswith(("self.", "cls.")):
                attr = token.split(".", 1)[1]
                if _IDENT_RE.fullmatch(attr):
                    attrs.add(attr)
    for m in _BINDER_RE.finditer(code):
        if m.group(1) or m.group(2) or m.group(3):
            names.update(_IDENT_RE.findall(m.group(1) or m.group(2) or m.group(3)))
        params = m.group(4) if m.group(4) is not None else m.group(5)
        if params:
            while "[" in params:  # annotations (`Dict[str, Repo]`) hold commas, not names
                stripped = re.sub(r"\[[^\[\]]*\]", "", params)
                if stripped == params:
                    break
                params = stripped
            names.update(re.findall(r"(?:^|,)[ \t\n]*\**([A-Za-z_]\w*)", params))
    names.discard("self")
    return names - {"cls"}, attrs


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def enclosing_scopes(before: list[str]) -> list[tuple[int, str, str]]:
    """The defs and classes around the cursor, innermost first.

    Each is (line index in ``before``, kind, name); ``before`` ends with the cursor's line.
    """
    if not before:
        return []
    last = before[-1]
    level = _indent(last) if last.strip() else len(last)
    scopes: list[tuple[int, str, str]] = []
    for i in range(len(before) - 2, -1, -1):
        line = before[i]
        if not line.strip():
            continue
        indent = _indent(line)
        if indent >= level:
            continue
        m = _SCOPE_RE.match(line)
        if m:
            scopes.append((i, m.group(2), m.group(3)))
        level = indent
        if level == 0:
            break
    return scopes


def name_uses(prefix: str, suffix: str, *, comment: str | None = "#",
              before: int = MAX_SCAN_BEFORE, after: int = MAX_SCAN_AFTER) -> dict[str, NameUses]:
    """Every identifier of the text around the cursor with its proximity-weighted uses.

    A use ``d`` lines from the cursor weighs ``1 / (1 + d / USE_DECAY_LINES)``, doubled inside
    the enclosing function or class, so a name used often, nearby or in the same function
    ranks high. In ``a.b.c`` the name ``c`` is used with the qualifier ``a.b``.
    """
    before_lines = prefix.split("\n")[-before:]
    after_lines = suffix.split("\n", after)[:after]
    if comment:
        before_lines = strip_prose("\n".join(before_lines), comment).split("\n")
        after_lines = strip_prose("\n".join(after_lines), comment).split("\n")
    uses: dict[str, NameUses] = {}

    def add(line: str, weight: float) -> None:
        for chain in _CHAIN_RE.findall(line):
            if "." not in chain:  # most chains are one name: the short way
                if len(chain) > 1 and chain not in KEYWORDS:
                    use = uses.get(chain)
                    if use is None:
                        use = uses[chain] = NameUses()
                    use.bare += weight
                continue
            parts = [p.strip() for p in chain.split(".")]
            for k, name in enumerate(parts):
                if len(name) < 2 or name in KEYWORDS:
                    continue
                use = uses.get(name)
                if use is None:
                    use = uses[name] = NameUses()
                if k == 0:
                    use.bare += weight
                else:
                    qual = ".".join(parts[:k])
                    use.qualified[qual] = use.qualified.get(qual, 0.0) + weight

    weights = line_weights(before_lines, after_lines)
    for line, weight in zip([*before_lines, *after_lines], weights, strict=True):
        if line.strip():
            add(line, weight)
    return uses


def line_weights(before_lines: list[str], after_lines: list[str]) -> list[float]:
    """The proximity weight of each line of ``before_lines + after_lines`` (the cursor between).

    A line ``d`` lines from the cursor weighs ``1 / (1 + d / USE_DECAY_LINES)``, doubled inside
    the enclosing function or class.
    """
    scopes = enclosing_scopes(before_lines)
    scope_start = scopes[0][0] if scopes else len(before_lines)
    scope_indent = _indent(before_lines[scope_start]) if scopes else -1
    scope_end = len(after_lines)
    if scopes:
        for j, line in enumerate(after_lines[1:], start=1):
            if line.strip() and _indent(line) <= scope_indent:
                scope_end = j
                break
    last = len(before_lines) - 1
    weights = [1.0 / (1.0 + (last - i) / USE_DECAY_LINES) * (SCOPE_BONUS if i > scope_start
                                                               else 1.0)
               for i in range(len(before_lines))]
    weights.extend(1.0 / (1.0 + j / USE_DECAY_LINES) * (SCOPE_BONUS if scopes and j < scope_end
                                                        else 1.0)
                   for j in range(len(after_lines)))
    return weights


class Retriever:
    """Fuses symbol, lexical and dense candidates for a cursor (the engine's one seam)."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self._root_text = str(root).rstrip("/")
        self._vectors: _Vectors | None = None
        self._embedder: _Embedder | None = None
        self._lock = threading.Lock()
        self._df: dict[str, int] = {}
        self._common: set[str] | None = None  # terms too common to query, once warmed
        self.dense_budget_ms: float | None = DENSE_BUDGET_MS
        self._dense_ms = 0.0  # moving average of one query embedding
        self._dense_skipped = 0
        self._n_chunks = 0
        self._modules: dict[str, list[tuple[int, str]]] | None = None
        self._modules_stamp: tuple[int, int] | None = None
        self._module_files: dict[int, str] = {}
        self.last_timings = Timings()
        # The candidates of the last retrieval with their fusion evidence, and the cursor's,
        # for the harness that fits fusion's weights (benchmarks/fusion_weights.py).
        self.last_evidence: tuple[list[tuple[fusion.Evidence, Candidate]], fusion.Cursor] = (
            [], fusion.Cursor.at("", ""))
        self._windows = WindowCache()
        self._definitions: dict[str, int] = {}  # name -> definitions in the index

    @property
    def dense_query_ms(self) -> float:
        """Moving average of one query embedding, in milliseconds."""
        return self._dense_ms

    @property
    def dense_skipped(self) -> int:
        """Completions that skipped dense search to stay within the latency budget."""
        return self._dense_skipped

    def set_dense(self, vectors: _Vectors, embedder: _Embedder) -> None:
        """Enable dense search (once vectors exist)."""
        with self._lock:
            self._vectors, self._embedder = vectors, embedder

    def invalidate(self, *, rebuilt: bool = False) -> None:
        """The index changed; after a build, term frequencies are counted afresh."""
        self._definitions = {}
        if rebuilt:
            with self._lock:
                self._df.clear()
                self._n_chunks = 0
                self._common = None

    def warm(self) -> None:
        """Learn which terms are too common for lexical queries, in one pass over the vocabulary.

        Without it each new term costs a count query on first use (slow for common terms).
        """
        db = sqlite3.connect(self.store.path, timeout=30)
        try:
            n = db.execute("SELECT max(rowid) FROM chunks_fts").fetchone()[0] or 0
            limit = max(MIN_COMMON_DF, int(n * MAX_DF_FRACTION))
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
                       "USING fts5vocab(main, 'chunks_fts', 'row')")
            common = {r[0] for r in db.execute(
                "SELECT term FROM temp.chunks_vocab WHERE doc > ?", (limit,))}
        finally:
            db.close()
        with self._lock:
            self._common, self._n_chunks = common, n

    def _selective_terms(self, db: sqlite3.Connection, words: list[str]) -> list[str]:
        """The first of the words' FTS terms that the index holds and that are not common.

        ``words`` come nearest first. Common terms make BM25 slow and vague; terms no chunk
        holds would only take a place among the ``MAX_QUERY_TERMS``.
        """
        with self._lock:
            if not self._n_chunks:
                self._n_chunks = db.execute("SELECT max(rowid) FROM chunks_fts").fetchone()[0] or 0
            n_chunks, common = self._n_chunks, self._common
        limit = max(MIN_COMMON_DF, int(n_chunks * MAX_DF_FRACTION))
        scored: list[tuple[int, str]] = []
        for term in fts_query(words, limit=32).replace('"', "").split(" OR "):
            if not term:
                continue
            if common is not None and term in common:
                continue  # known to be too common without counting (the costly count)
            df = self._df.get(term)
            if df is None:
                df = db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                (f'"{term}"',)).fetchone()[0]
                with self._lock:
                    if len(self._df) > 200_000:
                        self._df.clear()
                    self._df[term] = df
            if 0 < df <= limit:  # nearest first; the cap on df keeps BM25 cheap
                scored.append((df, term))
        return [term for _, term in scored[:MAX_QUERY_TERMS]]

    # ---- the engine's API ---------------------------------------------------------------------

    def retrieve(self, ctx: CursorContext, *, budget_tokens: int,
                 count_tokens: Callable[[str], int] | None = None,
                 max_snippets: int = MAX_SNIPPETS, similar_code: bool = False,
                 only_similar: bool = False) -> list[Snippet]:
        """Ranked, fused, deduplicated snippets for the cursor, within ``budget_tokens``.

        ``similar_code``: the windows of other code most like the cursor's lines lead
        (similar.py), those that look more like them than the cursor's own file does; where
        nothing is typed on the line yet, nothing is returned without such a window (the
        file alone completes better there). Off, the ranking is definitions and chunks only.
        ``only_similar``: those windows alone, no definitions (what the 0.5B completes best
        with: BENCHMARKS.md, "Completion quality"); none when the file looks more alike.
        """
        started = time.perf_counter()
        if budget_tokens <= 0:
            return []
        db = self.store.reader()
        cur_rel = self._rel(ctx.path)
        language = normalize_language(ctx.language)
        similar: list[Candidate] = []
        similar_ms = 0.0
        if similar_code or only_similar:
            try:
                similar = self._similar_candidates(db, ctx.prefix, ctx.suffix, cur_rel, language)
            except sqlite3.Error as exc:
                log.warning("retrieval failed: %s", exc)
                return []
            similar_ms = (time.perf_counter() - started) * 1000
            # Alone; or at a line's start where no other code looks more like the cursor's
            # lines than the file itself: nothing is shown, and no definitions are looked up.
            if only_similar or (not similar and not ctx.prefix.rsplit("\n", 1)[-1].strip()):
                self.last_timings = Timings(lexical=similar_ms, total=similar_ms)
                return fit_budget(
                    [(1.0 / (1 + i), c) for i, c in enumerate(similar[:LEAD_WINDOWS])],
                    budget_tokens, count_tokens or estimate_tokens, max_snippets=max_snippets)
        lines_before = ctx.prefix.split("\n")[-14:]
        near = list(ctx.identifiers) or identifiers_in("\n".join(lines_before))
        first_suffix_line = ctx.suffix.split("\n", 1)[0]
        for name in identifiers_in(first_suffix_line):
            if name not in near:
                near.append(name)
        near = [n for n in near if len(n) > 1][:24]
        names = names_by_distance(ctx.prefix, ctx.suffix, near)
        cursor_line = ctx.line + 1
        try:
            t0 = time.perf_counter()
            local = self._local_names(db, cur_rel)
            typing = self._typed_candidates(
                db, lines_before[-1], names, cur_rel, cursor_line,
                ctx.prefix[:20000] + "\n" + ctx.prefix[-20000:] + "\n" + ctx.suffix[:20000])
            comment = "#" if language in _HASH_COMMENTS else "//"
            if language == "python":
                imports = python_imports(ctx.prefix[:50000] + "\n" + ctx.suffix[-20000:])
            else:
                imports = {}
            code_before = strip_prose(
                "\n".join(ctx.prefix.split("\n")[-MAX_SCAN_BEFORE:]), comment)
            code_after = strip_prose(
                "\n".join(ctx.suffix.split("\n", MAX_SCAN_AFTER)[:MAX_SCAN_AFTER]), comment)
            # Locals that matter are the enclosing function's: a window keeps this cheap.
            window = code_before.split("\n")[-BOUND_WINDOW:] + code_after.split(
                "\n", BOUND_WINDOW // 2)[: BOUND_WINDOW // 2]
            bound = bound_names("\n".join(window)) if language == "python" else (set(), set())
            uses = name_uses(code_before, code_after, comment=None)
            pending: list[str] = []
            if language == "python":
                pending = pending_imports(ctx.prefix + ctx.suffix, imports)
                for name in pending:
                    uses.setdefault(name, NameUses()).bare += PENDING_WEIGHT / len(pending)
            typed: dict[tuple[TypeHint, str], float] = {}
            scopes = enclosing_scopes(code_before.split("\n"))
            cur_class = next((name for _, kind, name in scopes if kind == "class"), None)
            duck: dict[str, tuple[str, dict[str, float]]] = {}
            if language == "python":  # types of variables, in the window of the locals
                before_lines = code_before.split("\n")[-BOUND_WINDOW:]
                after_lines = code_after.split("\n", BOUND_WINDOW // 2)[: BOUND_WINDOW // 2]
                raw = (ctx.prefix.split("\n")[-len(before_lines):]
                       + ctx.suffix.split("\n", len(after_lines))[: len(after_lines)])
                code_lines = [*before_lines, *after_lines]
                scan = scan_types(raw, code_lines)
                typed = scan.member_uses(code_lines, line_weights(before_lines, after_lines))
                duck = self._duck_typed(db, uses, imports.keys())
                m = _OBJECT_RE.search(lines_before[-1])
                if m and m.group(1) in ("self", "cls") and cur_class:
                    # The class itself is in the file: what it inherits from other files leads.
                    typing = self._class_api(db, cur_class, m.group(2) or "", m.group(1),
                                             cur_rel, own=False) + typing
                elif m:  # the cursor is after `x.`: the API of x's class leads
                    hint = scan.hint(m.group(1), len(before_lines) - 1)
                    if hint is None and m.group(1).startswith("self."):
                        hint = class_attribute_hint(ctx.prefix, ctx.suffix, m.group(1))
                    cls = (self._hint_class(db, hint, {}, cur_class) if hint
                           else duck.get(m.group(1), (None, {}))[0])
                    if cls:
                        typing = self._class_api(db, cls, m.group(2) or "", m.group(1),
                                                 cur_rel) + typing
            symbols = self._use_candidates(
                db, uses, imports, scopes, cur_rel, cursor_line, local, bound, typed, duck,
            )
            imported, modules = _module_paths(ctx.prefix[:20000])
            # The first ranking (nearest name first) fused with the use-based one: each finds
            # definitions the other ranks low (and dependencies' APIs, which the use-based one
            # leaves out). Local variables are not definitions there either.
            # A module's name (`import pilotfish`) is not a definition's either.
            modules_here = {a.split(".", 1)[0] for a, imp in imports.items() if imp.attr is None}
            unbound = [n for n in names if n not in modules_here and (
                n not in bound[0] or n in imports or (n in uses and uses[n].qualified))]
            nearest = self._symbol_candidates(db, unbound, imported, modules, cur_rel,
                                              cursor_line, local)
            if typing:  # what is being typed leads; the rest keeps its order after it
                keys = {(c.path, c.start_line) for c in typing}
                symbols = typing + [c for c in symbols if (c.path, c.start_line) not in keys]
                nearest = typing + [c for c in nearest if (c.path, c.start_line) not in keys]
            definitions = self._definition_counts(
                db, {c.name for c in (*symbols, *nearest) if c.name})
            t1 = time.perf_counter()
            lexical = self._lexical_candidates(db, near[:16], cur_rel, cursor_line, limit=20)
            t2 = time.perf_counter()
            query_text = "\n".join([*lines_before[-6:], first_suffix_line])
            spent_ms = (t2 - started) * 1000
            # Dense search costs one embedding forward pass; it runs only when its recent
            # cost still fits the completion's latency budget (a GPU, a fast CPU).
            dense: list[Candidate] = []
            if self.dense_budget_ms is None or spent_ms + self._dense_ms < self.dense_budget_ms:
                dense = self._dense_candidates(db, query_text, cur_rel, cursor_line, limit=20)
            else:
                self._dense_skipped += 1
                if self._dense_skipped % 50 == 0:
                    self._dense_ms *= 0.8  # re-measure now and then: the machine may be idle
            t3 = time.perf_counter()
        except sqlite3.Error as exc:  # a locked or broken index must not break completion
            log.warning("retrieval failed: %s", exc)
            return []
        rows = fusion_evidence(symbols, nearest, [lexical, dense], cur_rel=cur_rel,
                               name_uses=uses, definitions=definitions, pending=pending)
        cursor = fusion.Cursor.at(ctx.prefix, ctx.suffix, [name for _, _, name in scopes])
        self.last_evidence = (rows, cursor)
        fused = lead_with(similar[:LEAD_WINDOWS], learned_fuse(rows, cursor))
        callee = open_call(lines_before[-1])
        if callee:  # inside `f(...`: f's signature says what the arguments are
            fused = lead_with([c for _, c in fused if c.name == callee][:1], fused,
                              drop_overlaps=False)
        # What is being typed leads: the definitions a typed word starts (`errors.ra`, `Bou`)
        # and the exception classes after `raise` are what the line needs; the API being
        # typed (`module.` or `obj.` of a known class) is an outline, which fusion would rank
        # below the member definitions that every list repeats.
        # (`_typed_candidates` looks definitions up by the typed word: all start with it.)
        typed_word = _TYPED_RE.search(lines_before[-1])
        if (typed_word and typed_word.group(2)) or _RAISE_RE.search(lines_before[-1]):
            fused = lead_with([c for c in typing if c.verbatim][:TYPED_LEAD], fused)
        fused = lead_with([c for c in typing if not c.verbatim], fused, drop_overlaps=False)
        snippets = fit_budget(fused, budget_tokens, count_tokens or estimate_tokens,
                              max_snippets=max_snippets)
        self.last_timings = Timings(
            symbol=(t1 - t0) * 1000, lexical=(t2 - t1) * 1000 + similar_ms,
            dense=(t3 - t2) * 1000,
            total=(time.perf_counter() - started) * 1000,
        )
        return snippets

    def search(self, query: str, *, k: int = 10) -> list[Snippet]:
        """Free-text search over symbols, chunks, docs and vectors, fused."""
        db = self.store.reader()
        words = identifiers_in(query, limit=16, skip_keywords=False)
        try:
            symbols = self._symbol_candidates(db, names_in_query(query, words), {}, set(), None,
                                              0, why="named in the query", completion=False)
            lexical = self._lexical_candidates(db, words, None, 0, limit=k * 2,
                                               why="matches the query")
            docs = self._doc_candidates(db, words, limit=k)
            dense = self._dense_candidates(db, query, None, 0, limit=k * 2,
                                           why="close in meaning to the query")
        except sqlite3.Error as exc:
            log.warning("search failed: %s", exc)
            return []
        fused = fuse([symbols, lexical, docs, dense], weights=SEARCH_WEIGHTS)
        # The same text in several files (a docstring copied into built .d.ts files, vendored
        # copies) is shown once, where it ranks best.
        seen: set[str] = set()
        unique = []
        for score, c in fused:
            text = " ".join(c.text.split())
            if text not in seen:
                seen.add(text)
                unique.append((score, c))
        return fit_budget(unique, 10**9, estimate_tokens, max_snippets=k)

    def definitions(self, name: str, *, path: str | None = None, k: int = 5) -> list[Snippet]:
        """Definitions of one name (for hover), other files first; ``path`` is the asker's file."""
        db = self.store.reader()
        try:
            found = self._symbol_candidates(db, [name], {}, set(), self._rel(path), 0,
                                            why="definition", completion=False)
        except sqlite3.Error as exc:
            log.warning("definition lookup failed: %s", exc)
            return []
        return fit_budget([(1.0 / (i + 1), c) for i, c in enumerate(found)], 10**9,
                          estimate_tokens, max_snippets=k)

    # ---- candidates ---------------------------------------------------------------------------

    def _rel(self, path: str | None) -> str | None:
        if not path:
            return None
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None

    def _abs(self, path: str, origin: str) -> str:
        # String joining: pathlib cost ~1 ms a request for the few dozen candidates.
        return path if origin == "dependency" else f"{self._root_text}/{path}"

    @staticmethod
    def _near_cursor(path: str, cur_rel: str | None, start: int, end: int, line: int) -> bool:
        return (
            cur_rel is not None
            and path == cur_rel
            and start <= line + CURSOR_WINDOW_AFTER
            and end >= line - CURSOR_WINDOW_BEFORE
        )

    @staticmethod
    def _local_names(db: sqlite3.Connection, cur_rel: str | None) -> set[str]:
        if cur_rel is None:
            return set()
        return {r[0] for r in db.execute(
            "SELECT s.name FROM symbols s JOIN files f ON f.id=s.file_id WHERE f.path=?",
            (cur_rel,),
        )}

    def _definition_counts(self, db: sqlite3.Connection, names: Collection[str]) -> dict[str, int]:
        """How many definitions each of ``names`` has (0: none), cached until the index changes.

        A common name (``forward``, ``get``) counts thousands of index entries in a large
        repository, and the same names come back at every keystroke.
        """
        cache = self._definitions
        missing = [n for n in names if n not in cache]
        for i in range(0, len(missing), 500):
            part = missing[i : i + 500]
            found = dict(db.execute(
                f"SELECT name, count(*) FROM symbols WHERE name IN ({','.join('?' * len(part))})"
                " GROUP BY name", part))
            if len(cache) > MAX_CACHED_NAMES:
                cache.clear()
            cache.update((n, found.get(n, 0)) for n in part)
        return {n: cache.get(n, 0) for n in names}

    def _symbol_candidates(
        self,
        db: sqlite3.Connection,
        names: list[str],
        imported: dict[str, str],
        modules: set[str],
        cur_rel: str | None,
        cursor_line: int,
        local: set[str] | frozenset[str] = frozenset(),
        why: str = "used near the cursor",
        *,
        completion: bool = True,
    ) -> list[Candidate]:
        """Definitions of the names, nearest name first; imports pick among same-named ones.

        For a completion (not search or hover), nested functions and pytest fixtures are left
        out: no other code can name them.
        """
        if not names:
            return []
        # Count first (index only, cached): a name defined in many places is not fetched.
        counts = self._definition_counts(db, names)
        defined = [n for n in names if 0 < counts.get(n, 0) <= AMBIGUOUS_DEFINITIONS]
        defined = defined[:MAX_LOOKUP_NAMES]
        if not defined:
            return []
        placeholders = ",".join("?" * len(defined))
        rows = db.execute(
            "SELECT s.name, s.kind, s.qualified_name, s.id, s.start_line, s.end_line, "
            "s.outer_start_line, f.path, f.origin, f.package FROM symbols s "
            f"JOIN files f ON f.id=s.file_id WHERE s.name IN ({placeholders})",
            defined,
        ).fetchall()
        by_name: dict[str, list[tuple]] = {}
        for row in rows:
            by_name.setdefault(row[0], []).append(row)
        order = {n: i for i, n in enumerate(defined)}
        scored: list[tuple[tuple, tuple, bool]] = []
        for name, defs in by_name.items():
            ambiguous = len(defs) > FEW_DEFINITIONS
            module = imported.get(name)
            ranked = []
            for row in defs:
                _, kind, qual, _, start, end, outer, path, origin, _ = row
                if (self._near_cursor(path, cur_rel, outer or start, end, cursor_line)
                        or (completion and nested_function(kind, qual, path))):
                    continue
                same = path == cur_rel
                stem = path.rsplit(".", 1)[0]
                from_import = bool(module and (stem.endswith(module) or
                                               stem.endswith(module + "/__init__")))
                in_imported_module = any(stem.endswith(m) for m in modules)
                member = "." in qual and kind not in ("class", "struct", "interface")
                # The identifier nearest the cursor leads; imports pick among its definitions.
                key = (
                    name in local and not same,  # the file defines it: others are unlikely
                    same,
                    # Top-level names say more than attribute names (`value`, `append`).
                    order[name] + (MEMBER_PENALTY if member else 0)
                    + (AMBIGUOUS_PENALTY if ambiguous else 0),
                    not from_import,
                    not in_imported_module,
                    origin != "repo",
                    _KIND_RANK.get(kind, 3),
                )
                ranked.append((key, row, from_import))
            ranked.sort(key=lambda item: item[0])
            scored.extend(ranked[: 1 if ambiguous else 3])
        scored.sort(key=lambda item: item[0])
        return self._build_candidates(
            db, [(row, imp) for _, row, imp in scored[:MAX_SYMBOL_CANDIDATES]], cur_rel, why,
            completion=completion,
        )

    # ---- use-based symbol candidates ------------------------------------------------------------

    def _module_map(self, db: sqlite3.Connection) -> dict[str, list[tuple[int, str]]]:
        """Repository Python modules by every trailing part of their dotted path."""
        stamp = db.execute("SELECT count(*), max(id) FROM files").fetchone()
        with self._lock:
            if self._modules is not None and self._modules_stamp == stamp:
                return self._modules
        modules: dict[str, list[tuple[int, str]]] = {}
        for fid, path in db.execute(
            "SELECT id, path FROM files WHERE origin='repo' AND (path GLOB '*.py' "
            "OR path GLOB '*.pyi')"
        ):
            parts = path.rsplit(".", 1)[0].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            for i in range(len(parts) + 1):
                modules.setdefault("/".join(parts[i:]), []).append((fid, path))
        files = {fid: path for hits in modules.values() for fid, path in hits}
        with self._lock:
            self._modules, self._modules_stamp, self._module_files = modules, stamp, files
        return modules

    def _find_module(self, modules: dict[str, list[tuple[int, str]]], level: int, dotted: str,
                     cur_rel: str | None) -> tuple[int, str] | None:
        """The repository file of a module, or None (not in the repository, or ambiguous)."""
        parts = [p for p in dotted.split(".") if p]
        if not level and parts and parts[0] == self.root.name:
            # The repository root is the package itself (`import git` inside `git/`): the
            # rest is the path from the root (`email.message` is `message.py`, never
            # `mime/message.py`).
            key = "/".join(parts[1:])
            exact = [h for h in modules.get(key, [])
                     if h[1].rsplit(".", 1)[0] in (key, f"{key}/__init__", "__init__")]
            return exact[0] if len(exact) == 1 else None
        if level:
            if cur_rel is None:
                return None
            base = PurePosixPath(cur_rel).parent
            for _ in range(level - 1):
                base = base.parent
            key = "/".join([*([] if str(base) == "." else [base.as_posix()]), *parts])
            hits = modules.get(key, [])
            # `key` is the full path here: only an exact match (not a trailing part) counts.
            exact = [h for h in hits if h[1].rsplit(".", 1)[0] in (key, f"{key}/__init__")]
            return exact[0] if exact else None
        # Absolute: the repository root may sit inside the package (`git/` holds `git.exc`),
        # so the longest trailing part of the dotted path that names one file wins.
        for i in range(len(parts)):
            hits = modules.get("/".join(parts[i:]), [])
            if len(hits) == 1:
                return hits[0]
            if hits:
                return None
        return None

    def _resolve_alias(self, modules: dict[str, list[tuple[int, str]]], imp: PyImport,
                       cur_rel: str | None) -> tuple[str, int | None, str | None]:
        """What an import alias stands for: a repository module, a name in one, or neither.

        That is ("module", file, None), ("name", file, attr) or ("external", None, None).
        """
        if imp.attr is None:
            found = self._find_module(modules, imp.level, imp.module, cur_rel)
            return ("module", found[0], None) if found else ("external", None, None)
        sub = self._find_module(modules, imp.level, f"{imp.module}.{imp.attr}", cur_rel)
        if sub is not None and (imp.level or imp.module):
            return "module", sub[0], None
        found = self._find_module(modules, imp.level, imp.module, cur_rel)
        if found is None:
            return "external", None, None
        return "name", found[0], imp.attr

    def _use_candidates(
        self, db: sqlite3.Connection, uses: dict[str, NameUses], imports: dict[str, PyImport],
        scopes: list[tuple[int, str, str]], cur_rel: str | None, cursor_line: int,
        local: set[str], bound: tuple[set[str], set[str]] = (set(), set()),
        typed: dict[tuple[TypeHint, str], float] | None = None,
        duck: dict[str, tuple[str, dict[str, float]]] | None = None,
    ) -> list[Candidate]:
        """Definitions the file's names resolve to, ranked by the evidence of their uses.

        Each use of a name adds its proximity weight to the definitions it may refer to:
        all of it to one definition when imports or a class resolve it (``from .x import f``,
        ``mod.f``, ``self.f`` inherited from a base in another file, ``x.f`` with ``x`` of a
        known class: ``typed``), a share otherwise (split among same-named definitions).
        Names imported from outside the repository add nothing.
        """
        modules = self._module_map(db) if imports or uses else {}
        resolved: dict[str, tuple[str, int | None, str | None]] = {
            alias: self._resolve_alias(modules, imp, cur_rel) for alias, imp in imports.items()
        }
        exact: dict[tuple[int, str], float] = {}  # (file id, top-level name) -> weight
        members: dict[tuple[str, str], float] = {}  # (class name, member) -> weight
        generic: dict[str, list[float]] = {}  # name -> [bare weight, member weight]
        cur_class = next((name for _, kind, name in scopes if kind == "class"), None)
        for name, use in uses.items():
            if use.bare:
                what = resolved.get(name)
                if what is None:
                    if name not in bound[0]:  # a local variable is not another file's name
                        generic.setdefault(name, [0.0, 0.0])[0] += use.bare
                elif what[0] == "name" and what[1] is not None and what[2]:
                    exact[(what[1], what[2])] = exact.get((what[1], what[2]), 0.0) + use.bare
            for qual, weight in use.qualified.items():
                what = resolved.get(qual)
                if what is not None:
                    if what[0] == "module" and what[1] is not None:
                        exact[(what[1], name)] = exact.get((what[1], name), 0.0) + weight
                    elif what[0] == "name" and what[2] and what[2][:1].isupper():
                        members[(what[2], name)] = members.get((what[2], name), 0.0) + weight
                    continue  # external modules' members are not the repository's
                head = qual.split(".", 1)[0]
                if head in resolved and resolved[head][0] == "external":
                    continue
                if qual in _SELF_NAMES:
                    if name not in bound[1] and cur_class:  # not an attribute set here
                        members[(cur_class, name)] = members.get((cur_class, name), 0.0) + weight
                    continue
                if "." not in qual and qual[:1].isupper():
                    members[(qual, name)] = members.get((qual, name), 0.0) + weight
                generic.setdefault(name, [0.0, 0.0])[1] += weight * MEMBER_WEIGHT
        scores: dict[int, float] = {}
        rows: dict[int, tuple] = {}
        resolved_ids: set[int] = set()
        columns = ("SELECT s.name, s.kind, s.qualified_name, s.id, s.start_line, s.end_line, "
                   "s.outer_start_line, f.path, f.origin, f.package FROM symbols s "
                   "JOIN files f ON f.id=s.file_id ")
        classes: dict[TypeHint, str | None] = {}
        typed_members: list[tuple[str, str, float]] = []  # (class, member, weight)
        for (hint, name), weight in sorted((typed or {}).items(), key=lambda kv: -kv[1]):
            if hint not in classes:
                if len(classes) >= MAX_TYPE_LOOKUPS:
                    continue
                classes[hint] = self._hint_class(db, hint, resolved, cur_class)
            cls = classes[hint]
            if cls is not None:
                typed_members.append((cls, name, weight))
        typed_members.extend((cls, name, weight) for cls, attrs in (duck or {}).values()
                             for name, weight in attrs.items())
        for cls, name, weight in typed_members:
            members[(cls, name)] = members.get((cls, name), 0.0) + weight
            # The class itself, whose outline shows every method the variable may use.
            what = resolved.get(cls)
            if what is not None and what[0] == "name" and what[1] is not None and what[2]:
                exact[(what[1], what[2])] = exact.get((what[1], what[2]), 0.0) + weight
            elif what is None:
                generic.setdefault(cls, [0.0, 0.0])[0] += weight
        if exact:
            fids = sorted({fid for fid, _ in exact})
            names = sorted({n for _, n in exact})
            for row in db.execute(
                columns + f"WHERE s.file_id IN ({','.join('?' * len(fids))}) AND s.name IN "
                f"({','.join('?' * len(names))}) AND s.qualified_name = s.name",
                [*fids, *names],
            ):
                rows[row[3]] = row
            by_file_name = {(r[7], r[0]): sid for sid, r in rows.items()}
            paths = self._module_files
            for (fid, name), weight in exact.items():
                sid = by_file_name.get((paths.get(fid, ""), name))
                if sid is not None:
                    scores[sid] = scores.get(sid, 0.0) + weight * RESOLVED_WEIGHT
                    resolved_ids.add(sid)
                else:  # re-exported (`__init__`): any definition of the name will do
                    generic.setdefault(name, [0.0, 0.0])[0] += weight
        strongest = sorted(members.items(), key=lambda kv: -kv[1])[:MAX_CLASS_LOOKUPS]
        for (cls, name), weight in strongest:
            found = self._class_members(db, columns, cls, name, cur_rel if cls == cur_class
                                        else None)
            if not found:  # a base outside the repository, or a mixin: any such member
                generic.setdefault(name, [0.0, 0.0])[1] += weight * MEMBER_WEIGHT
            for row in found:
                rows[row[3]] = row
                scores[row[3]] = scores.get(row[3], 0.0) + weight * RESOLVED_WEIGHT / len(found)
                resolved_ids.add(row[3])
        names = sorted((n for n in generic if n not in local or n in imports),
                       key=lambda n: -sum(generic[n]))[:MAX_LOOKUP_NAMES]
        if names:
            counts = self._definition_counts(db, names)
            wanted = [n for n in names if 0 < counts.get(n, 0) <= AMBIGUOUS_DEFINITIONS]
            by_name: dict[str, list[tuple]] = {}
            if wanted:
                for row in db.execute(
                    columns + f"WHERE s.name IN ({','.join('?' * len(wanted))})", wanted
                ):
                    by_name.setdefault(row[0], []).append(row)
            for name, defs in by_name.items():
                bare, member = generic[name]
                top = [r for r in defs if r[2] == r[0] or r[1] == "class"]
                inner = [r for r in defs if not (r[2] == r[0] or r[1] == "class")]
                shares: list[tuple[list[tuple], float]] = []
                if top:
                    shares.append((top, bare))
                elif inner:  # a bare name only defined as a member is most likely a local
                    shares.append((inner, bare * MEMBER_WEIGHT))
                if member:
                    shares.append((inner or top, member))
                for group, weight in shares:
                    for row in group:
                        rows[row[3]] = row
                        scores[row[3]] = scores.get(row[3], 0.0) + weight / len(group)
        ranked = []
        for sid, score in scores.items():
            row = rows[sid]
            _, kind, qual, _, start, end, outer, path, origin, _ = row
            if (self._near_cursor(path, cur_rel, outer or start, end, cursor_line)
                    or nested_function(kind, qual, path)):
                continue
            same = path == cur_rel
            key = (
                # The file defines the name itself: another file's same-named one is unlikely.
                row[0] in local and not same and sid not in resolved_ids,
                same,
                origin != "repo",
                -score,
                _KIND_RANK.get(kind, 3),
            )
            ranked.append((key, row, sid in resolved_ids))
        ranked.sort(key=lambda item: item[0])
        return self._build_candidates(
            db, [(row, imp) for _, row, imp in ranked[:MAX_SYMBOL_CANDIDATES]], cur_rel,
            "used in this file",
        )

    def _duck_typed(self, db: sqlite3.Connection, uses: dict[str, NameUses],
                    imported: Collection[str]) -> dict[str, tuple[str, dict[str, float]]]:
        """``variable -> (class, its members used here with their weights)``, by duck typing.

        ``msg.get_content_type()`` and ``msg.set_param(...)`` in one file: the one repository
        class that defines both (and more of the variable's members than any other) is
        ``msg``'s, so its other members (and its outline) are likely on the next line too.
        Modules, classes, imported names and ``self`` itself are not variables here.
        """
        by_qualifier: dict[str, dict[str, float]] = {}
        for name, use in uses.items():
            for qual, weight in use.qualified.items():
                head = qual.split(".", 1)[0]
                if (qual in _SELF_NAMES or head in imported or qual[:1].isupper()
                        or head[:1].isupper()):
                    continue
                by_qualifier.setdefault(qual, {})[name] = weight
        candidates = sorted(((q, attrs) for q, attrs in by_qualifier.items() if len(attrs) >= 2),
                            key=lambda qa: -sum(qa[1].values()))[:MAX_DUCK_VARIABLES]
        names = sorted({n for _, attrs in candidates for n in attrs})[:MAX_LOOKUP_NAMES]
        if not names:
            return {}
        # Members defined everywhere (`get`, `close`) tell classes apart least and cost most
        # rows in a large repository: counted first (index only), then left out.
        names = [name for name, count in self._definition_counts(db, names).items()
                 if 0 < count <= DUCK_MAX_DEFINITIONS]
        if not names:
            return {}
        defined_by: dict[str, set[str]] = {}  # class -> the variable's members it defines
        for name, qual in db.execute(
            f"SELECT name, qualified_name FROM symbols WHERE name IN ({','.join('?' * len(names))})"
            " AND qualified_name != name AND kind IN ('method', 'field', 'function')",
            names,
        ):
            defined_by.setdefault(qual[: -len(name) - 1], set()).add(name)
        out: dict[str, tuple[str, dict[str, float]]] = {}
        for qualifier, attrs in candidates:
            scored = sorted(((len(defined.intersection(attrs)), cls)
                             for cls, defined in defined_by.items()), reverse=True)[:2]
            if not scored or scored[0][0] < 2 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
                continue
            out[qualifier] = (scored[0][1].rsplit(".", 1)[-1], attrs)
        return out

    def _class_api(self, db: sqlite3.Connection, cls: str, partial: str, chain: str,
                   cur_rel: str | None, *, own: bool = True) -> list[Candidate]:
        """The outlines of the class and of its bases, reduced to the members being typed.

        For ``chain.partial`` at the cursor with ``chain`` of class ``cls`` (private members
        only when ``partial`` starts with ``_``); empty when the name is not one class's. Up to
        ``MAX_BASE_OUTLINES`` bases outside the cursor's file follow the class's outline: what
        it inherits is not in its outline. ``own=False`` (``self.``, the class is the cursor's
        own, in the file): the bases only, with their ``_protected`` helpers.
        """
        found = _unique_class(db, cls)
        if found is None:
            return []
        out: list[Candidate] = []
        if own:
            outline = self._outline(db, found, cls, partial, cur_rel,
                                    f"members of `{cls}`, the class of `{chain}` before the "
                                    "cursor")
            out += [outline] if outline is not None else []
        bases: list[Candidate] = []
        seen, frontier = {cls}, [cls]
        for _ in range(MAX_CLASS_DEPTH):
            frontier = [b for b in _base_classes(db, frontier) if b not in seen][:4]
            seen.update(frontier)
            for base in frontier:
                row = _unique_class(db, base)
                if row is None or row[6] == cur_rel:  # the model sees the cursor's file
                    continue
                outline = self._outline(db, row, base, partial, cur_rel,
                                        f"members of `{base}`, a base class of `{cls}`",
                                        protected=not own)
                bases += [outline] if outline is not None else []
            if len(bases) >= MAX_BASE_OUTLINES:
                break
        return out + bases[:MAX_BASE_OUTLINES]

    def _outline(self, db: sqlite3.Connection, found: tuple, cls: str, partial: str,
                 cur_rel: str | None, reason: str, *, protected: bool = False
                 ) -> Candidate | None:
        """The outline of ``cls`` (its ``_unique_class`` row): the members typed so far.

        Those that start with ``partial``; ``_private`` ones only when ``partial`` starts with
        ``_`` or ``protected`` (a subclass's ``self.``: the helpers a base keeps for its
        subclasses). None where no member is left.
        """
        qual, signature, start, end, outer, file_id, path, origin = found
        members = [
            (kind, sig) for name, kind, sig in db.execute(
                "SELECT name, kind, signature FROM symbols WHERE file_id = ? AND start_line > ? "
                "AND end_line <= ? AND qualified_name = ? || '.' || name ORDER BY start_line",
                (file_id, start, end, qual),
            )
            if name.startswith(partial) and (partial[:1] == "_" or not name.startswith("_")
                                             or (protected and not name.startswith("__")))
        ]
        if not members:
            return None
        lines = [f"{(signature or f'class {cls}').rstrip(':')}:"]
        for kind, sig in members[: MAX_SNIPPET_LINES - 1]:
            sig = (sig or "").strip()
            lines.append(f"    {sig.rstrip(':')}: ..." if kind in ("method", "function")
                         else f"    {sig}")
        return Candidate(
            path=_display_path(path) if origin == "dependency" else path,
            abs_path=self._abs(path, origin), start_line=outer or start, end_line=end,
            text="\n".join(lines), source="symbol", reason=reason,
            same_file=path == cur_rel, verbatim=False, kind="outline",
        )

    def _hint_class(self, db: sqlite3.Connection, hint: TypeHint,
                    resolved: dict[str, tuple[str, int | None, str | None]],
                    cur_class: str | None) -> str | None:
        """The repository class a variable's type hint names, or None.

        A called class is its own type; a called function or method gives its return
        annotation (``def make() -> Foo``), when all its definitions agree on one class.
        """
        parts = hint.name.split(".")
        head = resolved.get(parts[0])
        if head is not None and head[0] == "external":
            return None  # `socket.socket()`, `threading.Lock()`: not the repository's
        if hint.kind == "class":
            found = db.execute("SELECT 1 FROM symbols WHERE name=? AND kind='class' LIMIT 1",
                               (parts[-1],)).fetchone()
            return parts[-1] if found else None
        columns = "SELECT s.name, s.kind, s.signature FROM symbols s "
        if parts[0] in _SELF_NAMES:
            if len(parts) != 2 or cur_class is None:
                return None
            rows = self._class_members(db, columns, cur_class, parts[1], None)
        elif len(parts) >= 2 and parts[-2].lstrip("_")[:1].isupper():  # `Repo.init(...)`
            rows = self._class_members(db, columns, parts[-2], parts[-1], None)
        else:
            rows = db.execute(
                columns + "WHERE s.name = ? AND (s.qualified_name = s.name OR s.kind = 'class') "
                "LIMIT 8", (parts[-1],),
            ).fetchall()
        if any(kind == "class" for _, kind, _ in rows):
            return parts[-1]
        returned = {return_annotation(signature or "") for _, _, signature in rows}
        return returned.pop() if len(returned) == 1 else None

    def _class_members(self, db: sqlite3.Connection, columns: str, cls: str, name: str,
                       cur_rel: str | None) -> list[tuple]:
        """``cls.name`` looked up in the class and its bases (by name, a few levels up)."""
        seen: set[str] = set()
        frontier = [cls]
        for _ in range(MAX_CLASS_DEPTH):
            classes = [c for c in frontier if c not in seen][:6]
            if not classes:
                break
            seen.update(classes)
            marks = ",".join("?" * len(classes))
            # By qualified name (`+s.name`: not the name's index, which scans every
            # `__init__` of the repository to find three).
            found = db.execute(
                columns + f"WHERE +s.name = ? AND s.qualified_name IN ({marks})",
                [name, *(f"{c}.{name}" for c in classes)],
            ).fetchall()
            if found:
                return found
            frontier = _base_classes(db, classes)
        return []

    def _typed_candidates(
        self, db: sqlite3.Connection, line_head: str, names: list[str], cur_rel: str | None,
        cursor_line: int, around: str = "",
    ) -> list[Candidate]:
        """What the cursor is typing, as candidates that lead the ranking.

        Exception classes after ``raise``/``except``; ``module.`` members (an outline of them,
        then their definitions); or names starting with a typed prefix. ``around`` is the
        file's text near the cursor and its head (imports), for what the file names or uses.
        """
        raising = _RAISE_RE.search(line_head)
        if raising:
            return self._exception_candidates(db, raising.group(1) or "", names, around,
                                              cur_rel)
        m = _TYPED_RE.search(line_head)
        if m is None:
            return []
        qualifier, partial = m.group(1), m.group(2) or ""
        if qualifier in ("self", "cls", "this", "super"):
            qualifier = None
        columns = ("SELECT s.name, s.kind, s.qualified_name, s.id, s.start_line, s.end_line, "
                   "s.outer_start_line, f.path, f.origin, f.package FROM symbols s "
                   "JOIN files f ON f.id=s.file_id ")
        rows: list[tuple] = []
        outline: list[Candidate] = []
        if qualifier:
            file_ids = []
            for fid, path in db.execute("SELECT id, path FROM files WHERE path GLOB ?",
                                        (f"*{qualifier}*",)):
                pure = PurePosixPath(path)
                if pure.stem == qualifier or (
                    pure.stem in ("__init__", "index", "mod") and pure.parent.name == qualifier
                ):
                    file_ids.append(fid)
            if file_ids:
                rows = db.execute(
                    columns + f"WHERE s.file_id IN ({','.join('?' * len(file_ids))}) "
                    "AND s.qualified_name = s.name AND s.name GLOB ? LIMIT 400",
                    [*file_ids, f"{_glob_escape(partial)}*"],
                ).fetchall()
            if len(file_ids) == 1:
                # Private members too where the file already uses some (`_bootstrap._x`).
                private = partial[:1] == "_" or f"{qualifier}._" in around
                outline = self._module_api(db, file_ids[0], qualifier, partial, names, private)
        elif len(partial) >= 2:
            rows = db.execute(
                columns + "WHERE s.name >= ? AND s.name < ? LIMIT 200",
                (partial, partial + "\U0010ffff"),
            ).fetchall()
        if not rows:
            return outline
        order = {n: i for i, n in enumerate(names)}
        ranked = sorted(
            (r for r in rows
             if r[0] != partial and not nested_function(r[1], r[2], r[7])
             and not self._near_cursor(r[7], cur_rel, r[6] or r[4], r[5], cursor_line)),
            key=lambda r: (r[7] == cur_rel, r[0] not in order, order.get(r[0], 0),
                           "." in r[2], r[0].startswith("_"), r[8] != "repo",
                           _KIND_RANK.get(r[1], 3), r[4]),
        )
        why = f"in `{qualifier}`, which the cursor is typing" if qualifier else (
            f"starts with `{partial}`, typed at the cursor")
        return outline + self._build_candidates(db, [(r, False) for r in ranked[:10]], cur_rel,
                                                why)

    def _exception_candidates(self, db: sqlite3.Connection, partial: str, names: list[str],
                              around: str, cur_rel: str | None) -> list[Candidate]:
        """After ``raise`` / ``except``: the repository's exception classes this file names.

        Named in the file (imported or used elsewhere in it): those near the cursor first, then
        the most used; a class is an exception by its name or its bases' (``class
        StaleRef(GitError)``).
        """
        rows = db.execute(
            "SELECT s.name, s.kind, s.qualified_name, s.id, s.start_line, s.end_line, "
            "s.outer_start_line, f.path, f.origin, f.package, s.signature FROM symbols s "
            "JOIN files f ON f.id=s.file_id WHERE s.kind = 'class' AND f.origin = 'repo' "
            "AND s.qualified_name = s.name AND s.name GLOB ? LIMIT 2000",
            (f"{_glob_escape(partial)}*",),
        ).fetchall()
        used = set(identifiers_in(around, limit=10**6, skip_keywords=True))
        order = {n: i for i, n in enumerate(names)}
        found = [
            r for r in rows
            if r[0] in used and r[0] != partial and r[7] != cur_rel
            and (_EXCEPTION_NAME.search(r[0]) or _EXCEPTION_NAME.search(
                (r[10] or "").split("(", 1)[-1].split(")", 1)[0]))
        ]
        found.sort(key=lambda r: (r[0] not in order, order.get(r[0], 0), -around.count(r[0]),
                                  r[0]))
        return self._build_candidates(db, [(r[:10], False) for r in found[:6]], cur_rel,
                                      "raised or caught in this file")

    def _module_api(self, db: sqlite3.Connection, file_id: int, module: str, partial: str,
                    names: list[str], private: bool) -> list[Candidate]:
        """A Python module's outline reduced to the members that start with what is typed.

        For ``module.partial`` at the cursor: one snippet of signatures (names the file already
        uses first when they do not all fit), the way the class API serves ``obj.``; empty
        when fewer than two members match (their definitions say more).
        """
        path, origin, language = db.execute(
            "SELECT path, origin, language FROM files WHERE id = ?", (file_id,)).fetchone()
        if language != "python":
            return []
        members = [
            row for row in db.execute(
                "SELECT name, kind, signature, start_line, end_line FROM symbols "
                "WHERE file_id = ? AND qualified_name = name ORDER BY start_line", (file_id,))
            if row[0].startswith(partial) and (private or not row[0].startswith("_"))
        ]
        if len(members) < 2:
            return []
        if len(members) > MAX_SNIPPET_LINES:
            order = {n: i for i, n in enumerate(names)}
            members = sorted(members, key=lambda r: (r[0] not in order, order.get(r[0], 0),
                                                     r[3]))[:MAX_SNIPPET_LINES]
            members.sort(key=lambda r: r[3])
        lines = []
        for _, kind, sig, _, _ in members:
            sig = (sig or "").strip()
            lines.append(f"{sig.rstrip(':')}: ..." if kind in ("function", "class") else sig)
        return [Candidate(
            path=_display_path(path) if origin == "dependency" else path,
            abs_path=self._abs(path, origin), start_line=members[0][3],
            end_line=max(r[4] for r in members), text="\n".join(lines), source="symbol",
            reason=f"members of module `{module}`, which the cursor is typing",
            verbatim=False, kind="outline",
        )]

    def _build_candidates(
        self, db: sqlite3.Connection, scored: list[tuple[tuple, bool]], cur_rel: str | None,
        why: str, *, completion: bool = True,
    ) -> list[Candidate]:
        """Candidates of ranked symbol rows.

        For a completion (not search or hover), pytest fixtures and the typing modules'
        definitions (``Any``, ``TYPE_CHECKING``, ``overload``: every model knows them) are left
        out: the latter took a place in 17 of 24 prompts of click's history.
        """
        if not scored:
            return []
        # Summaries only for the few that can make it into the prompt.
        ids = [row[3] for row, _ in scored]
        summaries = dict(db.execute(
            f"SELECT id, summary FROM symbols WHERE id IN ({','.join('?' * len(ids))})", ids
        ).fetchall())
        out: list[Candidate] = []
        for row, from_import in scored:
            _, kind, qual, sid, start, end, outer, path, origin, package = row
            summary = summaries.get(sid) or ""
            if completion and (
                (origin == "dependency" and package in TYPING_PACKAGES)
                or (outer and outer < start and pytest_fixture(summary))
            ):
                continue
            out.append(Candidate(
                path=_display_path(path) if origin == "dependency" else path,
                abs_path=self._abs(path, origin),
                start_line=outer or start,
                end_line=end,
                text=_clip(summary),
                source="doc" if origin == "dependency" else "symbol",
                reason=(f"{kind} `{qual}` {why}"
                        + (f" (from {package})" if origin == "dependency" and package else "")
                        + (", imported here" if from_import else "")),
                same_file=path == cur_rel,
                verbatim=summary.count("\n") + 1 >= end - (outer or start) + 1,
                kind=kind, name=qual.rsplit(".", 1)[-1],
            ))
        return out

    def _chunk_rows(self, db: sqlite3.Connection, ids: list[int]) -> dict[int, tuple]:
        if not ids:
            return {}
        placeholders = ",".join("?" * len(ids))
        rows = db.execute(
            "SELECT c.id, c.start_line, c.end_line, c.text, c.symbol, f.path, f.origin, "
            "(SELECT s.summary FROM symbols s WHERE s.file_id=c.file_id AND "
            " s.qualified_name=c.symbol LIMIT 1) "
            f"FROM chunks c JOIN files f ON f.id=c.file_id WHERE c.id IN ({placeholders})",
            ids,
        ).fetchall()
        return {r[0]: r for r in rows}

    def _chunk_candidate(self, row: tuple, source: SnippetSource, reason: str,
                         cur_rel: str | None) -> Candidate:
        _, start, end, text, symbol, path, origin, summary = row
        # A function's compact summary (signature + doc for long ones) beats a raw window.
        shown = summary if (summary and symbol) else text
        return Candidate(
            path=path, abs_path=self._abs(path, origin), start_line=start, end_line=end,
            text=_clip(shown), source=source, reason=reason, same_file=path == cur_rel,
            verbatim=shown.count("\n") + 1 >= end - start + 1,
        )

    def _lexical_candidates(self, db: sqlite3.Connection, words: list[str], cur_rel: str | None,
                            cursor_line: int, *, limit: int,
                            why: str = "shares identifiers with the cursor's lines",
                            ) -> list[Candidate]:
        terms = self._selective_terms(db, words)
        if not terms:
            return []
        query = " OR ".join(f'"{t}"' for t in terms)
        hits = db.execute(
            "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY rank LIMIT ?",
            (query, limit * 2),
        ).fetchall()
        rows = self._chunk_rows(db, [h[0] for h in hits])
        out: list[Candidate] = []
        for rowid, score in hits:
            row = rows.get(rowid)
            if row is None or self._near_cursor(row[5], cur_rel, row[1], row[2], cursor_line):
                continue
            out.append(self._chunk_candidate(row, "lexical", f"{why} (bm25 {-score:.1f})",
                                             cur_rel))
            if len(out) >= limit:
                break
        return out

    def _similar_candidates(self, db: sqlite3.Connection, prefix: str, suffix: str,
                            cur_rel: str | None, language: str | None = None, *,
                            limit: int = 3, pool: int = 40,
                            files: int = 6, siblings: int = 16,
                            per_file: int = WINDOWS_PER_FILE) -> list[Candidate]:
        """Windows of other files' code most like the lines before the cursor (similar.py).

        Candidate files: the cursor's folder when small (a test beside the tests it resembles)
        and the files whose chunks share the cursor lines' rarer terms (the lexical index). Their
        whole text is cut into the fixed windows the Jaccard baseline uses (chunk boundaries
        would make an import line the best "window"), cached per file. Only files of the
        cursor's language (the index's, else ``language``): a Python line is not completed from
        the rows of a text file. Each window is shown aligned on the cursor's lines (similar.py).
        """
        query = query_identifiers(prefix)
        floor = in_file_floor(prefix, suffix, query)
        cursor = CursorLines.of(prefix)
        near: list[str] = []
        language = language or None  # unknown: every language
        if cur_rel is not None:
            known = db.execute("SELECT language FROM files WHERE path=?", (cur_rel,)).fetchone()
            language = known[0] if known else language
            folder = cur_rel.rsplit("/", 1)[0] + "/" if "/" in cur_rel else ""
            rows = db.execute(
                "SELECT path, size FROM files WHERE origin='repo' AND path GLOB ? "
                "AND path NOT GLOB ? AND language IS ? AND path != ? LIMIT ?",
                (f"{_glob_escape(folder)}*", f"{_glob_escape(folder)}*/*", language, cur_rel,
                 siblings + 1),
            ).fetchall()
            # Neighbours in a small folder only (in a folder of hundreds, a few arbitrary
            # files are no neighbours), and not the huge ones.
            if len(rows) <= siblings:
                near = [path for path, size in rows if (size or 0) <= MAX_NEIGHBOUR_BYTES]
        # Nearest first, as the lexical stage: the query set's own order changes with each
        # process's string hashing, and only the first few selective terms are searched.
        terms = self._selective_terms(
            db, identifiers_in("\n".join(prefix.split("\n")[-QUERY_LINES:]), limit=32))
        hits = db.execute(
            "SELECT f.path, f.size, c.start_line, c.end_line FROM chunks_fts "
            "JOIN chunks c ON c.id=chunks_fts.rowid "
            "JOIN files f ON f.id=c.file_id WHERE chunks_fts MATCH ? AND f.origin='repo' "
            "AND (? IS NULL OR f.language = ?) ORDER BY rank LIMIT ?",
            (" OR ".join(f'"{t}"' for t in terms), language, language, pool),
        ).fetchall() if terms else []
        lexical = [p for p in dict.fromkeys(h[0] for h in hits) if p != cur_rel][:files]
        # Whole files: the best window of a file is often away from the chunk that matched
        # (with windows only around the matches, 1 of 20 cross-file lines fewer exact). Huge
        # files only around what matched: reading all of one cost the slowest retrievals
        # most of their time.
        matched: dict[str, list[tuple[int, int]]] = {}
        for path, size, first, last in hits:
            if (size or 0) > MAX_NEIGHBOUR_BYTES:
                matched.setdefault(path, []).append((first, last))
        found: list[tuple[float, Candidate]] = []
        for path in dict.fromkeys([*near, *lexical]):
            # Only windows above the file's own are aligned (most are not: aligning is the cost).
            for window in self._windows.top(self.root / path, query, per_file,
                                            matched.get(path), cursor, above=floor):
                found.append((window.score, Candidate(
                    path=path, abs_path=self._abs(path, "repo"), start_line=window.start,
                    end_line=window.end, text=window.text, source="similar",
                    reason=(f"code like the lines before the cursor (jaccard "
                            f"{window.score:.2f}; the file's own best {floor:.2f}), shown around "
                            "where the cursor's line would be"),
                )))
        found.sort(key=lambda item: -item[0])
        return [c for _, c in found[:limit]]

    def _doc_candidates(self, db: sqlite3.Connection, words: list[str], *, limit: int
                        ) -> list[Candidate]:
        query = fts_query(words)
        if not query:
            return []
        rows = db.execute(
            "SELECT d.title, d.text, d.path, d.line, d.origin, d.package FROM docs_fts "
            "JOIN docs d ON d.id=docs_fts.rowid WHERE docs_fts MATCH ? ORDER BY rank LIMIT ?",
            (query, limit),
        ).fetchall()
        out = []
        for title, text, path, line, origin, package in rows:
            rel = self._rel(path) or _display_path(path or "")
            out.append(Candidate(
                path=rel, abs_path=path or "", start_line=line or 1,
                end_line=(line or 1) + text.count("\n"), text=_clip(f"{title}\n{text}", 12),
                source="doc", reason=f"{origin} documentation" + (f" of {package}" if package
                                                                   else ""),
            ))
        return out

    def _dense_candidates(self, db: sqlite3.Connection, text: str, cur_rel: str | None,
                          cursor_line: int, *, limit: int,
                          why: str = "similar to the code at the cursor") -> list[Candidate]:
        with self._lock:
            vectors, embedder = self._vectors, self._embedder
        if vectors is None or embedder is None or vectors.size == 0 or not text.strip():
            return []
        t0 = time.perf_counter()
        query = embedder.embed_query(f"{cur_rel or ''}\n{text}")
        elapsed = (time.perf_counter() - t0) * 1000
        self._dense_ms = elapsed if not self._dense_ms else 0.8 * self._dense_ms + 0.2 * elapsed
        hits = vectors.search(query, limit * 2)
        rows = self._chunk_rows(db, [h[0] for h in hits])
        out: list[Candidate] = []
        for rowid, score in hits:
            row = rows.get(rowid)
            if row is None or self._near_cursor(row[5], cur_rel, row[1], row[2], cursor_line):
                continue
            out.append(self._chunk_candidate(
                row, "dense", f"{why} (cosine {score:.2f})", cur_rel))
            if len(out) >= limit:
                break
        return out


def fuse(lists: list[list[Candidate]], k: int = RRF_K,
         weights: Mapping[str, float] = WEIGHTS) -> list[tuple[float, Candidate]]:
    """Reciprocal-rank fusion; overlapping ranges of one file merge into the best-scored one.

    Candidates from other files come before the cursor's own file at equal footing, since
    the prompt already carries the file around the cursor. ``weights``: by source.
    """
    scores: dict[tuple[str, int, int], float] = {}
    best: dict[tuple[str, int, int], Candidate] = {}
    for candidates in lists:
        for rank, c in enumerate(candidates):
            key = (c.path, c.start_line, c.end_line)
            weight = weights.get(c.source, 1.0) * (0.5 if c.same_file else 1.0)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank + 1)
            if key not in best or weights[c.source] > weights[best[key].source]:
                best[key] = c
    return _without_overlaps(sorted(((score, best[key]) for key, score in scores.items()),
                                    key=lambda item: -item[0]))


def fusion_evidence(uses: list[Candidate], nearest: list[Candidate],
                    lexical: list[list[Candidate]], *, cur_rel: str | None,
                    name_uses: Mapping[str, NameUses], definitions: Mapping[str, int],
                    pending: Collection[str]) -> list[tuple[fusion.Evidence, Candidate]]:
    """Each distinct candidate of the lists with what the learned fusion knows about it.

    ``uses``: definitions ranked by their uses in the file; ``nearest``: definitions of the
    names nearest the cursor; ``lexical``: chunk lists (BM25, dense), whose best rank counts.
    ``name_uses``: the uses of each name around the cursor; ``definitions``: how many
    definitions each name has in the repository; ``pending``: names imported, not used yet.
    """
    ranks: dict[tuple[str, int, int], list[int | None]] = {}
    best: dict[tuple[str, int, int], Candidate] = {}
    slots = [(0, uses), (1, nearest), *((2, chunks) for chunks in lexical)]
    for slot, candidates in slots:
        for rank, c in enumerate(candidates):
            key = (c.path, c.start_line, c.end_line)
            seen = ranks.setdefault(key, [None, None, None])
            current = seen[slot]
            if current is None or rank < current:
                seen[slot] = rank
            if key not in best or WEIGHTS[c.source] > WEIGHTS[best[key].source]:
                best[key] = c
    here = cur_rel.rpartition("/")[0] if cur_rel else None
    out = []
    for key, r in ranks.items():
        c = best[key]
        use = name_uses.get(c.name) if c.name else None
        out.append((fusion.Evidence(
            ranks=(r[0], r[1], r[2]), kind=c.kind, same_file=c.same_file,
            same_directory=c.path.rpartition("/")[0] == here,
            verbatim=c.verbatim, lines=c.end_line - c.start_line + 1, name=c.name,
            uses=use.total if use else 0.0, bare_uses=use.bare if use else 0.0,
            definitions=definitions.get(c.name, 0), pending_import=c.name in pending,
        ), c))
    return out


def learned_fuse(rows: list[tuple[fusion.Evidence, Candidate]],
                 cursor: fusion.Cursor) -> list[tuple[float, Candidate]]:
    """The candidates of ``rows`` ordered by the learned fusion (fusion.py), overlaps merged."""
    scored = list(zip(fusion.scores([e for e, _ in rows], cursor), [c for _, c in rows],
                      strict=True))
    scored.sort(key=lambda item: -item[0])
    return _without_overlaps(scored)


def _without_overlaps(ordered: list[tuple[float, Candidate]]) -> list[tuple[float, Candidate]]:
    """``ordered`` less the verbatim ranges that overlap a better one of the same file."""
    kept: list[tuple[float, Candidate]] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for score, c in ordered:
        if c.verbatim:
            spans = taken.setdefault(c.path, [])
            if any(c.start_line <= hi and lo <= c.end_line for lo, hi in spans):
                continue
            spans.append((c.start_line, c.end_line))
        kept.append((score, c))
    return kept


def _unique_class(db: sqlite3.Connection, name: str) -> tuple | None:
    """The one class called ``name``, or None where there is none or more than one.

    The row: qualified name, signature, start, end and outer start lines, file id, path, origin.
    """
    found = db.execute(
        "SELECT s.qualified_name, s.signature, s.start_line, s.end_line, s.outer_start_line, "
        "s.file_id, f.path, f.origin FROM symbols s JOIN files f ON f.id=s.file_id "
        "WHERE s.name = ? AND s.kind = 'class' LIMIT 2",
        (name,),
    ).fetchall()
    return found[0] if len(found) == 1 else None


def _base_classes(db: sqlite3.Connection, classes: list[str]) -> list[str]:
    """The base class names (last dotted part) in the signatures of the classes named."""
    if not classes:
        return []
    marks = ",".join("?" * len(classes))
    bases: list[str] = []
    for (signature,) in db.execute(
        f"SELECT signature FROM symbols WHERE kind='class' AND name IN ({marks})", classes,
    ):
        m = re.match(r"\s*class\s+\w+\s*\(([^)]*)\)", signature or "")
        for base in (m.group(1).split(",") if m else []):
            base = base.strip()
            if base and "=" not in base:
                bases.append(base.rsplit(".", 1)[-1].split("[", 1)[0])
    return list(dict.fromkeys(bases))


def lead_with(first: list[Candidate], fused: list[tuple[float, Candidate]], *,
              drop_overlaps: bool = True) -> list[tuple[float, Candidate]]:
    """``first`` ahead of the fused ranking, which loses what overlaps them.

    ``drop_overlaps=False`` (outlines, which span the definitions they list) drops only the
    very same ranges and keeps the rest in its order.
    """
    if not first:
        return fused
    top = fused[0][0] if fused else 0.0
    lead = [(top + 1.0, c) for c in first]

    def covered(c: Candidate) -> bool:
        return any(c.path == f.path and (
            c.start_line <= f.end_line and f.start_line <= c.end_line if drop_overlaps
            else (c.start_line, c.end_line) == (f.start_line, f.end_line)) for f in first)

    return lead + [(score, c) for score, c in fused if not covered(c)]


def fit_budget(
    fused: list[tuple[float, Candidate]],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    *,
    max_snippets: int = MAX_SNIPPETS,
) -> list[Snippet]:
    """The best snippets whose texts (plus a path line each) fit the token budget."""
    out: list[Snippet] = []
    used = 0
    for score, c in fused:
        if len(out) >= max_snippets:
            break
        if not c.text.strip():
            continue
        cost = count_tokens(c.text) + SNIPPET_OVERHEAD_TOKENS
        if used + cost > budget_tokens:
            continue
        used += cost
        out.append(Snippet(
            path=c.path, start_line=c.start_line, end_line=c.end_line, text=c.text,
            score=score, source=c.source, reason=c.reason,
            citation=Citation(path=c.abs_path, line=c.start_line),
        ))
    return out


__all__ = [
    "Retriever", "estimate_tokens", "fit_budget", "fuse", "lead_with", "normalize_language",
]
