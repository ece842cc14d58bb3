"""Coinbase Advanced Trade market data (the root path ``/``) over the simulator's one engine and flow.

Each engine symbol is also a Coinbase product (``BTCUSDT`` -> ``BTC-USDT``). As Coinbase documents:
one ``subscribe`` per channel (``level2`` answers as ``l2_data``: a snapshot of the whole book, then
updates with each changed level's ``new_quantity``; ``market_trades``: the last 50 trades, then each
trade; ``ticker``: best bid/offer; ``heartbeats``: one a second; ``status``: the products' reference
data), a ``subscriptions`` message after
each request, and ``{"type": "error"}`` for what Coinbase refuses. Every message carries the
connection's ``sequence_num`` (0, 1, 2, ... across all channels). Connections are
:class:`~sim_exchange.market_streams.Connection` s of the venue's one registry, so every websocket
fault applies to them, plus ``skip_sequence`` (the next message's number jumps).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from sim_exchange import metrics as m
from sim_exchange.engine import Engine, LevelChange, TopChange, TradeEvent
from sim_exchange.market_streams import Connection, MarketStreams
from sim_exchange.symbols import SymbolSpec

log = logging.getLogger("tickpipe.sim_exchange")

PATH = "/"
CHANNELS = ("level2", "market_trades", "ticker", "heartbeats", "status")
_HEARTBEAT_S = 1.0
_TRADE_SNAPSHOT = 50


def product_id(spec: SymbolSpec) -> str:
    """The Coinbase product of an engine symbol."""
    return f"{spec.base}-{spec.quote}"


def timestamp(ns: int) -> str:
    """RFC 3339 with nanoseconds, as Coinbase writes message times."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class CoinbaseStreams:
    """Every Coinbase subscription of the venue, and the numbered messages sent to them."""

    def __init__(self, streams: MarketStreams, engine: Engine, specs: dict[str, SymbolSpec]) -> None:
        self.streams = streams
        self.engine = engine
        self.products = {product_id(spec): spec for spec in specs.values()}
        self.sequence: dict[int, int] = {}
        self._heartbeats = 0
        self._last_ns = 0

    def _now_ns(self) -> int:
        # strictly increasing: the feed tells ticker messages apart by their timestamp
        self._last_ns = max(time.time_ns(), self._last_ns + 1000)
        return self._last_ns

    # ---------------------------------------------------------------- engine events
    def on_events(self, events: Iterable[LevelChange | TradeEvent | TopChange]) -> None:
        """Send one l2_data update per product whose levels changed, each trade, and each new best bid/offer."""
        now = time.monotonic()
        changes: dict[str, dict[tuple[str, int], int]] = {}
        for event in events:
            if isinstance(event, LevelChange):
                side = "bid" if event.side == "BUY" else "offer"
                changes.setdefault(event.symbol, {})[(side, event.price)] = event.qty
            elif isinstance(event, TradeEvent):
                spec = self.engine.book(event.symbol).spec
                name = f"coinbase/market_trades/{product_id(spec)}"
                if name in self.streams.streams:
                    self._send(name, "market_trades", [{"type": "update", "trades": [self._trade(spec, event)]}],
                               None, now)
            elif isinstance(event, TopChange) and event.bid_qty and event.ask_qty:
                spec = self.engine.book(event.symbol).spec
                name = f"coinbase/ticker/{product_id(spec)}"
                if name in self.streams.streams:
                    ticker = self._ticker(spec, event.bid_price, event.bid_qty, event.ask_price, event.ask_qty)
                    self._send(name, "ticker", [{"type": "update", "tickers": [ticker]}], None, now)
        for symbol, levels in changes.items():
            spec = self.engine.book(symbol).spec
            name = f"coinbase/level2/{product_id(spec)}"
            if name not in self.streams.streams:
                continue
            stamp = timestamp(time.time_ns())
            updates = [{"side": side, "event_time": stamp, "price_level": spec.price_str(price),
                        "new_quantity": spec.qty_str(qty)} for (side, price), qty in levels.items()]
            self._send(name, "l2_data", [{"type": "update", "product_id": product_id(spec), "updates": updates}],
                       symbol, now)

    @staticmethod
    def _trade(spec: SymbolSpec, event: TradeEvent) -> dict[str, Any]:
        return {"trade_id": str(event.trade_id), "product_id": product_id(spec), "price": spec.price_str(event.price),
                "size": spec.qty_str(event.qty), "side": "SELL" if event.buyer_is_maker else "BUY",
                "time": timestamp(event.time * 1_000_000)}

    @staticmethod
    def _ticker(spec: SymbolSpec, bid: int, bid_qty: int, ask: int, ask_qty: int) -> dict[str, Any]:
        return {"type": "ticker", "product_id": product_id(spec), "best_bid": spec.price_str(bid),
                "best_bid_quantity": spec.qty_str(bid_qty), "best_ask": spec.price_str(ask),
                "best_ask_quantity": spec.qty_str(ask_qty)}

    def _message(self, conn: Connection, channel: str, body_tail: bytes, stamp: str) -> bytes:
        seq = self.sequence.get(conn.id, 0)
        if conn.faulty:
            seq += conn.faults.take_skip_sequence()
        self.sequence[conn.id] = seq + 1
        return (f'{{"channel":"{channel}","client_id":"","timestamp":"{stamp}","sequence_num":{seq},'
                f'"events":').encode() + body_tail + b"}"

    def _send(self, name: str, channel: str, events: list[dict[str, Any]], depth_symbol: str | None,
              now: float) -> None:
        subscribers = self.streams.streams.get(name)
        if not subscribers:
            return
        tail = orjson.dumps(events)
        stamp = timestamp(self._now_ns())
        limit = self.streams.settings.max_queued_frames
        for conn in list(subscribers):
            conn.push(self._message(conn, channel, tail, stamp), depth_symbol, now)
            if len(conn.queue) > limit and not conn.closing:
                log.warning("slow consumer disconnected", extra={"conn": conn.id, "queued": len(conn.queue)})
                conn.abort()

    def _push(self, conn: Connection, channel: str, events: list[dict[str, Any]]) -> None:
        conn.push(self._message(conn, channel, orjson.dumps(events), timestamp(self._now_ns())), None,
                  time.monotonic())

    # ---------------------------------------------------------------- connections
    async def run_heartbeats(self) -> None:
        """Send a ``heartbeats`` message every second to each connection subscribed to them."""
        while True:
            await asyncio.sleep(_HEARTBEAT_S)
            self._heartbeats += 1
            subscribers = self.streams.streams.get("coinbase/heartbeats")
            for conn in list(subscribers or ()):
                now_ns = time.time_ns()
                self._push(conn, "heartbeats", [{"current_time": timestamp(now_ns),
                                                 "heartbeat_counter": self._heartbeats}])

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``GET /``: serve one client until it leaves."""
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        streams = self.streams
        conn = Connection(streams._next_conn_id, ws, request, False, time.monotonic(),
                          random.Random(streams.fault_rng.random()))
        streams._next_conn_id += 1
        streams.connections[conn.id] = conn
        m.WS_CONNECTIONS.set(len(streams.connections))
        log.info("websocket open", extra={"conn": conn.id, "path": conn.path, "protocol": "coinbase-advanced"})
        writer = asyncio.create_task(conn.writer(), name=f"coinbase-writer-{conn.id}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if not streams._count_inbound(conn):
                        m.DISCONNECTS.labels("inbound_rate").inc()
                        await ws.close(code=1008, message=b"Too many requests")
                        break
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
            log.exception("coinbase websocket handler failed", extra={"conn": conn.id})
        finally:
            writer.cancel()
            streams._drop_connection(conn)
            self.sequence.pop(conn.id, None)
            log.info("websocket closed", extra={"conn": conn.id, "frames_sent": conn.frames_sent})
        return ws

    def _request(self, conn: Connection, text: str) -> None:
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.reply({"type": "error", "message": "malformed JSON"})
            return
        kind = body.get("type") if isinstance(body, dict) else None
        channel = body.get("channel") if isinstance(body, dict) else None
        if kind not in ("subscribe", "unsubscribe") or channel not in CHANNELS:
            conn.reply({"type": "error", "message": f"Failed to {kind or 'parse'}: unknown channel {channel!r}"})
            return
        products = [] if channel == "heartbeats" else body.get("product_ids")
        if channel != "heartbeats" and (not isinstance(products, list) or not products):
            conn.reply({"type": "error", "message": "Failed to subscribe: product_ids required"})
            return
        unknown = [p for p in products if p not in self.products]
        if unknown:
            # the known products of the request are still subscribed
            conn.reply({"type": "error", "message": f"Failed to subscribe: unknown product_ids {unknown}"})
            products = [p for p in products if p in self.products]
            if not products:
                return
        names = [f"coinbase/{channel}/{p}" for p in products] or [f"coinbase/{channel}"]
        for name in names:
            if kind == "unsubscribe":
                self.streams._unsubscribe(conn, name)
            else:
                self.streams._subscribe(conn, name)
        if kind == "subscribe":
            for p in products:
                self._snapshot(conn, channel, self.products[p])
        subscribed: dict[str, list[str]] = {}
        for name in conn.streams:
            parts = name.split("/")
            if parts[0] == "coinbase":
                subscribed.setdefault(parts[1], []).extend(parts[2:])
        self._push(conn, "subscriptions", [{"subscriptions": subscribed}])

    def _snapshot(self, conn: Connection, channel: str, spec: SymbolSpec) -> None:
        book = self.engine.book(spec.symbol)
        pid = product_id(spec)
        if channel == "level2":
            _, bids, asks = book.snapshot(10**9)
            updates = [{"side": "bid", "event_time": "1970-01-01T00:00:00Z", "price_level": spec.price_str(p),
                        "new_quantity": spec.qty_str(q)} for p, q in bids]
            updates += [{"side": "offer", "event_time": "1970-01-01T00:00:00Z", "price_level": spec.price_str(p),
                         "new_quantity": spec.qty_str(q)} for p, q in asks]
            self._push(conn, "l2_data", [{"type": "snapshot", "product_id": pid, "updates": updates}])
        elif channel == "market_trades":
            last = book.last_trade_id
            trades = self.engine.trades_from(spec.symbol, max(1, last - _TRADE_SNAPSHOT + 1), _TRADE_SNAPSHOT)
            self._push(conn, "market_trades", [{"type": "snapshot",
                                                "trades": [self._trade(spec, t) for t in reversed(trades)]}])
        elif channel == "status":
            self._push(conn, "status", [{"type": "snapshot", "products": [{
                "product_type": "SPOT", "id": pid, "base_currency": spec.base, "quote_currency": spec.quote,
                "base_increment": format(spec.step_size.normalize(), "f"),
                "quote_increment": format(spec.tick_size.normalize(), "f"),
                "display_name": f"{spec.base}/{spec.quote}", "status": "online", "status_message": "",
            }]}])
        elif channel == "ticker" and book.top[1] and book.top[3]:
            self._push(conn, "ticker", [{"type": "snapshot", "tickers": [self._ticker(spec, *book.top)]}])
