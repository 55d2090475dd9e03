"""Definitions, imports and identifiers of one source file, found with tree-sitter tag queries."""

from __future__ import annotations

import logging
import re
import textwrap
import threading
from dataclasses import dataclass, field

from tree_sitter import Node, QueryCursor, Tree

from .languages import get_spec, normalize_language
from .types import Symbol

log = logging.getLogger(__name__)

# Nodes that wrap a definition and carry its decorators, export keyword or leading comments.
_WRAPPERS = frozenset(
    {
        "decorated_definition",
        "export_statement",
        "template_declaration",
        "ambient_declaration",
        "type_declaration",
        "const_declaration",
        "var_declaration",
    }
)
_DECLARATION_PARENTS = frozenset({"lexical_declaration", "variable_declaration"})
CONTAINER_KINDS = frozenset({"class", "struct", "interface", "enum", "module"})
_FUNCTION_KINDS = frozenset({"function", "method"})
_BODY_FIELDS = ("body",)
_MAX_SIGNATURE = 400
SHORT_FUNCTION_LINES = 15
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_local = threading.local()


@dataclass(frozen=True, kw_only=True)
class Definition:
    """A symbol with what chunking and prompts need: nesting and a compact summary text."""

    symbol: Symbol
    parent: int | None  # index of the enclosing definition in the same file
    summary: str  # what a prompt should show: short bodies whole, else signature + doc
    outer_start_byte: int  # includes decorators, export keyword, template header
    outer_start_line: int  # 1-based


@dataclass(frozen=True, kw_only=True)
class Import:
    """One import statement: the module it names and the names it binds."""

    module: str
    names: tuple[str, ...] = ()
    line: int = 1  # 1-based


@dataclass(kw_only=True)
class ParsedFile:
    """The result of parsing one file."""

    path: str
    language: str
    definitions: list[Definition] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    error: str | None = None

    @property
    def symbols(self) -> list[Symbol]:
        """The definitions' symbols in document order."""
        return [d.symbol for d in self.definitions]


def _parser(language: str):
    cache: dict[str, object] = _local.__dict__.setdefault("parsers", {})
    parser = cache.get(language)
    if parser is None:
        spec = get_spec(language)
        if spec is None:
            return None
        parser = spec.parser()
        cache[language] = parser
    return parser


def parse_tree(source: bytes, language: str) -> Tree | None:
    """Parse source bytes, or ``None`` when the language has no grammar."""
    parser = _parser(normalize_language(language))
    if parser is None:
        return None
    return parser.parse(source)  # type: ignore[attr-defined]


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def _strip_comment(text: str) -> str:
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        line = re.sub(r"^(///?|//!|/\*\*?|#+|--)\s?", "", line)
        line = re.sub(r"\s*\*/$", "", line)
        line = re.sub(r"^\*\s?", "", line)
        lines.append(line.rstrip())
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _leading_comments(node: Node) -> str:
    parts: list[str] = []
    expected_row = node.start_point.row
    sibling = node.prev_sibling
    while sibling is not None and "comment" in sibling.type:
        if sibling.end_point.row < expected_row - 1:
            break  # a blank line separates it: not this definition's comment
        parts.append(_text(sibling))
        expected_row = sibling.start_point.row
        sibling = sibling.prev_sibling
    if not parts:
        return ""
    return _strip_comment("\n".join(reversed(parts)))


def _python_docstring(node: Node) -> str:
    body = node.child_by_field_name("body")
    if body is None or body.named_child_count == 0:
        return ""
    first = body.named_children[0]
    if first.type != "expression_statement" or first.named_child_count == 0:
        return ""
    string = first.named_children[0]
    if string.type != "string":
        return ""
    content = [c for c in string.named_children if c.type == "string_content"]
    raw = "".join(_text(c) for c in content) if content else _text(string).strip("\"'")
    return textwrap.dedent(raw).strip() if "\n" not in raw else _dedent_doc(raw)


def _dedent_doc(raw: str) -> str:
    first, _, rest = raw.partition("\n")
    return (first.strip() + "\n" + textwrap.dedent(rest)).strip()


