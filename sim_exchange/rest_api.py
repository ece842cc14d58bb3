"""The simulated exchange's REST API (``/api/v3/*``): Binance's market-data, trading and account calls.

Every call goes through one path (:meth:`RestApi.middleware`): parameters parsed as Binance does
(query + form body, duplicates refused), request weight charged per IP, REST faults applied, errors
answered with Binance's codes, and the used weight returned in ``X-MBX-USED-WEIGHT-1M``. Signed calls
check the API key, the timestamp / recvWindow and the HMAC signature (:mod:`sim_exchange.auth`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from sim_exchange import auth, errors, payloads
from sim_exchange import metrics as m
from sim_exchange.engine import Account, Engine, default_cancel_id
from sim_exchange.fault_control import FaultControl
from sim_exchange.faults import AnswerLost, LateExecution, RestError
from sim_exchange.filters import build_order_request
from sim_exchange.rate_limit import RateLimits
from sim_exchange.symbols import SymbolSpec

log = logging.getLogger("tickpipe.sim_exchange")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_WEIGHTS = {
    "/api/v3/exchangeInfo": 20,
    "/api/v3/trades": 25,
    "/api/v3/historicalTrades": 25,
    "/api/v3/myTrades": 20,
    "/api/v3/account": 20,
}


def depth_weight(limit: int) -> int:
    """Weight of ``GET /api/v3/depth`` by its ``limit`` (Binance's table)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def request_weight(path: str, method: str, params: Mapping[str, str]) -> int:
    """Weight a request charges against the per-IP minute limit."""
    if path == "/api/v3/depth":
        return depth_weight(int_param(params, "limit", 100))
    if path in ("/api/v3/ticker/bookTicker", "/api/v3/ticker/price"):
        return 2 if params.get("symbol") else 4
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if params.get("symbol") else 80
    return _WEIGHTS.get(path, 4 if (path == "/api/v3/order" and method == "GET") else 1)


def parse_params(query: str, body: bytes) -> dict[str, str]:
    """Parameters of the query string and the form body together; a name given twice is refused (-1101)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BinanceError(-1100, "Illegal characters found in a parameter.") from None
    params: dict[str, str] = {}
    for source in (query, text):
        for key, value in parse_qsl(source, keep_blank_values=True):
            if key in params:
                raise errors.BinanceError(-1101, f"Duplicate values for parameter '{key}'.")
            params[key] = value
    return params


def int_param(params: Mapping[str, str], name: str, default: int | None) -> Any:
    """``params[name]`` as an int, ``default`` when absent or empty; not a number is -1100."""
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise errors.illegal_chars(name) from None


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class RestApi:
    """Handlers of ``/api/v3/*`` over the venue's engine; ``dispatch`` sends the events an order caused."""

    def __init__(self, engine: Engine, specs: dict[str, SymbolSpec], limits: RateLimits, faults: FaultControl,
                 clock_ms: Callable[[], int], dispatch: Callable[[], None]) -> None:
        self.engine = engine
        self.specs = specs
        self.limits = limits
        self.faults = faults
        self.clock_ms = clock_ms
        self.dispatch = dispatch

    def routes(self, router: web.UrlDispatcher) -> None:
        r = router
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

    # ================================================================ plumbing
    async def call(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Run ``handler`` for an ``/api/`` request the way Binance answers it, and count it."""
        started = time.perf_counter()
        response = await self._api_call(request, handler)
        m.REST_REQUESTS.labels(request.path, request.method, str(response.status)).inc()
        m.REST_LATENCY.observe(time.perf_counter() - started)
        return response

    async def _api_call(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        storm = self.faults.storm_hits(time.monotonic())
        if storm is not None:
            err = errors.too_much_weight(self.limits.weight.limit)
            return web.json_response(err.body(), status=429, headers={"Retry-After": str(storm.retry_after_s)})
        ip = request.remote or "?"
        try:
            raw = (await request.read()) if request.can_read_body else b""
            params = parse_params(request.query_string, raw)
            request["total_params"] = request.query_string + raw.decode("utf-8")
            request["params"] = params
            used = self.limits.charge_weight(ip, request_weight(request.path, request.method, params), self.clock_ms())
        except Exception as exc:
            err = exc if isinstance(exc, errors.BinanceError) else errors.unknown_error()
            if not isinstance(exc, errors.BinanceError):
                log.exception("request parsing failed", extra={"path": request.path_qs})
            headers = {"X-MBX-USED-WEIGHT-1M": str(self.limits.weight.used(ip, self.clock_ms()))}
            if err.status == 429:
                headers["Retry-After"] = str(self.limits.weight.retry_after_s(self.clock_ms()))
            m.ERRORS.labels(str(err.code)).inc()
            return web.json_response(err.body(), status=err.status, headers=headers)
        fault = self.faults.match_rest_fault(request.path, request.method)
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
                response = await _fault_response(fault)
            else:
                response = await handler(request)
                if fault is not None:
                    response = await _fault_response(fault, response)
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

    def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        params: dict[str, str] = request["params"]
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise errors.bad_api_key_format()
        account = self.engine.accounts.get(key)
        if account is None:
            raise errors.rejected_api_key()
        auth.check_timestamp(params, self.clock_ms())
        auth.verify_signature(account.api_secret, request["total_params"], account.ed25519_key)
        return account, params

    def _spec(self, params: Mapping[str, str]) -> SymbolSpec:
        symbol = params.get("symbol")
        if not symbol:
            raise errors.mandatory_missing("symbol")
        spec = self.specs.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    # ================================================================ public
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
        return json_response(payloads.exchange_info(specs, self.limits.rate_limits_json(), self.clock_ms()))

    async def depth(self, request: web.Request) -> web.Response:
        params = request["params"]
        spec = self._spec(params)
        limit = int_param(params, "limit", 100)
        if not 1 <= limit <= 5000:
            raise errors.BinanceError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1..5000'.")
        return json_response(payloads.depth_snapshot(self.engine.books[spec.symbol], limit))

    async def recent_trades(self, request: web.Request) -> web.Response:
        params = request["params"]
        spec = self._spec(params)
        limit = min(max(int_param(params, "limit", 500), 1), 1000)
        trades = self.engine.trades[spec.symbol][-limit:]
        return json_response([payloads.rest_trade(spec, t) for t in trades])

    async def historical_trades(self, request: web.Request) -> web.Response:
        params = request["params"]
        spec = self._spec(params)
        limit = min(max(int_param(params, "limit", 500), 1), 1000)
        if params.get("fromId"):
            trades = self.engine.trades_from(spec.symbol, int_param(params, "fromId", 1), limit)
        else:
            trades = self.engine.trades[spec.symbol][-limit:]
        return json_response([payloads.rest_trade(spec, t) for t in trades])

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = request["params"]
        if params.get("symbol"):
            return json_response(payloads.rest_book_ticker(self.engine.books[self._spec(params).symbol]))
        return json_response([payloads.rest_book_ticker(b) for b in self.engine.books.values()])

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = request["params"]
        books = [self.engine.books[self._spec(params).symbol]] if params.get("symbol") else list(self.engine.books.values())
        out = []
        for book in books:
            trades = self.engine.trades[book.spec.symbol]
            price = trades[-1].price if trades else book.spec.start_price_ticks
            out.append({"symbol": book.spec.symbol, "price": book.spec.price_str(price)})
        return json_response(out[0] if params.get("symbol") else out)

    # ================================================================ trading
    def _reference_price(self, symbol: str) -> int | None:
        book = self.engine.books[symbol]
        bid, _, ask, _ = book.top
        if bid and ask:
            return (bid + ask) // 2
        trades = self.engine.trades[symbol]
        return trades[-1].price if trades else None

    # The trading and account calls, one implementation for both channels: REST's handlers below
    # and the WebSocket API (:mod:`sim_exchange.ws_api`) call these with the signed account and
    # the request's parameters as strings.
    def place(self, account: Account, params: Mapping[str, str]) -> tuple[dict[str, Any], int, int]:
        """``order.place`` / ``POST /api/v3/order``: the response and the 10 s / day order counts."""
        spec = self._spec(params)
        order_request = build_order_request(spec, params, account.api_key, self._reference_price(spec.symbol))
        now = self.clock_ms()
        used_10s, used_day = self.limits.charge_order(account.api_key, now)
        try:
            order, fills = self.engine.submit(order_request)
        finally:
            self.dispatch()
        m.ORDERS.labels(order.type.value, order.status.value).inc()
        return payloads.new_order(spec, order, fills, params.get("newOrderRespType")), used_10s, used_day

    def test(self, account: Account, params: Mapping[str, str]) -> dict[str, Any]:
        """``order.test`` / ``POST /api/v3/order/test``: the filters only."""
        spec = self._spec(params)
        build_order_request(spec, params, account.api_key, self._reference_price(spec.symbol))
        return {}

    def status(self, account: Account, params: Mapping[str, str]) -> dict[str, Any]:
        """``order.status`` / ``GET /api/v3/order``."""
        spec = self._spec(params)
        order_id, client_id = self._order_ref(params)
        return payloads.order_status(spec, self.engine.order(account.api_key, spec.symbol, order_id, client_id))

    def cancel(self, account: Account, params: Mapping[str, str]) -> dict[str, Any]:
        """``order.cancel`` / ``DELETE /api/v3/order``."""
        spec = self._spec(params)
        order_id, client_id = self._order_ref(params)
        cancel_id = params.get("newClientOrderId") or ""
        try:
            order = self.engine.cancel(account.api_key, spec.symbol, order_id, client_id, cancel_id)
        finally:
            self.dispatch()
        return payloads.cancel_result(spec, order, cancel_id or default_cancel_id(order.order_id), self.clock_ms())

    def open_orders_status(self, account: Account, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``openOrders.status`` / ``GET /api/v3/openOrders``."""
        symbol = self._spec(params).symbol if params.get("symbol") else None
        orders = self.engine.open_orders(account.api_key, symbol)
        return [payloads.order_status(self.specs[o.symbol], o) for o in orders]

    def cancel_all(self, account: Account, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``openOrders.cancelAll`` / ``DELETE /api/v3/openOrders``; ``-2011`` when none is open."""
        spec = self._spec(params)
        orders = self.engine.open_orders(account.api_key, spec.symbol)
        if not orders:
            raise errors.cancel_rejected()
        out = []
        try:
            for order in orders:
                self.engine.cancel(account.api_key, spec.symbol, order.order_id, None)
                out.append(payloads.cancel_result(spec, order, default_cancel_id(order.order_id), self.clock_ms()))
        finally:
            self.dispatch()
        return out

    def trades(self, account: Account, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``myTrades`` / ``GET /api/v3/myTrades`` (the ``mytrades_lag`` fault hides the newest)."""
        spec = self._spec(params)
        fills = self.engine.fills(account.api_key, spec.symbol)
        newest = self.faults.trades_visible_until(time.monotonic())
        if newest is not None:  # mytrades_lag fault: the newest executions not yet listed
            fills = [f for f in fills if f.time <= newest]
        limit = min(max(int_param(params, "limit", 500), 1), 1000)
        if params.get("orderId"):
            order_id = int_param(params, "orderId", 0)
            fills = [f for f in fills if f.order_id == order_id]
        if params.get("fromId"):
            from_id = int_param(params, "fromId", 0)
            fills = [f for f in fills if f.trade_id >= from_id]
        if params.get("startTime"):
            start = int_param(params, "startTime", 0)
            fills = [f for f in fills if f.time >= start]
        if params.get("endTime"):
            end = int_param(params, "endTime", 0)
            fills = [f for f in fills if f.time <= end]
        selected = fills[:limit] if params.get("fromId") or params.get("startTime") else fills[-limit:]
        return [payloads.my_trade(spec, f) for f in selected]

    def account_status(self, account: Account, params: Mapping[str, str]) -> dict[str, Any]:
        """``account.status`` / ``GET /api/v3/account``."""
        return payloads.account_info(account, params.get("omitZeroBalances", "false").lower() == "true")

    def _order_ref(self, params: Mapping[str, str]) -> tuple[int | None, str | None]:
        order_id = int_param(params, "orderId", None) if params.get("orderId") else None
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise errors.BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        return order_id, client_id

    async def new_order(self, request: web.Request) -> web.Response:
        body, used_10s, used_day = self.place(*self._signed(request))
        response = json_response(body)
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(used_10s)
        response.headers["X-MBX-ORDER-COUNT-1D"] = str(used_day)
        return response

    async def test_order(self, request: web.Request) -> web.Response:
        return json_response(self.test(*self._signed(request)))

    async def query_order(self, request: web.Request) -> web.Response:
        return json_response(self.status(*self._signed(request)))

    async def cancel_order(self, request: web.Request) -> web.Response:
        return json_response(self.cancel(*self._signed(request)))

    async def open_orders(self, request: web.Request) -> web.Response:
        return json_response(self.open_orders_status(*self._signed(request)))

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        return json_response(self.cancel_all(*self._signed(request)))

    async def my_trades(self, request: web.Request) -> web.Response:
        return json_response(self.trades(*self._signed(request)))

    async def account(self, request: web.Request) -> web.Response:
        return json_response(self.account_status(*self._signed(request)))


async def _fault_response(fault: RestError, real: web.StreamResponse | None = None) -> web.StreamResponse:
    if fault.mode == "timeout":
        await asyncio.sleep(fault.delay_s)
        if real is not None:
            return real
    err = errors.backend_timeout()
    return web.json_response(err.body(), status=fault.status)
