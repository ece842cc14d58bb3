"""Coinbase Advanced Trade market-data endpoint and subscribe requests.

One ``subscribe`` message per channel, sent once the socket opens; ``heartbeats`` too, because
Coinbase closes a connection that carries no message for 60-90 s. A ``jwt`` is added when settings
hold one (market data does not require it; Coinbase recommends it for reliability).
"""

from __future__ import annotations

import orjson

from producers.coinbase.enums import SubscribeChannel

LIVE_WS = "wss://advanced-trade-ws.coinbase.com"


def stream_url(base: str) -> str:
    """Return the endpoint (Coinbase serves market data at the host's root)."""
    return base.rstrip("/")


def subscribe_requests(symbols: list[str], jwt: str | None = None) -> list[str]:
    """Return the subscribe requests of level2, market_trades, ticker, heartbeats and status (reference data).

    Sample::

        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"}
    """
    out = []
    for channel in SubscribeChannel:
        body: dict[str, object] = {"type": "subscribe", "channel": channel.value}
        if channel is not SubscribeChannel.HEARTBEATS:
            body["product_ids"] = symbols
        if jwt:
            body["jwt"] = jwt
        out.append(orjson.dumps(body).decode())
    return out
