"""Kraken spot WebSocket v2 market data (``/v2``) over the simulator's one engine and flow.

Each engine symbol is also a Kraken pair (``BTCUSDT`` -> ``BTC/USDT``) with Kraken's precisions:
the decimals of the symbol's tick and lot. As Kraken documents: ``instrument`` (pair precisions),
``book`` (snapshot of the subscribed depth, then updates of the levels that changed within it, each
with the CRC32 checksum of the top 10; a level pushed out of the depth by an insert is not sent, the
client truncates), ``trade`` (``side`` = taker), ``ticker`` (best bid/offer), ``heartbeat`` every
second, ``status`` on connect, subscribe acknowledgements and Kraken's error replies. Connections are
:class:`~sim_exchange.market_streams.Connection` s of the venue's one registry, so every websocket
fault applies to them, plus ``bad_checksum`` (a wrong checksum on the next book messages).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zlib import crc32

import orjson
from aiohttp import WSMsgType, web

from sim_exchange import metrics as m
from sim_exchange.engine import Engine, LevelChange, TopChange, TradeEvent
from sim_exchange.market_streams import Connection, MarketStreams
from sim_exchange.symbols import E8, SymbolSpec

log = logging.getLogger("tickpipe.sim_exchange")

PATH = "/v2"
DEPTHS = (10, 25, 100, 500, 1000)
_HEARTBEAT_S = 1.0
_CHECKSUM_LEVELS = 10


def precision_of(value_e8: int) -> int:
    """Return the decimals of an e8 grid step (``1000000`` = 0.01 -> 2)."""
    places = 8
    while places and value_e8 % 10 == 0:
        value_e8 //= 10
        places -= 1
    return places


@dataclass(frozen=True, slots=True)
class KrakenPair:
    """An engine symbol seen as a Kraken pair: its name and the precisions of its prices and quantities."""

    spec: SymbolSpec
    name: str
    price_precision: int
    qty_precision: int

    @classmethod
    def of(cls, spec: SymbolSpec) -> KrakenPair:
        return cls(spec, f"{spec.base}/{spec.quote}", precision_of(spec.tick_e8), precision_of(spec.step_e8))

    def price(self, ticks: int) -> str:
        return _fixed(ticks * self.spec.tick_e8, self.price_precision)

    def qty(self, lots: int) -> str:
        return _fixed(lots * self.spec.step_e8, self.qty_precision)

    def info(self) -> dict[str, Any]:
        return {
            "symbol": self.name, "base": self.spec.base, "quote": self.spec.quote, "status": "online",
            "qty_precision": self.qty_precision, "qty_increment": float(self.spec.step_size),
            "price_precision": self.price_precision, "price_increment": float(self.spec.tick_size),
            "tick_size": float(self.spec.tick_size), "cost_precision": 5, "marginable": False, "has_index": False,
            "cost_min": float(self.spec.min_notional), "qty_min": float(self.spec.step_size),
        }


def _fixed(value_e8: int, places: int) -> str:
    whole, frac = divmod(value_e8, E8)
    return f"{whole}.{frac:08d}"[: len(str(whole)) + 1 + places] if places else str(whole)


def _strip(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken's book checksum of levels best first (written independently of the feed's code)."""
    text = "".join(_strip(p) + _strip(q) for p, q in asks[:_CHECKSUM_LEVELS])
    text += "".join(_strip(p) + _strip(q) for p, q in bids[:_CHECKSUM_LEVELS])
    return crc32(text.encode()) & 0xFFFFFFFF


def timestamp(us: int) -> str:
    """RFC 3339 with microseconds, as Kraken writes times."""
    seconds, micros = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def _levels_json(levels: Iterable[tuple[str, str]]) -> str:
    # Kraken writes prices and quantities as JSON numbers in full precision: the text goes in as is
    return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"


@dataclass(slots=True)
class BookView:
    """What subscribers of one pair at one depth were last sent: price ticks -> lots, per side."""

    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """A client request decided: the replies, and the subscriptions it adds or removes."""

    replies: list[dict[str, Any]]
    subscribe: tuple[tuple[str, str, int], ...] = ()
    unsubscribe: tuple[tuple[str, str, int], ...] = ()


