"""The venue's push channels: Binance's WebSocket API session (orders) and the user-data stream on it.

Pure part: signing a request (:func:`signed_params`) and reading a frame (:func:`parse_frame`) into an
:class:`Answer` to one of our requests, an :class:`ExecutionReport` (with the REST-shaped order
snapshot and trade the trader already applies: :meth:`ExecutionReport.snapshot`,
:meth:`ExecutionReport.trade`), an :class:`AccountEvent`, or :class:`Malformed`.

I/O part: :class:`WsApiSession` holds one connection in a thread of its own (the executor's loop is
synchronous): it connects, subscribes with ``userDataStream.subscribe.signature``, reads frames and
reconnects with the one :class:`~infra.backoff.Backoff`.  Everything it learns goes into one queue the
executor's loop drains (:meth:`WsApiSession.drain`), in the order it arrived: ``Connected`` after each
(re)subscribe (the executor reconciles then), ``Disconnected`` (requests without an answer are unknown
outcomes; the executor falls back to REST), answers, reports.  :meth:`WsApiSession.request` never
blocks: it queues the frame on the session's loop and returns the request id, or raises
:class:`NotConnected`.

Why not ``ccxt.pro.binance`` (which trades against the simulator unchanged, see
``tests/integration/sim_exchange/test_ccxt_pro.py``): it is asyncio-only while the executor's loop is
synchronous; its unified orders and trades are floats (the executor keeps the venue's decimal strings);
its handler drops an event it cannot route without telling anyone, where a malformed event must go to
``dlq``; and it hides the request id of an order in flight, which a lost session must turn into an
unknown outcome settled by client order id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import queue
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import orjson

from infra.backoff import Backoff

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- pure

def signature_payload(params: Mapping[str, Any]) -> str:
    """Binance's WebSocket API signature payload: every parameter but ``signature`` sorted by name."""
    def text(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    return "&".join(f"{k}={text(v)}" for k, v in sorted(params.items()) if k != "signature")


def signed_params(params: Mapping[str, Any], api_key: str, api_secret: str, timestamp_ms: int) -> dict[str, Any]:
    """``params`` with ``apiKey``, ``timestamp`` and the HMAC-SHA256 ``signature`` over them."""
    out = {**params, "apiKey": api_key, "timestamp": timestamp_ms}
    out["signature"] = hmac.new(api_secret.encode(), signature_payload(out).encode(), hashlib.sha256).hexdigest()
    return out


@dataclass(frozen=True)
class Answer:
    """The venue's answer to our request ``id``: ``result`` (status 200) or ``code``/``msg``."""

    id: str
    status: int
    result: Any = None
    code: int | None = None
    msg: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class ExecutionReport:
    """One ``executionReport``: a change of one of the account's orders (a fill when ``execution`` is TRADE).

    ``client_order_id`` is the order's own id (``C`` of a cancel report, else ``c``).  Quantities and
    prices keep the venue's decimal strings (checked to be non-negative decimals).
    """

    symbol: str
    client_order_id: str
    order_id: int
    side: str
    execution: str
    status: str
    executed: str
    cum_quote: str
    last_qty: str
    last_price: str
    commission: str
    commission_asset: str
    trade_id: int
    is_maker: bool
    time_ms: int
    event_time_ms: int

    @property
    def executed_qty(self) -> Decimal:
        return Decimal(self.executed)

    def snapshot(self) -> dict[str, Any]:
        """The order as a REST order payload (what ``Order.sync`` reads): the state after this report."""
        return {"symbol": self.symbol, "orderId": self.order_id, "clientOrderId": self.client_order_id,
                "status": self.status, "executedQty": self.executed, "cummulativeQuoteQty": self.cum_quote,
                "transactTime": self.time_ms}

    def trade(self) -> dict[str, Any] | None:
        """The fill as a ``myTrades`` element, or None when this report is not a fill."""
        if self.execution != "TRADE":
            return None
        return {"symbol": self.symbol, "id": self.trade_id, "orderId": self.order_id, "price": self.last_price,
                "qty": self.last_qty, "commission": self.commission, "commissionAsset": self.commission_asset,
                "time": self.time_ms, "isBuyer": self.side == "BUY", "isMaker": self.is_maker}


@dataclass(frozen=True)
class AccountEvent:
    """``outboundAccountPosition`` / ``balanceUpdate``: balances are reconciled from the venue, so only noted."""

    kind: str
    event_time_ms: int


@dataclass(frozen=True)
class Malformed:
    """A frame that is none of the above (bad JSON, unknown event, a field missing or not a number)."""

    raw: bytes
    error: str


@dataclass(frozen=True)
class Connected:
    """The session is up and subscribed to the user-data stream (``generation`` counts sessions)."""

    generation: int


@dataclass(frozen=True)
class Disconnected:
    """The session ended; ``pending``: ids of requests sent on it that got no answer."""

    generation: int
    reason: str
    pending: tuple[str, ...]


Frame = Answer | ExecutionReport | AccountEvent | Malformed
Item = Frame | Connected | Disconnected

_PLAIN_DECIMAL = re.compile(r"^\d{1,20}(\.\d{1,20})?$")
_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "PENDING_CANCEL", "REJECTED", "EXPIRED",
                       "EXPIRED_IN_MATCH"})
