"""The price levels of one instrument: the one order book the feed, the streams and the executor keep.

Keys are exact :class:`~decimal.Decimal` prices (``"0.0100"`` and ``"0.01"`` are one level) and each
level keeps the ``(price, qty)`` strings the venue sent, so nothing passes through binary floats on
the way out. Each user reads the representation it needs:

* venue strings: :meth:`OrderBook.top`, :meth:`OrderBook.best_bid`, :meth:`OrderBook.best_ask` (the
  feed's published snapshots and BBO checks, the streams' saved state);
* floats: :attr:`BookSide.prices` with :attr:`BookSide.floats`, kept only when the book is made with
  ``float_view=True`` (the streams' features sum depth over slices of it);
* Decimals: :meth:`OrderBook.decimal_top` (the executor's visible depth).

Sorted key lists give the best levels and top-N in O(N); inserts cost a bisect plus a memmove, cheap
for venue-sized books. Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from decimal import Decimal

Level = tuple[Decimal, Decimal]
"""One price level as exact decimals: ``(price, qty)``."""


class BookSide:
    """One side's levels, prices ascending (the best bid is the last one, the best ask the first).

    ``Decimal(price)`` is most of the cost of an update (a depth update touches 50-100 levels, most of
    them already in the book), so the text the venue used for a level maps straight to its key; a text
    not seen yet (a new level, or another spelling of a known price) takes ``Decimal``. Read the
    attributes, never change them: :class:`OrderBook` keeps them aligned.
    """

    __slots__ = ("_key_of_text", "floats", "levels", "prices")

    def __init__(self, float_view: bool = False) -> None:
        self.prices: list[Decimal] = []
        """The level keys, ascending."""
        self.levels: dict[Decimal, tuple[str, str]] = {}
        """Each key's ``(price, qty)`` as the venue last sent them."""
        self.floats: list[float] | None = [] if float_view else None
        """The quantities as floats, aligned with :attr:`prices`; None unless the book keeps the float view."""
        self._key_of_text: dict[str, Decimal] = {}  # exactly the price texts held in ``levels``

    def apply(self, updates: Iterable[Sequence[str]]) -> None:
        """Set absolute quantities ``[(price, qty), ...]``; a zero quantity (``"0"``, ``"0.000"``) removes a level.

        Quantities are plain decimal strings (digits and one point, as the feed's parser admits them),
        so zero is told from the text without parsing it.
        """
        prices, levels, key_of_text, floats = self.prices, self.levels, self._key_of_text, self.floats
        for price, qty in updates:
            key = key_of_text.get(price)
            if not qty.strip("0."):
                if key is None:
                    key = Decimal(price)
                old = levels.pop(key, None)  # removing an unknown level is normal (snapshots are depth-limited)
                if old is not None:
                    i = bisect_left(prices, key)
                    del prices[i]
                    if floats is not None:
                        del floats[i]
                    del key_of_text[old[0]]
                continue
            if key is None:
                key = Decimal(price)
                old = levels.get(key)
                if old is None:  # a new level
                    if floats is None:
                        insort(prices, key)
                    else:
                        i = bisect_left(prices, key)
                        prices.insert(i, key)
                        floats.insert(i, float(qty))
                    key_of_text[price] = key
                    levels[key] = (price, qty)
                    continue
                del key_of_text[old[0]]  # the same price spelled differently: keep the new text
                key_of_text[price] = key
            levels[key] = (price, qty)
            if floats is not None:
                floats[bisect_left(prices, key)] = float(qty)

    def drop(self, start: int, stop: int) -> None:
        """Remove the levels at positions ``[start, stop)`` of :attr:`prices`."""
        levels, key_of_text = self.levels, self._key_of_text
        for key in self.prices[start:stop]:
            del key_of_text[levels.pop(key)[0]]
        del self.prices[start:stop]
        if self.floats is not None:
            del self.floats[start:stop]

    def clear(self) -> None:
        """Remove every level."""
        self.prices.clear()
        self.levels.clear()
        self._key_of_text.clear()
        if self.floats is not None:
            self.floats.clear()


class OrderBook:
    """Bids and asks of one instrument plus the venue update id they reflect."""

    __slots__ = ("asks", "bids", "last_update_id")

    def __init__(self, float_view: bool = False) -> None:
        self.bids = BookSide(float_view)
        self.asks = BookSide(float_view)
        self.last_update_id = -1

    def reset(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]], last_update_id: int) -> None:
        """Replace the whole book (a snapshot)."""
        self.bids.clear()
        self.asks.clear()
        self.apply(bids, asks, last_update_id)

    def apply(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]], last_update_id: int) -> None:
        """Apply absolute level quantities (``"0"`` removes a level)."""
        self.bids.apply(bids)
        self.asks.apply(asks)
        self.last_update_id = last_update_id

    def keep_best(self, levels: int) -> None:
        """Keep at most the best ``levels`` levels a side."""
        self.bids.drop(0, max(len(self.bids.prices) - levels, 0))  # lowest bids first
        self.asks.drop(levels, len(self.asks.prices))  # highest asks last

    def best_bid(self) -> tuple[str, str] | None:
        """Return the highest bid ``(price, qty)``."""
        prices = self.bids.prices
        return self.bids.levels[prices[-1]] if prices else None

    def best_ask(self) -> tuple[str, str] | None:
        """Return the lowest ask ``(price, qty)``."""
        prices = self.asks.prices
        return self.asks.levels[prices[0]] if prices else None

    def is_crossed(self) -> bool:
        """Return True when the best bid is at or above the best ask (a corrupt book)."""
        bids, asks = self.bids.prices, self.asks.prices
        return bool(bids) and bool(asks) and bids[-1] >= asks[0]

    def depth(self) -> tuple[int, int]:
        """Return the number of bid and ask levels."""
        return len(self.bids.prices), len(self.asks.prices)

    def top(self, depth: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
        """Return ``(bids best first, asks best first)`` as ``[[price, qty], ...]``, at most ``depth`` each."""
        bid_keys, ask_keys = self.bids.prices, self.asks.prices
        n_b = len(bid_keys) if depth is None else min(depth, len(bid_keys))
        n_a = len(ask_keys) if depth is None else min(depth, len(ask_keys))
        bl, al = self.bids.levels, self.asks.levels
        bids = [list(bl[k]) for k in reversed(bid_keys[len(bid_keys) - n_b:])]
        asks = [list(al[k]) for k in ask_keys[:n_a]]
        return bids, asks

    def decimal_top(
        self, depth: int, bid_at_most: Decimal | None = None, ask_at_least: Decimal | None = None
    ) -> tuple[list[Level], list[Level]]:
        """Return ``(bids best first, asks best first)`` as Decimal levels, at most ``depth`` each.

        ``bid_at_most`` / ``ask_at_least`` leave out the levels better than a newer best bid / ask.
        """
        bid_keys, ask_keys = self.bids.prices, self.asks.prices
        stop = len(bid_keys) if bid_at_most is None else bisect_right(bid_keys, bid_at_most)
        start = 0 if ask_at_least is None else bisect_left(ask_keys, ask_at_least)
        bl, al = self.bids.levels, self.asks.levels
        bids = [(k, Decimal(bl[k][1])) for k in reversed(bid_keys[max(stop - depth, 0):stop])]
        asks = [(k, Decimal(al[k][1])) for k in ask_keys[start:start + depth]]
        return bids, asks
