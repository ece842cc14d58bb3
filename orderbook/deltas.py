"""The book the streams and the executor rebuild from BookDelta records (``md.book``)."""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from orderbook.book import OrderBook
from orderbook.sequence import Applied, Decision, Gap, decide

_PRICE_QTY = itemgetter("price", "qty")


class SequencedBook(OrderBook):
    """An :class:`OrderBook` that takes BookDelta records only as :func:`~orderbook.sequence.decide` admits them."""

    __slots__ = ("refuse_older_snapshots", "synced")

    def __init__(self, float_view: bool = False, refuse_older_snapshots: bool = False) -> None:
        super().__init__(float_view)
        self.synced = False
        self.refuse_older_snapshots = refuse_older_snapshots

    def apply_record(self, record: Mapping[str, Any], max_levels: int = 0) -> Decision:
        """Apply one BookDelta record; then keep at most ``max_levels`` levels a side (0: all), the best ones.

        A venue's snapshot holds a bounded depth (Binance: 5,000 levels), so levels further out are
        unknown anyway; without the cap, levels diffs once mentioned far from the touch would pile
        up for as long as a worker runs, in memory and in every state write.
        """
        last, snapshot = record["last_update_id"], record["snapshot"]
        decision = decide(
            self.last_update_id, self.synced, record["first_update_id"], last, snapshot, self.refuse_older_snapshots
        )
        if type(decision) is not Applied:
            if type(decision) is Gap:
                self.synced = False
            return decision
        bids, asks = map(_PRICE_QTY, record["bids"]), map(_PRICE_QTY, record["asks"])
        if snapshot:
            self.reset(bids, asks, last)
        else:
            self.apply(bids, asks, last)
        if max_levels:
            self.keep_best(max_levels)
        self.synced = True
        return decision

    def to_state(self) -> dict[str, Any]:
        """Return a JSON-able form (the venue's strings, prices ascending), the streams' changelog format."""
        bids, asks = self.bids, self.asks
        return {
            "bids": list(map(bids.levels.__getitem__, bids.prices)),
            "asks": list(map(asks.levels.__getitem__, asks.prices)),
            "last_update_id": self.last_update_id,
            "synced": self.synced,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], float_view: bool = False) -> SequencedBook:
        """Rebuild a book saved by :meth:`to_state` (the streams' book before the shared one saved the same form)."""
        book = cls(float_view)
        book.reset(state["bids"], state["asks"], state["last_update_id"])
        book.synced = state["synced"]
        return book