def _body(node: Node) -> Node | None:
    for name in _BODY_FIELDS:
        body = node.child_by_field_name(name)
        if body is not None:
            return body
    if node.type == "type_spec":
        return node.child_by_field_name("type")
    return None


def _signature(node: Node, source: bytes, kind: str) -> str:
    body = _body(node)
    colon = next((c for c in node.children if c.type == ":"), None)
    if node.type in ("function_definition", "class_definition") and colon is not None:
        # Python: comments before the first statement belong to the block, so cut at the colon.
        raw = source[node.start_byte : colon.end_byte].decode("utf-8", errors="replace")
        sig = raw
    elif body is not None and body.start_byte > node.start_byte:
        raw = source[node.start_byte : body.start_byte].decode("utf-8", errors="replace")
        sig = raw.rstrip().removesuffix("{").rstrip()
        if node.type == "type_spec" and body.type in ("struct_type", "interface_type"):
            sig = f"type {sig} {body.type.removesuffix('_type')}"
    else:
        raw = source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")
        sig = raw.split("\n", 1)[0] if kind not in _FUNCTION_KINDS else raw
        sig = sig.rstrip().removesuffix(";").removesuffix("{").rstrip()
    if "\n" in sig:
        sig = re.sub(r"\s*\n\s*", " ", sig).replace("( ", "(").replace(" )", ")")
    if len(sig) > _MAX_SIGNATURE:
        sig = sig[:_MAX_SIGNATURE] + "…"
    return sig


def _node_text_dedented(source: bytes, start_byte: int, end_byte: int, column: int) -> str:
    text = source[start_byte:end_byte].decode("utf-8", errors="replace")
    return textwrap.dedent(" " * column + text)


def _scope_name(node: Node, language: str) -> str | None:
    """Names a non-definition scope that qualifies members (Rust ``impl``, Go receivers)."""
    if language == "rust" and node.type == "impl_item":
        type_node = node.child_by_field_name("type")
        return re.sub(r"<.*", "", _text(type_node)).strip() or None
    return None


def _go_receiver(node: Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"\[.*?\]", "", _text(receiver)))
    return names[-1] if names else None


def parse_source(source: bytes | str, path: str, language: str) -> ParsedFile:
    """Extract definitions and imports; never raises on bad input (the error is recorded)."""
    language = normalize_language(language)
    data = source.encode("utf-8", errors="replace") if isinstance(source, str) else source
    result = ParsedFile(path=path, language=language)
    spec = get_spec(language)
    if spec is None:
        return result
    try:
        tree = parse_tree(data, language)
        if tree is None:
            return result
        result.definitions = _definitions(tree, data, path, language)
        result.imports = imports_of(tree, language)
    except Exception as exc:  # tree-sitter rarely fails, but one bad file must not stop a build
        log.warning("could not parse %s: %s", path, exc)
        result.error = str(exc)
    return result


