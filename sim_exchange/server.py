"""The simulated exchange assembled: one engine, its background flow, and its sockets on one port.

Everything runs on one event loop, so a REST snapshot, a stream event and an order see the same
book. The parts, each in its own module: :mod:`~sim_exchange.rest_api` (``/api/v3/*``),
:mod:`~sim_exchange.market_streams` (websockets, depth diffs), :mod:`~sim_exchange.fault_control`
(armed faults) and :mod:`~sim_exchange.control_api` (``/health``, ``/metrics``, ``/_sim/*``).
This module wires them and runs the flow driver and the housekeeping tasks.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from infra.settings import SimExchangeSettings
from sim_exchange import metrics as m
from sim_exchange.accounts import parse_account, parse_balances
from sim_exchange.coinbase_ws import CoinbaseStreams
from sim_exchange.control_api import ControlApi, control_errors
from sim_exchange.engine import Engine
from sim_exchange.fault_control import FaultControl
from sim_exchange.flow import BackgroundFlow
from sim_exchange.kraken_ws import KrakenStreams
from sim_exchange.market_streams import MarketStreams
from sim_exchange.rate_limit import RateLimits
from sim_exchange.rest_api import Handler, RestApi
from sim_exchange.symbols import SymbolSpec, make_spec
from sim_exchange.ws_api import WsApi

log = logging.getLogger("tickpipe.sim_exchange")

_FLOW_TICK_S = 0.005
_FLOW_CPU_SHARE = 0.6
_HOUSEKEEPING_S = 0.5


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
        fault_rng = random.Random(settings.seed * 1_000_003 + 17)
        self.streams = MarketStreams(settings, self.specs, self.clock_ms, fault_rng)
        self.faults = FaultControl(self.streams, self.flow, self.clock_ms, fault_rng)
        self.kraken = KrakenStreams(self.streams, self.engine, self.specs, self.clock_ms)
        self.coinbase = CoinbaseStreams(self.streams, self.engine, self.specs)
        limits = RateLimits(settings.weight_limit_1m, settings.orders_limit_10s, settings.orders_limit_1d)
        self.rest = RestApi(self.engine, self.specs, limits, self.faults, self.clock_ms, self.dispatch)
        self.ws_api = WsApi(self.rest, self.engine, self.clock_ms, settings.max_queued_frames)
        self.control = ControlApi(self)
        self.started = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        self.rest.routes(app.router)
        app.router.add_get("/ws", self.streams.websocket)
        app.router.add_get("/ws/{streams:.*}", self.streams.websocket)
        app.router.add_get("/stream", self.streams.websocket)
        app.router.add_get("/ws-api/v3", self.ws_api.websocket)
        app.router.add_get("/v2", self.kraken.websocket)
        app.router.add_get("/", self.coinbase.websocket)
        self.control.routes(app.router)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            return await self.rest.call(request, handler)
        return await control_errors(request, handler)

    async def _on_startup(self, app: web.Application) -> None:
        self._tasks = [
            asyncio.create_task(self._run_flow(), name="flow"),
            asyncio.create_task(self.streams.run_depth(), name="depth"),
            asyncio.create_task(self._run_housekeeping(), name="housekeeping"),
            asyncio.create_task(self.kraken.run_heartbeats(), name="kraken-heartbeats"),
            asyncio.create_task(self.coinbase.run_heartbeats(), name="coinbase-heartbeats"),
        ]
        if self.settings.faults.strip():
            self.faults.apply_faults(orjson.loads(self.settings.faults))

    async def _on_shutdown(self, app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        self.faults.cancel_all()
        await self.streams.close_all()
        await self.ws_api.close_all()
        log.info("sim exchange stopped", extra={"trades": {s: b.last_trade_id for s, b in self.engine.books.items()}})

    def dispatch(self) -> None:
        """Send the engine's pending events to the streams (depth changes are buffered)."""
        events = self.engine.take_events()
        if events:
            self.streams.on_events(events)
            self.ws_api.on_events(events)
            self.kraken.on_events(events)
            self.coinbase.on_events(events)

    async def _run_flow(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        debt = 0.0
        while True:
            await asyncio.sleep(_FLOW_TICK_S)
            now = loop.time()
            elapsed, last = now - last, now
            self.faults.end_withdrawals(now)
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

    async def _run_housekeeping(self) -> None:
        counter = 0
        while True:
            await asyncio.sleep(_HOUSEKEEPING_S)
            counter += 1
            self.engine.trim_trades(self.settings.trade_history_max)
            await self.streams.housekeep(time.monotonic(), counter)

    def health_detail(self) -> dict[str, Any]:
        return {
            "ok": True,
            "symbols": list(self.specs),
            "connections": len(self.streams.connections),
            "ws_api_sessions": len(self.ws_api.sessions),
            "flow_steps": self.flow.steps,
            "events_per_s": self.events_per_s,
            "paused": self.paused,
            "trades": {s: b.last_trade_id for s, b in self.engine.books.items()},
            "update_ids": {s: b.update_id for s, b in self.engine.books.items()},
            "uptime_s": round(time.monotonic() - self.started, 3),
        }


def serve(exchange: SimExchange) -> None:
    """Run ``exchange`` on its configured host and port until SIGTERM/SIGINT."""
    settings = exchange.settings
    log.info(
        "sim exchange listening",
        extra={"host": settings.host, "port": settings.port, "symbols": list(exchange.specs), "seed": settings.seed},
    )
    web.run_app(exchange.app(), host=settings.host, port=settings.port, print=None, access_log=None,
                shutdown_timeout=2.0)
