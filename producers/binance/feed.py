"""The Binance spot adapter: venue facts and parsers plugged into the venue-neutral core."""

from __future__ import annotations

from typing import Any

from orderbook import OrderBook
from producers.binance import errors, parse, urls
from producers.binance.enums import VENUE
from producers.binance.sync_rule import BinanceSpotSyncRule
from producers.errors import FeedError
from producers.venue import BookMessage, BookSource, Snapshot


class BinanceSpotAdapter:
    """Implements :class:`producers.venue.VenueAdapter` for Binance spot."""

    venue = VENUE
    book_source = BookSource.REST_SNAPSHOT
    book_depth = None

    def __init__(self) -> None:
        self.sync_rule = BinanceSpotSyncRule()

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Return no messages: the combined-stream URL subscribes."""
        return []

    def book_intact(self, book: OrderBook, message: BookMessage) -> bool:
        """Return True: Binance books are checked by update ids, never by this (REST_SNAPSHOT source)."""
        return True

    def stream_url(self, base: str, symbols: list[str]) -> str:
        """Return the combined-stream URL of every stream of ``symbols``."""
        return urls.combined_stream_url(base, symbols)

    def snapshot_url(self, base: str, symbol: str) -> str:
        """Return the depth snapshot URL of ``symbol``."""
        return urls.depth_snapshot_url(base, symbol)

    def trades_url(self, base: str, symbol: str, from_id: int) -> str:
        """Return the historical trades URL of ``symbol`` from ``from_id`` on (gap backfill)."""
        return urls.historical_trades_url(base, symbol, from_id)

    def instrument_url(self, base: str, symbol: str) -> str | None:
        """Return the exchangeInfo URL of ``symbol`` (fetched once at start)."""
        return urls.exchange_info_url(base, symbol)

    def is_instrument_url(self, url: str) -> bool:
        """Return True for an exchangeInfo URL."""
        return urls.is_exchange_info_url(url)

    def parse_instrument(self, data: str | bytes, symbol: str, ts_recv: int) -> dict[str, Any]:
        """Parse one exchangeInfo body into ``symbol``'s Instrument record."""
        return parse.parse_exchange_info(data, symbol, ts_recv)

    def is_trades_url(self, url: str) -> bool:
        """Return True when a REST URL asks for historical trades (else a depth snapshot)."""
        return urls.is_historical_trades_url(url)

    def stream_symbols(self, url: str) -> list[str]:
        """Return the symbols of a combined-stream URL."""
        return urls.symbols_of_stream_url(url)

    def snapshot_symbol(self, url: str) -> str:
        """Return the symbol a depth snapshot URL asks for."""
        return urls.symbol_of_snapshot_url(url)

    parse_frame = staticmethod(parse.parse_frame)
    """Parse one websocket frame (the parser itself: no wrapper call on the hot path)."""

    def http_error(self, status: int, body: bytes) -> FeedError:
        """Return the error (retriable or not) a non-200 REST answer stands for."""
        return errors.http_error(status, body)

    def parse_snapshot(self, data: str | bytes, symbol: str, ts_recv: int) -> Snapshot:
        """Parse one depth snapshot body."""
        return parse.parse_snapshot(data, symbol, ts_recv)

    def parse_trades(self, data: str | bytes, symbol: str, ts_recv: int) -> list[dict[str, Any]]:
        """Parse one historical trades body."""
        return parse.parse_historical_trades(data, symbol, ts_recv)
