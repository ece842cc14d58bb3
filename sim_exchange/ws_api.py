"""The simulated exchange's WebSocket API (``/ws-api/v3``): Binance's request/response trading channel
and its user-data stream.

A request is one JSON text frame ``{"id", "method", "params"}``; the answer carries the same ``id``,
an HTTP-like ``status``, ``result`` or ``error`` (Binance's ``{"code", "msg"}``) and ``rateLimits``
(left out with ``returnRateLimits=false``). The trading and account methods are REST's calls over
the same engine (:class:`~sim_exchange.rest_api.RestApi`'s ``place``, ``cancel``, ...): the same
filters, error codes, request weights, order counts and REST faults (matched by the REST path and
method each method stands for). A signed request carries ``apiKey``, ``timestamp`` and
``signature`` over its sorted parameters (HMAC or Ed25519, :mod:`sim_exchange.auth`), or relies on
a ``session.logon`` (Ed25519 keys only, as on Binance).

``userDataStream.subscribe(.signature)`` makes the connection receive the account's events,
wrapped as ``{"subscriptionId": n, "event": {...}}``: ``executionReport`` for each order change,
``outboundAccountPosition`` with the balances an operation changed, ``balanceUpdate`` for a
deposit or withdrawal (:mod:`sim_exchange.payloads` builds each).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from sim_exchange import auth, errors, payloads
from sim_exchange import metrics as m
from sim_exchange.engine import Account, BalanceChange, Engine, Event, OrderUpdate
from sim_exchange.faults import AnswerLost, LateExecution, RestError, RestFault
from sim_exchange.rest_api import RestApi, request_weight

log = logging.getLogger("tickpipe.sim_exchange")

# method -> the REST call it stands for (weight, faults); None: no REST twin
_REST_TWIN: dict[str, tuple[str, str]] = {
    "order.place": ("/api/v3/order", "POST"),
    "order.test": ("/api/v3/order/test", "POST"),
    "order.status": ("/api/v3/order", "GET"),
    "order.cancel": ("/api/v3/order", "DELETE"),
    "openOrders.status": ("/api/v3/openOrders", "GET"),
    "openOrders.cancelAll": ("/api/v3/openOrders", "DELETE"),
    "myTrades": ("/api/v3/myTrades", "GET"),
    "account.status": ("/api/v3/account", "GET"),
    "ping": ("/api/v3/ping", "GET"),
    "time": ("/api/v3/time", "GET"),
}
_SESSION_WEIGHT = 2  # session.*, userDataStream.*: Binance's weight
CONNECT_WEIGHT = 2  # each connection attempt
_AUTH_PARAMS = ("apiKey", "signature")
_MAX_ID_LEN = 36


def ws_error(code: int, msg: str, status: int = 400) -> errors.BinanceError:
    return errors.BinanceError(code, msg, status)


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request frame."""

    id: int | str | None
    method: str
    params: dict[str, Any]


def parse_request(text: str | bytes) -> Request:
    """Parse one request frame; raise ``-1135`` (with the id if one was readable) when it is malformed."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ws_error(-1135, "Invalid JSON request.") from None
    if not isinstance(body, dict):
        raise ws_error(-1135, "Invalid JSON request; expected an object.")
    request_id = body.get("id")
    if isinstance(request_id, bool) or not (request_id is None or isinstance(request_id, int)
                                            or (isinstance(request_id, str) and len(request_id) <= _MAX_ID_LEN)):
        raise ws_error(-1135, "Invalid 'id' in JSON request; expected an integer, a string of at most 36 "
                              "characters, or null.")
    method = body.get("method")
    if not isinstance(method, str):
        raise ws_error(-1135, "Invalid 'method' in JSON request; expected a string.")
    params = body.get("params", {})
    if not isinstance(params, dict) or any(isinstance(v, (dict, list)) for v in params.values()):
        raise ws_error(-1135, "Invalid 'params' in JSON request; expected an object.")
    return Request(request_id, method, params)


def answer(request_id: Any, status: int, result: Any = None, error: errors.BinanceError | None = None,
           rate_limits: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A response frame as Binance frames it."""
    body: dict[str, Any] = {"id": request_id, "status": status}
    if error is not None:
        body["error"] = error.body()
    else:
        body["result"] = result
    if rate_limits is not None:
        body["rateLimits"] = rate_limits
    return body


