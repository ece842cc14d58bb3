"""The Kraken spot (WebSocket v2) adapter: venue facts and parsers plugged into the venue-neutral core.

Kraken's book arrives on the websocket (snapshot, then updates with a CRC32 ``checksum`` and no
update ids), so the core keeps one book per connection and checks each against Kraken's checksum
(:class:`producers.venue.BookSource.STREAM`). Nothing is fetched over REST: pair precisions come
from the ``instrument`` channel, and Kraken's public trade history is paged by time, not by trade
id, so a trade gap seen on every connection is reported, not backfilled.
"""

from __future__ import annotations

from orderbook import OrderBook
from producers.kraken import urls
from producers.kraken.checksum import book_checksum
from producers.kraken.enums import VENUE
from producers.kraken.parse import KrakenParser
from producers.venue import BookMessage, NoChaining, StreamBookVenue

DEFAULT_DEPTH = 10
"""The depth Kraken's checksum covers: a lost update to a level below the top 10 never fails a checksum
(measured: the simulator's book and the feed's differed beyond level 10 after a lost message), so a
deeper subscription would publish levels nothing can verify."""


class KrakenSpotAdapter(StreamBookVenue):
    """Implements :class:`producers.venue.VenueAdapter` for Kraken spot, WebSocket v2."""

    venue = VENUE

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        self.sync_rule = NoChaining()
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