def _definitions(tree: Tree, source: bytes, path: str, language: str) -> list[Definition]:
    spec = get_spec(language)
    assert spec is not None
    best: dict[int, tuple[int, Node, Node, str]] = {}
    for pattern, captures in QueryCursor(spec.query).matches(tree.root_node):
        names = captures.get("name")
        if not names:
            continue
        def_key = next((k for k in captures if k.startswith("definition.")), None)
        if def_key is None:
            continue
        name_node, def_node = names[0], captures[def_key][0]
        key = name_node.start_byte
        if key not in best or pattern < best[key][0]:
            best[key] = (pattern, def_node, name_node, def_key.split(".", 1)[1])

    raw: list[tuple[Node, Node, str]] = []
    for _, def_node, name_node, kind in best.values():
        node = def_node
        parent = node.parent
        if (
            node.type == "variable_declarator"
            and parent is not None
            and parent.type in _DECLARATION_PARENTS
            and parent.named_child_count == 1
        ):
            node = parent
        if node.type == "assignment" and parent is not None and (
            parent.type == "expression_statement"
        ):
            node = parent
        raw.append((node, name_node, kind))
    raw.sort(key=lambda item: (item[0].start_byte, -item[0].end_byte))

    out: list[Definition] = []
    stack: list[int] = []  # indices into out of the enclosing definitions
    for node, name_node, kind in raw:
        while stack and out[stack[-1]].symbol.end_byte < node.end_byte:
            stack.pop()
        while stack and not (
            out[stack[-1]].symbol.start_byte <= node.start_byte
            and node.end_byte <= out[stack[-1]].symbol.end_byte
        ):
            stack.pop()
        parent_index = stack[-1] if stack else None
        parent_symbol = out[parent_index].symbol if parent_index is not None else None

        name = _text(name_node)
        scopes: list[str] = []
        if "::" in name:  # C++ `Foo::bar` out-of-class definitions
            *scopes, name = [p for p in name.split("::") if p]
        if kind == "function" and scopes:
            kind = "method"
        if kind == "function" and parent_symbol is not None and (
            parent_symbol.kind in CONTAINER_KINDS - {"module"}
        ):
            kind = "method"
        extra_scope = None
        if language == "go" and node.type == "method_declaration":
            extra_scope = _go_receiver(node)
        elif language == "rust":
            ancestor = node.parent
            while ancestor is not None and ancestor.type != "source_file":
                extra_scope = _scope_name(ancestor, language)
                if extra_scope or ancestor.type == "function_item":
                    break
                ancestor = ancestor.parent
            if extra_scope and kind == "function":
                kind = "method"
        if kind == "variable" and name.isupper():
            kind = "constant"
        if parent_symbol is not None:
            qualified = ".".join([parent_symbol.qualified_name, *scopes, name])
        else:
            qualified = ".".join([p for p in (extra_scope, *scopes, name) if p])

        outer = node
        while outer.parent is not None and outer.parent.type in _WRAPPERS:
            outer = outer.parent
        doc = _python_docstring(node) if language == "python" and kind in (
            "function", "method", "class"
        ) else ""
        if not doc:
            doc = _leading_comments(outer)
        signature = _signature(node, source, kind)
        symbol = Symbol(
            name=name,
            kind=kind,
            qualified_name=qualified,
            signature=signature,
            doc=doc,
            path=path,
            language=language,
            start_byte=node.start_byte,
            end_byte=node.end_byte,
            start_line=node.start_point.row + 1,
            end_line=node.end_point.row + 1,
        )
        out.append(
            Definition(
                symbol=symbol,
                parent=parent_index,
                summary="",
                outer_start_byte=outer.start_byte,
                outer_start_line=outer.start_point.row + 1,
            )
        )
        stack.append(len(out) - 1)

    return _with_summaries(out, tree, source)


def _with_summaries(defs: list[Definition], tree: Tree, source: bytes) -> list[Definition]:
    children: dict[int, list[int]] = {}
    for i, d in enumerate(defs):
        if d.parent is not None:
            children.setdefault(d.parent, []).append(i)
    lines = source.split(b"\n")
    result: list[Definition] = []
    for i, d in enumerate(defs):
        result.append(
            Definition(
                symbol=d.symbol,
                parent=d.parent,
                summary=_summary(d, [defs[c] for c in children.get(i, [])], lines, source),
                outer_start_byte=d.outer_start_byte,
                outer_start_line=d.outer_start_line,
            )
        )
    return result


def _indent_of(lines: list[bytes], line: int) -> str:
    raw = lines[line - 1].decode("utf-8", errors="replace") if 0 < line <= len(lines) else ""
    return raw[: len(raw) - len(raw.lstrip(" \t"))]


def _full_text(d: Definition, lines: list[bytes]) -> str:
    s = d.symbol
    text = b"\n".join(lines[d.outer_start_line - 1 : s.end_line]).decode("utf-8", "replace")
    return textwrap.dedent(text).strip("\n")


def _doc_block(doc: str, language: str, indent: str) -> str:
    if not doc:
        return ""
    doc_lines = doc.split("\n\n", 1)[0].splitlines()[:6]  # the first paragraph says enough
    if language == "python":
        body = "\n".join(indent + line if line else "" for line in doc_lines)
        return f'{indent}"""{body.lstrip()}"""' if len(doc_lines) == 1 else (
            f'{indent}"""{body.lstrip()}\n{indent}"""'
        )
    prefix = "#" if language == "python" else "//"
    return "\n".join(f"{indent}{prefix} {line}".rstrip() for line in doc_lines)


