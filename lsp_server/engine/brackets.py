"""Bracket and quote bookkeeping over code text, aware of strings and line comments."""

from __future__ import annotations

from dataclasses import dataclass

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {")": "(", "]": "[", "}": "{"}

_QUOTES = {
    "python": ("'", '"'),
    "javascript": ("'", '"', "`"),
    "typescript": ("'", '"', "`"),
    "tsx": ("'", '"', "`"),
    "javascriptreact": ("'", '"', "`"),
    "typescriptreact": ("'", '"', "`"),
    "go": ('"', "`"),
    "rust": ('"',),  # ' starts lifetimes as well as char literals
}
_COMMENT = {
    "python": "#",
    "shellscript": "#",
    "ruby": "#",
    "lua": "--",
    "sql": "--",
}
# How far back the prefix is scanned for open brackets; a top-level line in that window is a
# safe place to start (never inside a bracket, rarely inside a string).
WINDOW_LINES = 60
WINDOW_CHARS = 50_000  # of those lines, at most: the tail of a huge generated line


def quotes_for(language: str) -> tuple[str, ...]:
    """The characters that delimit strings in ``language``."""
    return _QUOTES.get(language, ("'", '"'))


def comment_for(language: str) -> str:
    """The line-comment marker of ``language``."""
    return _COMMENT.get(language, "//")


@dataclass(frozen=True)
class ScanState:
    """Where a left-to-right scan stands: open brackets, and the open string if inside one."""

    stack: tuple[str, ...] = ()
    quote: str = ""
    """The delimiter of the string the scan is inside (``'``, ``\"\"\"``...), or empty."""
    comment: bool = False
    unmatched_closers: int = 0


def scan(text: str, language: str, state: ScanState | None = None) -> ScanState:
    """Scan ``text`` from ``state`` and return the state at its end."""
    return _scan(text, language, state or ScanState(), stop_at_stray=False)[0]


def _scan(
    text: str, language: str, s: ScanState, *, stop_at_stray: bool
) -> tuple[ScanState, int | None]:
    stack, quote, comment, unmatched = list(s.stack), s.quote, s.comment, s.unmatched_closers
    quotes = quotes_for(language)
    marker = comment_for(language)
    triple = language == "python"
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if comment:
            if ch == "\n":
                comment = False
            i += 1
            continue
        if quote:
            if ch == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
            if ch == "\n" and len(quote) == 1 and quote != "`":
                quote = ""  # an unterminated one-line string ends with its line
            i += 1
            continue
        if text.startswith(marker, i):
            comment = True
            i += len(marker)
            continue
        if ch in quotes:
            quote = ch * 3 if triple and text.startswith(ch * 3, i) else ch
            i += len(quote)
            continue
        if ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS:
            if stack and stack[-1] == CLOSERS[ch]:
                stack.pop()
            else:
                if stop_at_stray:
                    return ScanState(tuple(stack), quote, comment, unmatched), i
                unmatched += 1
        i += 1
    return ScanState(tuple(stack), quote, comment, unmatched), None


def prefix_state(prefix: str, language: str) -> ScanState:
    """The scan state at the cursor, from the last top-level line within the window."""
    lines = prefix.split("\n")
    start = max(0, len(lines) - WINDOW_LINES)
    for k in range(len(lines) - 1, start - 1, -1):
        line = lines[k]
        if line.strip() and not line[0].isspace() and line.lstrip()[0] not in ")]}":
            start = k
            break
    # A generated one-line file can put a megabyte on the cursor's line: its tail will do.
    state = scan("\n".join(lines[start:])[-WINDOW_CHARS:], language)
    return ScanState(state.stack, state.quote, state.comment, 0)


def first_stray_closer(text: str, language: str, state: ScanState) -> int | None:
    """Offset of the first closer in ``text`` that matches no bracket open at that point."""
    return _scan(text, language, state, stop_at_stray=True)[1]


def imbalance(state: ScanState, middle: str, line_suffix: str, language: str) -> int:
    """How unbalanced the cursor's line is with ``middle`` inserted.

    Counts closers with nothing to close, the change in open brackets at the end of the line
    against the line without ``middle``, and a one-line string left open. Only relative values
    mean something: code legitimately continues open brackets on later lines.
    """
    start = ScanState(state.stack, state.quote, state.comment)
    end = scan(middle + line_suffix, language, start)
    baseline = scan(line_suffix, language, start)
    depth = abs(len(end.stack) - len(baseline.stack))
    return end.unmatched_closers + depth + (1 if end.quote and len(end.quote) == 1 else 0)
