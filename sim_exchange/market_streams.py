"""The simulated exchange's market-data websockets: connections, subscriptions, frames, depth diffs.

Engine events become frames as soon as an operation returns: trades and bookTicker go out at once,
level changes are buffered and sent as depth diffs every 100 ms / 1000 ms. Each connection has an
outbound queue drained by its own writer task, so a slow reader backs up into its queue and is
dropped past ``max_queued_frames``. Subscribe / unsubscribe / property commands follow Binance's
websocket protocol (:func:`handle_command` is the pure part).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from infra.settings import SimExchangeSettings
from sim_exchange import metrics as m
from sim_exchange import payloads
from sim_exchange.engine import LevelChange, TopChange, TradeEvent
from sim_exchange.faults import ConnectionFaults
from sim_exchange.symbols import SymbolSpec

log = logging.getLogger("tickpipe.sim_exchange")

STREAM_KINDS = ("trade", "depth", "depth@100ms", "depth@1000ms", "bookTicker")
_WRITE_BATCH = 256
_WRITE_BUFFER_LIMIT = 1 << 20
_COMMANDS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"


@dataclass(slots=True)
class DepthBuffer:
    """Level changes of one symbol since the last depth diff: first/last update id, newest qty per price."""

    first: int | None = None
    last: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)

    def add(self, change: LevelChange) -> None:
        if self.first is None:
            self.first = change.update_id
        self.last = change.update_id
        (self.bids if change.side == "BUY" else self.asks)[change.price] = change.qty

    def take(self) -> tuple[int, int, dict[int, int], dict[int, int]] | None:
        """Return ``(first, last, bids, asks)`` and start empty, or None when nothing changed."""
        if self.first is None:
            return None
        out = (self.first, self.last, self.bids, self.asks)
        self.first, self.bids, self.asks = None, {}, {}
        return out


@dataclass(frozen=True)
class CommandResult:
    """What a client's command does: the reply, and the subscription / property changes to make."""

    reply: dict[str, Any]
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    combined: bool | None = None