def _summary(
    d: Definition, members: list[Definition], lines: list[bytes], source: bytes
) -> str:
    """Short definitions whole; long functions as signature + doc; containers as outlines."""
    s = d.symbol
    n_lines = s.end_line - d.outer_start_line + 1
    if s.kind in _FUNCTION_KINDS or not members:
        if n_lines <= SHORT_FUNCTION_LINES or s.kind not in _FUNCTION_KINDS | CONTAINER_KINDS:
            text = _full_text(d, lines)
            if s.kind not in _FUNCTION_KINDS | CONTAINER_KINDS:
                text = "\n".join(text.splitlines()[:6])
            return text
        return _outline(d, [], lines)
    if n_lines <= SHORT_FUNCTION_LINES:
        return _full_text(d, lines)
    return _outline(d, members, lines)


def _outline(d: Definition, members: list[Definition], lines: list[bytes]) -> str:
    s = d.symbol
    python = s.language == "python"
    base_indent = _indent_of(lines, s.start_line)
    inner = "    "
    parts = [textwrap.dedent(base_indent + s.signature)]
    if d.outer_start_line < s.start_line:  # decorators / export / template lines
        head = b"\n".join(lines[d.outer_start_line - 1 : s.start_line - 1]).decode(
            "utf-8", "replace"
        )
        parts.insert(0, textwrap.dedent(head).rstrip())
    if python and not parts[-1].rstrip().endswith(":"):
        parts[-1] += ":"
    if s.doc:
        block = _doc_block(s.doc, s.language, inner)
        if python:
            parts.append(block)
        else:
            parts.insert(len(parts) - 1, _doc_block(s.doc, s.language, ""))
    if not python and s.kind not in _FUNCTION_KINDS:
        parts[-1] += " {"
    for m in members[:40]:
        ms = m.symbol
        if ms.kind in _FUNCTION_KINDS:
            sig = ms.signature
            doc_first = ms.doc.splitlines()[0] if ms.doc else ""
            if python:
                line = f"{inner}{sig.rstrip(':')}: ..."
                if doc_first:
                    line += f"  # {doc_first}"
            else:
                line = f"{inner}{sig};" + (f"  // {doc_first}" if doc_first else "")
            parts.append(line)
        else:
            member_text = b"\n".join(lines[ms.start_line - 1 : ms.end_line]).decode(
                "utf-8", "replace"
            )
            first = textwrap.dedent(member_text).splitlines()[0] if member_text.strip() else ""
            parts.append(inner + first.strip())
    if len(members) > 40:
        parts.append(f"{inner}{'#' if python else '//'} … {len(members) - 40} more members")
    if python:
        if s.kind in _FUNCTION_KINDS:
            parts.append(f"{inner}...")
    elif s.kind in _FUNCTION_KINDS:
        parts[-1] += " { … }"
    else:
        parts.append("}")
    return "\n".join(parts)


# ---- imports and identifiers ------------------------------------------------------------

_IMPORT_NODES = {
    "python": ("import_statement", "import_from_statement"),
    "javascript": ("import_statement",),
    "typescript": ("import_statement",),
    "tsx": ("import_statement",),
    "go": ("import_declaration",),
    "rust": ("use_declaration",),
    "java": ("import_declaration",),
    "c": ("preproc_include",),
    "cpp": ("preproc_include", "using_declaration"),
}


def imports_of(tree: Tree, language: str) -> list[Import]:
    """The imports at the top level of a parsed file (and one level into blocks)."""
    types = _IMPORT_NODES.get(language, ())
    out: list[Import] = []

    def visit(node: Node, depth: int) -> None:
        for child in node.named_children:
            if child.type in types:
                imp = _import_of(child, language)
                if imp is not None:
                    out.extend(imp)
            elif depth < 2 and child.type in (
                "if_statement", "try_statement", "block", "preproc_ifdef", "preproc_if",
                "else_clause", "except_clause", "declaration_list", "namespace_definition",
            ):
                visit(child, depth + 1)

    visit(tree.root_node, 0)
    return out