_CHANNELS = ("book", "trade", "ticker", "instrument", "heartbeat")


def handle_request(text: str, pairs: dict[str, KrakenPair], now_us: int) -> Request:
    """Decide one v2 request (``subscribe``, ``unsubscribe``, ``ping``); Kraken's error texts."""
    times = {"time_in": timestamp(now_us), "time_out": timestamp(now_us)}
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Request([{"error": "Malformed request", "success": False, **times}])
    if not isinstance(body, dict):
        return Request([{"error": "Malformed request", "success": False, **times}])
    method, req_id, params = body.get("method"), body.get("req_id"), body.get("params") or {}
    base = {"method": method, **({"req_id": req_id} if req_id is not None else {}), **times}
    if method == "ping":
        return Request([{**base, "method": "pong"}])
    if method not in ("subscribe", "unsubscribe") or not isinstance(params, dict):
        return Request([{**base, "error": f"Method not supported: {method}", "success": False}])
    channel = params.get("channel")
    if channel not in _CHANNELS:
        return Request([{**base, "error": f"Channel not supported: {channel}", "success": False}])
    if channel in ("instrument", "heartbeat"):
        result = {"channel": channel, "snapshot": True}
        key = (channel, "", 0)
        return Request([{**base, "result": result, "success": True}],
                       (key,) if method == "subscribe" else (), (key,) if method == "unsubscribe" else ())
    symbols = params.get("symbol")
    if not isinstance(symbols, list) or not symbols:
        return Request([{**base, "error": "Missing field: symbol", "success": False}])
    depth = params.get("depth", 10) if channel == "book" else 0
    if channel == "book" and depth not in DEPTHS:
        return Request([{**base, "error": f"Invalid depth: {depth}", "success": False}])
    replies, keys = [], []
    for symbol in symbols:
        if symbol not in pairs:
            replies.append({**base, "error": f"Currency pair not supported {symbol}", "success": False, "symbol": symbol})
            continue
        result: dict[str, Any] = {"channel": channel, "symbol": symbol, "snapshot": params.get("snapshot", True)}
        if channel == "book":
            result["depth"] = depth
        replies.append({**base, "result": result, "success": True})
        keys.append((channel, symbol, depth))
    if method == "subscribe":
        return Request(replies, subscribe=tuple(keys))
    return Request(replies, unsubscribe=tuple(keys))


