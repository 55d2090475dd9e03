"""Similar code: the window of another file that looks most like the lines before the cursor.

Definitions tell a model what a name is; a window of code that does what the cursor's lines do
shows it how the repository writes the next line (the RepoCoder / Copilot "neighbouring
snippets" finding). Measured on pilotfish's own history with Qwen2.5-Coder-1.5B at line start
(BENCHMARKS.md, "Completion quality", session 3): 20-line windows ranked by the Jaccard
similarity of their identifier sets with the 20 lines before the cursor lifted exact match on
cross-file lines from 15 % (the file alone) to 35 %; definitions alone to 20 %.

Candidate files are the cursor's folder when it is small and the files the lexical index finds
for the cursor lines' rarer terms, so a query costs one FTS5 lookup and a few cached files'
window sets, not a scan of the repository (``Retriever._similar_candidates``).

A window is chosen by its identifiers but shown *aligned*: around the line where the cursor would be
in it (the line after the one most like the cursor's previous lines, or the one that starts as the
cursor's line is typed), ``SHOW_BEFORE`` lines before it and ``SHOW_AFTER`` from it (as many lines
at either end of the file). The fixed window often ends where the lines that matter begin: the
baseline showed them by chance, as the next overlapping window. Measured on three histories with the
0.5B (BENCHMARKS.md, "Completion quality", session 10).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

WINDOW_LINES = 20
STRIDE = 10
QUERY_LINES = 20
SHOW_BEFORE = 12  # lines of an aligned window before the cursor's place in it
SHOW_AFTER = 8  # from the cursor's place on: what the next lines are like

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def identifier_set(text: str) -> frozenset[str]:
    """The identifiers (keywords included, as the baseline counts them) of ``text``."""
    return frozenset(_IDENT.findall(text))


def query_identifiers(prefix: str, lines: int = QUERY_LINES) -> frozenset[str]:
    """Identifiers of the last ``lines`` lines before the cursor (the partial line included)."""
    return identifier_set("\n".join(prefix.split("\n")[-lines:]))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (0 for two empty sets)."""
    shared = len(a & b)
    union = len(a) + len(b) - shared
    return shared / union if union else 0.0


@dataclass(frozen=True)
class CursorLines:
    """What a window is aligned on: the cursor's previous lines and what its line holds."""

    before: tuple[str, ...]  # nearest last, stripped
    typed: str  # the cursor's line up to the cursor, stripped

    @cached_property
    def before_ids(self) -> tuple[frozenset[str], ...]:
        """The identifiers of ``before`` (once per retrieval, not once per window aligned)."""
        return tuple(map(identifier_set, self.before))

    @cached_property
    def typed_ids(self) -> frozenset[str]:
        """The identifiers of ``typed``."""
        return identifier_set(self.typed)

    @classmethod
    def of(cls, prefix: str, lines: int = 2) -> CursorLines:
        """The ``lines`` lines before the cursor's and its typed part, from the prefix."""
        *before, typed = prefix.split("\n")[-(lines + 1):]
        return cls(tuple(line.strip() for line in before), typed.strip())


IN_FILE_BEFORE = 120
IN_FILE_AFTER = 60
"""Lines around the cursor that stand for what the prompt already shows of the file."""


def in_file_floor(prefix: str, suffix: str, query: frozenset[str]) -> float:
    """The best Jaccard score of a window the model already sees in the cursor's own file.

    Windows of the file's lines before the query lines (the ``QUERY_LINES`` before the cursor,
    which match themselves) and after the cursor's line. A window of another file earns its
    place in the prompt only by looking more like the cursor's lines than this: on click's
    history, where the file itself held the better examples, showing them anyway cost the 1.5B
    12.5 points of exact match (BENCHMARKS.md, "Completion quality", session 4).
    """
    before = prefix.split("\n")[:-1][-IN_FILE_BEFORE:][:-QUERY_LINES]
    after = suffix.split("\n")[1 : 1 + IN_FILE_AFTER]
    best = 0.0
    for lines in (before, after):
        if lines:
            window = FileWindows(lines).best(query)
            best = max(best, window.score if window else 0.0)
    return best


@dataclass(frozen=True)
class Window:
    """Lines ``start``..``end`` (1-based, inclusive) of a chunk and their similarity."""

    start: int
    end: int
    text: str
    score: float


def window_starts(n_lines: int, size: int = WINDOW_LINES, stride: int = STRIDE) -> list[int]:
    """0-based first lines of the fixed windows over ``n_lines`` lines (the tail included)."""
    last = max(0, n_lines - size)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


