"""Ranking rules of retrieval: how the file's uses of names pick other files' definitions."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilotfish.code_index.config import IndexConfig
from pilotfish.code_index.indexer import Index
from pilotfish.code_index.retrieve import (
    PyImport,
    bound_names,
    enclosing_scopes,
    name_uses,
    nested_function,
    pytest_fixture,
    python_imports,
    strip_prose,
)
from pilotfish.code_index.types import CursorContext, Snippet


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from .events import Handle", {"Handle": PyImport(1, "events", "Handle")}),
        ("from . import events, futures as fut",
         {"events": PyImport(1, "", "events"), "fut": PyImport(1, "", "futures")}),
        ("from ..pkg.mod import (\n    a,\n    b as c,\n)",
         {"a": PyImport(2, "pkg.mod", "a"), "c": PyImport(2, "pkg.mod", "b")}),
        ("import os.path, json as j", {"os.path": PyImport(0, "os.path"),
                                       "j": PyImport(0, "json")}),
        ("    import shapes  # indented, with a comment", {"shapes": PyImport(0, "shapes")}),
        ("x = 'from a import b'", {}),
    ],
)
def test_python_imports(source: str, expected: dict[str, PyImport]) -> None:
    assert python_imports(source) == expected


@pytest.mark.parametrize(
    ("code", "names", "attrs"),
    [
        ("x, (y, z) = 1", {"x", "y", "z"}, set()),
        ("total: int = 0\ncount += 1", {"total", "count"}, set()),
        ("self.size: int = 3\ncls.registry = {}", set(), {"size", "registry"}),
        ("for i, item in pairs:", {"i", "item"}, set()),
        ("with open(p) as fh:\n    pass\nexcept OSError as exc:", {"fh", "exc"}, set()),
        ("def f(a, b: int = 2, *args, **kw):", {"a", "b", "args", "kw"}, set()),
        ("if (n := len(x)) > 2:", {"n"}, set()),
        # Not bindings: attribute and item targets, comparisons, calls.
        ("obj.attr = 4\nd[k] = 5\nif x == 3:\nf(a=1)", set(), set()),
    ],
)
def test_bound_names(code: str, names: set[str], attrs: set[str]) -> None:
    assert bound_names(code) == (names, attrs)


@pytest.mark.parametrize(
    ("text", "comment", "expected"),
    [
        ('x = "a#b"  # area_of(c)', "#", "x =   "),
        ('"""Doc mentions\narea_of."""\ny = 1', "#", "\n\ny = 1"),
        ("y = f('q') // 2  # z", "#", "y = f() // 2  "),
        ("a = b; // call c()\n/* d\ne */ g", "//", "a = b; \n\n g"),
    ],
)
def test_strip_prose_blanks_comments_and_strings_keeping_lines(
    text: str, comment: str, expected: str
) -> None:
    assert strip_prose(text, comment) == expected


def test_enclosing_scopes_innermost_first() -> None:
    before = [
        "class Shape:",
        "    def area(self):",
        "        if self.ok:",
        "            x = 1",
        "",
        "        ",
    ]
    assert enclosing_scopes(before) == [(1, "def", "area"), (0, "class", "Shape")]
    assert enclosing_scopes(["x = 1", ""]) == []


def test_name_uses_weigh_distance_scope_and_qualifier() -> None:
    prefix = (
        "def far():\n    far_name()\n" + "\n" * 30
        + "def here():\n    scoped_name()\n    mod.attr_name()\n    "
    )
    suffix = "\n    after_name()\n\ndef other():\n    other_name()\n"
    uses = name_uses(prefix, suffix)
    # Same distance (one line) but inside the enclosing function: counts double.
    assert uses["after_name"].bare > uses["other_name"].bare
    assert uses["scoped_name"].bare > uses["far_name"].bare
    assert uses["attr_name"].bare == 0 and uses["attr_name"].qualified.keys() == {"mod"}
    assert "here" in uses and "def" not in uses  # keywords are not names


def test_name_uses_ignore_prose() -> None:
    uses = name_uses('x = 1  # see helper_fn\n"""helper_fn too"""\n', "")
    assert "helper_fn" not in uses


# ---- end to end over a real index -------------------------------------------------------------

FILES = {
    "pkg/__init__.py": "",
    "pkg/events.py": '''\
def get_loop():
    """The running loop."""
    return None


class Handle:
    def cancel(self):
        return True
''',
    "pkg/other.py": '''\
def get_loop():
    """An unrelated function with the same name."""
    return 1


def chunk_size():
    return 4096


class Tree:
    def join(self, other):
        return other
''',
    "pkg/base.py": '''\
class Transport:
    def close_transport(self):
        """Close the underlying connection."""
''',
    "pkg/unrelated.py": '''\
class Socket:
    def close_transport(self):
        """Same name, another class."""
''',
}


def _index(tmp_path: Path) -> Index:
    root = tmp_path / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    idx.build()
    return idx


def _retrieve(idx: Index, rel: str, prefix: str, suffix: str = "\n") -> list[tuple[str, int]]:
    path = idx.root / rel
    path.write_text(prefix + suffix)
    ctx = CursorContext(prefix=prefix, suffix=suffix, language="python", path=str(path),
                        repo_root=str(idx.root), line=prefix.count("\n"))
    return [(s.path, s.start_line) for s in idx.retrieve(ctx, budget_tokens=4000,
                                                          max_snippets=10)]


@pytest.fixture
def idx(tmp_path: Path):
    index = _index(tmp_path)
    yield index
    index.close()


def test_module_qualified_use_resolves_to_that_module(idx: Index) -> None:
    got = _retrieve(idx, "pkg/user.py", "from . import events\n\n\ndef run():\n    "
                    "loop = events.get_loop()\n    ")
    assert got[0] == ("pkg/events.py", 1)  # not other.py's function of the same name


def test_from_import_resolves_to_the_imported_definition(idx: Index) -> None:
    got = _retrieve(idx, "pkg/user.py", "from .other import get_loop\n\n\ndef run():\n    "
                    "return get_loop()\n\n\ndef again():\n    ")
    assert got[0] == ("pkg/other.py", 1)


def test_local_variable_does_not_pull_a_same_named_function(idx: Index) -> None:
    def by_symbol(prefix: str) -> list[str]:
        path = idx.root / "pkg/user.py"
        path.write_text(prefix)
        ctx = CursorContext(prefix=prefix, suffix="\n", language="python", path=str(path),
                            repo_root=str(idx.root), line=prefix.count("\n"))
        return [s.reason for s in idx.retrieve(ctx, budget_tokens=4000) if s.source == "symbol"]

    # (Lexical search may still show the chunk: it shares the word, not the meaning.)
    local = "def run(chunk_size):\n    data = read(chunk_size)\n    n = chunk_size * 2\n    "
    assert not any("chunk_size" in reason for reason in by_symbol(local))
    imported = "from .other import chunk_size\n\n\ndef run():\n    n = chunk_size()\n    "
    assert any("chunk_size" in reason for reason in by_symbol(imported))


def test_inherited_method_comes_from_the_base_class_file(idx: Index) -> None:
    prefix = (
        "from .base import Transport\n\n\nclass Pipe(Transport):\n    def stop(self):\n"
        "        self.close_transport()\n        "
    )
    path = idx.root / "pkg/pipe.py"
    path.write_text(prefix)
    ctx = CursorContext(prefix=prefix, suffix="\n", language="python", path=str(path),
                        repo_root=str(idx.root), line=prefix.count("\n"))
    got = [(s.path, s.start_line, s.end_line) for s in idx.retrieve(ctx, budget_tokens=4000)]
    # The base class's method (or the class around it) leads the unrelated same-named one.
    assert got[0][0] == "pkg/base.py" and got[0][1] <= 2 <= got[0][2]


# ---- what `x` in `x.attr` is: types of variables ----------------------------------------------

def _methods(*names: str) -> str:
    return "".join(f"    def {n}(self):\n        \"\"\"{n} it.\"\"\"\n        return None\n\n"
                   for n in names)


# Classes longer than a short definition: shown as outlines, so their methods are snippets too.
SHOP = {
    "shop/__init__.py": "",
    "shop/models.py": "class Cart:\n" + _methods("add_item", "checkout", "remove_item", "total",
                                                  "empty") + (
        'def make_cart() -> "Cart":\n    return Cart()\n'),
    "shop/till.py": "class Register:\n" + _methods("checkout", "open_drawer", "count", "close",
                                                    "print_receipt"),
}
CHECKOUT = ("shop/models.py", 6)  # Cart.checkout
REGISTER_CHECKOUT = ("shop/till.py", 2)


@pytest.fixture
def shop(tmp_path: Path):
    root = tmp_path / "repo"
    for rel, text in SHOP.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    index.build()
    yield index
    index.close()


def _rank(got: list[tuple[str, int, int]], target: tuple[str, int]) -> int | None:
    """The rank of the snippet that is exactly the target definition."""
    return next((i for i, (path, lo, _) in enumerate(got) if (path, lo) == target), None)


def _spans(idx: Index, prefix: str) -> list[tuple[str, int, int]]:
    path = idx.root / "shop/user.py"
    path.write_text(prefix + "\n")
    ctx = CursorContext(prefix=prefix, suffix="\n", language="python", path=str(path),
                        repo_root=str(idx.root), line=prefix.count("\n"))
    return [(s.path, s.start_line, s.end_line)
            for s in idx.retrieve(ctx, budget_tokens=4000, max_snippets=10)]


IMPORTS = "from .models import Cart, make_cart\nfrom .till import Register\n\n\n"


@pytest.mark.parametrize(
    ("body", "target", "other"),
    [
        # Assigned from a constructor call.
        ("def run():\n    x = Cart()\n    x.checkout()\n    ", CHECKOUT, REGISTER_CHECKOUT),
        ("def run():\n    x = Register()\n    x.checkout()\n    ", REGISTER_CHECKOUT, CHECKOUT),
        # An annotated parameter, an annotated variable.
        ("def run(x: Cart):\n    x.checkout()\n    ", CHECKOUT, REGISTER_CHECKOUT),
        ("def run(x: 'Register'):\n    x.checkout()\n    ", REGISTER_CHECKOUT, CHECKOUT),
        ("def run():\n    x: Register = get()\n    x.checkout()\n    ", REGISTER_CHECKOUT,
         CHECKOUT),
        # An attribute set in the class, used in another method.
        ("class Shop:\n    def __init__(self):\n        self.x = Register()\n\n"
         "    def buy(self):\n        self.x.checkout()\n        ", REGISTER_CHECKOUT, CHECKOUT),
        # The return annotation of the called function.
        ("def run():\n    x = make_cart()\n    x.checkout()\n    ", CHECKOUT, REGISTER_CHECKOUT),
        # No annotation: the class that defines the members used on it (duck typing).
        ("def run(x):\n    x.add_item(1)\n    x.checkout()\n    ", CHECKOUT, REGISTER_CHECKOUT),
        ("def run(x):\n    x.open_drawer()\n    x.checkout()\n    ", REGISTER_CHECKOUT,
         CHECKOUT),
    ],
)
def test_the_variables_type_picks_the_member(shop: Index, body: str, target: tuple[str, int],
                                             other: tuple[str, int]) -> None:
    got = _spans(shop, IMPORTS + body)
    rank = _rank(got, target)
    assert rank is not None
    other_rank = _rank(got, other)
    assert other_rank is None or rank < other_rank


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("x.add_item(1)\nx.checkout()", {("Cart", "add_item"), ("Cart", "checkout")}),
        ("x.open_drawer()\nx.checkout()", {("Register", "open_drawer"),
                                           ("Register", "checkout")}),
        ("x.checkout()", set()),  # fits both classes: no type
        ("x.checkout()\nx.unknown()", set()),  # one member in common with each: a tie
    ],
)
def test_duck_typing_needs_two_members_and_one_best_class(
    shop: Index, body: str, expected: set[tuple[str, str]]
) -> None:
    uses = name_uses(body, "")
    got = shop.retriever._duck_typed(shop.store.reader(), uses, ())
    assert {(cls, name) for cls, attrs in got.values() for name in attrs} == expected
    assert set(got) <= {"x"}


# ---- noise: names no other code can refer to ---------------------------------------------------

@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("@pytest.fixture\ndef index(tmp_path):\n    return 1", True),
        ('@pytest.fixture(scope="module")\ndef cache(): ...', True),
        ("@fixture\nasync def client(): ...", True),
        ("@property\ndef index(self):\n    return self._index", False),
        ("def index():\n    '''Not @pytest.fixture, only its docstring.'''", False),
    ],
)
def test_pytest_fixture(summary: str, expected: bool) -> None:
    assert pytest_fixture(summary) is expected


@pytest.mark.parametrize(
    ("kind", "qualified", "path", "expected"),
    [
        ("function", "conditions_for.pilotfish", "bench.py", True),
        ("function", "pilotfish", "bench.py", False),  # top level
        ("method", "Runtime.index", "app.py", False),  # a method is named through its object
        ("function", "outer.inner", "lib.js", False),  # Python's scoping rule only
    ],
)
def test_nested_function(kind: str, qualified: str, path: str, expected: bool) -> None:
    assert nested_function(kind, qualified, path) is expected


NOISE = {
    "tools/bench.py": "def conditions():\n    def pilotfish(ctx):\n        return ctx\n\n"
                      "    return pilotfish\n",
    "tests/conftest.py": "import pytest\n\n\n@pytest.fixture\ndef index(tmp_path):\n"
                         "    return tmp_path\n",
    "app/runtime.py": "class Runtime:\n    def rebuild_index(self):\n        return 1\n",
}


def test_nested_functions_and_fixtures_are_not_retrieved_by_name(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for rel, text in NOISE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        idx.build()
        prefix = ("import pilotfish\n\n\ndef run(runtime):\n    pilotfish.start()\n"
                  "    runtime.index.rebuild_index()\n    ")
        path = root / "app/main.py"
        path.write_text(prefix + "\n")
        ctx = CursorContext(prefix=prefix, suffix="\n", language="python", path=str(path),
                            repo_root=str(root), line=prefix.count("\n"))
        symbols = [(s.path, s.start_line) for s in idx.retrieve(ctx, budget_tokens=4000)
                   if s.source == "symbol"]
        assert ("app/runtime.py", 2) in symbols  # what the line does use is found
        assert ("tools/bench.py", 2) not in symbols  # `import pilotfish` is not that local
        assert ("tests/conftest.py", 4) not in symbols  # nor `runtime.index` the fixture
        # Hover and search still know them (a fixture's parameter, a local's name).
        assert [s.path for s in idx.retriever.definitions("index")] == ["tests/conftest.py"]
        assert [s.path for s in idx.retriever.definitions("pilotfish")] == ["tools/bench.py"]
    finally:
        idx.close()


def test_a_module_under_the_root_package_is_found_by_its_whole_path(tmp_path: Path) -> None:
    # The repository is the package `mail` itself: `mail.message` is `message.py`, not
    # `mime/message.py` (once taken as ambiguous, so its classes looked external).
    root = tmp_path / "mail"
    for rel in ("__init__.py", "message.py", "mime/__init__.py", "mime/message.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("class Message:\n    pass\n")
    idx = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        idx.build()
        retriever = idx.retriever
        modules = retriever._module_map(idx.store.reader())
        found = {dotted: retriever._find_module(modules, 0, dotted, "user.py")
                 for dotted in ("mail.message", "mail.mime.message", "mail", "mail.mime")}
        assert {k: v[1] if v else None for k, v in found.items()} == {
            "mail.message": "message.py", "mail.mime.message": "mime/message.py",
            "mail": "__init__.py", "mail.mime": "mime/__init__.py"}
    finally:
        idx.close()


@pytest.mark.parametrize(
    ("body", "path", "shown", "hidden"),
    [
        # Typed by a constructor call: every public member, then those typed so far.
        ("def run():\n    x = Register()\n    y = x.", "shop/till.py",
         ["checkout", "open_drawer", "print_receipt"], []),
        ("def run():\n    x = Register()\n    y = x.op", "shop/till.py", ["open_drawer"],
         ["checkout", "print_receipt"]),
        # Typed by the members used on it elsewhere (duck typing).
        ("def run(x):\n    x.add_item(1)\n    x.total()\n    x.", "shop/models.py",
         ["checkout", "remove_item"], []),
    ],
)
def test_the_api_of_the_object_before_the_cursor_leads(
    shop: Index, body: str, path: str, shown: list[str], hidden: list[str]
) -> None:
    prefix = IMPORTS + body
    file = shop.root / "shop/user.py"
    file.write_text(prefix + "\n")
    ctx = CursorContext(prefix=prefix, suffix="\n", language="python", path=str(file),
                        repo_root=str(shop.root), line=prefix.count("\n"))
    first = shop.retrieve(ctx, budget_tokens=4000, max_snippets=10)[0]
    assert first.path == path and first.reason.startswith("members of")
    assert all(f"def {n}(" in first.text for n in shown)
    assert not any(f"def {n}(" in first.text for n in hidden)


def test_no_api_for_an_object_of_unknown_class(shop: Index) -> None:
    prefix = IMPORTS + "def run(x):\n    y = x."
    file = shop.root / "shop/user.py"
    file.write_text(prefix + "\n")
    ctx = CursorContext(prefix=prefix, suffix="\n", language="python", path=str(file),
                        repo_root=str(shop.root), line=prefix.count("\n"))
    snippets = shop.retrieve(ctx, budget_tokens=4000, max_snippets=10)
    assert not any(s.reason.startswith("members of") for s in snippets)


ERRORS = '''"""Errors."""

LIMIT = 10


class MessageError(Exception):
    """Base."""


class BoundaryError(MessageError):
    """Bad boundary."""


def raise_for(kind: str, detail: str = "") -> None:
    """Raise the error of a kind."""
    raise MessageError(kind + detail)


def _private():
    pass
'''


def _retrieve_in_parser(tmp_path: Path, files: dict[str, str], prefix: str) -> list[Snippet]:
    """Index ``files`` plus ``pkg/parser.py`` = ``prefix``; retrieve at the end of it."""
    root = tmp_path / "repo"
    for rel, text in {**files, "pkg/parser.py": prefix + "\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index = Index(root, tmp_path / "data", IndexConfig(embeddings=False, dependency_docs=False))
    try:
        index.build()
        ctx = CursorContext(prefix=prefix, suffix="\n", language="python",
                            path=str(root / "pkg" / "parser.py"), repo_root=str(root),
                            line=prefix.count("\n"))
        return index.retrieve(ctx, budget_tokens=4000, max_snippets=10)
    finally:
        index.close()


@pytest.mark.parametrize(
    ("typed", "outline"),
    [
        ("errors.", ["LIMIT = 10", "class MessageError(Exception): ...",
                     "class BoundaryError(MessageError): ...",
                     'def raise_for(kind: str, detail: str = "") -> None: ...']),
        ("errors.ra", None),  # one member left: its definition says more than an outline
    ],
)
def test_the_api_of_the_module_being_typed_leads(
    tmp_path: Path, typed: str, outline: list[str] | None
) -> None:
    prefix = ("from pkg import errors\n\n\ndef parse(text):\n    if not text:\n"
              "        raise errors.MessageError('empty')\n    raise " + typed)
    first = _retrieve_in_parser(tmp_path, {"pkg/errors.py": ERRORS}, prefix)[0]
    assert first.path == "pkg/errors.py"
    if outline is None:
        assert first.text.startswith("def raise_for(") and "members of" not in first.reason
    else:
        assert first.reason == "members of module `errors`, which the cursor is typing"
        assert first.text.split("\n") == outline  # public members only, in file order
        assert (first.start_line, first.end_line) == (3, 16)


def test_after_raise_the_files_exception_classes_lead(tmp_path: Path) -> None:
    files = {"pkg/errors.py": ERRORS + "\n\nclass Stale(MessageError):\n    pass\n",
             "pkg/other.py": "class UnusedError(Exception):\n    pass\n"}
    prefix = ("from pkg.errors import BoundaryError, Stale, raise_for\n\n\n"
              "def parse(text):\n    if not text:\n        raise BoundaryError('empty')\n"
              "    if text == 'old':\n        raise Stale()\n    raise ")
    snippets = _retrieve_in_parser(tmp_path, files, prefix)
    raised = [s for s in snippets if s.reason.endswith("raised or caught in this file")]
    # The file's exception classes (by name or by base), not the function it imports, nor an
    # exception it never names.
    assert {s.text.split("(")[0] for s in raised} == {"class BoundaryError", "class Stale"}
    assert snippets[0] in raised


def test_self_attribute_typed_far_above_the_cursor(shop: Index) -> None:
    """``self.till = till`` (``till: Register``) in ``__init__``, 500 lines above ``self.till.``:
    the class around the cursor is scanned whole when the near window does not say."""
    filler = "".join(f"    def step_{i}(self):\n        return {i}\n\n" for i in range(170))
    prefix = (IMPORTS + "class Shop:\n    def __init__(self, till: Register):\n"
              "        self.till = till\n\n" + filler
              + "    def close(self):\n        self.till.")
    assert prefix.count("\n") > 500
    file = shop.root / "shop/user.py"
    file.write_text(prefix + "\n")
    ctx = CursorContext(prefix=prefix, suffix="\n", language="python", path=str(file),
                        repo_root=str(shop.root), line=prefix.count("\n"))
    first = shop.retrieve(ctx, budget_tokens=4000, max_snippets=10)[0]
    assert first.path == "shop/till.py" and first.reason.startswith("members of `Register`")


def _after_self(tmp_path: Path, mixin: str, method: str) -> list[Snippet]:
    """What follows `self.` in a method of `Parser(FlowControl)`, FlowControl in another
    module (``mixin`` is its body)."""
    prefix = ("from .mixins import FlowControl\n\n\n"
              "class Parser(FlowControl):\n" + method + "        self.")
    return _retrieve_in_parser(tmp_path, {"pkg/mixins.py": "class FlowControl:\n" + mixin},
                               prefix)


def test_after_self_the_bases_in_other_files_follow_the_class(tmp_path: Path) -> None:
    """`self.` in a subclass: what it inherits from another module leads (its own members are
    in the file already)."""
    snippets = _after_self(
        tmp_path,
        "    def pause_writing(self):\n        self.paused = True\n\n"
        "    def resume_writing(self):\n        self.paused = False\n",
        "    def write(self, data):\n        self.buffer = data\n\n    def flush(self):\n")
    outlines = [s for s in snippets if s.reason.startswith("members of")]
    assert [s.path for s in outlines] == ["pkg/mixins.py"], outlines
    assert snippets[0] == outlines[0]
    assert "def resume_writing(self): ..." in outlines[0].text
    assert "base class of `Parser`" in outlines[0].reason


def test_after_self_a_bases_protected_helpers_are_shown(tmp_path: Path) -> None:
    first = _after_self(
        tmp_path,
        "    def _maybe_pause(self):\n        self.paused = True\n\n"
        "    def __repr__(self):\n        return 'flow'\n",
        "    def write(self, data):\n")[0]
    assert first.path == "pkg/mixins.py" and "def _maybe_pause(self)" in first.text
    assert "__repr__" not in first.text
