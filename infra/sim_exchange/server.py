"""The simulated exchange's only I/O: aiohttp REST + websockets on one port, the flow driver,
the depth-diff flusher, connection housekeeping and the ``/_sim/*`` control API.

Everything runs on one event loop, so a REST snapshot, a stream event and an order see the same
book. Engine events are dispatched as soon as an operation returns: trades and bookTicker frames
go out at once, level changes are buffered and sent as depth diffs every 100 ms / 1000 ms.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from infra.settings import SimExchangeSettings
from infra.sim_exchange import auth, errors, payloads
from infra.sim_exchange import metrics as m
from infra.sim_exchange.accounts import parse_account, parse_balances
from infra.sim_exchange.engine import Account, Balance, Engine, LevelChange, TopChange, TradeEvent
from infra.sim_exchange.faults import (
    KINDS,
    AnswerLost,
    ConnectionFaults,
    DepthGap,
    Drop,
    Duplicate,
    Fault,
    FaultSpecError,
    LateExecution,
    Reorder,
    RestError,
    RestFault,
    Schedule,
    ServerShutdown,
    Stall,
    Storm429,
    TradesLag,
    Withdrawal,
    parse_faults,
    resolve_targets,
)
from infra.sim_exchange.filters import build_order_request
from infra.sim_exchange.flow import BackgroundFlow
from infra.sim_exchange.rate_limit import RateLimits
from infra.sim_exchange.symbols import SymbolSpec, make_spec

log = logging.getLogger("tickpipe.sim_exchange")

STREAM_KINDS = ("trade", "depth", "depth@100ms", "depth@1000ms", "bookTicker")
_FLOW_TICK_S = 0.005
_FLOW_CPU_SHARE = 0.6
_HOUSEKEEPING_S = 0.5
_WRITE_BATCH = 256
_WRITE_BUFFER_LIMIT = 1 << 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


@dataclass(slots=True)
class _DepthBuffer:
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
        if self.first is None:
            return None
        out = (self.first, self.last, self.bids, self.asks)
        self.first, self.bids, self.asks = None, {}, {}
        return out


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


class SimExchange:
    """The venue: engine + flow + sockets. Build with settings, serve with :meth:`app`."""

    def __init__(self, settings: SimExchangeSettings, clock_ms: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.specs: dict[str, SymbolSpec] = {}
        for symbol in filter(None, (s.strip().upper() for s in settings.symbols.split(","))):
            self.specs[symbol] = make_spec(symbol)
        self.engine = Engine(list(self.specs.values()), self.clock_ms)
        balances = parse_balances(settings.balances)
        for spec in filter(None, (a.strip() for a in settings.accounts.split(","))):
            self.engine.add_account(parse_account(spec, Decimal(settings.maker_fee), Decimal(settings.taker_fee), balances))
        self.default_balances = balances
        self.flow = BackgroundFlow(self.engine, list(self.specs.values()), settings.seed)
        self.flow.seed_books(settings.seed_orders)
        self.events_per_s = settings.events_per_s
        self.paused = False
        self.limits = RateLimits(settings.weight_limit_1m, settings.orders_limit_10s, settings.orders_limit_1d)
        self.fault_rng = random.Random(settings.seed * 1_000_003 + 17)
        self.connections: dict[int, Connection] = {}
        self.streams: dict[str, set[Connection]] = {}
        self._next_conn_id = 0
        self.depth_fast = {s: _DepthBuffer() for s in self.specs}
        self.depth_slow = {s: _DepthBuffer() for s in self.specs}
        self.rest_faults: list[list[Any]] = []  # [RestError, remaining count]
        self.storm: Storm429 | None = None
        self.storm_until = 0.0
        self.trades_lag_ms, self.trades_lag_until = 0, 0.0
        self.withdrawal_ends: dict[str | None, float] = {}
        self.started = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._fault_tasks: set[asyncio.Task[None]] = set()

    # ================================================================ app wiring
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        r = app.router
        r.add_get("/api/v3/ping", self.ping)
        r.add_get("/api/v3/time", self.time)
        r.add_get("/api/v3/exchangeInfo", self.exchange_info)
        r.add_get("/api/v3/depth", self.depth)
        r.add_get("/api/v3/trades", self.recent_trades)
        r.add_get("/api/v3/historicalTrades", self.historical_trades)
        r.add_get("/api/v3/ticker/bookTicker", self.book_ticker)
        r.add_get("/api/v3/ticker/price", self.ticker_price)
        r.add_post("/api/v3/order", self.new_order)
        r.add_post("/api/v3/order/test", self.test_order)
        r.add_get("/api/v3/order", self.query_order)
        r.add_delete("/api/v3/order", self.cancel_order)
        r.add_get("/api/v3/openOrders", self.open_orders)
        r.add_delete("/api/v3/openOrders", self.cancel_open_orders)
        r.add_get("/api/v3/myTrades", self.my_trades)
        r.add_get("/api/v3/account", self.account)
        r.add_get("/ws", self.websocket)
        r.add_get("/ws/{streams:.*}", self.websocket)
        r.add_get("/stream", self.websocket)
        r.add_get("/health", self.health)
        r.add_get("/_sim/health", self.health)
        r.add_get("/metrics", self.metrics)
        r.add_get("/_sim/trades", self.sim_trades)
        r.add_get("/_sim/book", self.sim_book)
        r.add_get("/_sim/connections", self.sim_connections)
        r.add_get("/_sim/faults", self.sim_faults_get)
        r.add_post("/_sim/faults", self.sim_faults_post)
        r.add_delete("/_sim/faults", self.sim_faults_delete)
        r.add_post("/_sim/flow", self.sim_flow)
        r.add_post("/_sim/step", self.sim_step)
        r.add_post("/_sim/accounts", self.sim_accounts)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self._tasks = [
            asyncio.create_task(self._run_flow(), name="flow"),
            asyncio.create_task(self._run_depth(), name="depth"),
            asyncio.create_task(self._run_housekeeping(), name="housekeeping"),
        ]
        if self.settings.faults.strip():
            self.apply_faults(orjson.loads(self.settings.faults))

    async def _on_shutdown(self, app: web.Application) -> None:
        for task in [*self._tasks, *self._fault_tasks]:
            task.cancel()
        for conn in list(self.connections.values()):
            await conn.ws.close(code=1001, message=b"server shutdown")
        log.info("sim exchange stopped", extra={"trades": {s: b.last_trade_id for s, b in self.engine.books.items()}})

    # ================================================================ dispatch
    def dispatch(self) -> None:
        """Send the engine's pending events to the streams (depth changes are buffered)."""
        events = self.engine.take_events()
        if not events:
            return
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

    def _flush_depth(self, buffers: dict[str, _DepthBuffer], suffixes: tuple[str, ...]) -> None:
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

    # ================================================================ background tasks
    async def _run_flow(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        debt = 0.0
        while True:
            await asyncio.sleep(_FLOW_TICK_S)
            now = loop.time()
            elapsed, last = now - last, now
            self._end_withdrawals(now)
            if self.paused or self.events_per_s <= 0:
                debt = 0.0
                continue
            debt = min(debt + self.events_per_s * self.flow.rate_multiplier * elapsed, self.events_per_s)
            steps = int(debt)
            debt -= steps
            # the flow may use at most _FLOW_CPU_SHARE of the loop, so sockets keep being served
            budget_end = time.perf_counter() + _FLOW_CPU_SHARE * max(elapsed, _FLOW_TICK_S)
            try:
                done = 0
                while done < steps:
                    for _ in range(min(64, steps - done)):
                        self.flow.step()
                    done += min(64, steps - done)
                    self.dispatch()
                    if time.perf_counter() > budget_end:
                        m.FLOW_SKIPPED.inc(steps - done)
                        break
            except Exception:
                m.ERRORS.labels("flow").inc()
                log.exception("background flow step failed", extra={"steps": self.flow.steps})

    async def _run_depth(self) -> None:
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

    async def _run_housekeeping(self) -> None:
        s = self.settings
        counter = 0
        while True:
            await asyncio.sleep(_HOUSEKEEPING_S)
            now = time.monotonic()
            counter += 1
            self.engine.trim_trades(s.trade_history_max)
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

    def _end_withdrawals(self, now: float) -> None:
        for symbol, end in list(self.withdrawal_ends.items()):
            if now >= end:
                self.flow.end_withdrawal(symbol)
                del self.withdrawal_ends[symbol]
                log.info("liquidity withdrawal over", extra={"symbol": symbol})

    # ================================================================ REST plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not path.startswith("/api/"):
            try:
                return await handler(request)
            except web.HTTPException:
                raise
            except (FaultSpecError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        started = time.perf_counter()
        response = await self._api_call(request, handler)
        m.REST_REQUESTS.labels(path, request.method, str(response.status)).inc()
        m.REST_LATENCY.observe(time.perf_counter() - started)
        return response

    async def _api_call(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.monotonic()
        if self.storm is not None and now < self.storm_until and self.fault_rng.random() < self.storm.probability:
            m.FAULTS_FIRED.labels("http_429").inc()
            err = errors.too_much_weight(self.limits.weight.limit)
            return web.json_response(
                err.body(), status=429, headers={"Retry-After": str(self.storm.retry_after_s)}
            )
        ip = request.remote or "?"
        try:
            params = await self._params(request)
            request["params"] = params
            used = self.limits.charge_weight(ip, self._weight(request, params), self.clock_ms())
        except Exception as exc:
            err = exc if isinstance(exc, errors.BinanceError) else errors.unknown_error()
            if not isinstance(exc, errors.BinanceError):
                log.exception("request parsing failed", extra={"path": request.path_qs})
            headers = {"X-MBX-USED-WEIGHT-1M": str(self.limits.weight.used(ip, self.clock_ms()))}
            if err.status == 429:
                headers["Retry-After"] = str(self.limits.weight.retry_after_s(self.clock_ms()))
            m.ERRORS.labels(str(err.code)).inc()
            return web.json_response(err.body(), status=err.status, headers=headers)
        fault = self._match_rest_fault(request)
        try:
            if isinstance(fault, LateExecution):
                await asyncio.sleep(fault.delay_s)  # held in the venue; the handler's recvWindow check runs now
                response = await handler(request)
            elif isinstance(fault, AnswerLost):
                await handler(request)
                if request.transport is not None:
                    request.transport.abort()  # executed, and the answer never leaves
                return web.Response(status=500)
            elif fault is not None and not fault.after_execution:
                response = await self._fault_response(fault)
            else:
                response = await handler(request)
                if fault is not None:
                    response = await self._fault_response(fault, response)
        except errors.BinanceError as err:
            m.ERRORS.labels(str(err.code)).inc()
            response = web.json_response(err.body(), status=err.status)
        except web.HTTPException as exc:
            response = web.json_response({"code": -1000, "msg": exc.reason}, status=exc.status)
        except Exception:
            m.ERRORS.labels("-1000").inc()
            log.exception("request failed", extra={"path": request.path_qs, "method": request.method})
            err = errors.unknown_error()
            response = web.json_response(err.body(), status=err.status)
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return response

    def _match_rest_fault(self, request: web.Request) -> RestFault | None:
        for entry in self.rest_faults:
            fault, remaining = entry
            if remaining <= 0:
                continue
            if fault.path is not None and fault.path != request.path:
                continue
            if fault.method is not None and fault.method.upper() != request.method:
                continue
            entry[1] -= 1
            self.rest_faults = [e for e in self.rest_faults if e[1] > 0]
            m.FAULTS_FIRED.labels(next(k for k, v in KINDS.items() if isinstance(fault, v))).inc()
            log.info("rest fault fired", extra={"path": request.path, "fault": repr(fault)})
            return fault
        return None

    async def _fault_response(self, fault: RestError, real: web.StreamResponse | None = None) -> web.StreamResponse:
        if fault.mode == "timeout":
            await asyncio.sleep(fault.delay_s)
            if real is not None:
                return real
        err = errors.backend_timeout()
        return web.json_response(err.body(), status=fault.status)

    async def _params(self, request: web.Request) -> dict[str, str]:
        query = request.query_string
        raw = (await request.read()) if request.can_read_body else b""
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.BinanceError(-1100, "Illegal characters found in a parameter.") from None
        request["total_params"] = query + body
        params: dict[str, str] = {}
        for source in (query, body):
            for key, value in parse_qsl(source, keep_blank_values=True):
                if key in params:
                    raise errors.BinanceError(-1101, f"Duplicate values for parameter '{key}'.")
                params[key] = value
        return params

    def _weight(self, request: web.Request, params: Mapping[str, str]) -> int:
        path, method = request.path, request.method
        if path == "/api/v3/depth":
            return _depth_weight(_int_or(params, "limit", 100))
        if path in ("/api/v3/ticker/bookTicker", "/api/v3/ticker/price"):
            return 2 if params.get("symbol") else 4
        if path == "/api/v3/openOrders" and method == "GET":
            return 6 if params.get("symbol") else 80
        return {
            "/api/v3/exchangeInfo": 20,
            "/api/v3/trades": 25,
            "/api/v3/historicalTrades": 25,
            "/api/v3/myTrades": 20,
            "/api/v3/account": 20,
        }.get(path, 4 if (path == "/api/v3/order" and method == "GET") else 1)

    def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        params: dict[str, str] = request["params"]
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise errors.bad_api_key_format()
        account = self.engine.accounts.get(key)
        if account is None:
            raise errors.rejected_api_key()
        auth.check_timestamp(params, self.clock_ms())
        auth.verify_signature(account.api_secret, request["total_params"])
        return account, params

    def _spec(self, params: Mapping[str, str]) -> SymbolSpec:
        symbol = params.get("symbol")
        if not symbol:
            raise errors.mandatory_missing("symbol")
        spec = self.specs.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    # ================================================================ public REST
    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.clock_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        params = request["params"]
        specs = list(self.specs.values())
        wanted = params.get("symbol") or None
        if params.get("symbols"):
            try:
                names = orjson.loads(params["symbols"])
            except orjson.JSONDecodeError:
                raise errors.illegal_chars("symbols") from None
        else:
            names = [wanted] if wanted else None
        if names is not None:
            if any(n not in self.specs for n in names):
                raise errors.invalid_symbol()
            specs = [self.specs[n] for n in names]
        return _json(payloads.exchange_info(specs, self.limits.rate_limits_json(), self.clock_ms()))

    async def depth(self, request: web.Request) -> web.Response:
        params = request["params"]
        spec = self._spec(params)
        limit = _int_or(params, "limit", 100)
        if not 1 <= limit <= 5000:
            raise errors.BinanceError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1..5000'.")
        return _json(payloads.depth_snapshot(self.engine.books[spec.symbol], limit))

    async def recent_trades(self, request: web.Request) -> web.Response:
        params = request["params"]
        spec = self._spec(params)
        limit = min(max(_int_or(params, "limit", 500), 1), 1000)
        trades = self.engine.trades[spec.symbol][-limit:]
        return _json([payloads.rest_trade(spec, t) for t in trades])

    async def historical_trades(self, request: web.Request) -> web.Response:
        params = request["params"]
        spec = self._spec(params)
        limit = min(max(_int_or(params, "limit", 500), 1), 1000)
        all_trades = self.engine.trades[spec.symbol]
        if params.get("fromId"):
            trades = self.engine.trades_from(spec.symbol, _int_or(params, "fromId", 1), limit)
        else:
            trades = all_trades[-limit:]
        return _json([payloads.rest_trade(spec, t) for t in trades])

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = request["params"]
        if params.get("symbol"):
            return _json(payloads.rest_book_ticker(self.engine.books[self._spec(params).symbol]))
        return _json([payloads.rest_book_ticker(b) for b in self.engine.books.values()])

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = request["params"]
        books = [self.engine.books[self._spec(params).symbol]] if params.get("symbol") else list(self.engine.books.values())
        out = []
        for book in books:
            trades = self.engine.trades[book.spec.symbol]
            price = trades[-1].price if trades else book.spec.start_price_ticks
            out.append({"symbol": book.spec.symbol, "price": book.spec.price_str(price)})
        return _json(out[0] if params.get("symbol") else out)

    # ================================================================ trading REST
    def _reference_price(self, symbol: str) -> int | None:
        book = self.engine.books[symbol]
        bid, _, ask, _ = book.top
        if bid and ask:
            return (bid + ask) // 2
        trades = self.engine.trades[symbol]
        return trades[-1].price if trades else None

    async def new_order(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        spec = self._spec(params)
        order_request = build_order_request(spec, params, account.api_key, self._reference_price(spec.symbol))
        now = self.clock_ms()
        used_10s, used_day = self.limits.charge_order(account.api_key, now)
        try:
            order, fills = self.engine.submit(order_request)
        finally:
            self.dispatch()
        m.ORDERS.labels(order.type.value, order.status.value).inc()
        response = _json(payloads.new_order(spec, order, fills, params.get("newOrderRespType")))
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(used_10s)
        response.headers["X-MBX-ORDER-COUNT-1D"] = str(used_day)
        return response

    async def test_order(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        spec = self._spec(params)
        build_order_request(spec, params, account.api_key, self._reference_price(spec.symbol))
        return web.json_response({})

    def _order_ref(self, params: Mapping[str, str]) -> tuple[int | None, str | None]:
        order_id = _int_or(params, "orderId", None) if params.get("orderId") else None
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise errors.BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        return order_id, client_id

    async def query_order(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        spec = self._spec(params)
        order_id, client_id = self._order_ref(params)
        order = self.engine.order(account.api_key, spec.symbol, order_id, client_id)
        return _json(payloads.order_status(spec, order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        spec = self._spec(params)
        order_id, client_id = self._order_ref(params)
        try:
            order = self.engine.cancel(account.api_key, spec.symbol, order_id, client_id)
        finally:
            self.dispatch()
        cancel_id = params.get("newClientOrderId") or f"cancel-{order.order_id}"
        return _json(payloads.cancel_result(spec, order, cancel_id, self.clock_ms()))

    async def open_orders(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        symbol = self._spec(params).symbol if params.get("symbol") else None
        orders = self.engine.open_orders(account.api_key, symbol)
        return _json([payloads.order_status(self.specs[o.symbol], o) for o in orders])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        spec = self._spec(params)
        orders = self.engine.open_orders(account.api_key, spec.symbol)
        if not orders:
            raise errors.cancel_rejected()
        out = []
        try:
            for order in orders:
                self.engine.cancel(account.api_key, spec.symbol, order.order_id, None)
                out.append(payloads.cancel_result(spec, order, f"cancel-{order.order_id}", self.clock_ms()))
        finally:
            self.dispatch()
        return _json(out)

    async def my_trades(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        spec = self._spec(params)
        fills = self.engine.fills(account.api_key, spec.symbol)
        if time.monotonic() < self.trades_lag_until:  # mytrades_lag fault: the newest executions not yet listed
            newest = self.clock_ms() - self.trades_lag_ms
            fills = [f for f in fills if f.time <= newest]
        limit = min(max(_int_or(params, "limit", 500), 1), 1000)
        if params.get("orderId"):
            order_id = _int_or(params, "orderId", 0)
            fills = [f for f in fills if f.order_id == order_id]
        if params.get("fromId"):
            from_id = _int_or(params, "fromId", 0)
            fills = [f for f in fills if f.trade_id >= from_id]
        if params.get("startTime"):
            start = _int_or(params, "startTime", 0)
            fills = [f for f in fills if f.time >= start]
        if params.get("endTime"):
            end = _int_or(params, "endTime", 0)
            fills = [f for f in fills if f.time <= end]
        selected = fills[:limit] if params.get("fromId") or params.get("startTime") else fills[-limit:]
        return _json([payloads.my_trade(spec, f) for f in selected])

    async def account(self, request: web.Request) -> web.Response:
        account, params = self._signed(request)
        omit = params.get("omitZeroBalances", "false").lower() == "true"
        return _json(payloads.account_info(account, omit))

    # ================================================================ websockets
    def _valid_stream(self, name: str) -> bool:
        symbol, _, kind = name.partition("@")
        return symbol.upper() in self.specs and symbol == symbol.lower() and kind in STREAM_KINDS

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        combined = request.path == "/stream"
        if combined:
            names = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            names = [s for s in request.match_info.get("streams", "").split("/") if s]
        bad = [n for n in names if not self._valid_stream(n)]
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
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            conn.reply({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None})
            return
        if not isinstance(body, dict):
            conn.reply({"error": {"code": 3, "msg": "Invalid JSON: expected an object"}, "id": None})
            return
        request_id = body.get("id")
        if request_id is not None and not isinstance(request_id, (int, str)):
            conn.reply({"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None})
            return
        method, params = body.get("method"), body.get("params", [])
        if not isinstance(params, list):
            conn.reply({"error": {"code": 1, "msg": "Invalid value type: expected a list of strings"}, "id": request_id})
            return
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            bad = [p for p in params if not isinstance(p, str) or not self._valid_stream(p)]
            if bad:
                conn.reply({"error": {"code": 2, "msg": f"Invalid request: invalid stream name(s) {bad}"}, "id": request_id})
                return
            if method == "SUBSCRIBE":
                if len(conn.streams | set(params)) > self.settings.max_streams_per_connection:
                    conn.reply({"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": request_id})
                    return
                for name in params:
                    self._subscribe(conn, name)
            else:
                for name in params:
                    self._unsubscribe(conn, name)
            conn.reply({"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            conn.reply({"result": sorted(conn.streams), "id": request_id})
        elif method == "SET_PROPERTY" and len(params) == 2 and params[0] == "combined" and isinstance(params[1], bool):
            conn.combined = params[1]
            conn.reply({"result": None, "id": request_id})
        elif method == "GET_PROPERTY" and params == ["combined"]:
            conn.reply({"result": conn.combined, "id": request_id})
        else:
            conn.reply({
                "error": {
                    "code": 2,
                    "msg": f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, "
                    "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
                },
                "id": request_id,
            })

    # ================================================================ faults
    def apply_faults(self, body: Any) -> dict[str, Any]:
        """Apply a ``POST /_sim/faults`` body now (or schedule its delayed/repeated parts)."""
        clear, faults = parse_faults(body)
        if clear:
            self.clear_faults()
        applied = []
        for fault, schedule in faults:
            if schedule.after_s > 0 or schedule.every_s:
                task = asyncio.create_task(self._scheduled(fault, schedule))
                self._fault_tasks.add(task)
                task.add_done_callback(self._fault_tasks.discard)
                applied.append({"kind": type(fault).__name__, "scheduled": {"after_s": schedule.after_s, "every_s": schedule.every_s}})
            else:
                applied.append(self._apply(fault))
        return {"applied": applied, "cleared": clear}

    async def _scheduled(self, fault: Fault, schedule: Schedule) -> None:
        await asyncio.sleep(schedule.after_s)
        while True:
            self._apply(fault)
            if not schedule.every_s:
                return
            await asyncio.sleep(schedule.every_s)

    def clear_faults(self) -> None:
        for task in list(self._fault_tasks):
            task.cancel()
        self.rest_faults.clear()
        self.storm = None
        self.trades_lag_until = 0.0
        for conn in self.connections.values():
            conn.faults = ConnectionFaults(conn.faults.rng)
            conn.faulty = False
        for symbol in list(self.withdrawal_ends):
            self.flow.end_withdrawal(symbol)
        self.withdrawal_ends.clear()

    def _apply(self, fault: Fault) -> dict[str, Any]:
        now = time.monotonic()
        kind = type(fault).__name__
        m.FAULTS_APPLIED.labels(kind).inc()
        result: dict[str, Any] = {"kind": kind}
        if isinstance(fault, (Drop, Stall, DepthGap, Duplicate, Reorder, ServerShutdown)):
            targets = resolve_targets(fault.connections, list(self.connections), self.fault_rng)
            result["connections"] = targets
            for conn_id in targets:
                self._apply_to_connection(self.connections[conn_id], fault, now)
        elif isinstance(fault, (RestError, LateExecution, AnswerLost)):
            # re-applying the same fault (every_s) re-arms it instead of stacking a backlog
            pending = next((entry for entry in self.rest_faults if entry[0] == fault), None)
            if pending is None:
                self.rest_faults.append([fault, fault.count])
            else:
                pending[1] = fault.count
        elif isinstance(fault, Storm429):
            self.storm, self.storm_until = fault, now + fault.seconds
        elif isinstance(fault, TradesLag):
            self.trades_lag_ms, self.trades_lag_until = int(fault.lag_s * 1000), now + fault.seconds
        elif isinstance(fault, Withdrawal):
            self.flow.set_withdrawal(fault.symbol, fault.extra_ticks, fault.size_factor)
            self.withdrawal_ends[fault.symbol] = now + fault.seconds
        log.info("fault applied", extra={"fault": repr(fault), "result": result})
        return result

    def _apply_to_connection(self, conn: Connection, fault: Fault, now: float) -> None:
        state = conn.faults
        if isinstance(fault, Drop):
            m.DISCONNECTS.labels("fault_drop").inc()
            conn.abort()
            return
        conn.faulty = True
        if isinstance(fault, Stall):
            state.stalled_until = now + fault.seconds
            conn.queue.clear()
        elif isinstance(fault, DepthGap):
            state.gaps[fault.symbol] = state.gaps.get(fault.symbol, 0) + fault.count
        elif isinstance(fault, Duplicate):
            state.duplicate_p, state.duplicate_until = fault.probability, now + fault.seconds
        elif isinstance(fault, Reorder):
            state.reorder_p, state.reorder_until = fault.probability, now + fault.seconds
        elif isinstance(fault, ServerShutdown):
            conn.reply({"e": "serverShutdown", "E": self.clock_ms()})
            asyncio.get_running_loop().call_later(fault.close_after_s, self._close_soon, conn)

    def _close_soon(self, conn: Connection) -> None:
        if not conn.ws.closed:
            conn.closing = True
            task = asyncio.create_task(conn.ws.close(code=1001, message=b"server shutdown"))
            self._fault_tasks.add(task)
            task.add_done_callback(self._fault_tasks.discard)

    # ================================================================ control API
    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health_detail())

    def health_detail(self) -> dict[str, Any]:
        return {
            "ok": True,
            "symbols": list(self.specs),
            "connections": len(self.connections),
            "flow_steps": self.flow.steps,
            "events_per_s": self.events_per_s,
            "paused": self.paused,
            "trades": {s: b.last_trade_id for s, b in self.engine.books.items()},
            "update_ids": {s: b.update_id for s, b in self.engine.books.items()},
            "uptime_s": round(time.monotonic() - self.started, 3),
        }

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def sim_trades(self, request: web.Request) -> web.Response:
        spec = self._control_spec(request)
        from_id = max(int(request.query.get("fromId", "1")), 1)
        limit = min(max(int(request.query.get("limit", "1000")), 1), 100_000)
        trades = self.engine.trades_from(spec.symbol, from_id, limit)
        body = []
        for t in trades:
            item = payloads.rest_trade(spec, t)
            item["buyerOrderId"], item["sellerOrderId"] = t.buy_order_id, t.sell_order_id
            body.append(item)
        return _json(body)

    async def sim_book(self, request: web.Request) -> web.Response:
        spec = self._control_spec(request)
        return _json(payloads.depth_snapshot(self.engine.books[spec.symbol], 1_000_000))

    def _control_spec(self, request: web.Request) -> SymbolSpec:
        symbol = request.query.get("symbol", "")
        if symbol not in self.specs:
            raise ValueError(f"unknown symbol {symbol!r}; have {list(self.specs)}")
        return self.specs[symbol]

    async def sim_connections(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        return _json([c.info(now) for c in sorted(self.connections.values(), key=lambda c: c.id)])

    async def sim_faults_get(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        return _json({
            "rest_errors": [{"fault": repr(f), "remaining": n} for f, n in self.rest_faults],
            "http_429_until_s": max(0.0, self.storm_until - now) if self.storm else 0.0,
            "withdrawals": {str(k): round(v - now, 3) for k, v in self.withdrawal_ends.items()},
            "connections": [c.info(now) for c in self.connections.values() if c.faulty],
            "scheduled": len(self._fault_tasks),
        })

    async def sim_faults_post(self, request: web.Request) -> web.Response:
        return _json(self.apply_faults(await request.json(loads=orjson.loads)))

    async def sim_faults_delete(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return _json({"cleared": True})

    async def sim_flow(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        if "events_per_s" in body:
            self.events_per_s = float(body["events_per_s"])
        if "paused" in body:
            self.paused = bool(body["paused"])
        return _json({"events_per_s": self.events_per_s, "paused": self.paused, "steps": self.flow.steps})

    async def sim_step(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        for _ in range(int(body.get("events", 1))):
            self.flow.step()
        self.dispatch()
        return _json({"steps": self.flow.steps})

    async def sim_accounts(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        balances = {k.upper(): Decimal(str(v)) for k, v in body.get("balances", {}).items()} or self.default_balances
        account = Account(
            api_key=str(body["api_key"]),
            api_secret=str(body["api_secret"]),
            maker_fee=Decimal(str(body.get("maker_fee", self.settings.maker_fee))),
            taker_fee=Decimal(str(body.get("taker_fee", self.settings.taker_fee))),
            balances={a: Balance(free=v) for a, v in balances.items()},
        )
        self.engine.add_account(account)
        return _json({"api_key": account.api_key, "balances": {a: str(v) for a, v in balances.items()}})


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _int_or(params: Mapping[str, str], name: str, default: int | None) -> Any:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise errors.illegal_chars(name) from None


def serve(exchange: SimExchange) -> None:
    """Run ``exchange`` on its configured host and port until SIGTERM/SIGINT."""
    settings = exchange.settings
    log.info(
        "sim exchange listening",
        extra={"host": settings.host, "port": settings.port, "symbols": list(exchange.specs), "seed": settings.seed},
    )
    web.run_app(exchange.app(), host=settings.host, port=settings.port, print=None, access_log=None,
                shutdown_timeout=2.0)
