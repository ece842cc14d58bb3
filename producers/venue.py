"""What a venue adapter hands to the venue-neutral core: parsed messages and the adapter protocol.

A venue module (``producers/<venue>/``) turns raw frames into these types; everything else in
``producers/`` (sync, redundancy, sessions, publishing) only sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from producers.errors import FeedError

Levels = list[list[str]]
"""Price levels as the venue sent them: ``[[price, qty], ...]``, exact decimal strings."""


class Channel(Enum):
    """Kinds of parsed venue messages."""

    TRADE = "trade"
    DEPTH = "depth"
    BBO = "bbo"
    SHUTDOWN = "shutdown"
    CONTROL = "control"


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


Parsed = tuple[Channel, Any]
"""``(Channel.TRADE, Trade dict) | (Channel.BBO, BBO dict) | (Channel.DEPTH, Diff) | (SHUTDOWN|CONTROL, None)``."""


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

    def stream_url(self, base: str, symbols: list[str]) -> str:
        """Return the websocket URL that carries trades, depth diffs and top of book for ``symbols``."""
        ...

    def snapshot_url(self, base: str, symbol: str) -> str:
        """Return the REST URL of the depth snapshot of ``symbol``."""
        ...

    def trades_url(self, base: str, symbol: str, from_id: int) -> str:
        """Return the REST URL of the venue's trades of ``symbol`` from trade id ``from_id`` on."""
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