@dataclass
class FileWindows:
    """One file's lines and, computed on first use, each window's identifier set."""

    lines: list[str]
    size: int = WINDOW_LINES
    stride: int = STRIDE
    sets: dict[int, frozenset[str]] = field(default_factory=dict)
    _blocks: dict[int, frozenset[str]] = field(default_factory=dict, repr=False)
    _line_sets: dict[int, frozenset[str]] = field(default_factory=dict, repr=False)

    def _line_like(self, at: int, want: str, want_ids: frozenset[str]) -> float:
        """How much line ``at`` looks like ``want`` (stripped): 1 the same, else 0.9 x Jaccard."""
        line = self.lines[at].strip()
        if not line or not want:
            return 0.0
        if line == want:
            return 1.0
        ids = self._line_sets.get(at)
        if ids is None:
            ids = self._line_sets[at] = identifier_set(line)
        return 0.9 * jaccard(ids, want_ids)

    def place(self, lo: int, hi: int, cursor: CursorLines) -> int:
        """The 0-based line of ``lo``..``hi`` most like the cursor's line's place.

        Scored by how much the lines before it look like the cursor's previous lines (the
        nearest counts most) and, once something is typed, whether it starts the same way.
        Ties go to the first.
        """
        wants = list(zip(reversed(cursor.before), reversed(cursor.before_ids), strict=True))
        best, best_at = -1.0, lo
        for at in range(max(lo, 1), min(hi, len(self.lines))):
            score = sum(self._line_like(at - back, want, ids) / back
                        for back, (want, ids) in enumerate(wants, 1) if at - back >= 0)
            if cursor.typed:
                score += (2.0 if self.lines[at].strip().startswith(cursor.typed)
                          else 0.5 * self._line_like(at, cursor.typed, cursor.typed_ids))
            if score > best:
                best, best_at = score, at
        return best_at

    def _block(self, at: int) -> frozenset[str]:
        # Windows overlap by half: tokenise stride-long blocks once and take unions (one regex
        # call per block; per line was slower, per window does every line twice).
        found = self._blocks.get(at)
        if found is None:
            found = self._blocks[at] = identifier_set("\n".join(self.lines[at : at + self.stride]))
        return found

    def window_set(self, at: int) -> frozenset[str]:
        """The identifiers of the window starting at 0-based line ``at`` (cached)."""
        found = self.sets.get(at)
        if found is None:
            if self.size % self.stride == 0 and at % self.stride == 0:
                found = frozenset().union(*(self._block(b) for b in
                                            range(at, at + self.size, self.stride)))
            else:  # the tail window, off the stride grid
                found = identifier_set("\n".join(self.lines[at : at + self.size]))
            self.sets[at] = found
        return found

    def starts_near(self, ranges: Iterable[tuple[int, int]]) -> list[int]:
        """Starts of the windows that overlap the 1-based line ``ranges`` or a window beyond."""
        wanted = [(first - 1 - self.size, last + self.size) for first, last in ranges]
        return [at for at in window_starts(len(self.lines), self.size, self.stride)
                if any(at < hi and lo < at + self.size for lo, hi in wanted)]

    def best(self, query: frozenset[str]) -> Window | None:
        """The best window, 1-based lines (``None``: none shares an identifier with ``query``)."""
        found = self.top(query, 1)
        return found[0] if found else None

    def top(self, query: frozenset[str], k: int = 1, near: Iterable[tuple[int, int]] | None = None,
            cursor: CursorLines | None = None, above: float = 0.0) -> list[Window]:
        """The ``k`` best windows that do not overlap, best first, 1-based lines.

        ``near``: only the windows around these 1-based line ranges (``starts_near``), what a
        huge file is searched by. ``cursor``: each window is shown aligned on it (the module's
        docstring), its lines and text those around the cursor's place in the window or the
        ``stride`` lines after it; its score stays the window's. Only windows scoring over
        ``above``: empty where none does (by default, where none shares an identifier with
        ``query``).
        """
        if not self.lines:
            return []
        starts = (window_starts(len(self.lines), self.size, self.stride) if near is None
                  else self.starts_near(near))
        scored = sorted(((jaccard(query, self.window_set(at)), at) for at in starts),
                        key=lambda item: (-item[0], item[1]))
        if near is None:
            self._blocks.clear()  # every window is computed: the blocks are not needed again
        out: list[Window] = []
        for score, at in scored:
            if score <= above or len(out) >= k:
                break
            first, last = at, at + self.size
            if cursor is not None:  # as many lines as a window, also at either end of the file
                place = self.place(at, at + self.size + self.stride, cursor)
                first = max(0, min(place - SHOW_BEFORE, len(self.lines) - SHOW_BEFORE - SHOW_AFTER))
                last = first + SHOW_BEFORE + SHOW_AFTER
            body = self.lines[first:last]
            while body and not body[-1].strip():
                body = body[:-1]
            window = Window(first + 1, first + len(body), "\n".join(body), score)
            if all(window.end < w.start or w.end < window.start for w in out):
                out.append(window)
        return out


class WindowCache:
    """Files' windows kept between requests, checked against each file's size and mtime.

    Typing asks about the same neighbours again and again.
    """

    def __init__(self, max_files: int = 256) -> None:
        self._files: OrderedDict[Path, tuple[tuple[int, int], FileWindows]] = OrderedDict()
        self._max = max_files
        self._lock = threading.Lock()

    def top(self, path: Path, query: frozenset[str], k: int = 1,
            near: Iterable[tuple[int, int]] | None = None,
            cursor: CursorLines | None = None, above: float = 0.0) -> list[Window]:
        """The ``k`` best windows of the file at ``path`` that do not overlap.

        ``near``, ``cursor`` and ``above`` as FileWindows.top. Empty where the file is unreadable or
        shares nothing with ``query``.
        """
        try:
            stat = path.stat()
        except OSError:
            return []
        key = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            hit = self._files.get(path)
            if hit is not None and hit[0] == key:
                self._files.move_to_end(path)
                windows = hit[1]
            else:
                windows = None
        if windows is None:
            try:  # an indexed file (indexing vetted its size and encoding)
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return []
            windows = FileWindows(text.split("\n"))
            with self._lock:
                self._files[path] = (key, windows)
                while len(self._files) > self._max:
                    self._files.popitem(last=False)
        return windows.top(query, k, near, cursor, above)
