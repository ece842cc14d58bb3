"""Book features (floats for the models) from the shared order book's float view.

The book is :class:`orderbook.SequencedBook` kept with ``float_view=True`` (see :func:`new_book`):
each side's ascending Decimal ``prices`` and aligned float quantities make a depth band one bisect
and one C-level ``sum`` of a slice, whatever the book's size.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from decimal import Decimal

from orderbook import OrderBook, SequencedBook

DEPTH_BAND_BPS = 10.0


def new_book() -> SequencedBook:
    """Return an empty book that keeps the float view the features read."""
    return SequencedBook(float_view=True)


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


def book_features(book: OrderBook, depth_band_bps: float = DEPTH_BAND_BPS) -> BookFeatureValues | None:
    """Return the features of a book with the float view, or None when a side is empty or the book is crossed."""
    bid_prices, ask_prices = book.bids.prices, book.asks.prices
    if not bid_prices or not ask_prices or bid_prices[-1] >= ask_prices[0]:
        return None
    bq, aq = book.bids.floats, book.asks.floats
    bid, ask = float(bid_prices[-1]), float(ask_prices[0])
    mid = (bid + ask) / 2.0
    band = mid * depth_band_bps / 1e4
    lo = bisect_left(bid_prices, Decimal(repr(mid - band)))
    hi = bisect_right(ask_prices, Decimal(repr(mid + band)))
    return _values(bid, ask, bq[-1:-11:-1], aq[:10], sum(bq[lo:]), sum(aq[:hi]))


def features_with_top(
    book: OrderBook, bid: Decimal, bid_qty: Decimal, ask: Decimal, ask_qty: Decimal, depth_band_bps: float = DEPTH_BAND_BPS
) -> BookFeatureValues | None:
    """Return the features of a book (float view) with a newer best bid and offer laid over it (None if crossed or empty).

    A BBO newer than the book says where the best levels are now: levels better than the new
    best are gone and the best levels hold the BBO's quantities; deeper levels are taken as the
    book last had them. Equal to :func:`book_features` of the book with those levels applied, without
    changing the book (the next depth update brings the true levels).
    """
    if bid >= ask or bid_qty <= 0 or ask_qty <= 0:
        return None
    bid_prices, ask_prices = book.bids.prices, book.asks.prices
    bq, aq = book.bids.floats, book.asks.floats
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
