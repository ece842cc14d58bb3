"""Pure Binance spot parsers: frame text -> normalized records. No clock, no socket.

Accepts raw single-stream frames and combined-stream envelopes ``{"stream": ..., "data": ...}``.
Prices and quantities stay the venue's exact decimal strings (validated, never converted to float).
Anything undocumented raises :class:`producers.errors.ParseError` (and only that).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from producers.binance.enums import VENUE, EventType
from producers.errors import ParseError
from producers.venue import Channel, Diff, Levels, Parsed, Snapshot

_DECIMAL = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,30})?").fullmatch
_MS_TO_NS = 1_000_000
_MAX_ID = 2**53
_MAX_MS = 9_000_000_000_000  # year 2255; keeps ms * 1e6 inside an Avro long
_SHUTDOWN: Parsed = (Channel.SHUTDOWN, None)
_CONTROL: Parsed = (Channel.CONTROL, None)
# bound once: an enum member lookup (``Channel.TRADE``) costs ~0.1 us on Python 3.11, per frame here
_TRADE, _DEPTH, _BBO = Channel.TRADE, Channel.DEPTH, Channel.BBO


def _decimal(value: Any, field: str) -> str:
    if type(value) is not str or _DECIMAL(value) is None:
        raise ParseError(f"invalid decimal in {field}: {value!r}")
    return value


def _int(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_ID:
        raise ParseError(f"invalid integer in {field}: {value!r}")
    return value


def _ms(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_MS:
        raise ParseError(f"invalid millisecond time in {field}: {value!r}")
    return value * _MS_TO_NS


# Every level list at once, in C: orjson re-serializes the parsed list compactly, and one regex over
# that text checks each level is a 2-list of valid decimal strings (50-100 levels per depth update;
# 4x the per-level loop). A string with an escape, a number or a nested value cannot match; the loop
# below then names the culprit. Possessive quantifiers: same language, no backtracking.
_DEC = rb"[0-9]{1,30}+(?:\.[0-9]{1,30}+)?+"
_LEVEL = rb'\["' + _DEC + rb'","' + _DEC + rb'"\]'
_VALID_LEVELS = re.compile(rb"\[(?:" + _LEVEL + rb"(?:," + _LEVEL + rb")*+)?+\]").fullmatch


def _levels(value: Any, field: str) -> Levels:
    if type(value) is not list:
        raise ParseError(f"{field} is not a list of levels")
    try:
        if _VALID_LEVELS(orjson.dumps(value)) is not None:
            return value
    except orjson.JSONEncodeError:
        pass  # not JSON-able (only possible for input that did not come from orjson): the loop decides
    for level in value:
        if type(level) is not list or len(level) != 2:
            raise ParseError(f"invalid level in {field}: {level!r}")
        price, qty = level
        if not (type(price) is str and type(qty) is str and _DECIMAL(price) and _DECIMAL(qty)):
            _decimal(price, field)
            _decimal(qty, field)
    return value


def _symbol(value: Any) -> str:
    if type(value) is not str or not value.isalnum():
        raise ParseError(f"invalid symbol {value!r}")
    return value


def parse_trade(msg: dict[str, Any], ts_recv: int) -> dict[str, Any]:
    """Return a Trade record from a ``<symbol>@trade`` payload.

    Sample (trimmed)::

        {"e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345, "p": "0.001",
         "q": "100", "T": 1672515782136, "m": true, "M": true}

    ``m`` is "buyer is the maker", so the aggressor sold; ``T`` (trade time, ms) is ``ts_event``.
    """
    try:
        maker, price, qty = msg["m"], msg["p"], msg["q"]
        if type(maker) is not bool:
            raise ParseError(f"invalid m: {maker!r}")
        # one inline check for both decimals (the hot path); _decimal names the culprit otherwise
        if type(price) is not str or type(qty) is not str or not (_DECIMAL(price) and _DECIMAL(qty)):
            _decimal(price, "p")
            _decimal(qty, "q")
        return {
            "venue": VENUE,
            "symbol": _symbol(msg["s"]),
            "trade_id": _int(msg["t"], "t"),
            "price": price,
            "qty": qty,
            "side": "sell" if maker else "buy",
            "ts_event": _ms(msg["T"], "T"),
            "ts_recv": ts_recv,
        }
    except KeyError as exc:
        raise ParseError(f"trade without field {exc.args[0]}") from None


def parse_depth(msg: dict[str, Any], ts_recv: int) -> Diff:
    """Return a :class:`Diff` from a ``<symbol>@depth@100ms`` payload.

    Sample (trimmed)::

        {"e": "depthUpdate", "E": 1672515782136, "s": "BNBBTC", "U": 157, "u": 160,
         "b": [["0.0024", "10"]], "a": [["0.0026", "100"]]}

    ``U``..``u`` are the first and last update ids in the event; quantities are absolute, "0" removes.
    """
    try:
        first, last = _int(msg["U"], "U"), _int(msg["u"], "u")
        if first > last:
            raise ParseError(f"depth update with U {first} > u {last}")
        return Diff(
            _symbol(msg["s"]), first, last, _levels(msg["b"], "b"), _levels(msg["a"], "a"),
            _ms(msg["E"], "E"), ts_recv,
        )
    except KeyError as exc:
        raise ParseError(f"depthUpdate without field {exc.args[0]}") from None


def parse_book_ticker(msg: dict[str, Any], ts_recv: int) -> dict[str, Any]:
    """Return a BBO record from a ``<symbol>@bookTicker`` payload.

    Sample::

        {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
         "a": "25.36520000", "A": "40.66000000"}

    Spot book tickers carry no event time, so ``ts_event`` is the receive time.
    """
    try:
        b, bq, a, aq = msg["b"], msg["B"], msg["a"], msg["A"]
        if not (type(b) is str and type(bq) is str and type(a) is str and type(aq) is str
                and _DECIMAL(b) and _DECIMAL(bq) and _DECIMAL(a) and _DECIMAL(aq)):
            for value, field in ((b, "b"), (bq, "B"), (a, "a"), (aq, "A")):
                _decimal(value, field)
        return {
            "venue": VENUE,
            "symbol": _symbol(msg["s"]),
            "update_id": _int(msg["u"], "u"),
            "bid_price": b,
            "bid_qty": bq,
            "ask_price": a,
            "ask_qty": aq,
            "ts_event": ts_recv,
            "ts_recv": ts_recv,
        }
    except KeyError as exc:
        raise ParseError(f"bookTicker without field {exc.args[0]}") from None


# Fast path for the two hot frame types in Binance's exact compact layout (what the venue sends):
# one regex both validates and extracts every field. Anything else - other key order, spaces,
# escapes, out-of-range numbers - does not match and takes the general path below, which decides.
_D = r"([0-9]{1,30}(?:\.[0-9]{1,30})?)"
_ID = r"(0|[1-9][0-9]{0,14})"
_MS = r"(0|[1-8][0-9]{12}|[1-9][0-9]{0,11})"
_ENVELOPE = r'(\{"stream":"[a-z0-9]{1,30}@[A-Za-z0-9@]{1,30}","data":)?'
_FAST_TRADE = re.compile(
    _ENVELOPE + r'\{"e":"trade","E":' + _MS + r',"s":"([A-Z0-9]{1,30})","t":' + _ID + r',"p":"' + _D
    + r'","q":"' + _D + r'","T":' + _MS + r',"m":(true|false),"M":(?:true|false)\}(?(1)\})'
).fullmatch
_FAST_TICKER = re.compile(
    _ENVELOPE + r'\{"u":' + _ID + r',"s":"([A-Z0-9]{1,30})","b":"' + _D + r'","B":"' + _D + r'","a":"' + _D
    + r'","A":"' + _D + r'"\}(?(1)\})'
).fullmatch


def _fast(data: str, ts_recv: int) -> Parsed | None:
    m = _FAST_TRADE(data)
    if m is not None:
        _, _, symbol, tid, price, qty, trade_ms, maker = m.groups()
        return _TRADE, {
            "venue": VENUE, "symbol": symbol, "trade_id": int(tid), "price": price, "qty": qty,
            "side": "sell" if maker == "true" else "buy", "ts_event": int(trade_ms) * _MS_TO_NS, "ts_recv": ts_recv,
        }
    m = _FAST_TICKER(data)
    if m is not None:
        _, uid, symbol, b, bq, a, aq = m.groups()
        return _BBO, {
            "venue": VENUE, "symbol": symbol, "update_id": int(uid), "bid_price": b, "bid_qty": bq,
            "ask_price": a, "ask_qty": aq, "ts_event": ts_recv, "ts_recv": ts_recv,
        }
    return None


def parse_frame(data: str | bytes, ts_recv: int) -> Parsed:
    """Parse one websocket frame (raw or combined envelope) into ``(Channel, payload)``.

    Control frames: ``{"result": null, "id": 1}`` (subscribe ack) -> CONTROL;
    ``{"e": "serverShutdown", "E": ...}`` (optionally under ``"event"``) -> SHUTDOWN.
    """
    if type(data) is str:
        fast = _fast(data, ts_recv)
        if fast is not None:
            return fast
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc}") from None
    if type(msg) is not dict:
        raise ParseError("frame is not a JSON object")
    if "data" in msg and "stream" in msg:
        msg = msg["data"]
        if type(msg) is not dict:
            raise ParseError("combined-stream data is not a JSON object")
    kind = msg.get("e")
    if kind == EventType.DEPTH_UPDATE:
        return _DEPTH, parse_depth(msg, ts_recv)
    if kind == EventType.TRADE:
        return _TRADE, parse_trade(msg, ts_recv)
    if kind is None and "u" in msg and "B" in msg:
        return _BBO, parse_book_ticker(msg, ts_recv)
    if kind == EventType.SERVER_SHUTDOWN:
        return _SHUTDOWN
    event = msg.get("event")
    if type(event) is dict and event.get("e") == EventType.SERVER_SHUTDOWN:
        return _SHUTDOWN
    if "result" in msg and "id" in msg:
        return _CONTROL
    if "error" in msg:
        raise ParseError(f"venue error frame: {msg['error']!r}")
    raise ParseError(f"unknown frame type {kind!r}")


def parse_snapshot(data: str | bytes, symbol: str, ts_recv: int) -> Snapshot:
    """Parse a ``GET /api/v3/depth`` body.

    Sample (trimmed)::

        {"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]],
         "asks": [["4.00000200", "12.00000000"]]}
    """
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"snapshot is not JSON: {exc}", symbol) from None
    if type(msg) is not dict:
        raise ParseError("snapshot is not a JSON object", symbol)
    try:
        return Snapshot(
            symbol, _int(msg["lastUpdateId"], "lastUpdateId"),
            _levels(msg["bids"], "bids"), _levels(msg["asks"], "asks"), ts_recv,
        )
    except KeyError as exc:
        raise ParseError(f"snapshot without field {exc.args[0]}", symbol) from None
    except ParseError as exc:
        raise ParseError(exc.reason, symbol) from None


def parse_historical_trades(data: str | bytes, symbol: str, ts_recv: int) -> list[dict[str, Any]]:
    """Parse a ``GET /api/v3/historicalTrades`` body into Trade records, in the venue's (id) order.

    Sample (trimmed)::

        [{"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
          "time": 1499865549590, "isBuyerMaker": true, "isBestMatch": true}]

    Same meaning as the ``@trade`` stream: ``isBuyerMaker`` true -> the aggressor sold.
    """
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"historical trades are not JSON: {exc}", symbol) from None
    if type(msg) is not list:
        raise ParseError("historical trades are not a JSON list", symbol)
    trades = []
    try:
        for item in msg:
            maker = item["isBuyerMaker"]
            if type(maker) is not bool:
                raise ParseError(f"invalid isBuyerMaker: {maker!r}", symbol)
            trades.append({
                "venue": VENUE, "symbol": symbol, "trade_id": _int(item["id"], "id"),
                "price": _decimal(item["price"], "price"), "qty": _decimal(item["qty"], "qty"),
                "side": "sell" if maker else "buy", "ts_event": _ms(item["time"], "time"), "ts_recv": ts_recv,
            })
    except (KeyError, TypeError) as exc:
        raise ParseError(f"historical trade without field {exc.args[0]}", symbol) from None
    except ParseError as exc:
        raise ParseError(exc.reason, symbol) from None
    return trades


def parse_exchange_info(data: str | bytes, symbol: str, ts_recv: int) -> dict[str, Any]:
    """Parse a ``GET /api/v3/exchangeInfo?symbol=`` body into ``symbol``'s Instrument record.

    Sample (trimmed)::

        {"serverTime": 1565246363776, "symbols": [{"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00000100"},
                     {"filterType": "LOT_SIZE", "stepSize": "0.00100000"}]}]}
    """
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"exchangeInfo is not JSON: {exc}", symbol) from None
    try:
        item = next(s for s in msg["symbols"] if type(s) is dict and s.get("symbol") == symbol)
        filters = {f["filterType"]: f for f in item["filters"] if type(f) is dict}
        return {
            "venue": VENUE, "symbol": symbol, "base": _symbol(item["baseAsset"]), "quote": _symbol(item["quoteAsset"]),
            "tick_size": _decimal(filters["PRICE_FILTER"]["tickSize"], "tickSize"),
            "lot_size": _decimal(filters["LOT_SIZE"]["stepSize"], "stepSize"),
            "ts_event": _ms(msg["serverTime"], "serverTime") if "serverTime" in msg else ts_recv, "ts_recv": ts_recv,
        }
    except StopIteration:
        raise ParseError(f"exchangeInfo without symbol {symbol}", symbol) from None
    except (KeyError, TypeError) as exc:
        raise ParseError(f"exchangeInfo without field {exc}", symbol) from None
    except ParseError as exc:
        raise ParseError(exc.reason, symbol) from None
