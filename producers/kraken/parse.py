"""Pure Kraken WebSocket v2 parsers: frame text -> normalized records. No clock, no socket.

Kraken writes prices and quantities as JSON numbers. They are read as their exact text (never as
binary floats) and written with the pair's precision from the ``instrument`` channel, which is both
the exact decimal string the records carry and the form the book checksum is computed on. Anything
undocumented raises :class:`producers.errors.ParseError` (and only that).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from producers.errors import ParseError
from producers.kraken.enums import VENUE, Method, WsChannel
from producers.times import rfc3339_ns
from producers.venue import Batch, BookMessage, Channel, Levels, Parsed

_NUMBER = re.compile(r"([0-9]{1,30})(?:\.([0-9]{1,30}))?").fullmatch
_SYMBOL = re.compile(r"[A-Z0-9]{1,16}/[A-Z0-9]{1,16}").fullmatch
_MAX_ID = 2**53
_CONTROL: Parsed = (Channel.CONTROL, None)
_decoder = json.JSONDecoder(parse_float=str)  # floats keep their exact text; ints stay ints


@dataclass(frozen=True, slots=True)
class Pair:
    """A pair's metadata from the ``instrument`` channel (precisions in decimal places)."""

    symbol: str
    base: str
    quote: str
    price_precision: int
    qty_precision: int
    price_increment: str
    qty_increment: str

    def record(self, ts_recv: int) -> dict[str, Any]:
        """Return the pair as an Instrument record."""
        return {
            "venue": VENUE, "symbol": self.symbol, "base": self.base, "quote": self.quote,
            "tick_size": self.price_increment, "lot_size": self.qty_increment, "ts_event": ts_recv, "ts_recv": ts_recv,
        }


def fmt(value: Any, precision: int | None, field: str) -> str:
    """Return ``value`` (a JSON number's text, or an int) as a decimal string with ``precision`` places.

    Without a known precision the venue's text is kept. Digits beyond the precision must be zeros
    (anything else is off the pair's grid and raises).
    """
    if type(value) is int:
        value = str(value)
    elif type(value) is not str:
        raise ParseError(f"invalid number in {field}: {value!r}")
    m = _NUMBER(value)
    if m is None or len(value) > 40:
        raise ParseError(f"invalid number in {field}: {value!r}")
    if precision is None:
        return value
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > precision:
        if frac[precision:].strip("0"):
            raise ParseError(f"{field} {value} has more than the pair's {precision} decimals")
        frac = frac[:precision]
    whole = whole.lstrip("0") or "0"
    return f"{whole}.{frac.ljust(precision, '0')}" if precision else whole


