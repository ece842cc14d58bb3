"""The simulated exchange's own endpoints: health, metrics and the ``/_sim/*`` control API.

Tests and drills use them to read the venue's truth (its trade list, its full book, its
connections), arm faults, drive the flow and add accounts; none of them exists on a real venue.
A malformed control request is answered 400 with the error, never with a Binance code.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from sim_exchange import payloads
from sim_exchange.engine import Account, Balance
from sim_exchange.faults import FaultSpecError
from sim_exchange.rest_api import Handler, json_response
from sim_exchange.symbols import SymbolSpec

if TYPE_CHECKING:
    from sim_exchange.server import SimExchange


async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a malformed control request 400 with the error's type and message."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (FaultSpecError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)


class ControlApi:
    """Handlers of ``/health``, ``/metrics`` and ``/_sim/*`` over one venue."""

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange

    def routes(self, router: web.UrlDispatcher) -> None:
        r = router
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
        r.add_post("/_sim/balance", self.sim_balance)
        r.add_post("/_sim/ws_api/drop", self.sim_ws_api_drop)
        r.add_post("/_sim/ws_api/inject", self.sim_ws_api_inject)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(self.exchange.health_detail())

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def sim_trades(self, request: web.Request) -> web.Response:
        spec = self._spec(request)
        from_id = max(int(request.query.get("fromId", "1")), 1)
        limit = min(max(int(request.query.get("limit", "1000")), 1), 100_000)
        trades = self.exchange.engine.trades_from(spec.symbol, from_id, limit)
        body = []
        for t in trades:
            item = payloads.rest_trade(spec, t)
            item["buyerOrderId"], item["sellerOrderId"] = t.buy_order_id, t.sell_order_id
            body.append(item)
        return json_response(body)

    async def sim_book(self, request: web.Request) -> web.Response:
        spec = self._spec(request)
        return json_response(payloads.depth_snapshot(self.exchange.engine.books[spec.symbol], 1_000_000))

    def _spec(self, request: web.Request) -> SymbolSpec:
        symbol = request.query.get("symbol", "")
        specs = self.exchange.specs
        if symbol not in specs:
            raise ValueError(f"unknown symbol {symbol!r}; have {list(specs)}")
        return specs[symbol]

    async def sim_connections(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        connections = self.exchange.streams.connections.values()
        return json_response([c.info(now) for c in sorted(connections, key=lambda c: c.id)])

    async def sim_faults_get(self, request: web.Request) -> web.Response:
        return json_response(self.exchange.faults.state(time.monotonic()))

    async def sim_faults_post(self, request: web.Request) -> web.Response:
        return json_response(self.exchange.faults.apply_faults(await request.json(loads=orjson.loads)))

    async def sim_faults_delete(self, request: web.Request) -> web.Response:
        self.exchange.faults.clear()
        return json_response({"cleared": True})

    async def sim_flow(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        exchange = self.exchange
        if "events_per_s" in body:
            exchange.events_per_s = float(body["events_per_s"])
        if "paused" in body:
            exchange.paused = bool(body["paused"])
        return json_response({"events_per_s": exchange.events_per_s, "paused": exchange.paused,
                              "steps": exchange.flow.steps})

    async def sim_step(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        for _ in range(int(body.get("events", 1))):
            self.exchange.flow.step()
        self.exchange.dispatch()
        return json_response({"steps": self.exchange.flow.steps})

    async def sim_accounts(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        settings = self.exchange.settings
        balances = ({k.upper(): Decimal(str(v)) for k, v in body.get("balances", {}).items()}
                    or self.exchange.default_balances)
        account = Account(
            api_key=str(body["api_key"]),
            api_secret=str(body["api_secret"]),
            maker_fee=Decimal(str(body.get("maker_fee", settings.maker_fee))),
            taker_fee=Decimal(str(body.get("taker_fee", settings.taker_fee))),
            balances={a: Balance(free=v) for a, v in balances.items()},
            ed25519_key=ed25519_public_bytes(body["ed25519_public_key"]) if body.get("ed25519_public_key") else None,
        )
        self.exchange.engine.add_account(account)
        return json_response({"api_key": account.api_key, "balances": {a: str(v) for a, v in balances.items()}})



    async def sim_balance(self, request: web.Request) -> web.Response:
        """A deposit (or a withdrawal, ``delta`` < 0) outside trading: the account's ``balanceUpdate``."""
        body = await request.json(loads=orjson.loads)
        engine = self.exchange.engine
        try:
            balance = engine.adjust_balance(str(body["api_key"]), str(body["asset"]).upper(), Decimal(str(body["delta"])))
        finally:
            self.exchange.dispatch()
        return json_response({"free": str(balance.free), "locked": str(balance.locked)})

    async def sim_ws_api_drop(self, request: web.Request) -> web.Response:
        """Drop every WebSocket API session's connection without a close frame."""
        return json_response({"dropped": self.exchange.ws_api.drop_all()})

    async def sim_ws_api_inject(self, request: web.Request) -> web.Response:
        """Send ``{"api_key", "frame"}``'s frame, unchanged, to the sessions subscribed to that account."""
        body = await request.json(loads=orjson.loads)
        return json_response({"sessions": self.exchange.ws_api.inject(str(body["api_key"]), str(body["frame"]))})


def ed25519_public_bytes(pem: str) -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as PEM (what Binance registers for an API key)."""
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise web.HTTPBadRequest(reason="ed25519_public_key: not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
