"""The Coinbase Advanced Trade adapter: venue facts and parsers plugged into the venue-neutral core.

The ``level2`` book arrives on the websocket (``l2_data`` snapshot, then updates) without per-book
ids; integrity is the connection's ``sequence_num``, checked by the core on every frame (a gap drops
the connection's books and resubscribes it). Books are kept per connection
(:class:`producers.venue.BookSource.STREAM`); nothing is fetched over REST, and Coinbase's public
trade history is not paged by trade id, so a trade gap seen on every connection is reported.
"""

from __future__ import annotations

from orderbook import OrderBook
from producers.coinbase import parse, urls
from producers.coinbase.enums import VENUE
from producers.venue import BookMessage, NoChaining, StreamBookVenue


class CoinbaseAdvancedAdapter(StreamBookVenue):
    """Implements :class:`producers.venue.VenueAdapter` for Coinbase Advanced Trade market data."""

    venue = VENUE
    book_depth = None

    def __init__(self) -> None:
        self.sync_rule = NoChaining()

    parse_frame = staticmethod(parse.parse_frame)

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Return the level2, market_trades, ticker and heartbeats subscribe requests."""
        return urls.subscribe_requests(symbols)

    def book_intact(self, book: OrderBook, message: BookMessage) -> bool:
        """Return True: a Coinbase book is checked by the connection's sequence numbers, not per message."""
        return True

    def stream_url(self, base: str, symbols: list[str]) -> str:
        """Return the endpoint (products are subscribed by message)."""
        return urls.stream_url(base)