def _int(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_ID:
        raise ParseError(f"invalid integer in {field}: {value!r}")
    return value


def _symbol(value: Any) -> str:
    if type(value) is not str or _SYMBOL(value) is None:
        raise ParseError(f"invalid symbol {value!r}")
    return value


class KrakenParser:
    """Parses v2 frames; remembers pair precisions from the ``instrument`` channel (its only state)."""

    def __init__(self) -> None:
        self.pairs: dict[str, Pair] = {}

    def precisions(self, symbol: str) -> tuple[int | None, int | None]:
        pair = self.pairs.get(symbol)
        return (pair.price_precision, pair.qty_precision) if pair is not None else (None, None)

    def parse_frame(self, data: str | bytes, ts_recv: int) -> Parsed:
        """Parse one websocket frame into ``(Channel, payload)``.

        Acknowledgements, ``heartbeat`` and ``status`` -> CONTROL; ``instrument`` updates the
        precisions and gives Instrument records; a refused request (``"success": false``) raises
        with Kraken's error text.
        """
        try:
            msg = _decoder.decode(data.decode() if type(data) is bytes else data)  # type: ignore[union-attr]
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"not JSON: {exc}") from None
        if type(msg) is not dict:
            raise ParseError("frame is not a JSON object")
        channel = msg.get("channel")
        if channel is None:
            return self._response(msg)
        data_ = msg.get("data")
        kind = msg.get("type")
        if channel == WsChannel.BOOK:
            return self._many(data_, lambda item: (Channel.BOOK, self.book(item, kind, ts_recv)))
        if channel == WsChannel.TRADE:
            return self._many(data_, lambda item: (Channel.TRADE, self.trade(item, ts_recv)))
        if channel == WsChannel.TICKER:
            return self._many(data_, lambda item: (Channel.BBO, self.ticker(item, ts_recv)))
        if channel == WsChannel.INSTRUMENT:
            return Channel.BATCH, Batch([(Channel.INSTRUMENT, pair.record(ts_recv)) for pair in self.instrument(data_)])
        if channel in (WsChannel.HEARTBEAT, WsChannel.STATUS):
            return _CONTROL
        raise ParseError(f"unknown channel {channel!r}")

    @staticmethod
    def _response(msg: dict[str, Any]) -> Parsed:
        method = msg.get("method")
        if method not in tuple(Method):
            raise ParseError(f"unknown frame: no channel and method {method!r}")
        if msg.get("success") is False:
            # e.g. {"error": "Currency pair not supported XXX/USD", "method": "subscribe", "success": false}
            # and {"error": "Exceeded msg rate", ...}: kept in dlq with Kraken's words, counted, logged
            raise ParseError(f"venue error: {method} refused: {str(msg.get('error'))[:200]}")
        return _CONTROL

    @staticmethod
    def _many(items: Any, one: Any) -> Parsed:
        if type(items) is not list or not items:
            raise ParseError("data is not a non-empty list")
        if len(items) == 1:
            return one(_obj(items[0]))  # type: ignore[no-any-return]
        return Channel.BATCH, Batch([one(_obj(item)) for item in items])

    def book(self, item: dict[str, Any], kind: Any, ts_recv: int) -> BookMessage:
        """Return a :class:`BookMessage` from one ``book`` data item.

        Sample (trimmed)::

            {"symbol": "BTC/USD", "bids": [{"price": 45283.5, "qty": 0.10000000}],
             "asks": [{"price": 45285.2, "qty": 0.00100000}], "checksum": 3310070434,
             "timestamp": "2023-10-06T17:35:55.440295Z"}

        ``qty`` 0 removes a level; a snapshot has no ``timestamp`` (its ``ts_event`` is the receive time).
        """
        if kind not in ("snapshot", "update"):
            raise ParseError(f"invalid book type {kind!r}")
        try:
            symbol = _symbol(item["symbol"])
            pp, qp = self.precisions(symbol)
            bids = self._levels(item.get("bids", []), pp, qp, "bids")
            asks = self._levels(item.get("asks", []), pp, qp, "asks")
            checksum = _int(item["checksum"], "checksum")
            if checksum > 0xFFFFFFFF:
                raise ParseError(f"checksum {checksum} is not a CRC32")
            ts_event = rfc3339_ns(item["timestamp"]) if "timestamp" in item else ts_recv
        except KeyError as exc:
            raise ParseError(f"book without field {exc.args[0]}") from None
        return BookMessage(symbol, kind == "snapshot", bids, asks, ts_event, ts_recv, checksum)

    @staticmethod
    def _levels(value: Any, pp: int | None, qp: int | None, field: str) -> Levels:
        if type(value) is not list:
            raise ParseError(f"{field} is not a list of levels")
        out = []
        for level in value:
            if type(level) is not dict or "price" not in level or "qty" not in level:
                raise ParseError(f"invalid level in {field}: {level!r}"[:200])
            out.append([fmt(level["price"], pp, field), fmt(level["qty"], qp, field)])
        return out

    def trade(self, item: dict[str, Any], ts_recv: int) -> dict[str, Any]:
        """Return a Trade record from one ``trade`` data item.

        Sample::

            {"symbol": "MATIC/USD", "side": "buy", "price": 0.5147, "qty": 6423.46326, "ord_type": "limit",
             "trade_id": 4665846, "timestamp": "2023-09-25T07:48:36.925533Z"}

        ``side`` is the taker's; ``trade_id`` counts the pair's trades one by one.
        """
        try:
            symbol = _symbol(item["symbol"])
            side = item["side"]
            if side not in ("buy", "sell"):
                raise ParseError(f"invalid side {side!r}")
            pp, qp = self.precisions(symbol)
            return {
                "venue": VENUE, "symbol": symbol, "trade_id": _int(item["trade_id"], "trade_id"),
                "price": fmt(item["price"], pp, "price"), "qty": fmt(item["qty"], qp, "qty"),
                "side": side, "ts_event": rfc3339_ns(item["timestamp"]), "ts_recv": ts_recv,
            }
        except KeyError as exc:
            raise ParseError(f"trade without field {exc.args[0]}") from None

    def ticker(self, item: dict[str, Any], ts_recv: int) -> dict[str, Any]:
        """Return a BBO record from one ``ticker`` data item.

        Sample (trimmed)::

            {"symbol": "BTC/USD", "bid": 45283.5, "bid_qty": 0.1, "ask": 45285.2, "ask_qty": 0.001,
             "last": 45283.4, "volume": 1.2, "timestamp": "2023-10-06T17:35:55.440295Z"}

        The ticker has no update id: its ``timestamp`` in microseconds stands in for one (so the copies
        of one update on several connections are one BBO); without it, the receive time.
        """
        try:
            symbol = _symbol(item["symbol"])
            pp, qp = self.precisions(symbol)
            ts_event = rfc3339_ns(item["timestamp"]) if "timestamp" in item else ts_recv
            return {
                "venue": VENUE, "symbol": symbol, "update_id": ts_event // 1000,
                "bid_price": fmt(item["bid"], pp, "bid"), "bid_qty": fmt(item["bid_qty"], qp, "bid_qty"),
                "ask_price": fmt(item["ask"], pp, "ask"), "ask_qty": fmt(item["ask_qty"], qp, "ask_qty"),
                "ts_event": ts_event, "ts_recv": ts_recv,
            }
        except KeyError as exc:
            raise ParseError(f"ticker without field {exc.args[0]}") from None

    def instrument(self, data: Any) -> list[Pair]:
        """Remember the precisions of the pairs of an ``instrument`` message; return them.

        Sample (trimmed)::

            {"assets": [...], "pairs": [{"symbol": "BTC/USD", "base": "BTC", "quote": "USD",
             "price_precision": 1, "qty_precision": 8, "price_increment": 0.1, "qty_increment": 0.00000001}]}
        """
        if type(data) is not dict or type(data.get("pairs")) is not list:
            raise ParseError("instrument data without a pairs list")
        out = []
        try:
            for item in data["pairs"]:
                item = _obj(item)
                symbol = _symbol(item["symbol"])
                pair = Pair(
                    symbol, _asset(item["base"]), _asset(item["quote"]),
                    _precision(item["price_precision"]), _precision(item["qty_precision"]),
                    fmt(item["price_increment"], None, "price_increment"), fmt(item["qty_increment"], None, "qty_increment"),
                )
                self.pairs[symbol] = pair
                out.append(pair)
        except KeyError as exc:
            raise ParseError(f"instrument pair without field {exc.args[0]}") from None
        return out


def _obj(item: Any) -> dict[str, Any]:
    if type(item) is not dict:
        raise ParseError("data item is not a JSON object")
    return item


def _precision(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= 18:
        raise ParseError(f"invalid precision {value!r}")
    return value


def _asset(value: Any) -> str:
    if type(value) is not str or not value.isalnum() or len(value) > 16:
        raise ParseError(f"invalid asset {value!r}")
    return value
