"""Kraken WebSocket v2 channel and method names (venue strings live here, not scattered)."""

from __future__ import annotations

from enum import StrEnum

VENUE = "kraken"


class WsChannel(StrEnum):
    """Values of a v2 message's ``channel`` field (and of ``params.channel`` when subscribing)."""

    BOOK = "book"
    TRADE = "trade"
    TICKER = "ticker"
    INSTRUMENT = "instrument"
    HEARTBEAT = "heartbeat"
    STATUS = "status"


class Method(StrEnum):
    """Values of ``method`` in requests and their acknowledgements."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PING = "ping"
    PONG = "pong"


BOOK_DEPTHS = (10, 25, 100, 500, 1000)
"""The depths a v2 ``book`` subscription accepts."""