def _import_of(node: Node, language: str) -> list[Import]:
    line = node.start_point.row + 1
    text = _text(node)
    if language == "python":
        if node.type == "import_statement":
            mods = []
            for child in node.named_children:
                aliased = child.type == "aliased_import"
                target = child.child_by_field_name("name") if aliased else child
                alias = child.child_by_field_name("alias") if aliased else None
                mod = _text(target)
                bound = _text(alias) or mod.split(".")[0]
                mods.append(Import(module=mod, names=(bound,), line=line))
            return mods
        module = _text(node.child_by_field_name("module_name"))
        names: list[str] = []
        for child in node.children_by_field_name("name"):
            target = child.child_by_field_name("alias") if child.type == "aliased_import" else child
            names.append(_text(target))
        return [Import(module=module, names=tuple(names), line=line)]
    if language in ("javascript", "typescript", "tsx"):
        source = node.child_by_field_name("source")
        module = _text(source).strip("'\"`")
        names = [m for m in _IDENT.findall(text.split(" from ")[0]) if m not in (
            "import", "type", "as", "from", "default"
        )]
        return [Import(module=module, names=tuple(names), line=line)]
    if language == "go":
        return [
            Import(module=m, names=(m.rsplit("/", 1)[-1],), line=line)
            for m in re.findall(r'"([^"]+)"', text)
        ]
    if language == "rust":
        path = text.removeprefix("pub ").removeprefix("use ").rstrip(";").strip()
        names = [n for n in _IDENT.findall(path.rsplit("::", 1)[-1]) if n != "self"]
        return [Import(module=path.split("::{")[0], names=tuple(names), line=line)]
    if language == "java":
        path = text.removeprefix("import ").removeprefix("static ").rstrip(";").strip()
        return [Import(module=path, names=(path.rsplit(".", 1)[-1],), line=line)]
    match = re.search(r'[<"]([^>"]+)[>"]', text)
    if match:
        return [Import(module=match.group(1), line=line)]
    return []


KEYWORDS = frozenset(
    [
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield", "self", "cls", "const", "let", "var", "function", "new",
        "this", "typeof", "instanceof", "void", "null", "undefined", "true", "false", "export",
        "default", "extends", "implements", "interface", "type", "enum", "public", "private",
        "protected", "static", "final", "abstract", "package", "struct", "impl", "fn", "pub", "mut",
        "use", "mod", "match", "loop", "func", "go", "defer", "chan", "map", "range", "select",
        "switch", "case", "int", "char", "float", "double", "long", "short", "unsigned", "signed",
        "bool", "string", "include", "define", "ifdef", "ifndef", "endif", "auto", "template",
        "typename", "namespace", "using", "virtual", "override", "nil", "err", "ok", "str", "list",
        "dict", "set", "tuple", "print", "len", "isinstance", "super"
    ]
)


def identifiers_in(text: str, *, limit: int = 32, skip_keywords: bool = True) -> list[str]:
    """Identifiers in the text, last first, without repeats, keywords and one-letter names."""
    seen: dict[str, None] = {}
    for name in reversed(_IDENT.findall(text)):
        if len(name) < 2 or name in seen or (skip_keywords and name in KEYWORDS):
            continue
        seen[name] = None
        if len(seen) >= limit:
            break
    return list(seen)


def identifiers_around(source: str, line: int, *, before: int = 12, after: int = 2) -> list[str]:
    """Identifiers near a 0-based line, nearest lines first (the cursor's line leads)."""
    lines = source.split("\n")
    ordered: list[str] = []
    for offset in range(0, max(before, after) + 1):
        for candidate in (line - offset, line + offset) if offset else (line,):
            if offset and candidate > line and offset > after:
                continue
            if offset and candidate < line and offset > before:
                continue
            if 0 <= candidate < len(lines):
                ordered.append(lines[candidate])
    seen: dict[str, None] = {}
    for text in ordered:
        for name in _IDENT.findall(text):
            if len(name) > 1 and name not in KEYWORDS and name not in seen:
                seen[name] = None
    return list(seen)


def split_identifier(name: str) -> list[str]:
    """Sub-words of an identifier: ``parseHTTPRequest_v2`` -> parse, http, request, v2."""
    parts: list[str] = []
    for piece in name.split("_"):
        parts.extend(re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+\d*|[A-Z]+\d*|\d+", piece))
    return [p.lower() for p in parts if p]
