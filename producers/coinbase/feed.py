"""The Coinbase Advanced Trade adapter: venue facts and parsers plugged into the venue-neutral core.

The ``level2`` book arrives on the websocket (``l2_data`` snapshot, then updates) without per-book
ids; integrity is the connection's ``sequence_num``, checked by the core on every frame (a gap drops
the connection's books and resubscribes it). Books are kept per connection
(:class:`producers.venue.BookSource.STREAM`); nothing is fetched over REST, and Coinbase's public
trade history is not paged by trade id, so a trade gap seen on every connection is reported.
"""

from __future__ import annotations

from typing import Any

from orderbook import OrderBook
from producers.coinbase import parse, urls
from producers.coinbase.enums import VENUE
from producers.errors import FeedError, ParseError
from producers.venue import BookMessage, BookSource, Diff, Snapshot


class _NoChaining:
    """Coinbase book messages carry no ids to chain (the connection sequence stands in); never consulted."""

    def straddles(self, snapshot_id: int, diff: Diff) -> bool:
        return False

    def follows(self, prev_last_id: int, diff: Diff) -> bool:
        return False


class CoinbaseAdvancedAdapter:
    """Implements :class:`producers.venue.VenueAdapter` for Coinbase Advanced Trade market data."""

    venue = VENUE
    book_source = BookSource.STREAM
    book_depth = None

    def __init__(self) -> None:
        self.sync_rule = _NoChaining()

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

    def stream_symbols(self, url: str) -> list[str]:
        """Return no symbols: the URL names none (playback learns them from the frames)."""
        return []

    def snapshot_url(self, base: str, symbol: str) -> str:
        raise FeedError("coinbase books come from the websocket; there is no REST snapshot to fetch")

    def trades_url(self, base: str, symbol: str, from_id: int) -> str | None:
        """Return None: the public trade history is not paged by trade id."""
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
        raise ValueError(f"coinbase fetches nothing over REST: {url!r}")

    def http_error(self, status: int, body: bytes) -> FeedError:
        return FeedError(f"coinbase http {status}: {body[:200]!r}")

    def parse_snapshot(self, data: str | bytes, symbol: str, ts_recv: int) -> Snapshot:
        raise ParseError("coinbase has no REST depth snapshot", symbol)

    def parse_trades(self, data: str | bytes, symbol: str, ts_recv: int) -> list[dict[str, Any]]:
        raise ParseError("coinbase trade history is not fetched", symbol)
