"""Binance spot endpoints and URL builders.

Market streams use the combined-stream URL, so subscribing needs no inbound message at all
(Binance allows only 5 inbound messages per second per connection).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from producers.binance.enums import StreamSuffix

LIVE_WS = "wss://stream.binance.com:9443"
LIVE_REST = "https://api.binance.com"
TESTNET_WS = "wss://stream.testnet.binance.vision"
TESTNET_REST = "https://testnet.binance.vision"

DEPTH_PATH = "/api/v3/depth"
SNAPSHOT_LIMIT = 5000
"""Deepest REST snapshot Binance serves (request weight 250)."""

EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"

HISTORICAL_TRADES_PATH = "/api/v3/historicalTrades"
HISTORICAL_TRADES_LIMIT = 1000
"""Most trades one ``historicalTrades`` call returns (request weight 25)."""

MAX_STREAMS_PER_CONNECTION = 1024


def stream_names(symbols: list[str]) -> list[str]:
    """Return the trade, diff-depth and book-ticker stream names of ``symbols``."""
    return [f"{s.lower()}@{suffix}" for s in symbols for suffix in StreamSuffix]


def combined_stream_url(base: str, symbols: list[str]) -> str:
    """Return ``<base>/stream?streams=a/b/c`` for every stream of ``symbols``."""
    names = stream_names(symbols)
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"{len(names)} streams exceed Binance's {MAX_STREAMS_PER_CONNECTION} per connection")
    return f"{base.rstrip('/')}/stream?streams={'/'.join(names)}"


def depth_snapshot_url(base: str, symbol: str, limit: int = SNAPSHOT_LIMIT) -> str:
    """Return the REST depth snapshot URL of ``symbol``."""
    return f"{base.rstrip('/')}{DEPTH_PATH}?symbol={symbol.upper()}&limit={limit}"


def historical_trades_url(base: str, symbol: str, from_id: int, limit: int = HISTORICAL_TRADES_LIMIT) -> str:
    """Return the REST URL of up to ``limit`` trades of ``symbol`` from trade id ``from_id`` on."""
    return f"{base.rstrip('/')}{HISTORICAL_TRADES_PATH}?symbol={symbol.upper()}&fromId={from_id}&limit={limit}"


def exchange_info_url(base: str, symbol: str) -> str:
    """Return the REST URL of ``symbol``'s exchange information (assets, filters)."""
    return f"{base.rstrip('/')}{EXCHANGE_INFO_PATH}?symbol={symbol.upper()}"


def is_exchange_info_url(url: str) -> bool:
    """Return True for an ``exchangeInfo`` URL."""
    return urlsplit(url).path.endswith(EXCHANGE_INFO_PATH)


def is_historical_trades_url(url: str) -> bool:
    """Return True for a ``historicalTrades`` URL (a recording holds both kinds of REST answer)."""
    return urlsplit(url).path.endswith(HISTORICAL_TRADES_PATH)


def symbol_of_snapshot_url(url: str) -> str:
    """Return the ``symbol`` query parameter of a depth snapshot (or historical trades) URL."""
    values = parse_qs(urlsplit(url).query).get("symbol")
    if not values:
        raise ValueError(f"no symbol in snapshot url {url!r}")
    return values[0].upper()


def symbols_of_stream_url(url: str) -> list[str]:
    """Return the symbols of ``/stream?streams=a@x/b@y`` or ``/ws/a@x/b@y`` URLs, in order, once each."""
    parts = urlsplit(url)
    names = parse_qs(parts.query).get("streams", [""])[0].split("/") if "streams=" in parts.query else parts.path.split("/")
    symbols = [n.split("@", 1)[0].upper() for n in names if "@" in n]
    return list(dict.fromkeys(symbols))
