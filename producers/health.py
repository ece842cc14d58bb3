"""FeedEvent builders: the feed's health, as records on ``md.health``."""

from __future__ import annotations

from enum import StrEnum
from itertools import count
from typing import Any


class FeedEventKind(StrEnum):
    """The ``kind`` symbols of the FeedEvent schema."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    GAP = "gap"
    RESYNC = "resync"
    STALE = "stale"
    CROSSED = "crossed"
    RECOVERED = "recovered"
    BACKPRESSURE = "backpressure"
    DROPPED = "dropped"
    STALLED = "stalled"
    ROLLOVER = "rollover"
    INVALID = "invalid"
    OTHER = "other"


class FeedEvents:
    """Build FeedEvent records with unique ids ``<producer id>:<sequence>`` (their idempotency key)."""

    def __init__(self, venue: str, producer_id: str) -> None:
        self._venue = venue
        self._producer_id = producer_id
        self._seq = count(1)
        self.key = f"{venue}:".encode()
        """Message key of producer-wide events (no symbol)."""

    def build(
        self,
        kind: FeedEventKind,
        ts: int,
        *,
        symbol: str = "",
        connection_id: str = "",
        detail: str = "",
        first_update_id: int | None = None,
        last_update_id: int | None = None,
        count: int = 0,
        ts_event: int | None = None,
    ) -> dict[str, Any]:
        """Return one FeedEvent record; ``ts`` is the local time it was observed (ns)."""
        return {
            "event_id": f"{self._producer_id}:{next(self._seq)}",
            "venue": self._venue,
            "symbol": symbol,
            "kind": kind.value,
            "connection_id": connection_id,
            "detail": detail,
            "first_update_id": first_update_id,
            "last_update_id": last_update_id,
            "count": count,
            "ts_event": ts if ts_event is None else ts_event,
            "ts_recv": ts,
        }
