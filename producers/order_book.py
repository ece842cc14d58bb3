"""A pure price-level order book keyed by exact decimals.

Keys are :class:`decimal.Decimal` (so ``"0.0100"`` and ``"0.01"`` are one level) and the venue's
strings are kept for output, so nothing passes through binary floats. Sorted key lists give the
best levels and top-N in O(N); inserts cost a bisect plus a memmove, cheap for venue-sized books.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import Decimal

from producers.venue import Levels


class _Side:
    """One side: Decimal-keyed levels, their sorted keys, and the key of each price text in the book.

    ``Decimal(price)`` is most of the cost of an update (a depth update touches 50-100 levels, most
    of them already in the book), so the text the venue used for a level maps straight to its key;
    a text not seen yet (a new level, or another spelling of a known price) takes ``Decimal``.
    """

    __slots__ = ("keys", "levels", "text_keys")

    def __init__(self) -> None:
        self.keys: list[Decimal] = []
        self.levels: dict[Decimal, tuple[str, str]] = {}
        self.text_keys: dict[str, Decimal] = {}  # exactly the price texts held in ``levels``

    def apply(self, updates: Levels) -> None:
        levels, keys, text_keys = self.levels, self.keys, self.text_keys
        for price, qty in updates:
            key = text_keys.get(price)
            if not qty.strip("0."):  # valid decimal strings only (the parser checked): "0", "0.000" -> zero
                if key is None:
                    key = Decimal(price)
                # removing an unknown level is normal (the venue's snapshot is depth-limited)
                old = levels.pop(key, None)
                if old is not None:
                    del keys[bisect_left(keys, key)]
                    del text_keys[old[0]]
            else:
                if key is None:
                    key = Decimal(price)
                    old = levels.get(key)
                    if old is None:
                        insort(keys, key)
                    else:
                        del text_keys[old[0]]  # the same price spelled differently: keep the new text
                    text_keys[price] = key
                levels[key] = (price, qty)


class OrderBook:
    """Bids and asks of one instrument plus the venue update id they reflect."""

    __slots__ = ("_asks", "_bids", "last_update_id")

    def __init__(self) -> None:
        self._bids = _Side()
        self._asks = _Side()
        self.last_update_id = -1

    def reset(self, bids: Levels, asks: Levels, last_update_id: int) -> None:
        """Replace the whole book (a snapshot)."""
        self._bids = _Side()
        self._asks = _Side()
        self._bids.apply(bids)
        self._asks.apply(asks)
        self.last_update_id = last_update_id

    def apply(self, bids: Levels, asks: Levels, last_update_id: int) -> None:
        """Apply absolute level quantities (``"0"`` removes a level)."""
        self._bids.apply(bids)
        self._asks.apply(asks)
        self.last_update_id = last_update_id

    def best_bid(self) -> tuple[str, str] | None:
        """Return the highest bid ``(price, qty)``."""
        keys = self._bids.keys
        return self._bids.levels[keys[-1]] if keys else None

    def best_ask(self) -> tuple[str, str] | None:
        """Return the lowest ask ``(price, qty)``."""
        keys = self._asks.keys
        return self._asks.levels[keys[0]] if keys else None

    def is_crossed(self) -> bool:
        """Return True when the best bid is at or above the best ask (a corrupt book)."""
        bids, asks = self._bids.keys, self._asks.keys
        return bool(bids) and bool(asks) and bids[-1] >= asks[0]

    def top(self, depth: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
        """Return ``(bids best first, asks best first)`` as ``[[price, qty], ...]``, at most ``depth`` each."""
        bid_keys, ask_keys = self._bids.keys, self._asks.keys
        n_b = len(bid_keys) if depth is None else min(depth, len(bid_keys))
        n_a = len(ask_keys) if depth is None else min(depth, len(ask_keys))
        bl, al = self._bids.levels, self._asks.levels
        bids = [list(bl[k]) for k in reversed(bid_keys[len(bid_keys) - n_b:])]
        asks = [list(al[k]) for k in ask_keys[:n_a]]
        return bids, asks

    def depth(self) -> tuple[int, int]:
        """Return the number of bid and ask levels."""
        return len(self._bids.keys), len(self._asks.keys)
