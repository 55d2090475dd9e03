"""Reports over the inventory."""

from inventory import Item


def most_expensive(items: list[Item]) -> Item:
    """The item with the highest price."""
    return max(items, key=lambda item: item.price)
