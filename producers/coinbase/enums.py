"""Coinbase Advanced Trade WebSocket channel names (venue strings live here, not scattered)."""

from __future__ import annotations

from enum import StrEnum

VENUE = "coinbase"


class SubscribeChannel(StrEnum):
    """Channels a client subscribes to (``"channel"`` of a subscribe request)."""

    LEVEL2 = "level2"
    MARKET_TRADES = "market_trades"
    TICKER = "ticker"
    HEARTBEATS = "heartbeats"
    STATUS = "status"


class WsChannel(StrEnum):
    """Values of ``channel`` in received messages (``level2`` answers as ``l2_data``)."""

    L2_DATA = "l2_data"
    MARKET_TRADES = "market_trades"
    TICKER = "ticker"
    HEARTBEATS = "heartbeats"
    SUBSCRIPTIONS = "subscriptions"
    STATUS = "status"
