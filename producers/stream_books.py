"""Books a venue sends on the websocket (Kraken, Coinbase): one per connection, one of them published.

Such a venue numbers nothing across connections (Kraken: a CRC32 checksum per message; Coinbase: a
sequence number per connection), so copies of the same update on two connections cannot be
matched by id. Each connection therefore keeps its own book from its own snapshot, checked by the
venue's rule after every message; one intact book, the *leader*, is published. When the leader's
book breaks (checksum mismatch, sequence gap, disconnect) another intact connection's book takes
over and is published whole as a snapshot: the published book is never behind a lost window.

Published records still chain by update id (consumers apply the same rule to every venue): the
feed numbers them itself, ``last_update_id`` = receive time in microseconds (strictly increasing,
also across restarts) and ``first_update_id`` = the previous one + 1. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orderbook import OrderBook
from producers.venue import BookMessage, Levels


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish ``bids``/``asks`` as a BookDelta with update ids ``first..last`` (a whole book if ``snapshot``)."""

    snapshot: bool
    first: int
    last: int
    bids: Levels
    asks: Levels
    connection_id: str


@dataclass(frozen=True, slots=True)
class Broken:
    """The connection's book failed the venue's check and was dropped; ``took_over`` is the new leader's
    snapshot to publish (None: no intact book left, the instrument is stale until a snapshot arrives)."""

    connection_id: str
    was_leader: bool
    took_over: Publish | None


StreamResult = Publish | Broken | None


class StreamBooks:
    """One instrument's per-connection books and the choice of the published one."""

    def __init__(self, depth: int | None, intact: Callable[[OrderBook, BookMessage], bool]) -> None:
        self._depth = depth
        self._intact = intact
        self.books: dict[str, OrderBook] = {}
        """Intact books by connection id, oldest first."""
        self.leader: str | None = None
        self.last_id = 0

    def apply(self, connection_id: str, message: BookMessage) -> StreamResult:
        """Apply one book message of ``connection_id``; return what to publish, or that the book broke."""
        book = self.books.get(connection_id)
        if message.snapshot:
            if book is None:
                book = self.books[connection_id] = OrderBook()
            book.reset(message.bids, message.asks, 0)
            removed = self._truncate(book)
        elif book is None:
            return None  # an update before this connection's snapshot (or after its book broke): not ours
        else:
            book.apply(message.bids, message.asks, 0)
            removed = self._truncate(book)
        if not self._intact(book, message) or book.is_crossed():
            return self.drop(connection_id, message.ts_recv)
        if self.leader is None:
            self.leader = connection_id
            return self._whole(book, connection_id, message.ts_recv)
        if self.leader != connection_id:
            return None
        if message.snapshot:
            # the leader resubscribed: its new snapshot replaces the published book
            return self._whole(book, connection_id, message.ts_recv)
        first, last = self._ids(message.ts_recv)
        bids, asks = message.bids, message.asks
        if removed is not None:
            bids, asks = bids + removed[0], asks + removed[1]
        return Publish(False, first, last, bids, asks, connection_id)

    def drop(self, connection_id: str, now: int) -> Broken | None:
        """Forget the connection's book (it broke or closed); hand the lead to the oldest intact one."""
        if self.books.pop(connection_id, None) is None and self.leader != connection_id:
            return None
        was_leader = self.leader == connection_id
        took_over = None
        if was_leader:
            self.leader = next(iter(self.books), None)
            if self.leader is not None:
                took_over = self._whole(self.books[self.leader], self.leader, now)
        return Broken(connection_id, was_leader, took_over)

    @property
    def published(self) -> OrderBook | None:
        """Return the leader's book (what the published records add up to), or None."""
        return self.books.get(self.leader) if self.leader is not None else None

    def _whole(self, book: OrderBook, connection_id: str, now: int) -> Publish:
        bids, asks = book.top()
        _first, last = self._ids(now)
        return Publish(True, last, last, bids, asks, connection_id)

    def _ids(self, now: int) -> tuple[int, int]:
        first = self.last_id + 1
        self.last_id = max(first, now // 1000)
        return first, self.last_id

    def _truncate(self, book: OrderBook) -> tuple[Levels, Levels] | None:
        # the venue sends no removal for levels pushed out of the subscribed depth: drop them here and
        # publish them as removals, so that consumers' books stay the venue's book
        depth = self._depth
        if depth is None:
            return None
        n_bids, n_asks = book.depth()
        if n_bids <= depth and n_asks <= depth:
            return None
        bl, al = book.bids, book.asks
        gone_bids = [[bl.levels[k][0], "0"] for k in bl.prices[: max(n_bids - depth, 0)]]
        gone_asks = [[al.levels[k][0], "0"] for k in al.prices[depth:]]
        book.keep_best(depth)
        return gone_bids, gone_asks