def handle_command(text: str, subscribed: set[str], combined: bool, valid: Callable[[str], bool],
                   max_streams: int) -> CommandResult:
    """Decide a websocket command (Binance's error codes: 3 bad JSON, 2 bad request, 1 bad value type)."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return CommandResult({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None})
    if not isinstance(body, dict):
        return CommandResult({"error": {"code": 3, "msg": "Invalid JSON: expected an object"}, "id": None})
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, (int, str)):
        return CommandResult({"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                              "id": None})
    method, params = body.get("method"), body.get("params", [])
    if not isinstance(params, list):
        return CommandResult({"error": {"code": 1, "msg": "Invalid value type: expected a list of strings"},
                              "id": request_id})
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        bad = [p for p in params if not isinstance(p, str) or not valid(p)]
        if bad:
            return CommandResult({"error": {"code": 2, "msg": f"Invalid request: invalid stream name(s) {bad}"},
                                  "id": request_id})
        if method == "UNSUBSCRIBE":
            return CommandResult({"result": None, "id": request_id}, unsubscribe=tuple(params))
        if len(subscribed | set(params)) > max_streams:
            return CommandResult({"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": request_id})
        return CommandResult({"result": None, "id": request_id}, subscribe=tuple(params))
    if method == "LIST_SUBSCRIPTIONS":
        return CommandResult({"result": sorted(subscribed), "id": request_id})
    if method == "SET_PROPERTY" and len(params) == 2 and params[0] == "combined" and isinstance(params[1], bool):
        return CommandResult({"result": None, "id": request_id}, combined=params[1])
    if method == "GET_PROPERTY" and params == ["combined"]:
        return CommandResult({"result": combined, "id": request_id})
    return CommandResult({"error": {"code": 2, "msg": f"Invalid request: unknown variant `{method}`, expected one of "
                                    f"{_COMMANDS}"}, "id": request_id})


class Connection:
    """One websocket client: its subscriptions, outbound queue, ping state and fault state."""

    def __init__(self, conn_id: int, ws: web.WebSocketResponse, request: web.Request, combined: bool, now: float,
                 rng: random.Random) -> None:
        self.id = conn_id
        self.ws = ws
        self.request = request
        self.path = request.path_qs
        self.combined = combined
        self.streams: set[str] = set()
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.opened = now
        self.last_pong = now
        self.last_ping = now
        self.ping_payloads: set[bytes] = set()
        self.inbound: deque[float] = deque()
        self.faults = ConnectionFaults(rng)
        self.frames_sent = 0
        self.closing = False
        self.faulty = False

    def push(self, frame: bytes, depth_symbol: str | None, now: float) -> None:
        if self.faulty:
            for out in self.faults.plan(frame, depth_symbol, now):
                self.queue.append(out)
        else:
            self.queue.append(frame)
        self.wake.set()

    def reply(self, body: Any) -> None:
        if self.faults.stalled(time.monotonic()):
            return  # a stalled connection sends nothing at all
        self.queue.append(orjson.dumps(body))
        self.wake.set()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.wake.set()

    async def writer(self) -> None:
        # aiohttp writes uncompressed frames without draining: yield after each batch and wait
        # while the socket buffer is full, so a slow reader backs up into ``queue`` (and is dropped)
        ws = self.ws
        while not ws.closed:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            transport = self.request.transport
            if transport is None or transport.is_closing():
                return
            sent = 0
            while self.queue and sent < _WRITE_BATCH:
                await ws.send_frame(self.queue.popleft(), WSMsgType.TEXT)
                sent += 1
            self.frames_sent += sent
            m.WS_FRAMES.inc(sent)
            await asyncio.sleep(0)
            while transport.get_write_buffer_size() > _WRITE_BUFFER_LIMIT and not transport.is_closing():
                await asyncio.sleep(0.005)

    def info(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "combined": self.combined,
            "streams": sorted(self.streams),
            "age_s": round(now - self.opened, 3),
            "frames_sent": self.frames_sent,
            "queued": len(self.queue),
            "stalled": self.faults.stalled(now),
        }


class MarketStreams:
    """Every market-data connection and subscription of the venue, and the frames sent to them."""

    def __init__(self, settings: SimExchangeSettings, specs: dict[str, SymbolSpec], clock_ms: Callable[[], int],
                 fault_rng: random.Random) -> None:
        self.settings = settings
        self.specs = specs
        self.clock_ms = clock_ms
        self.fault_rng = fault_rng
        self.connections: dict[int, Connection] = {}
        self.streams: dict[str, set[Connection]] = {}
        self._next_conn_id = 0
        self.depth_fast = {s: DepthBuffer() for s in specs}
        self.depth_slow = {s: DepthBuffer() for s in specs}

    # ---------------------------------------------------------------- frames
    def on_events(self, events: Iterable[LevelChange | TradeEvent | TopChange]) -> None:
        """Send engine events to their streams (level changes wait for the next depth diff)."""
        now = time.monotonic()
        event_time = self.clock_ms()
        for event in events:
            if isinstance(event, LevelChange):
                self.depth_fast[event.symbol].add(event)
                self.depth_slow[event.symbol].add(event)
                m.BOOK_EVENTS.inc()
            elif isinstance(event, TradeEvent):
                m.TRADES.inc()
                stream = event.symbol.lower() + "@trade"
                if stream in self.streams:
                    payload = payloads.trade_event(self.specs[event.symbol], event, event_time)
                    self._publish(stream, orjson.dumps(payload), None, now)
            elif isinstance(event, TopChange):
                stream = event.symbol.lower() + "@bookTicker"
                if stream in self.streams:
                    payload = payloads.book_ticker_event(self.specs[event.symbol], event)
                    self._publish(stream, orjson.dumps(payload), None, now)

    def _publish(self, stream: str, payload: bytes, depth_symbol: str | None, now: float) -> None:
        subscribers = self.streams.get(stream)
        if not subscribers:
            return
        combined: bytes | None = None
        limit = self.settings.max_queued_frames
        for conn in list(subscribers):
            if conn.combined:
                if combined is None:
                    combined = b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"
                conn.push(combined, depth_symbol, now)
            else:
                conn.push(payload, depth_symbol, now)
            if len(conn.queue) > limit and not conn.closing:
                log.warning("slow consumer disconnected", extra={"conn": conn.id, "queued": len(conn.queue)})
                conn.abort()

    def _flush_depth(self, buffers: dict[str, DepthBuffer], suffixes: tuple[str, ...]) -> None:
        now = time.monotonic()
        event_time = self.clock_ms()
        for symbol, buffer in buffers.items():
            taken = buffer.take()
            if taken is None:
                continue
            streams = [symbol.lower() + s for s in suffixes if symbol.lower() + s in self.streams]
            if not streams:
                continue
            payload = orjson.dumps(payloads.depth_event(self.specs[symbol], *taken, event_time))
            for stream in streams:
                self._publish(stream, payload, symbol, now)

    async def run_depth(self) -> None:
        """Send the buffered depth diffs every ``depth_fast_ms`` (and every ``depth_slow_ms``)."""
        fast_s = self.settings.depth_fast_ms / 1000
        ratio = max(1, round(self.settings.depth_slow_ms / self.settings.depth_fast_ms))
        tick = 0
        while True:
            await asyncio.sleep(fast_s)
            tick += 1
            try:
                self._flush_depth(self.depth_fast, ("@depth@100ms",))
                if tick % ratio == 0:
                    self._flush_depth(self.depth_slow, ("@depth", "@depth@1000ms"))
            except Exception:
                m.ERRORS.labels("depth").inc()
                log.exception("depth flush failed")

    # ---------------------------------------------------------------- connections
    async def housekeep(self, now: float, counter: int) -> None:
        """Close connections past their lifetime or pong deadline; ping the others when due."""
        s = self.settings
        for conn in list(self.connections.values()):
            if conn.closing or conn.ws.closed:
                continue
            try:
                if now - conn.opened >= s.max_connection_s:
                    log.info("connection lifetime reached", extra={"conn": conn.id})
                    conn.closing = True
                    await conn.ws.close(code=1000, message=b"connection lifetime reached")
                elif now - conn.last_pong >= s.pong_timeout_s:
                    log.info("no pong, disconnecting", extra={"conn": conn.id})
                    m.DISCONNECTS.labels("pong_timeout").inc()
                    conn.abort()
                elif now - conn.last_ping >= s.ping_interval_s and not conn.faults.stalled(now):
                    payload = str(counter).encode()
                    conn.last_ping = now
                    conn.ping_payloads.add(payload)
                    await conn.ws.ping(payload)
            except (ConnectionError, RuntimeError):
                conn.abort()

    async def close_all(self) -> None:
        """Close every connection with 1001 (server shutdown)."""
        for conn in list(self.connections.values()):
            await conn.ws.close(code=1001, message=b"server shutdown")

    def valid_stream(self, name: str) -> bool:
        symbol, _, kind = name.partition("@")
        return symbol.upper() in self.specs and symbol == symbol.lower() and kind in STREAM_KINDS

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws/<streams>``, ``/ws`` and ``/stream?streams=``: serve one client until it leaves."""
        combined = request.path == "/stream"
        if combined:
            names = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            names = [s for s in request.match_info.get("streams", "").split("/") if s]
        bad = [n for n in names if not self.valid_stream(n)]
        if bad or len(names) > self.settings.max_streams_per_connection:
            m.ERRORS.labels("ws_bad_stream").inc()
            return web.json_response({"code": -1121, "msg": f"Invalid stream name(s): {bad}"}, status=400)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        now = time.monotonic()
        conn = Connection(self._next_conn_id, ws, request, combined, now, random.Random(self.fault_rng.random()))
        self._next_conn_id += 1
        self.connections[conn.id] = conn
        for name in names:
            self._subscribe(conn, name)
        m.WS_CONNECTIONS.set(len(self.connections))
        log.info("websocket open", extra={"conn": conn.id, "path": conn.path})
        writer = asyncio.create_task(conn.writer(), name=f"ws-writer-{conn.id}")
        try:
            async for msg in ws:
                if not self._count_inbound(conn):
                    m.DISCONNECTS.labels("inbound_rate").inc()
                    log.info("inbound message limit exceeded", extra={"conn": conn.id})
                    await ws.close(code=1008, message=b"Too many requests")
                    break
                if msg.type == WSMsgType.TEXT:
                    self._command(conn, msg.data)
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    if bytes(msg.data) in conn.ping_payloads:
                        conn.ping_payloads.clear()
                        conn.last_pong = time.monotonic()
                elif msg.type == WSMsgType.BINARY:
                    conn.reply({"error": {"code": 3, "msg": "Invalid JSON: binary frames are not accepted"}, "id": None})
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            m.ERRORS.labels("ws").inc()
            log.exception("websocket handler failed", extra={"conn": conn.id, "path": conn.path})
        finally:
            writer.cancel()
            self._drop_connection(conn)
            log.info("websocket closed", extra={"conn": conn.id, "frames_sent": conn.frames_sent})
        return ws

    def _drop_connection(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        for name in list(conn.streams):
            self._unsubscribe(conn, name)
        m.WS_CONNECTIONS.set(len(self.connections))

    def _count_inbound(self, conn: Connection) -> bool:
        now = time.monotonic()
        conn.inbound.append(now)
        while conn.inbound and now - conn.inbound[0] > 1.0:
            conn.inbound.popleft()
        return len(conn.inbound) <= self.settings.inbound_msgs_per_s

    def _subscribe(self, conn: Connection, name: str) -> None:
        conn.streams.add(name)
        self.streams.setdefault(name, set()).add(conn)

    def _unsubscribe(self, conn: Connection, name: str) -> None:
        conn.streams.discard(name)
        subscribers = self.streams.get(name)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self.streams[name]

    def _command(self, conn: Connection, text: str) -> None:
        result = handle_command(text, conn.streams, conn.combined, self.valid_stream,
                                self.settings.max_streams_per_connection)
        for name in result.subscribe:
            self._subscribe(conn, name)
        for name in result.unsubscribe:
            self._unsubscribe(conn, name)
        if result.combined is not None:
            conn.combined = result.combined
        conn.reply(result.reply)
