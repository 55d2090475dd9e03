"""Types of Python variables from the code around the cursor (``x`` in ``x.attr``)."""

from __future__ import annotations

import pytest
from pilotfish.code_index.pytypes import (
    TypeHint,
    annotation_class,
    return_annotation,
    typed_member_uses,
)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("Repo", "Repo"),
        ('"Repo"', "Repo"),
        ('Optional["Repo"]', "Repo"),
        ("Union[Repo, None]", "Repo"),
        ("Repo | None", "Repo"),
        ("git.repo.Repo", "Repo"),
        ("_UnixSelectorEventLoop", "_UnixSelectorEventLoop"),
        ("type[Repo]", "Repo"),
        # Nothing the index could resolve to one class:
        ("List[Repo]", None),
        ("Union[Repo, Commit]", None),
        ("str", None),
        ("", None),
    ],
)
def test_annotation_class(annotation: str, expected: str | None) -> None:
    assert annotation_class(annotation) == expected


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        ("def make() -> Cart:", "Cart"),
        ('def make(self, a: int = 1) -> "Cart":', "Cart"),
        ("async def fetch(url) -> Optional[Page]:", "Page"),
        ("def make(a: Cart):", None),
        ("def make() -> list[Cart]:", None),
    ],
)
def test_return_annotation(signature: str, expected: str | None) -> None:
    assert return_annotation(signature) == expected


def _uses(source: str) -> set[tuple[TypeHint, str]]:
    lines = source.split("\n")
    return set(typed_member_uses(lines, lines, [1.0] * len(lines)))


CART = TypeHint("class", "Cart")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # A variable assigned from a call: the callee (class or function) is the index's to
        # resolve; `await` and module-qualified callees too.
        ("def f():\n    cart = Cart()\n    cart.checkout()",
         {(TypeHint("call", "Cart"), "checkout")}),
        ("async def f():\n    page = await shop.fetch(url)\n    page.title",
         {(TypeHint("call", "shop.fetch"), "title")}),
        ("def f():\n    with open_cart(1) as cart:\n        cart.total()",
         {(TypeHint("call", "open_cart"), "total")}),
        # Annotations: parameters (also on several lines), variables.
        ("def f(cart: Cart):\n    cart.checkout()", {(CART, "checkout")}),
        ('def f(\n    self,\n    cart: "Cart" = None,\n) -> None:\n    cart.checkout()',
         {(CART, "checkout")}),
        ("def f():\n    cart: Optional[Cart] = None\n    cart.checkout()", {(CART, "checkout")}),
        ("def f():\n    cart: Cart = get()\n    cart.checkout()", {(CART, "checkout")}),
        # Attributes of the class: set from a call, from an annotated parameter, in the body.
        ("class Shop:\n    def __init__(self):\n        self.cart = Cart()\n"
         "    def buy(self):\n        self.cart.checkout()",
         {(TypeHint("call", "Cart"), "checkout")}),
        ("class Shop:\n    def __init__(self, cart: Cart):\n        self.cart = cart\n"
         "    def buy(self):\n        self.cart.checkout()", {(CART, "checkout")}),
        ("class Shop:\n    cart: Cart\n\n    def buy(self):\n        self.cart.checkout()",
         {(CART, "checkout")}),
        # Module-level names are seen from functions.
        ("cart = Cart()\n\ndef f():\n    cart.checkout()",
         {(TypeHint("call", "Cart"), "checkout")}),
    ],
)
def test_typed_member_uses(source: str, expected: set[tuple[TypeHint, str]]) -> None:
    assert _uses(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        # A parameter's type does not leak into another function.
        "def f(cart: Cart):\n    pass\n\ndef g(cart):\n    cart.checkout()",
        # Two types in one function: which one is meant is unknown.
        "def f():\n    x = Cart()\n    x = Shop()\n    x.checkout()",
        # An attribute of another class.
        "class A:\n    def __init__(self):\n        self.cart = Cart()\n"
        "class B:\n    def buy(self):\n        self.cart.checkout()",
        # Not an assignment from a call, not a class annotation.
        "def f(n: int):\n    total = n + 1\n    total.real\n    n.bit_length()",
    ],
)
def test_untyped_uses_are_left_out(source: str) -> None:
    assert _uses(source) == set()


def test_weights_follow_the_lines() -> None:
    lines = ["def f(cart: Cart):", "    cart.checkout()", "    cart.checkout()"]
    uses = typed_member_uses(lines, lines, [1.0, 0.5, 0.25])
    assert uses == {(CART, "checkout"): 0.75}
