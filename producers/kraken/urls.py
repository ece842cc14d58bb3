"""Kraken WebSocket v2 endpoint and subscribe requests.

v2 subscribes by message, not by URL: after the socket opens the client sends one ``subscribe``
request per channel. ``instrument`` comes first so that pair precisions are known before the first
book (the checksum is computed on prices and quantities written with them).
"""

from __future__ import annotations

import orjson

from producers.kraken.enums import Method, WsChannel

LIVE_WS = "wss://ws.kraken.com/v2"
WS_PATH = "/v2"


def stream_url(base: str) -> str:
    """Return the v2 endpoint under ``base`` (``wss://ws.kraken.com`` -> ``wss://ws.kraken.com/v2``)."""
    base = base.rstrip("/")
    return base if base.endswith(WS_PATH) else base + WS_PATH


def subscribe_requests(symbols: list[str], depth: int) -> list[str]:
    """Return the ``subscribe`` requests for pair metadata, book (``depth`` levels), trades and top of book.

    Sample::

        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 100,
         "snapshot": true}, "req_id": 2}
    """
    params: list[dict[str, object]] = [
        {"channel": WsChannel.INSTRUMENT, "snapshot": True},
        {"channel": WsChannel.BOOK, "symbol": symbols, "depth": depth, "snapshot": True},
        # no trade snapshot: the last 50 trades would be published again on every reconnect
        {"channel": WsChannel.TRADE, "symbol": symbols, "snapshot": False},
        {"channel": WsChannel.TICKER, "symbol": symbols, "event_trigger": "bbo", "snapshot": True},
    ]
    return [
        orjson.dumps({"method": Method.SUBSCRIBE, "params": p, "req_id": i}).decode()
        for i, p in enumerate(params, 1)
    ]
