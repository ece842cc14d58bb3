"""What a venue adapter hands to the venue-neutral core: parsed messages and the adapter protocol.

A venue module (``producers/<venue>/``) turns raw frames into these types; everything else in
``producers/`` (sync, redundancy, sessions, publishing) only sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from orderbook import OrderBook
from producers.errors import FeedError, ParseError

Levels = list[list[str]]
"""Price levels as the venue sent them: ``[[price, qty], ...]``, exact decimal strings."""


class Channel(Enum):
    """Kinds of parsed venue messages."""

    TRADE = "trade"
    DEPTH = "depth"
    BBO = "bbo"
    SHUTDOWN = "shutdown"
    CONTROL = "control"
    BOOK = "book"
    """A book snapshot or update carried by the websocket itself (no REST snapshot, no update ids)."""
    BATCH = "batch"
    INSTRUMENT = "instrument"
    """An instrument's reference data (an Instrument record: base, quote, tick, lot)."""
    """Several parsed messages of one frame, with the connection's frame sequence number if the venue has one."""


class BookSource(Enum):
    """Where a venue's book comes from, which decides how the core keeps it true."""

    REST_SNAPSHOT = "rest_snapshot"
    """A REST snapshot, then websocket diffs chained by venue update ids (Binance)."""
    STREAM = "stream"
    """Snapshot and updates on each websocket connection, checked by a venue rule (a checksum, a
    connection sequence number); each connection keeps its own book and one of them is published."""


@dataclass(slots=True)
class Diff:
    """One depth diff event covering venue update ids ``first_id..last_id``."""

    symbol: str
    first_id: int
    last_id: int
    bids: Levels
    asks: Levels
    ts_event: int
    ts_recv: int
    prev_id: int | None = None


@dataclass(slots=True, frozen=True)
class Snapshot:
    """A full-depth REST snapshot as of venue update id ``last_update_id``."""

    symbol: str
    last_update_id: int
    bids: Levels
    asks: Levels
    ts_recv: int


@dataclass(slots=True)
class BookMessage:
    """A websocket book snapshot (replaces the connection's book) or update (absolute level quantities)."""

    symbol: str
    snapshot: bool
    bids: Levels
    asks: Levels
    ts_event: int
    ts_recv: int
    checksum: int | None = None
    """The venue's checksum of its book after this message, if it sends one (Kraken: CRC32 of the top 10)."""


Parsed = tuple[Channel, Any]
"""``(Channel.TRADE, Trade dict) | (Channel.BBO, BBO dict) | (Channel.DEPTH, Diff) | (Channel.BOOK, BookMessage)
| (Channel.BATCH, Batch) | (SHUTDOWN|CONTROL, None)``."""


@dataclass(slots=True)
class Batch:
    """Every message of one frame (a venue may carry several trades or books in one), in order."""

    items: list[Parsed]
    sequence: int | None = None
    """The frame's number on its connection when the venue numbers them (Coinbase ``sequence_num``)."""


class SyncRule(Protocol):
    """A venue's rule for chaining depth diffs onto a snapshot and onto each other."""

    def straddles(self, snapshot_id: int, diff: Diff) -> bool:
        """Return True when ``diff`` is a valid first diff on a snapshot taken at ``snapshot_id``."""
        ...

    def follows(self, prev_last_id: int, diff: Diff) -> bool:
        """Return True when ``diff`` directly continues a book whose last applied id is ``prev_last_id``."""
        ...


