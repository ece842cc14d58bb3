"""Order-book state from BookDelta records and the features computed from it.

The book keeps each side as a dict ``price -> qty`` plus a sorted price list (bisect keeps it sorted;
insert and delete are C memmoves, cheap next to Python-level work for books of a few thousand levels).
A delta with ``snapshot=true`` replaces the book: the feed sends one as the first delta after every
(re)sync. Update ids make ordering explicit:

* ``last_update_id <= book.last_update_id`` -> :class:`OutOfOrder` (a duplicate or an old update);
* ``first_update_id > book.last_update_id + 1`` -> :class:`Gap` (the book is wrong until the next snapshot);
* otherwise -> :class:`Applied`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

DEPTH_BAND_BPS = 10.0


@dataclass(frozen=True)
class Applied:
    """The delta changed the book."""


@dataclass(frozen=True)
class OutOfOrder:
    """The delta is older than the book; it was not applied."""

    reason: str


@dataclass(frozen=True)
class Gap:
    """Update ids are missing between the book and the delta; the book needs a snapshot."""

    reason: str


@dataclass(frozen=True)
class NotSynced:
    """A delta arrived while the book waits for a snapshot; it was ignored."""


ApplyResult = Applied | OutOfOrder | Gap | NotSynced


@dataclass(frozen=True)
class TopOfBook:
    """Best levels as floats for the models."""

    bid: float
    bid_qty: float
    ask: float
    ask_qty: float


@dataclass(frozen=True)
class BookFeatureValues:
    """The numeric part of a BookFeatures record."""

    mid: float
    spread: float
    spread_bps: float
    microprice: float
    imbalance_1: float
    imbalance_5: float
    imbalance_10: float
    depth_bid_10bps: float
    depth_ask_10bps: float
    top: TopOfBook

    def as_record_fields(self) -> dict[str, float]:
        """Return the fields as named in BookFeatures.avsc."""
        return {
            "mid": self.mid, "spread": self.spread, "spread_bps": self.spread_bps,
            "microprice": self.microprice, "imbalance_1": self.imbalance_1,
            "imbalance_5": self.imbalance_5, "imbalance_10": self.imbalance_10,
            "depth_bid_10bps": self.depth_bid_10bps, "depth_ask_10bps": self.depth_ask_10bps,
        }


@dataclass
class BookSide:
    """One side of the book, prices ascending.

    Three aligned lists beside the exact ``qty`` dict: the sorted ``prices``, their quantities as
    floats (so depth sums over thousands of levels are one C-level ``sum`` of a slice) and the
    ``(price, qty)`` strings as received (so saving the state needs no Decimal formatting).
    """

    qty: dict[Decimal, Decimal] = field(default_factory=dict)
    prices: list[Decimal] = field(default_factory=list)
    fqty: list[float] = field(default_factory=list)
    text: list[tuple[str, str]] = field(default_factory=list)

    def set(self, price: Decimal, qty: Decimal, price_text: str, qty_text: str) -> None:
        """Set a level; quantity zero removes it."""
        i = bisect_left(self.prices, price)
        present = i < len(self.prices) and self.prices[i] == price
        if qty == 0:
            if present:
                del self.qty[price], self.prices[i], self.fqty[i], self.text[i]
            return
        self.qty[price] = qty
        if present:
            self.fqty[i] = float(qty)
            self.text[i] = (price_text, qty_text)
        else:
            self.prices.insert(i, price)
            self.fqty.insert(i, float(qty))
            self.text.insert(i, (price_text, qty_text))

    def drop(self, start: int, stop: int) -> None:
        """Drop the levels at positions ``[start, stop)`` of the ascending price list."""
        for price in self.prices[start:stop]:
            del self.qty[price]
        del self.prices[start:stop], self.fqty[start:stop], self.text[start:stop]

    def clear(self) -> None:
        """Drop every level."""
        self.qty.clear()
        self.prices.clear()
        self.fqty.clear()
        self.text.clear()


@dataclass
class OrderBook:
    """The book of one instrument, rebuilt from snapshot + deltas."""

    bids: BookSide = field(default_factory=BookSide)
    asks: BookSide = field(default_factory=BookSide)
    last_update_id: int = -1
    synced: bool = False

    def apply(self, delta: dict[str, Any], max_levels: int = 0) -> ApplyResult:
        """Apply one BookDelta record; then keep at most ``max_levels`` levels a side (0: all), the best ones.

        A venue's snapshot holds a bounded depth (Binance: 5,000 levels), so levels further out are
        unknown anyway; without the cap, levels diffs once mentioned far from the touch would pile
        up for as long as the worker runs, in memory and in every state write.
        """
        first, last = delta["first_update_id"], delta["last_update_id"]
        if delta["snapshot"]:
            self.bids.clear()
            self.asks.clear()
        elif not self.synced:
            return NotSynced()
        elif last <= self.last_update_id:
            return OutOfOrder(f"update ids {first}..{last} not after book update id {self.last_update_id}")
        elif first > self.last_update_id + 1:
            self.synced = False
            return Gap(f"update ids {self.last_update_id + 1}..{first - 1} missing")
        for side, levels in ((self.bids, delta["bids"]), (self.asks, delta["asks"])):
            for level in levels:
                side.set(Decimal(level["price"]), Decimal(level["qty"]), level["price"], level["qty"])
        if max_levels:
            self.bids.drop(0, max(len(self.bids.prices) - max_levels, 0))  # lowest bids first
            self.asks.drop(max_levels, len(self.asks.prices))  # highest asks last
        self.last_update_id = last
        self.synced = True
        return Applied()

    def features(self, depth_band_bps: float = DEPTH_BAND_BPS) -> BookFeatureValues | None:
        """Return the features of the current book, or None when a side is empty or the book is crossed."""
        bid_prices, ask_prices = self.bids.prices, self.asks.prices
        if not bid_prices or not ask_prices or bid_prices[-1] >= ask_prices[0]:
            return None
        bq, aq = self.bids.fqty, self.asks.fqty
        bid, ask = float(bid_prices[-1]), float(ask_prices[0])
        mid = (bid + ask) / 2.0
        band = mid * depth_band_bps / 1e4
        lo = bisect_left(bid_prices, Decimal(repr(mid - band)))
        hi = bisect_right(ask_prices, Decimal(repr(mid + band)))
        return _values(bid, ask, bq[-1:-11:-1], aq[:10], sum(bq[lo:]), sum(aq[:hi]))

    def features_with_top(
        self, bid: Decimal, bid_qty: Decimal, ask: Decimal, ask_qty: Decimal, depth_band_bps: float = DEPTH_BAND_BPS
    ) -> BookFeatureValues | None:
        """Return the features of this book with a newer best bid and offer laid over it (None if crossed or empty).

        A BBO newer than the book says where the best levels are now: levels better than the new
        best are gone and the best levels hold the BBO's quantities; deeper levels are taken as the
        book last had them. Equal to :meth:`features` of the book with those levels applied, without
        changing the book (the next depth update brings the true levels).
        """
        if bid >= ask or bid_qty <= 0 or ask_qty <= 0:
            return None
        bid_prices, ask_prices = self.bids.prices, self.asks.prices
        bq, aq = self.bids.fqty, self.asks.fqty
        below = bisect_left(bid_prices, bid)  # bids under the new best bid: [0, below)
        above = bisect_right(ask_prices, ask)  # asks over the new best ask: [above, n)
        fbid, fask, fbid_qty, fask_qty = float(bid), float(ask), float(bid_qty), float(ask_qty)
        mid = (fbid + fask) / 2.0
        band = mid * depth_band_bps / 1e4
        band_lo, band_hi = Decimal(repr(mid - band)), Decimal(repr(mid + band))
        lo = bisect_left(bid_prices, band_lo)
        hi = bisect_right(ask_prices, band_hi)
        top_bids = [fbid_qty, *bq[max(below - 9, 0):below][::-1]]
        top_asks = [fask_qty, *aq[above:above + 9]]
        depth_bid = sum(bq[lo:below]) + fbid_qty if bid >= band_lo else sum(bq[lo:below])
        depth_ask = sum([fask_qty, *aq[above:hi]]) if ask <= band_hi else sum(aq[above:hi])
        return _values(fbid, fask, top_bids, top_asks, depth_bid, depth_ask)

    def to_state(self) -> dict[str, Any]:
        """Return a JSON-able form for the changelog (the venue's decimal strings)."""
        return {
            "bids": self.bids.text,
            "asks": self.asks.text,
            "last_update_id": self.last_update_id,
            "synced": self.synced,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OrderBook:
        """Rebuild a book saved by :meth:`to_state`."""
        book = cls(last_update_id=state["last_update_id"], synced=state["synced"])
        for side, levels in ((book.bids, state["bids"]), (book.asks, state["asks"])):
            side.text = [(p, q) for p, q in levels]
            side.prices = [Decimal(p) for p, _ in levels]
            side.qty = {price: Decimal(q) for price, (_, q) in zip(side.prices, levels, strict=True)}
            side.fqty = [float(side.qty[price]) for price in side.prices]
        return book


def _values(
    bid: float, ask: float, top_bids: list[float], top_asks: list[float], depth_bid: float, depth_ask: float
) -> BookFeatureValues:
    # top_bids / top_asks: the quantities of the best 10 levels, best first
    bid_qty, ask_qty = top_bids[0], top_asks[0]
    mid = (bid + ask) / 2.0
    spread = ask - bid
    return BookFeatureValues(
        mid=mid,
        spread=spread,
        spread_bps=spread / mid * 1e4,
        microprice=(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty),
        imbalance_1=imbalance(top_bids[:1], top_asks[:1]),
        imbalance_5=imbalance(top_bids[:5], top_asks[:5]),
        imbalance_10=imbalance(top_bids, top_asks),
        depth_bid_10bps=depth_bid,
        depth_ask_10bps=depth_ask,
        top=TopOfBook(bid, bid_qty, ask, ask_qty),
    )


def imbalance(bid_qtys: list[float], ask_qtys: list[float]) -> float:
    """Return (bid - ask) / (bid + ask) of the summed quantities; 0 for an empty book."""
    b, a = sum(bid_qtys), sum(ask_qtys)
    return (b - a) / (b + a) if b + a > 0 else 0.0