_EXECUTIONS = frozenset({"NEW", "CANCELED", "REPLACED", "REJECTED", "TRADE", "EXPIRED", "TRADE_PREVENTION"})


def parse_frame(raw: bytes | str) -> Frame:
    """Read one frame of the WebSocket API: an answer, a user-data event, or :class:`Malformed`.

    An event arrives as ``{"subscriptionId": 0, "event": {"e": "executionReport", "E": ..., ...}}``
    (trimmed): ``s`` symbol, ``c``/``C`` client ids, ``i`` order id, ``x`` execution type, ``X`` order
    status, ``z``/``Z`` cumulative base/quote, ``l``/``L`` this fill, ``n``/``N`` its commission, ``t``
    trade id, ``m`` maker, ``T`` transaction time.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Malformed(data, f"not JSON: {exc}")
    if not isinstance(body, dict):
        return Malformed(data, "not a JSON object")
    if "event" in body:
        event = body["event"]
        if not isinstance(event, dict):
            return Malformed(data, "event is not an object")
        try:
            return _event(event)
        except (KeyError, TypeError, ValueError) as exc:
            return Malformed(data, f"{event.get('e')!r} event: {type(exc).__name__}: {exc}")
    if "id" in body and "status" in body:
        try:
            status = int(body["status"])
            error = body.get("error") or {}
            code = error.get("code")
            return Answer(str(body["id"]), status, body.get("result"), int(code) if code is not None else None,
                          str(error.get("msg", "")))
        except (TypeError, ValueError, AttributeError) as exc:
            return Malformed(data, f"answer: {type(exc).__name__}: {exc}")
    return Malformed(data, "neither an answer nor an event")


def _event(event: dict[str, Any]) -> ExecutionReport | AccountEvent:
    kind = event.get("e")
    if kind in ("outboundAccountPosition", "balanceUpdate"):
        return AccountEvent(kind, int(event["E"]))
    if kind != "executionReport":
        raise ValueError(f"unknown event type {kind!r}")
    execution, status = event["x"], event["X"]
    if execution not in _EXECUTIONS or status not in _STATUSES:
        raise ValueError(f"unknown execution type {execution!r} or status {status!r}")
    client_id = event["C"] if execution == "CANCELED" and event.get("C") else event["c"]
    if not isinstance(client_id, str) or not isinstance(event["s"], str):
        raise TypeError("symbol and client order id must be strings")
    trade_id = int(event["t"])
    if execution == "TRADE" and trade_id < 0:
        raise ValueError("a TRADE report without a trade id")
    return ExecutionReport(
        symbol=event["s"], client_order_id=client_id, order_id=int(event["i"]), side=str(event["S"]),
        execution=execution, status=status, executed=_decimal(event["z"]), cum_quote=_decimal(event["Z"]),
        last_qty=_decimal(event["l"]), last_price=_decimal(event["L"]), commission=_decimal(event["n"]),
        commission_asset=str(event.get("N") or ""), trade_id=trade_id, is_maker=bool(event["m"]),
        time_ms=int(event["T"]), event_time_ms=int(event["E"]),
    )


def _decimal(text: Any) -> str:
    if not isinstance(text, str) or not _PLAIN_DECIMAL.match(text):
        raise ValueError(f"{text!r} is not a plain non-negative decimal string")
    return text


# ---------------------------------------------------------------------------------------------- I/O

class NotConnected(Exception):
    """No session is up: use REST."""


class WsApiSession:
    """One WebSocket API session in its own thread, reconnecting; see the module docstring."""

    def __init__(self, url: str, api_key: str, api_secret: str, venue_ms: Callable[[], int], recv_window_ms: int,
                 backoff: Backoff) -> None:
        self.url, self.api_key, self.api_secret = url, api_key, api_secret
        self.venue_ms = venue_ms  # the venue's clock as we measure it, for request timestamps
        self.recv_window_ms = recv_window_ms
        self.backoff = backoff
        self.inbox: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._held: list[Item] = []  # taken by wait(), handed out first by drain()
        self.generation = 0
        self._up = threading.Event()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._next_id = 0
        self._thread = threading.Thread(target=self._run, name="ws-api-session", daemon=True)

    @property
    def up(self) -> bool:
        """True while subscribed: the executor takes order state from the events and does not poll."""
        return self._up.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        loop = self._loop
        if loop is not None and self._ws is not None:
            asyncio.run_coroutine_threadsafe(self._ws.close(), loop)
        self._thread.join(timeout_s)

    def wait(self, timeout_s: float) -> None:
        """Block up to ``timeout_s`` until something arrives (kept for :meth:`drain`).

        The engine's idle pause: an answer or report ends it at once instead of after a fixed sleep.
        """
        if self._held:
            return
        try:
            self._held.append(self.inbox.get(timeout=timeout_s))
        except queue.Empty:
            pass

    def drain(self) -> list[Item]:
        """Everything that arrived since the last call, in arrival order."""
        out, self._held = self._held, []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out

    def request(self, method: str, params: Mapping[str, Any], signed: bool = True) -> str:
        """Queue a request on the session; return its id (the answer comes through :meth:`drain`)."""
        with self._lock:  # checked with the pending set, so a request is either refused or reported
            loop, ws = self._loop, self._ws
            if not self._up.is_set() or loop is None or ws is None:
                raise NotConnected(self.url)
            self._next_id += 1
            request_id = f"{self.generation}-{self._next_id}"
            self._pending.add(request_id)
        if signed:
            params = signed_params({**params, "recvWindow": params.get("recvWindow", self.recv_window_ms)},
                                   self.api_key, self.api_secret, int(params.get("timestamp") or self.venue_ms()))
        frame = orjson.dumps({"id": request_id, "method": method, "params": params}).decode()
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(_send(ws, frame)))
        return request_id

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as http:
            while not self._stop.is_set():
                reason = "closed"
                try:
                    reason = await self._session(http)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # a task boundary: log, then reconnect
                    log.exception("ws-api session failed", extra={"url": self.url})
                    reason = f"{type(exc).__name__}: {exc}"
                self._ended(reason)
                if self._stop.is_set():
                    return
                pause = self.backoff.next_delay()
                log.warning("ws-api session down; REST meanwhile, reconnecting",
                            extra={"url": self.url, "reason": reason, "retry_in_s": round(pause, 3)})
                await asyncio.sleep(pause)

    async def _session(self, http: aiohttp.ClientSession) -> str:
        async with http.ws_connect(self.url, heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)) as ws:
            self._ws = ws
            with self._lock:
                self.generation += 1
                self._next_id = 0
            subscribe_id = f"{self.generation}-subscribe"
            params = signed_params({}, self.api_key, self.api_secret, self.venue_ms())
            await ws.send_str(orjson.dumps({"id": subscribe_id, "method": "userDataStream.subscribe.signature",
                                            "params": params}).decode())
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = parse_frame(msg.data)
                if isinstance(frame, Answer) and frame.id == subscribe_id:
                    if not frame.ok:
                        return f"subscribe refused: {frame.code} {frame.msg}"
                    self.backoff.reset()
                    self._up.set()
                    self.inbox.put(Connected(self.generation))
                    continue
                if isinstance(frame, Answer):
                    with self._lock:
                        self._pending.discard(frame.id)
                self.inbox.put(frame)
            return f"closed by the venue ({ws.close_code})"

    def _ended(self, reason: str) -> None:
        with self._lock:
            was_up = self._up.is_set()
            self._up.clear()
            self._ws = None
            pending, self._pending = tuple(sorted(self._pending)), set()
        if was_up or pending:
            self.inbox.put(Disconnected(self.generation, reason, pending))


async def _send(ws: aiohttp.ClientWebSocketResponse, frame: str) -> None:
    try:
        await ws.send_str(frame)
    except (ConnectionError, RuntimeError) as exc:  # the session is going down: Disconnected reports it
        log.warning("ws-api send failed", extra={"error": str(exc)})

