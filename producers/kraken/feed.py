"""The Kraken spot (WebSocket v2) adapter: venue facts and parsers plugged into the venue-neutral core.

Kraken's book arrives on the websocket (snapshot, then updates with a CRC32 ``checksum`` and no
update ids), so the core keeps one book per connection and checks each against Kraken's checksum
(:class:`producers.venue.BookSource.STREAM`). Nothing is fetched over REST: pair precisions come
from the ``instrument`` channel, and Kraken's public trade history is paged by time, not by trade
id, so a trade gap seen on every connection is reported, not backfilled.
"""

from __future__ import annotations

from typing import Any

from orderbook import OrderBook
from producers.errors import FeedError, ParseError
from producers.kraken import urls
from producers.kraken.checksum import book_checksum
from producers.kraken.enums import VENUE
from producers.kraken.parse import KrakenParser
from producers.venue import BookMessage, BookSource, Diff, Snapshot

DEFAULT_DEPTH = 10
"""The depth Kraken's checksum covers: a lost update to a level below the top 10 never fails a checksum
(measured: the simulator's book and the feed's differed beyond level 10 after a lost message), so a
deeper subscription would publish levels nothing can verify."""


class _NoChaining:
    """Kraken's book messages carry no ids to chain (the checksum stands in); never consulted."""

    def straddles(self, snapshot_id: int, diff: Diff) -> bool:
        return False

    def follows(self, prev_last_id: int, diff: Diff) -> bool:
        return False


class KrakenSpotAdapter:
    """Implements :class:`producers.venue.VenueAdapter` for Kraken spot, WebSocket v2."""

    venue = VENUE
    book_source = BookSource.STREAM

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        self.sync_rule = _NoChaining()
        self.book_depth = depth
        self.parser = KrakenParser()
        self.parse_frame = self.parser.parse_frame

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Return the instrument, book, trade and ticker subscribe requests."""
        return urls.subscribe_requests(symbols, self.book_depth)

    def book_intact(self, book: OrderBook, message: BookMessage) -> bool:
        """Return True when the book's top 10 hash to the message's ``checksum``."""
        return book_checksum(book) == message.checksum

    def stream_url(self, base: str, symbols: list[str]) -> str:
        """Return the v2 endpoint (symbols are subscribed by message)."""
        return urls.stream_url(base)

    def stream_symbols(self, url: str) -> list[str]:
        """Return no symbols: a v2 URL names none (playback learns them from the frames)."""
        return []

    def snapshot_url(self, base: str, symbol: str) -> str:
        raise FeedError("kraken books come from the websocket; there is no REST snapshot to fetch")

    def trades_url(self, base: str, symbol: str, from_id: int) -> str | None:
        """Return None: Kraken's trade history is paged by time, not by trade id."""
        return None

    def instrument_url(self, base: str, symbol: str) -> str | None:
        """Return None: reference data arrives on the websocket."""
        return None

    def is_instrument_url(self, url: str) -> bool:
        return False

    def parse_instrument(self, data: str | bytes, symbol: str, ts_recv: int) -> dict[str, Any]:
        raise ParseError("reference data is not fetched over REST", symbol)

    def is_trades_url(self, url: str) -> bool:
        return False

    def snapshot_symbol(self, url: str) -> str:
        raise ValueError(f"kraken fetches nothing over REST: {url!r}")

    def http_error(self, status: int, body: bytes) -> FeedError:
        return FeedError(f"kraken http {status}: {body[:200]!r}")

    def parse_snapshot(self, data: str | bytes, symbol: str, ts_recv: int) -> Snapshot:
        raise ParseError("kraken has no REST depth snapshot", symbol)

    def parse_trades(self, data: str | bytes, symbol: str, ts_recv: int) -> list[dict[str, Any]]:
        raise ParseError("kraken trade history is not fetched", symbol)
