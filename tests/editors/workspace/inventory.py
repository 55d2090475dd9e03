"""A tiny inventory: items with prices and quantities."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """One line of stock."""

    name: str
    price: float
    quantity: int

    def value(self) -> float:
        """Price times quantity."""
        return self.price * self.quantity


def load_items(rows: list[dict[str, str]]) -> list[Item]:
    """Build items from CSV rows with name, price and quantity columns."""
    return [Item(r["name"], float(r["price"]), int(r["quantity"])) for r in rows]


def cheapest(items: list[Item]) -> Item:
    """The item with the lowest price."""
    return min(items, key=lambda item: item.price)