class KrakenStreams:
    """Every Kraken v2 subscription of the venue and the frames sent to them."""

    def __init__(self, streams: MarketStreams, engine: Engine, specs: dict[str, SymbolSpec],
                 clock_ms: Callable[[], int]) -> None:
        self.streams = streams
        self.engine = engine
        self.clock_ms = clock_ms
        self.pairs = {p.name: p for p in map(KrakenPair.of, specs.values())}
        self.by_engine = {p.spec.symbol: p for p in self.pairs.values()}
        self.views: dict[tuple[str, int], BookView] = {}
        self._last_us: dict[str, int] = {}

    # ---------------------------------------------------------------- engine events
    def on_events(self, events: Iterable[LevelChange | TradeEvent | TopChange]) -> None:
        """Send trades and tickers at once, then one book update per pair and depth whose view changed."""
        now = time.monotonic()
        dirty: set[str] = set()
        for event in events:
            if isinstance(event, LevelChange):
                dirty.add(event.symbol)
            elif isinstance(event, TradeEvent):
                self._trade(event, now)
            elif isinstance(event, TopChange):
                self._ticker(event, now)
        for (name, depth), view in list(self.views.items()):
            pair = self.pairs[name]
            if pair.spec.symbol in dirty:
                self._book_update(pair, depth, view, now)

    def _us(self, symbol: str) -> int:
        # strictly increasing per pair: the feed tells ticker updates apart by their timestamp
        us = max(time.time_ns() // 1000, self._last_us.get(symbol, 0) + 1)
        self._last_us[symbol] = us
        return us

    def _trade(self, event: TradeEvent, now: float) -> None:
        pair = self.by_engine[event.symbol]
        name = f"kraken/trade/{pair.name}"
        if name not in self.streams.streams:
            return
        side = "sell" if event.buyer_is_maker else "buy"
        item = (f'{{"symbol":"{pair.name}","side":"{side}","price":{pair.price(event.price)},'
                f'"qty":{pair.qty(event.qty)},"ord_type":"market","trade_id":{event.trade_id},'
                f'"timestamp":"{timestamp(event.time * 1000)}"}}')
        self._send(name, f'{{"channel":"trade","type":"update","data":[{item}]}}'.encode(), None, now)

    def _ticker(self, event: TopChange, now: float) -> None:
        pair = self.by_engine[event.symbol]
        name = f"kraken/ticker/{pair.name}"
        if name not in self.streams.streams or not (event.bid_qty and event.ask_qty):
            return
        self._send(name, self._ticker_frame(pair, event.bid_price, event.bid_qty, event.ask_price, event.ask_qty,
                                            "update"), None, now)

    def _ticker_frame(self, pair: KrakenPair, bid: int, bid_qty: int, ask: int, ask_qty: int, kind: str) -> bytes:
        item = (f'{{"symbol":"{pair.name}","bid":{pair.price(bid)},"bid_qty":{pair.qty(bid_qty)},'
                f'"ask":{pair.price(ask)},"ask_qty":{pair.qty(ask_qty)},'
                f'"timestamp":"{timestamp(self._us(pair.name))}"}}')
        return f'{{"channel":"ticker","type":"{kind}","data":[{item}]}}'.encode()

    def _top(self, pair: KrakenPair, depth: int) -> BookView:
        _, bids, asks = self.engine.book(pair.spec.symbol).snapshot(depth)
        return BookView(dict(bids), dict(asks))

    def _book_frame(self, pair: KrakenPair, kind: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]],
                    view: BookView, checksum_value: int | None = None) -> bytes:
        top_b = sorted(view.bids.items(), reverse=True)[:_CHECKSUM_LEVELS]
        top_a = sorted(view.asks.items())[:_CHECKSUM_LEVELS]
        value = checksum_value if checksum_value is not None else checksum(
            [(pair.price(p), pair.qty(q)) for p, q in top_a], [(pair.price(p), pair.qty(q)) for p, q in top_b])
        fmt = pair.price, pair.qty
        stamp = "" if kind == "snapshot" else f',"timestamp":"{timestamp(time.time_ns() // 1000)}"'
        return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{pair.name}",'
                f'"bids":{_levels_json((fmt[0](p), fmt[1](q)) for p, q in bids)},'
                f'"asks":{_levels_json((fmt[0](p), fmt[1](q)) for p, q in asks)},'
                f'"checksum":{value}{stamp}}}]}}').encode()

    def _book_update(self, pair: KrakenPair, depth: int, view: BookView, now: float) -> None:
        new = self._top(pair, depth)
        engine_book = self.engine.book(pair.spec.symbol)
        changes = []
        for old_side, new_side, live in ((view.bids, new.bids, engine_book.bids.sizes),
                                         (view.asks, new.asks, engine_book.asks.sizes)):
            side = [(p, q) for p, q in new_side.items() if old_side.get(p) != q]
            # a level gone from the book is sent as 0; one only pushed beyond the depth is not sent
            side += [(p, 0) for p in old_side if p not in new_side and p not in live]
            changes.append(side)
        if not changes[0] and not changes[1]:
            return
        self.views[(pair.name, depth)] = new
        payload = self._book_frame(pair, "update", changes[0], changes[1], new)
        name = f"kraken/book/{depth}/{pair.name}"
        self._send(name, payload, pair.spec.symbol, now,
                   corrupt=lambda: self._book_frame(pair, "update", changes[0], changes[1], new,
                                                    (checksum_of(payload) + 1) & 0xFFFFFFFF))

    def _send(self, name: str, payload: bytes, depth_symbol: str | None, now: float,
              corrupt: Callable[[], bytes] | None = None) -> None:
        subscribers = self.streams.streams.get(name)
        if not subscribers:
            return
        limit = self.streams.settings.max_queued_frames
        bad: bytes | None = None
        for conn in list(subscribers):
            frame = payload
            if corrupt is not None and conn.faulty and conn.faults.take_bad_checksum(depth_symbol):
                bad = bad if bad is not None else corrupt()
                frame = bad
            conn.push(frame, depth_symbol, now)
            if len(conn.queue) > limit and not conn.closing:
                log.warning("slow consumer disconnected", extra={"conn": conn.id, "queued": len(conn.queue)})
                conn.abort()

    # ---------------------------------------------------------------- connections
    async def run_heartbeats(self) -> None:
        """Send ``{"channel":"heartbeat"}`` every second to each connection subscribed to anything."""
        frame = b'{"channel":"heartbeat"}'
        while True:
            await asyncio.sleep(_HEARTBEAT_S)
            now = time.monotonic()
            for conn in list(self.streams.connections.values()):
                if conn.path == PATH and conn.streams and not conn.closing:
                    conn.push(frame, None, now)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``GET /v2``: serve one client until it leaves."""
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        streams = self.streams
        conn = Connection(streams._next_conn_id, ws, request, False, time.monotonic(),
                          random.Random(streams.fault_rng.random()))
        streams._next_conn_id += 1
        streams.connections[conn.id] = conn
        m.WS_CONNECTIONS.set(len(streams.connections))
        log.info("websocket open", extra={"conn": conn.id, "path": conn.path, "protocol": "kraken-v2"})
        conn.reply({"channel": "status", "type": "update", "data": [
            {"api_version": "v2", "connection_id": conn.id, "system": "online", "version": "2.0.0"}]})
        writer = asyncio.create_task(conn.writer(), name=f"kraken-writer-{conn.id}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if not streams._count_inbound(conn):
                        m.ERRORS.labels("kraken_rate").inc()
                        conn.reply({"error": "Exceeded msg rate", "success": False})
                        continue
                    self._request(conn, msg.data)
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG and bytes(msg.data) in conn.ping_payloads:
                    conn.ping_payloads.clear()
                    conn.last_pong = time.monotonic()
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            m.ERRORS.labels("ws").inc()
            log.exception("kraken websocket handler failed", extra={"conn": conn.id})
        finally:
            writer.cancel()
            streams._drop_connection(conn)
            log.info("websocket closed", extra={"conn": conn.id, "frames_sent": conn.frames_sent})
        return ws

    def _request(self, conn: Connection, text: str) -> None:
        request = handle_request(text, self.pairs, time.time_ns() // 1000)
        for reply in request.replies:
            conn.reply(reply)
        for channel, symbol, depth in request.unsubscribe:
            self.streams._unsubscribe(conn, self._name(channel, symbol, depth))
        now = time.monotonic()
        for channel, symbol, depth in request.subscribe:
            name = self._name(channel, symbol, depth)
            self.streams._subscribe(conn, name)
            if channel == "instrument":
                data = {"assets": [], "pairs": [p.info() for p in self.pairs.values()]}
                conn.push(orjson.dumps({"channel": "instrument", "type": "snapshot", "data": data}), None, now)
            elif channel == "book":
                pair = self.pairs[symbol]
                view = self.views.get((symbol, depth))
                if view is None:
                    view = self.views[(symbol, depth)] = self._top(pair, depth)
                bids = sorted(view.bids.items(), reverse=True)
                asks = sorted(view.asks.items())
                conn.push(self._book_frame(pair, "snapshot", bids, asks, view), None, now)
            elif channel == "ticker":
                pair = self.pairs[symbol]
                bid_p, bid_q, ask_p, ask_q = self.engine.book(pair.spec.symbol).top
                if bid_q and ask_q:
                    conn.push(self._ticker_frame(pair, bid_p, bid_q, ask_p, ask_q, "snapshot"), None, now)

    @staticmethod
    def _name(channel: str, symbol: str, depth: int) -> str:
        if channel == "book":
            return f"kraken/book/{depth}/{symbol}"
        return f"kraken/{channel}/{symbol}" if symbol else f"kraken/{channel}"


def checksum_of(frame: bytes) -> int:
    """The ``checksum`` of a book frame this module wrote."""
    return int(frame.rsplit(b'"checksum":', 1)[1].split(b",", 1)[0].split(b"}", 1)[0])
