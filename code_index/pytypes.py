"""What ``x`` in ``x.attr`` is an instance of, from the Python code around the cursor.

The evidence is syntactic and local: a variable assigned from a call (``x = Foo(...)``,
``x = make()``), a parameter or variable annotated with a class (``def f(x: Foo)``,
``x: Foo = ...``), an attribute set in its class (``self.repo = Repo(...)``, ``self.repo =
repo`` with ``repo: Repo`` a parameter, ``repo: Repo`` in a dataclass body). A call stays a
:class:`TypeHint` of kind ``call``: whether ``make`` is a class or a function returning one
is the index's to say (:func:`return_annotation` reads a signature's ``-> Foo``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_IDENT = r"[A-Za-z_]\w*"
_SCOPE_RE = re.compile(rf"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+({_IDENT})")
_CALL_ASSIGN_RE = re.compile(
    rf"^[ \t]*((?:self\.)?{_IDENT})[ \t]*(?::[^=\n]+)?=[ \t]*(?:await[ \t]+)?"
    rf"({_IDENT}(?:\.{_IDENT}){{0,2}})[ \t]*\("
)
_ANNOTATED_RE = re.compile(rf"^[ \t]*((?:self\.)?{_IDENT})[ \t]*:[ \t]*([^=\n]+?)[ \t]*(?:=|$)")
_ALIAS_ASSIGN_RE = re.compile(rf"^[ \t]*self\.({_IDENT})[ \t]*=[ \t]*({_IDENT})[ \t]*(?:#.*)?$")
_WITH_RE = re.compile(
    rf"\bwith[ \t]+(?:await[ \t]+)?({_IDENT}(?:\.{_IDENT}){{0,2}})[ \t]*\(.*\)[ \t]+as[ \t]+"
    rf"({_IDENT})[ \t]*:"
)
_USE_RE = re.compile(rf"\b((?:self\.)?{_IDENT})[ \t]*\.[ \t]*({_IDENT})")
# Wrappers that do not change which class a value is an instance of.
_TRANSPARENT = frozenset({
    "Optional", "Union", "Final", "ClassVar", "Annotated", "None", "Type", "type", "typing", "t",
})
_KEYWORDS = frozenset({
    "if", "elif", "else", "while", "for", "try", "except", "finally", "with", "return", "lambda",
    "def", "class", "case", "match", "not", "and", "or", "in", "is", "yield", "await", "raise",
})


_SKIPPED = _KEYWORDS - {"with"}
_MAY_BIND_RE = re.compile(rf"[ \t]*(?:self\.)?{_IDENT}[ \t]*[:=]|[ \t]*(?:async[ \t]+)?with\b")


@dataclass(frozen=True)
class TypeHint:
    """Where a variable's type comes from: a class named in an annotation, or a call."""

    kind: Literal["class", "call"]
    name: str  # the class (last dotted part) or the callee as written (`make`, `mod.make`)


def annotation_class(text: str) -> str | None:
    """The one class an annotation names (``Optional["Repo"]`` -> ``Repo``), else None.

    Containers (``List[Foo]``), unions of several classes and builtin lowercase types say
    nothing about the value's attributes that the index could find.
    """
    names = [n for n in re.findall(rf"{_IDENT}(?:\.{_IDENT})*", text.replace("'", "")
                                   .replace('"', "")) if n.split(".", 1)[0] not in _TRANSPARENT]
    if len(names) != 1:
        return None
    last = names[0].rsplit(".", 1)[-1]
    return last if last.lstrip("_")[:1].isupper() else None


def return_annotation(signature: str) -> str | None:
    """The class a function's signature says it returns (``def f() -> Foo:`` -> ``Foo``)."""
    m = re.search(r"\)\s*->\s*(.+?)\s*:?\s*$", signature)
    return annotation_class(m.group(1)) if m else None


def _params(lines: list[str], start: int) -> dict[str, str]:
    """``name -> annotation`` of the def starting at ``lines[start]`` (up to 30 lines long)."""
    text = "\n".join(lines[start : start + 30])
    open_at = text.find("(")
    if open_at < 0:
        return {}
    depth, parts, current = 0, [], []
    for ch in text[open_at + 1 :]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    out: dict[str, str] = {}
    for part in parts:
        name, colon, annotation = part.partition(":")
        name = name.strip().lstrip("*")
        if colon and re.fullmatch(_IDENT, name):
            out[name] = annotation.split("=", 1)[0].strip()
    return out


@dataclass
class _Block:
    """One def (or the module, or a class body) and the types it gives its names."""

    types: dict[str, set[TypeHint]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, hint: TypeHint) -> None:
        self.types.setdefault(name, set()).add(hint)


def typed_member_uses(raw: list[str], code: list[str], weights: list[float]
                      ) -> dict[tuple[TypeHint, str], float]:
    """``(type of x, attr) -> weight`` for every ``x.attr`` whose ``x`` has a known type.

    ``raw`` and ``code`` are the same lines (``code`` without comments and strings, for the
    uses; ``raw`` keeps string annotations such as ``"Repo"``); ``weights`` is each line's
    proximity weight. Locals are typed within their def (a name given two types there is
    left out); ``self.attr`` within its class; module-level names everywhere.
    """
    return scan_types(raw, code).member_uses(code, weights)


