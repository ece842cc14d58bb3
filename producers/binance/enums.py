"""Binance spot stream and event names (venue strings live here, not scattered)."""

from __future__ import annotations

from enum import StrEnum

VENUE = "binance"


class StreamSuffix(StrEnum):
    """Per-symbol stream names, ``<symbol lowercase>@<suffix>``."""

    TRADE = "trade"
    DEPTH = "depth@100ms"
    BOOK_TICKER = "bookTicker"


class EventType(StrEnum):
    """Values of the ``e`` field."""

    TRADE = "trade"
    DEPTH_UPDATE = "depthUpdate"
    SERVER_SHUTDOWN = "serverShutdown"