def string_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The parameters as REST reads them (strings; JSON booleans as ``true``/``false``)."""
    return {k: auth.ws_value(v) for k, v in params.items() if v is not None}


@dataclass(eq=False)
class Session:
    """One WebSocket API connection: its logon, user-data subscriptions and outbound queue."""

    id: int
    ws: web.WebSocketResponse
    request: web.Request
    connected_ms: int
    return_rate_limits: bool = True
    logged_on: Account | None = None
    authorized_ms: int | None = None
    subscriptions: dict[int, str] = field(default_factory=dict)  # subscriptionId -> account key
    next_subscription: int = 0
    queue: deque[bytes] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False

    @property
    def ip(self) -> str:
        return self.request.remote or "?"

    def send(self, body: Any) -> None:
        self.queue.append(orjson.dumps(body))
        self.wake.set()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (what a lost answer looks like)."""
        self.closing = True
        if self.request.transport is not None:
            self.request.transport.abort()
        self.wake.set()

    async def writer(self) -> None:
        while not self.ws.closed and not self.closing:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            while self.queue and not self.ws.closed:
                await self.ws.send_frame(self.queue.popleft(), WSMsgType.TEXT)
                m.WS_FRAMES.inc()


class WsApi:
    """``/ws-api/v3``: sessions, requests over :class:`RestApi`'s calls, and the user-data events."""

    def __init__(self, rest: RestApi, engine: Engine, clock_ms: Callable[[], int], max_queued_frames: int) -> None:
        self.rest = rest
        self.engine = engine
        self.clock_ms = clock_ms
        self.max_queued_frames = max_queued_frames
        self.sessions: dict[int, Session] = {}
        engine.reports_wanted = self.subscribed
        self._next_id = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._calls: dict[str, Callable[[Account, Mapping[str, str]], Any]] = {
            "order.test": rest.test,
            "order.status": rest.status,
            "order.cancel": rest.cancel,
            "openOrders.status": rest.open_orders_status,
            "openOrders.cancelAll": rest.cancel_all,
            "myTrades": rest.trades,
            "account.status": rest.account_status,
        }

    # ---------------------------------------------------------------- connections
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws-api/v3``: serve one client's requests until it leaves."""
        limits = self.rest.limits
        try:
            limits.charge_weight(request.remote or "?", CONNECT_WEIGHT, self.clock_ms())
        except errors.BinanceError as err:
            m.ERRORS.labels(str(err.code)).inc()
            return web.json_response(err.body(), status=err.status,
                                     headers={"Retry-After": str(limits.weight.retry_after_s(self.clock_ms()))})
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        session = Session(self._next_id, ws, request, self.clock_ms(),
                          return_rate_limits=request.query.get("returnRateLimits", "true").lower() != "false")
        self._next_id += 1
        self.sessions[session.id] = session
        m.WS_API_SESSIONS.set(len(self.sessions))
        log.info("ws-api session open", extra={"session": session.id, "ip": session.ip})
        writer = asyncio.create_task(session.writer(), name=f"ws-api-writer-{session.id}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self.handle(session, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    session.send(answer(None, 400, error=ws_error(-1135, "Invalid JSON request; binary frames "
                                                                         "are not accepted.")))
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            m.ERRORS.labels("ws_api").inc()
            log.exception("ws-api session failed", extra={"session": session.id})
        finally:
            writer.cancel()
            self.sessions.pop(session.id, None)
            m.WS_API_SESSIONS.set(len(self.sessions))
            log.info("ws-api session closed", extra={"session": session.id,
                                                     "subscriptions": len(session.subscriptions)})
        return ws

    async def close_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for session in list(self.sessions.values()):
            await session.ws.close(code=1001, message=b"server shutdown")

    def drop_all(self) -> int:
        """Drop every session's TCP connection without a close frame (the ``/_sim`` drill)."""
        sessions = list(self.sessions.values())
        for session in sessions:
            m.DISCONNECTS.labels("ws_api_drop").inc()
            session.abort()
        return len(sessions)

    def inject(self, api_key: str, frame: str) -> int:
        """Send ``frame`` as it is to every session subscribed to ``api_key`` (the ``/_sim`` drill of a bad event)."""
        sessions = [s for s in self.sessions.values() if api_key in s.subscriptions.values()]
        for session in sessions:
            session.queue.append(frame.encode())
            session.wake.set()
        return len(sessions)

    # ---------------------------------------------------------------- requests
    async def handle(self, session: Session, text: str) -> None:
        """Answer one request frame (a held one - late execution, timeout - is answered by a task)."""
        started = time.perf_counter()
        request_id: Any = None
        method = "?"
        try:
            request = parse_request(text)
            request_id, method = request.id, request.method
            storm = self.rest.faults.storm_hits(time.monotonic())
            if storm is not None:
                raise errors.too_much_weight(self.rest.limits.weight.limit)
            twin = _REST_TWIN.get(method)
            sparams = string_params(request.params)
            weight = request_weight(*twin, sparams) if twin else _SESSION_WEIGHT
            self.rest.limits.charge_weight(session.ip, weight, self.clock_ms())
            if method not in self._calls and method not in ("order.place", "ping", "time") \
                    and not method.startswith(("session.", "userDataStream.")):
                raise ws_error(-1020, f"Unknown method '{method}'.")
            fault = self.rest.faults.match_rest_fault(*twin) if twin else None
            if isinstance(fault, LateExecution) or (isinstance(fault, RestError) and fault.mode == "timeout"):
                task = asyncio.create_task(self._held(session, request, fault, started))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            await self._answer(session, request, fault, started)
        except errors.BinanceError as err:
            self._send_error(session, request_id, method, err, started)

    async def _held(self, session: Session, request: Request, fault: RestFault, started: float) -> None:
        try:
            await self._answer(session, request, fault, started)
        except errors.BinanceError as err:
            self._send_error(session, request.id, request.method, err, started)

    async def _answer(self, session: Session, request: Request, fault: RestFault | None, started: float) -> None:
        if isinstance(fault, LateExecution):
            await asyncio.sleep(fault.delay_s)  # held in the venue; the recvWindow check runs now
        if isinstance(fault, RestError) and not fault.after_execution:
            if fault.mode == "timeout":
                await asyncio.sleep(fault.delay_s)
            raise errors.BinanceError(errors.backend_timeout().code, errors.backend_timeout().msg, fault.status)
        try:
            result, order_counts = self._execute(session, request)
        except errors.BinanceError:
            if isinstance(fault, AnswerLost):
                session.abort()  # refused, and the answer never leaves either
                return
            if isinstance(fault, RestError):  # the fault answers whatever the venue decided
                raise errors.BinanceError(errors.backend_timeout().code, errors.backend_timeout().msg,
                                          fault.status) from None
            raise
        if isinstance(fault, AnswerLost):
            log.info("ws-api answer lost", extra={"session": session.id, "method": request.method})
            m.DISCONNECTS.labels("ws_api_answer_lost").inc()
            session.abort()  # executed, and the answer never leaves
            return
        if isinstance(fault, RestError):
            if fault.mode == "timeout":
                await asyncio.sleep(fault.delay_s)
            else:
                err = errors.backend_timeout()
                raise errors.BinanceError(err.code, err.msg, fault.status)
        session.send(answer(request.id, 200, result, rate_limits=self._rate_limits(session, request, order_counts)))
        self._count(request.method, 200, started)

    def _send_error(self, session: Session, request_id: Any, method: str, err: errors.BinanceError,
                    started: float) -> None:
        m.ERRORS.labels(str(err.code)).inc()
        limits = self._rate_limits(session, None, None) if session.return_rate_limits else None
        session.send(answer(request_id, err.status, error=err, rate_limits=limits))
        self._count(method, err.status, started)

    @staticmethod
    def _count(method: str, status: int, started: float) -> None:
        m.WS_API_REQUESTS.labels(method if method in _REST_TWIN or method.startswith(("session.", "userDataStream."))
                                 else "unknown", str(status)).inc()
        m.WS_API_LATENCY.observe(time.perf_counter() - started)

    def _rate_limits(self, session: Session, request: Request | None,
                     order_counts: tuple[int, int] | None) -> list[dict[str, Any]] | None:
        if not session.return_rate_limits or (
                request is not None and str(request.params.get("returnRateLimits", "true")).lower() == "false"):
            return None
        limits, now = self.rest.limits, self.clock_ms()
        out: list[dict[str, Any]] = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                      "limit": limits.weight.limit, "count": limits.weight.used(session.ip, now)}]
        if order_counts is not None:
            out.append({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                        "limit": limits.orders_10s.limit, "count": order_counts[0]})
            out.append({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                        "limit": limits.orders_day.limit, "count": order_counts[1]})
        return out

    def _signed(self, session: Session, params: Mapping[str, Any]) -> Account:
        """The account a signed request acts for: its own signature, or the session's logon."""
        key = params.get("apiKey")
        if key is None and "signature" not in params and session.logged_on is not None:
            account = session.logged_on
        else:
            if not key or not isinstance(key, str):
                raise errors.mandatory_missing("apiKey")
            found = self.engine.accounts.get(key)
            if found is None:
                raise errors.rejected_api_key()
            signature = params.get("signature")
            if signature is None:
                raise errors.mandatory_missing("signature")
            auth.verify(found.api_secret, found.ed25519_key, auth.ws_payload(params), str(signature))
            account = found
        auth.check_timestamp(string_params(params), self.clock_ms())
        return account

    def _execute(self, session: Session, request: Request) -> tuple[Any, tuple[int, int] | None]:
        method, params = request.method, request.params
        if method == "ping":
            return {}, None
        if method == "time":
            return {"serverTime": self.clock_ms()}, None
        if method == "session.logon":
            account = self._signed(session, params)
            if account.ed25519_key is None:
                raise ws_error(-4056, "HMAC_SHA256 API key is not supported.")
            session.logged_on, session.authorized_ms = account, self.clock_ms()
            return self._session_status(session), None
        if method == "session.status":
            return self._session_status(session), None
        if method == "session.logout":
            session.logged_on, session.authorized_ms = None, None
            return self._session_status(session), None
        if method == "userDataStream.subscribe.signature":
            return self._subscribe(session, self._signed(session, params)), None
        if method == "userDataStream.subscribe":
            if session.logged_on is None:
                raise ws_error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
            return self._subscribe(session, session.logged_on), None
        if method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId")
            if wanted is None:
                session.subscriptions.clear()
            elif not isinstance(wanted, int) or session.subscriptions.pop(wanted, None) is None:
                raise ws_error(-2035, "User Data Stream subscription not active.")
            return {}, None
        if method == "userDataStream.subscriptions":
            return [{"subscriptionId": sid} for sid in sorted(session.subscriptions)], None
        account = self._signed(session, params)
        sparams = string_params({k: v for k, v in params.items() if k not in _AUTH_PARAMS})
        if method == "order.place":
            body, used_10s, used_day = self.rest.place(account, sparams)
            return body, (used_10s, used_day)
        call = self._calls.get(method)
        if call is None:
            raise ws_error(-1020, f"Unknown method '{method}'.")
        return call(account, sparams), None

    def _session_status(self, session: Session) -> dict[str, Any]:
        account = session.logged_on
        return {
            "apiKey": account.api_key if account else None,
            "authorizedSince": session.authorized_ms,
            "connectedSince": session.connected_ms,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": self.clock_ms(),
            "userDataStream": bool(session.subscriptions),
        }

    @staticmethod
    def _subscribe(session: Session, account: Account) -> dict[str, Any]:
        subscription = session.next_subscription
        session.next_subscription += 1
        session.subscriptions[subscription] = account.api_key
        return {"subscriptionId": subscription}

    # ---------------------------------------------------------------- user-data events
    def subscribed(self, account: str) -> bool:
        """Whether a session is subscribed to ``account``'s user data (the engine reports only for those)."""
        return any(account in session.subscriptions.values() for session in self.sessions.values())

    def on_events(self, events: Iterable[Event]) -> None:
        """Send the account events among ``events`` to the sessions subscribed to each account.

        Only subscribed accounts' events are built: a REST-only client pays nothing for the push
        channel (building every report cost the simulator ~25% more CPU per REST order).
        """
        subscribed = {key for session in self.sessions.values() for key in session.subscriptions.values()}
        if not subscribed:
            return
        out: list[tuple[str, dict[str, Any]]] = []
        touched: dict[str, set[str]] = {}
        for event in events:
            if isinstance(event, OrderUpdate):
                account = event.order.account
                if account not in subscribed:
                    continue
                spec = self.rest.specs[event.order.symbol]
                touched.setdefault(account, set()).update((spec.base, spec.quote))
                out.append((account, payloads.execution_report(spec, event, self.clock_ms())))
            elif isinstance(event, BalanceChange) and event.account in subscribed:
                touched.setdefault(event.account, set()).add(event.asset)
                out.append((event.account, payloads.balance_update(event, self.clock_ms())))
        if not out:
            return
        for account, assets in touched.items():
            holder = self.engine.accounts[account]
            out.append((account, payloads.account_position(holder, sorted(assets), self.clock_ms())))
        for account, event_body in out:
            m.USER_EVENTS.labels(event_body["e"]).inc()
            for session in list(self.sessions.values()):
                for sid, key in session.subscriptions.items():
                    if key == account:
                        session.send({"subscriptionId": sid, "event": event_body})
                if len(session.queue) > self.max_queued_frames and not session.closing:
                    log.warning("slow ws-api session disconnected", extra={"session": session.id})
                    m.DISCONNECTS.labels("ws_api_slow").inc()
                    session.abort()