@dataclass
class TypeScan:
    """The types the lines give their names, and which def and class each line is in."""

    module: _Block
    blocks: list[_Block]  # per line: the innermost def's block (or the module's)
    classes: list[_Block | None]  # per line: the innermost class's attributes

    def hint(self, qualifier: str, line: int) -> TypeHint | None:
        """The one type of ``x`` / ``self.x`` at a line, or None (unknown or ambiguous)."""
        if qualifier.startswith("self."):
            owner = self.classes[line]
            hints = owner.types.get(qualifier[5:], set()) if owner else set()
        else:
            hints = self.blocks[line].types.get(qualifier) or self.module.types.get(qualifier,
                                                                                  set())
        return next(iter(hints)) if len(hints) == 1 else None

    def member_uses(self, code: list[str], weights: list[float]
                    ) -> dict[tuple[TypeHint, str], float]:
        """``(type of x, attr) -> weight`` for every ``x.attr`` of the lines with a typed ``x``."""
        out: dict[tuple[TypeHint, str], float] = {}
        for i, line in enumerate(code):
            owner = self.classes[i]
            if "." not in line or not (self.blocks[i].types or self.module.types
                                       or (owner and owner.types)):
                continue  # no `x.attr` here, or no typed name it could be
            for m in _USE_RE.finditer(line):
                hint = self.hint(m.group(1), i)
                if hint is not None:
                    key = (hint, m.group(2))
                    out[key] = out.get(key, 0.0) + weights[i]
        return out


def scan_types(raw: list[str], code: list[str]) -> TypeScan:
    """One pass over the lines: their defs and classes, and the types given to names there."""
    module = _Block()
    blocks: list[_Block] = []
    classes: list[_Block | None] = []
    stack: list[tuple[int, str, _Block]] = []
    def_block, class_block, in_class_body = module, None, False
    depth = 0  # open brackets: continuation lines do not open or close blocks
    for i, line in enumerate(raw):
        stripped = line.lstrip(" \t")
        scope = None
        if stripped and depth == 0:
            indent = len(line) - len(stripped)
            changed = False
            while stack and stack[-1][0] >= indent:
                stack.pop()
                changed = True
            if stripped.startswith(("def", "class", "async")):
                scope = _SCOPE_RE.match(line)
            if scope:
                block = _Block(params=_params(raw, i) if scope.group(2) == "def" else {})
                stack.append((indent, scope.group(2), block))
                changed = True
                for name, annotation in block.params.items():
                    cls = annotation_class(annotation)
                    if cls:
                        block.add(name, TypeHint("class", cls))
            if changed:
                def_block = next((b for _, kind, b in reversed(stack) if kind == "def"), module)
                class_block = next((b for _, kind, b in reversed(stack) if kind == "class"),
                                   None)
                in_class_body = bool(stack) and stack[-1][1] == "class"
        text = code[i]
        if "(" in text or ")" in text or "[" in text or "]" in text or "{" in text or "}" in text:
            depth = max(0, depth + text.count("(") + text.count("[") + text.count("{")
                        - text.count(")") - text.count("]") - text.count("}"))
        blocks.append(def_block)
        classes.append(class_block)
        if stripped:
            _collect(line, def_block, class_block, in_class_body=in_class_body and not scope)
    return TypeScan(module, blocks, classes)


def _collect(line: str, block: _Block, owner: _Block | None, *, in_class_body: bool) -> None:
    """Types one line gives: to a local (``block``), or to its class's attributes (``owner``)."""
    if not _MAY_BIND_RE.match(line):
        return  # one match rules out most lines: calls, returns, conditions
    stripped = line.lstrip()
    if stripped.split(None, 1)[0].rstrip(":") in _SKIPPED:
        return
    m = _ANNOTATED_RE.match(line)  # the annotation wins over the call (`x: Foo = get()`)
    cls = annotation_class(m.group(2)) if m else None
    if m and cls:
        if in_class_body and owner is not None:  # `repo: Repo` in a (data)class body
            owner.add(m.group(1), TypeHint("class", cls))
        else:
            _bind(m.group(1), TypeHint("class", cls), block, owner)
        return
    m = _CALL_ASSIGN_RE.match(line)
    if m:
        _bind(m.group(1), TypeHint("call", m.group(2)), block, owner)
        return
    m = _ALIAS_ASSIGN_RE.match(line)
    if m and owner is not None:  # `self.repo = repo`, `repo: Repo` a parameter
        cls = annotation_class(block.params.get(m.group(2), ""))
        if cls:
            owner.add(m.group(1), TypeHint("class", cls))
        return
    m = _WITH_RE.search(line)
    if m:
        block.add(m.group(2), TypeHint("call", m.group(1)))


def _bind(target: str, hint: TypeHint, block: _Block, owner: _Block | None) -> None:
    if target.startswith("self."):
        if owner is not None:
            owner.add(target[5:], hint)
    else:
        block.add(target, hint)
