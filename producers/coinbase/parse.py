"""Pure Coinbase Advanced Trade parsers: frame text -> normalized records. No clock, no socket.

Every message has the envelope ``{"channel", "client_id", "timestamp", "sequence_num", "events"}``;
``sequence_num`` counts the messages of one connection across all its channels, so each frame
becomes a :class:`producers.venue.Batch` carrying it (the core checks it per connection). Prices and
quantities are the venue's exact decimal strings. Anything undocumented raises
:class:`producers.errors.ParseError` (and only that).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from producers.coinbase.enums import VENUE, WsChannel
from producers.errors import ParseError
from producers.times import rfc3339_ns
from producers.venue import Batch, BookMessage, Channel, Parsed

_DECIMAL = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,30})?").fullmatch
_PRODUCT = re.compile(r"[A-Z0-9]{1,16}-[A-Z0-9]{1,16}").fullmatch
_TRADE_ID = re.compile(r"[0-9]{1,15}").fullmatch
_MAX_SEQ = 2**62


def _decimal(value: Any, field: str) -> str:
    if type(value) is not str or _DECIMAL(value) is None:
        raise ParseError(f"invalid decimal in {field}: {value!r}")
    return value


def _product(value: Any) -> str:
    if type(value) is not str or _PRODUCT(value) is None:
        raise ParseError(f"invalid product_id {value!r}")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if type(value) is not list:
        raise ParseError(f"{field} is not a list")
    return value


def _obj(value: Any, field: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise ParseError(f"{field} item is not a JSON object")
    return value


def parse_frame(data: str | bytes, ts_recv: int) -> Parsed:
    """Parse one websocket frame into ``(Channel.BATCH, Batch(items, sequence_num))``.

    ``heartbeats`` and ``subscriptions`` give an empty batch (their number still counts);
    ``{"type": "error", "message": ...}`` raises with Coinbase's text.
    """
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc}") from None
    if type(msg) is not dict:
        raise ParseError("frame is not a JSON object")
    if msg.get("type") == "error":
        raise ParseError(f"venue error: {str(msg.get('message'))[:200]}")
    try:
        channel, seq, events = msg["channel"], msg["sequence_num"], _list(msg["events"], "events")
        if type(seq) is not int or not 0 <= seq <= _MAX_SEQ:
            raise ParseError(f"invalid sequence_num {seq!r}")
        items: list[Parsed] = []
        if channel == WsChannel.L2_DATA:
            for event in events:
                items.append((Channel.BOOK, parse_l2(_obj(event, "events"), ts_recv)))
        elif channel == WsChannel.MARKET_TRADES:
            for event in events:
                items.extend((Channel.TRADE, t) for t in parse_trades(_obj(event, "events"), ts_recv))
        elif channel == WsChannel.TICKER:
            ts_event = rfc3339_ns(msg["timestamp"])
            for event in events:
                items.extend((Channel.BBO, b) for b in parse_tickers(_obj(event, "events"), ts_event, ts_recv))
        elif channel == WsChannel.STATUS:
            for event in events:
                items.extend((Channel.INSTRUMENT, i) for i in parse_status(_obj(event, "events"), ts_recv))
        elif channel not in (WsChannel.HEARTBEATS, WsChannel.SUBSCRIPTIONS):
            raise ParseError(f"unknown channel {channel!r}")
    except KeyError as exc:
        raise ParseError(f"{msg.get('channel')} message without field {exc.args[0]}") from None
    return Channel.BATCH, Batch(items, seq)


def parse_l2(event: dict[str, Any], ts_recv: int) -> BookMessage:
    """Return a :class:`BookMessage` from one ``l2_data`` event.

    Sample (trimmed)::

        {"type": "update", "product_id": "BTC-USD", "updates": [{"side": "bid",
         "event_time": "2023-02-09T20:32:50.714964855Z", "price_level": "21921.73", "new_quantity": "0.06317902"}]}

    ``new_quantity`` is the level's new size ("0" removes it); ``side`` is ``bid`` or ``offer``.
    """
    kind = event["type"]
    if kind not in ("snapshot", "update"):
        raise ParseError(f"invalid l2_data event type {kind!r}")
    bids, asks = [], []
    ts_event = 0
    for update in _list(event["updates"], "updates"):
        update = _obj(update, "updates")
        level = [_decimal(update["price_level"], "price_level"), _decimal(update["new_quantity"], "new_quantity")]
        side = update["side"]
        if side == "bid":
            bids.append(level)
        elif side == "offer":
            asks.append(level)
        else:
            raise ParseError(f"invalid side {side!r}")
        if kind == "update":
            ts_event = max(ts_event, rfc3339_ns(update["event_time"], "event_time"))
    return BookMessage(_product(event["product_id"]), kind == "snapshot", bids, asks, ts_event or ts_recv, ts_recv)


def parse_trades(event: dict[str, Any], ts_recv: int) -> list[dict[str, Any]]:
    """Return Trade records, in trade id order, from one ``market_trades`` event.

    Sample (trimmed)::

        {"type": "update", "trades": [{"trade_id": "000000000", "product_id": "ETH-USD", "price": "1260.01",
         "size": "0.3", "side": "BUY", "time": "2019-08-14T20:42:27.265Z"}]}

    ``side`` is read as the taker's side; ``trade_id`` counts the product's trades one by one.
    """
    out = []
    for trade in _list(event["trades"], "trades"):
        trade = _obj(trade, "trades")
        tid, side = trade["trade_id"], trade["side"]
        if type(tid) is not str or _TRADE_ID(tid) is None:
            raise ParseError(f"invalid trade_id {tid!r}")
        if side not in ("BUY", "SELL"):
            raise ParseError(f"invalid side {side!r}")
        out.append({
            "venue": VENUE, "symbol": _product(trade["product_id"]), "trade_id": int(tid),
            "price": _decimal(trade["price"], "price"), "qty": _decimal(trade["size"], "size"),
            "side": side.lower(), "ts_event": rfc3339_ns(trade["time"], "time"), "ts_recv": ts_recv,
        })
    out.sort(key=lambda t: t["trade_id"])  # a snapshot lists the newest first
    return out


def parse_tickers(event: dict[str, Any], ts_event: int, ts_recv: int) -> list[dict[str, Any]]:
    """Return BBO records from one ``ticker`` event.

    Sample (trimmed)::

        {"type": "update", "tickers": [{"type": "ticker", "product_id": "BTC-USD", "price": "21932.98",
         "best_bid": "21931.98", "best_bid_quantity": "8000.21", "best_ask": "21933.98",
         "best_ask_quantity": "8038.07770938"}]}

    No update id: the message ``timestamp`` in microseconds stands in for one, so the copies of one
    ticker on several connections are one BBO.
    """
    out = []
    for ticker in _list(event["tickers"], "tickers"):
        ticker = _obj(ticker, "tickers")
        out.append({
            "venue": VENUE, "symbol": _product(ticker["product_id"]), "update_id": ts_event // 1000,
            "bid_price": _decimal(ticker["best_bid"], "best_bid"),
            "bid_qty": _decimal(ticker["best_bid_quantity"], "best_bid_quantity"),
            "ask_price": _decimal(ticker["best_ask"], "best_ask"),
            "ask_qty": _decimal(ticker["best_ask_quantity"], "best_ask_quantity"),
            "ts_event": ts_event, "ts_recv": ts_recv,
        })
    return out


def parse_status(event: dict[str, Any], ts_recv: int) -> list[dict[str, Any]]:
    """Return Instrument records from one ``status`` event.

    Sample (trimmed)::

        {"type": "snapshot", "products": [{"product_type": "SPOT", "id": "BTC-USD", "base_currency": "BTC",
         "quote_currency": "USD", "base_increment": "0.00000001", "quote_increment": "0.01",
         "display_name": "BTC/USD", "status": "online"}]}
    """
    out = []
    for product in _list(event["products"], "products"):
        product = _obj(product, "products")
        base, quote = product["base_currency"], product["quote_currency"]
        if not (type(base) is str and base.isalnum() and type(quote) is str and quote.isalnum()):
            raise ParseError(f"invalid currencies {base!r}/{quote!r}")
        out.append({
            "venue": VENUE, "symbol": _product(product["id"]), "base": base, "quote": quote,
            "tick_size": _decimal(product["quote_increment"], "quote_increment"),
            "lot_size": _decimal(product["base_increment"], "base_increment"), "ts_event": ts_recv, "ts_recv": ts_recv,
        })
    return out
