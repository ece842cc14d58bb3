"""The one order book of tickpipe: price levels (:mod:`orderbook.book`), the update-id rule of
BookDelta records (:mod:`orderbook.sequence`) and the book kept under it (:mod:`orderbook.deltas`).

Pure code below the services: the feed (``producers``), the streams and the executor all import it,
none of them imports another for it.
"""

from orderbook.book import BookSide, Level, OrderBook
from orderbook.deltas import SequencedBook
from orderbook.sequence import Applied, Decision, Gap, NotSynced, OutOfOrder, decide

__all__ = [
    "Applied", "BookSide", "Decision", "Gap", "Level", "NotSynced", "OrderBook", "OutOfOrder", "SequencedBook",
    "decide",
]