class VenueAdapter(Protocol):
    """Venue facts and pure parsers; no I/O."""

    venue: str
    sync_rule: SyncRule
    book_source: BookSource
    book_depth: int | None
    """Levels a side the venue keeps in a websocket book (the client truncates to it), None = all (STREAM only)."""

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Return the texts to send once a connection opens (empty when the URL itself subscribes)."""
        ...

    def book_intact(self, book: OrderBook, message: BookMessage) -> bool:
        """Return False when ``book``, after ``message`` was applied, is not the venue's (STREAM only)."""
        ...

    def stream_url(self, base: str, symbols: list[str]) -> str:
        """Return the websocket URL that carries trades, depth diffs and top of book for ``symbols``."""
        ...

    def snapshot_url(self, base: str, symbol: str) -> str:
        """Return the REST URL of the depth snapshot of ``symbol``."""
        ...

    def trades_url(self, base: str, symbol: str, from_id: int) -> str | None:
        """Return the REST URL of the venue's trades of ``symbol`` from trade id ``from_id`` on (None: the
        venue cannot page its trade history by id, so a trade gap on every connection stays a reported loss)."""
        ...

    def instrument_url(self, base: str, symbol: str) -> str | None:
        """Return the REST URL of ``symbol``'s reference data, or None when the websocket carries it."""
        ...

    def is_instrument_url(self, url: str) -> bool:
        """Return True when a REST URL asks for reference data."""
        ...

    def parse_instrument(self, data: str | bytes, symbol: str, ts_recv: int) -> dict[str, Any]:
        """Parse a reference-data body into ``symbol``'s Instrument record; raise ``ParseError`` if malformed."""
        ...

    def is_trades_url(self, url: str) -> bool:
        """Return True when a REST URL asks for trades (else it is a depth snapshot)."""
        ...

    def stream_symbols(self, url: str) -> list[str]:
        """Return the symbols a stream URL subscribes to (playback reads them from the recording)."""
        ...

    def snapshot_symbol(self, url: str) -> str:
        """Return the symbol a snapshot URL asks for (playback reads it back from the recording)."""
        ...

    def parse_frame(self, data: str | bytes, ts_recv: int) -> Parsed:
        """Parse one websocket frame; raise :class:`producers.errors.ParseError` on anything undocumented."""
        ...

    def http_error(self, status: int, body: bytes) -> FeedError:
        """Return the error a non-200 REST answer stands for; its ``retriable`` says whether to ask again."""
        ...

    def parse_snapshot(self, data: str | bytes, symbol: str, ts_recv: int) -> Snapshot:
        """Parse a REST depth snapshot body; raise :class:`producers.errors.ParseError` if malformed."""
        ...

    def parse_trades(self, data: str | bytes, symbol: str, ts_recv: int) -> list[dict[str, Any]]:
        """Parse a REST trades body into Trade records in id order; raise ``ParseError`` if malformed."""
        ...


class NoChaining:
    """The sync rule of a venue whose book messages carry no ids to chain: never consulted.

    Such a venue's integrity check is its own (Kraken's checksum, Coinbase's connection sequence).
    """

    def straddles(self, snapshot_id: int, diff: Diff) -> bool:
        return False

    def follows(self, prev_last_id: int, diff: Diff) -> bool:
        return False


class StreamBookVenue:
    """The REST half of :class:`VenueAdapter` for a venue whose books, trades and reference data all come
    over the websocket (``BookSource.STREAM``): nothing is fetched over REST, so every REST hook says so.

    Subclasses set ``venue`` and implement the websocket half (URLs, subscriptions, parsers, check).
    """

    venue: str
    book_source = BookSource.STREAM

    def stream_symbols(self, url: str) -> list[str]:
        """Return no symbols: the URL names none (playback learns them from the frames)."""
        return []

    def snapshot_url(self, base: str, symbol: str) -> str:
        raise FeedError(f"{self.venue} books come from the websocket; there is no REST snapshot to fetch")

    def trades_url(self, base: str, symbol: str, from_id: int) -> str | None:
        """Return None: the venue's public trade history is not paged by trade id (a trade gap is reported)."""
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
        raise ValueError(f"{self.venue} fetches nothing over REST: {url!r}")

    def http_error(self, status: int, body: bytes) -> FeedError:
        return FeedError(f"{self.venue} http {status}: {body[:200]!r}")

    def parse_snapshot(self, data: str | bytes, symbol: str, ts_recv: int) -> Snapshot:
        raise ParseError(f"{self.venue} has no REST depth snapshot", symbol)

    def parse_trades(self, data: str | bytes, symbol: str, ts_recv: int) -> list[dict[str, Any]]:
        raise ParseError(f"{self.venue} trade history is not fetched", symbol)
