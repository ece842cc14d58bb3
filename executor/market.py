"""The market the executor trades into: latest BBO and visible book per instrument, from Kafka.

Fed from ``md.bbo`` (BBO records), ``md.book`` (BookDelta records) and ``md.health`` (FeedEvents).
A book (the shared :class:`orderbook.SequencedBook`, refusing snapshots older than it) is only trusted
after a snapshot; until then the visible depth is the BBO's top level.  An update-id gap in the deltas
marks the book gapped until the next snapshot; a ``stale``/``gap``/
``resync``/``crossed`` health event marks the instrument stale until ``recovered`` or a snapshot
received after it (the streams' rule).  :meth:`MarketView.unfit` says why an aggressive order must not
go out now (stale, gapped, or data older than the allowed age).  Pure state: the engine decodes the
records and calls :meth:`MarketView.on_bbo` / :meth:`MarketView.on_book` / :meth:`MarketView.on_health`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from executor.commands import Side
from orderbook import Applied, Level, SequencedBook


@dataclass(frozen=True)
class Quote:
    """Best bid and offer of one instrument."""

    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    update_id: int
    ts_recv: int

    @property
    def mid(self) -> Decimal:
        """Mid price."""
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class BookSnapshot:
    """Visible depth of one instrument, best first on each side."""

    quote: Quote
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    def opposite(self, side: Side) -> tuple[Level, ...]:
        """Levels an order of ``side`` would take from (asks for a buy)."""
        return self.asks if side is Side.BUY else self.bids

    def same(self, side: Side) -> tuple[Level, ...]:
        """Levels an order of ``side`` would join (bids for a buy)."""
        return self.bids if side is Side.BUY else self.asks


STALE_KINDS = frozenset({"stale", "gap", "resync", "crossed"})
"""FeedEvent kinds after which the feed's book of the instrument cannot be trusted (as in the streams)."""


class MarketView:
    """Latest quote and book per instrument key ``(venue, symbol)``."""

    def __init__(self, depth_levels: int) -> None:
        self._depth_levels = depth_levels
        self._quotes: dict[tuple[str, str], Quote] = {}
        # older snapshots refused: the book loaded at start (md.book.snapshots or REST) is newer than the
        # feed's snapshots read back from md.book after it
        self._books: dict[tuple[str, str], SequencedBook] = {}
        self._book_ts: dict[tuple[str, str], int] = {}  # newest ts_recv of an applied book record
        self._stale_since: dict[tuple[str, str], int] = {}  # health said stale at this ts_recv

    def on_bbo(self, record: dict[str, Any]) -> None:
        """Take a decoded BBO record; older update ids than the current one are ignored."""
        key = (record["venue"], record["symbol"])
        current = self._quotes.get(key)
        if current is not None and record["update_id"] < current.update_id:
            return
        self._quotes[key] = Quote(
            Decimal(record["bid_price"]), Decimal(record["bid_qty"]),
            Decimal(record["ask_price"]), Decimal(record["ask_qty"]),
            record["update_id"], record["ts_recv"],
        )

    def on_book(self, record: dict[str, Any]) -> None:
        """Take a decoded BookDelta record; deltas before the first snapshot are ignored."""
        key = (record["venue"], record["symbol"])
        book = self._books.get(key)
        if book is None:
            if not record["snapshot"]:
                return
            book = self._books[key] = SequencedBook(refuse_older_snapshots=True)
        if type(book.apply_record(record)) is Applied:
            self._book_ts[key] = max(self._book_ts.get(key, 0), record["ts_recv"])
        since = self._stale_since.get(key)
        if record["snapshot"] and since is not None and since <= record["ts_recv"]:
            del self._stale_since[key]  # a snapshot received after the health event resynced the book

    def on_health(self, record: dict[str, Any]) -> None:
        """Take a decoded FeedEvent: a stale kind marks the instrument stale, ``recovered`` clears it."""
        key = (record["venue"], record["symbol"])
        if record["kind"] in STALE_KINDS:
            self._stale_since[key] = record["ts_recv"]
        elif record["kind"] == "recovered":
            self._stale_since.pop(key, None)

    def unfit(self, venue: str, symbol: str, now: int, max_age_ns: int) -> str | None:
        """Why an aggressive order on ``symbol`` must not go out now, or None if the book can be trusted."""
        key = (venue, symbol)
        if key in self._stale_since:
            return f"feed reports {symbol} stale since {self._stale_since[key]}"
        book = self._books.get(key)
        if book is not None and not book.synced:
            return f"book of {symbol} has an update-id gap after {book.last_update_id}"
        quote = self._quotes.get(key)
        newest = max(quote.ts_recv if quote else 0, self._book_ts.get(key, 0))
        if max_age_ns and now - newest > max_age_ns:
            return f"market data of {symbol} is {(now - newest) / 1e6:.0f} ms old (max {max_age_ns / 1e6:.0f} ms)"
        return None

    def quote(self, venue: str, symbol: str) -> Quote | None:
        """Latest quote, or None before the first BBO."""
        return self._quotes.get((venue, symbol))

    def snapshot(self, venue: str, symbol: str) -> BookSnapshot | None:
        """Visible depth: the synced book around the latest quote, else the quote's top level alone."""
        quote = self._quotes.get((venue, symbol))
        if quote is None:
            return None
        book = self._books.get((venue, symbol))
        if book is None or not book.bids.prices or not book.asks.prices:
            return BookSnapshot(quote, ((quote.bid, quote.bid_qty),), ((quote.ask, quote.ask_qty),))
        # Levels the BBO has already moved past are stale in a book that lags it: leave them out.
        bids, asks = book.decimal_top(self._depth_levels, bid_at_most=quote.bid, ask_at_least=quote.ask)
        if not bids or bids[0][0] != quote.bid:
            bids.insert(0, (quote.bid, quote.bid_qty))
        if not asks or asks[0][0] != quote.ask:
            asks.insert(0, (quote.ask, quote.ask_qty))
        return BookSnapshot(quote, tuple(bids[: self._depth_levels]), tuple(asks[: self._depth_levels]))

    def instruments(self) -> list[tuple[str, str]]:
        """Instruments with a quote."""
        return sorted(self._quotes)
