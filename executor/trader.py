"""Drive one signal's orders through policy, risk and the venue: the per-signal order lifecycle.

A :class:`SignalRun` is one signal in progress.  :meth:`Trader.step` asks the pure policy what to do
and carries it out; every order change goes through the state machine (``executor.order``) and is
published by the outbox.  Attempts on the venue are contiguous (0, 1, 2, ...): an order the venue never
took (rejected, 429, proven not found) is retried under the *same* client order id, so recovery can
find every order of a signal by querying attempts in order until the first one the venue does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.events import fill_record, order_event
from executor.ids import client_order_id, parse_client_order_id
from executor.market import MarketView
from executor.order import InvalidStateTrigger, Order, OrderStatus, OrderTrigger, Transition
from executor.policy import (
    Cancel,
    Deny,
    Finish,
    InstrumentRules,
    Intent,
    Place,
    PolicyParams,
    Wait,
    Working,
    decide,
)
from executor.positions import Positions
from executor.risk import Approved, Denied, RiskEngine, Throttled
from executor.user_stream import Answer, Disconnected, ExecutionReport, NotConnected, WsApiSession
from executor.venue import (
    BinanceVenue,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    VenueClock,
    VenueError,
    answer_error,
    order_params,
)
from infra.backoff import backoff_delay

log = logging.getLogger(__name__)

MAX_SETTLE_BACKOFF_S = 5.0
VENUE_CLOSED = frozenset({"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"})


class NotYetProven(OutcomeUnknown):
    """The venue does not know an order, but a request for it may still execute until ``retry_at_ns``."""

    def __init__(self, message: str, retry_at_ns: int) -> None:
        super().__init__(message)
        self.retry_at_ns = retry_at_ns


class Outbox(Protocol):
    """Where records go (``executor.outbox.KafkaOutbox``)."""

    def order_event(self, record: dict[str, Any]) -> None: ...

    def fill(self, record: dict[str, Any]) -> None: ...


@dataclass
class SignalRun:
    """One signal being executed; done once no order is live and the policy finished it."""

    signal: dict[str, Any]
    partition: int
    offset: int
    received_at: int  # when the executor took the signal (ns)
    side: Side
    target: Decimal
    signal_ack_ns: int | None = None  # the broker's append time of the signal, when its topic keeps it
    leg: int = 0
    attempt: int = 0
    orders: list[Order] = field(default_factory=list)
    working: Order | None = None
    placed_at: int = 0
    next_action_at: int = 0
    settle_retries: int = 0  # failed settle queries in a row (the backoff's attempt)
    venue_rejections: int = 0
    started: bool = False  # recovery lookup and staleness check passed
    finishing: bool = False  # the policy is done; waiting for every Fill (a lagging myTrades)
    fills_retries: int = 0  # myTrades reads that missed fills in a row
    done: bool = False
    outcome: str = ""

    @property
    def signal_id(self) -> str:
        """The signal's id."""
        return self.signal["signal_id"]

    @property
    def filled(self) -> Decimal:
        """Base quantity filled over all the signal's orders."""
        return sum((o.filled_qty for o in self.orders), Decimal(0))


@dataclass(frozen=True)
class TraderConfig:
    """Knobs of the order lifecycle (from ``ExecutorSettings``)."""

    venue: str
    account: str  # carried by every Fill: start-up positions are rebuilt from this account's
    policy: PolicyParams
    max_attempts: int
    poll_interval_ns: int
    settle_retry_ns: int
    market_wait_ns: int
    recv_window_ms: int = 5000
    max_book_age_ns: int = 0  # 0: no age limit
    answer_timeout_ns: int = 3_000_000_000  # a place over the WebSocket API unanswered this long is an unknown outcome


class Trader:
    """Carries out policy decisions for signal runs against one venue."""

    def __init__(
        self,
        config: TraderConfig,
        venue: BinanceVenue,
        risk: RiskEngine,
        market: MarketView,
        positions: Positions,
        rules: dict[str, InstrumentRules],
        outbox: Outbox,
        clock: Callable[[], int],
        on_ack: Callable[[SignalRun, int], None] = lambda run, now: None,
        on_deny: Callable[[str], None] = lambda check: None,
        on_refused: Callable[[Order, InvalidStateTrigger], None] = lambda order, exc: None,
    ) -> None:
        self.config = config
        self.venue = venue
        self.risk = risk
        self.market = market
        self.positions = positions
        self.rules = rules
        self.outbox = outbox
        self.clock = clock
        self.on_ack = on_ack
        self.on_deny = on_deny  # called with the failed check's name for every denied order
        self.paused_until = 0  # venue-wide pause after a 429 (Retry-After)
        self.live: dict[str, Order] = {}  # client order id -> order resting or unsettled on the venue
        self.published_trades: set[tuple[str, int]] = set()
        self.fill_qty: dict[str, Decimal] = {}  # client order id -> quantity of its published Fills
        self.on_refused = on_refused  # called once per order whose venue report the transition table refuses
        self.disputed: dict[str, Order] = {}  # orders whose venue report the table refused: kept managed
        self.venue_clock = VenueClock()  # measured by the engine (GET /api/v3/time)
        self.deadline_ms: dict[str, int] = {}  # client order id -> venue time after which its POST cannot execute
        self.recover_proof_ms = 0  # venue time after which no request of a previous process can still execute
        # the push path (set by the engine when the WebSocket API is configured): requests in flight on it
        self.push: WsApiSession | None = None
        self.push_requests: dict[str, tuple[str, Order]] = {}  # request id -> ("place" | "cancel", order)
        self.placing: dict[str, SignalRun] = {}  # client order id -> run, until the venue acknowledged it
        self.cancel_sent: dict[str, int] = {}  # client order id -> when its cancel went over the session, until answered
        self.on_foreign: Callable[[ExecutionReport], None] = lambda report: None

    @property
    def push_up(self) -> bool:
        """True while order state comes by push (the session is subscribed): no polling then."""
        return self.push is not None and self.push.up

    # ---- publishing -------------------------------------------------------------------------------

    def _publish(self, order: Order, transitions: list[Transition], ts_event: int | None = None) -> None:
        now = self.clock()
        for transition in transitions:
            self.outbox.order_event(order_event(order, transition, ts_event or now, now, now))
        cid = order.client_order_id
        if order.is_terminal:
            # only this very order leaves `live`: a denial or rejection of another order under the same
            # id (a duplicate) must never hide the one resting on the venue
            if self.live.get(cid) is order and cid not in self.disputed:
                del self.live[cid]
        elif order.status is not OrderStatus.INITIALIZED:
            self.live[cid] = order

    def _fills(self, order: Order, trades: list[dict[str, Any]]) -> None:
        now = self.clock()
        for trade in trades:
            record = fill_record(order, trade, self.config.account, now, now)
            key = (record["symbol"], record["trade_id"])
            if key in self.published_trades:
                continue
            self.published_trades.add(key)
            qty = Decimal(record["qty"])
            self.fill_qty[order.client_order_id] = self.fill_qty.get(order.client_order_id, Decimal(0)) + qty
            # published even if positions already hold the trade (rebuilt at start): the Fill may never
            # have reached Kafka before a crash; consumers dedupe on trade_id
            self.positions.apply_fill(
                record["symbol"], record["trade_id"], order.command.side, Decimal(record["price"]), qty,
                Decimal(record["fee"]), record["fee_asset"], record["ts_event"] // 1_000_000,
            )
            self.outbox.fill(record)

    def fills_missing(self, order: Order) -> bool:
        """True while the venue reports more filled quantity than the Fills published for ``order``."""
        return order.filled_qty > self.fill_qty.get(order.client_order_id, Decimal(0))

    def fetch_fills(self, order: Order) -> None:
        """Publish the order's executions not yet published (``myTrades`` of its venue order id)."""
        if self.fills_missing(order) and order.venue_order_id is not None:
            self._fills(order, self.venue.my_trades(order.command.symbol, order.venue_order_id))

    def _apply_venue_order(self, order: Order, payload: dict[str, Any], report: bool = False) -> None:
        # ``report``: the payload is an executionReport's state, which says nothing about a cancel in flight
        try:
            transitions = order.sync(
                payload["status"], Decimal(payload["executedQty"]), Decimal(payload["cummulativeQuoteQty"]),
                str(payload["orderId"]), cancel_answered=not report,
            )
        except InvalidStateTrigger as exc:
            if payload["status"] in VENUE_CLOSED and Decimal(payload["executedQty"]) == order.filled_qty:
                self._dispute_closed(order, exc, payload)
            else:
                self._refused(order, exc, payload)
            return
        self.disputed.pop(order.client_order_id, None)
        ts_event = int(payload.get("transactTime") or payload.get("updateTime") or 0) * 1_000_000 or None
        self._publish(order, transitions, ts_event)
        full = payload.get("fills") or []
        if full and all("tradeId" in f for f in full):
            self._fills(order, [_full_fill(payload, f, order.command.side) for f in full])
        self.fetch_fills(order)

    def _refused(self, order: Order, exc: InvalidStateTrigger, payload: dict[str, Any]) -> None:
        # the venue says something the table does not allow: keep the order managed (live, so the kill
        # switch and the exposure check see it; its run unfinished, so the offset stays uncommitted) and
        # ask the venue again later
        cid = order.client_order_id
        if cid in self.disputed:
            log.warning("disputed order still refused", extra={"client_order_id": cid, "transition": str(exc)})
            return
        self.disputed[cid] = order
        self.live[cid] = order
        self.on_refused(order, exc)  # counted once per order
        log.error("venue report refused by the order state machine; order kept managed", extra={
            "client_order_id": cid, "transition": str(exc), "venue_status": payload.get("status"),
            "executed_qty": payload.get("executedQty"), "filled_qty": str(order.filled_qty)})

    def _dispute_closed(self, order: Order, exc: InvalidStateTrigger, payload: dict[str, Any]) -> None:
        # the venue closed the order and every execution of it is already accounted for: nothing can
        # change any more, so it stops being managed (the refused report stays in the log and the metric)
        cid = order.client_order_id
        if cid not in self.disputed:
            self.on_refused(order, exc)
        self.disputed.pop(cid, None)
        if self.live.get(cid) is order and order.is_terminal:
            del self.live[cid]
        log.error("venue report refused by the order state machine; the order is closed on the venue with no "
                  "execution unaccounted for", extra={"client_order_id": cid, "transition": str(exc),
                                                      "venue_status": payload["status"], "filled_qty": str(order.filled_qty)})

    def _retry_in_ns(self, retries: int) -> int:
        """Pause before the next query of a run after ``retries`` fruitless ones (the one backoff, from settle_retry)."""
        return int(backoff_delay(retries, self.config.settle_retry_ns / 1e9, MAX_SETTLE_BACKOFF_S) * 1e9)

    def _requery_disputed(self, run: SignalRun, orders: list[Order]) -> None:
        for order in orders:
            try:
                self._apply_venue_order(order, self.venue.query(order.command.symbol, order.client_order_id))
            except VenueError as exc:
                log.warning("query of a disputed order failed", extra={"client_order_id": order.client_order_id,
                                                                       "error": str(exc)})
        run.next_action_at = self.clock() + self._retry_in_ns(run.settle_retries)
        run.settle_retries += 1

    def _finish(self, run: SignalRun, outcome: str) -> None:
        """The policy is done with ``run``; it is done once every execution has its Fill published."""
        run.finishing, run.outcome = True, outcome
        self._complete(run)

    def _complete(self, run: SignalRun) -> None:
        try:
            for order in run.orders:
                self.fetch_fills(order)
        except VenueError as exc:
            log.warning("myTrades failed; the run waits for its fills", extra={"signal_id": run.signal_id,
                                                                              "error": str(exc)})
        missing = [o.client_order_id for o in run.orders if self.fills_missing(o)]
        if not missing:
            run.done = True
            return
        # myTrades lags the order state: ask again with backoff; the offset stays uncommitted meanwhile
        retry_in = self._retry_in_ns(run.fills_retries)
        run.fills_retries += 1
        run.next_action_at = self.clock() + retry_in
        log.info("fills missing; run waits", extra={"signal_id": run.signal_id, "orders": missing,
                                                    "retry_in_ms": retry_in // 1_000_000})

    # ---- the step ---------------------------------------------------------------------------------

    def intent(self, run: SignalRun) -> Intent:
        """The run's remaining intent for the policy."""
        s = run.signal
        return Intent(run.side, run.target, run.filled, float(s["urgency"]), s["expires_at"], run.received_at)

    def step(self, run: SignalRun) -> None:
        """Advance ``run`` by at most one venue action; call again on the next tick."""
        now = self.clock()
        if run.done or now < run.next_action_at or now < self.paused_until:
            return
        disputed = [o for o in run.orders if o.client_order_id in self.disputed and self.disputed[o.client_order_id] is o]
        if disputed:
            self._requery_disputed(run, disputed)
            return
        if run.finishing:
            self._complete(run)
            return
        for done_order in run.orders:
            self.fetch_fills(done_order)  # a failed myTrades call earlier: complete the Fills first
        order = run.working
        if order is not None and order.status is OrderStatus.PENDING_NEW:
            # only a place sent over the WebSocket API waits here (a REST place returns settled)
            if now - run.placed_at >= self.config.answer_timeout_ns:
                self._submit_failed(run, order, OutcomeUnknown(
                    f"no answer within {self.config.answer_timeout_ns // 1_000_000} ms"))
            return
        if order is not None and order.is_unsettled:
            self._settle(run, order)
            return
        sent = self.cancel_sent.get(order.client_order_id) if order is not None else None
        if order is not None and sent is not None and now - sent >= self.config.answer_timeout_ns:
            del self.cancel_sent[order.client_order_id]  # a cancel unanswered on a live session: ask the venue
            self.requery(order)
        if order is not None and order.is_terminal:
            run.working = None
            order = None
        if order is not None and now - run.placed_at >= self.config.poll_interval_ns and not self.push_up:
            self._poll(run, order)
            if run.working is None or run.working.is_terminal:
                run.working = None
                return
        symbol = run.signal["symbol"]
        book = self.market.snapshot(self.config.venue, symbol)
        working = None
        if run.working is not None:
            cmd = run.working.command
            working = Working(cmd.order_type, cmd.time_in_force, cmd.price, run.placed_at)
        action = decide(self.intent(run), working, book, self.rules[symbol], self.config.policy, now)
        match action:
            case Place():
                self._place(run, action, now)
            case Cancel(reason=reason):
                self._cancel(run, reason)
            case Finish(reason=reason):
                self._finish(run, reason)
            case Deny(check=check, reason=reason, price=price, qty=qty):
                self._deny(run, check, reason, price, qty)
            case Wait(reason="no market data") if now - run.received_at >= self.config.market_wait_ns:
                self._deny_without_market(run, now)
            case Wait():
                pass

    def _next_order(self, run: SignalRun, order_type: OrderType, tif: TimeInForce | None, price: Decimal, qty: Decimal) -> Order:
        s = run.signal
        cid = client_order_id(run.signal_id, run.leg, run.attempt)
        cmd = SubmitOrder(cid, run.signal_id, s["venue"], s["symbol"], run.side, order_type, tif, price, qty, run.leg, run.attempt)
        previous = [o for o in run.orders if o.client_order_id == cid]
        # a retried id (the venue never took the previous try) continues that id's event sequence
        order = Order(cmd, seq=previous[-1].seq if previous else 0, signal_ack_ns=run.signal_ack_ns,
                      taken_ns=run.received_at)
        run.orders.append(order)
        return order

    def exposure(self, symbol: str) -> Decimal:
        """Position plus the unfilled remainder of live orders: what the account could hold."""
        live = sum(
            ((o.command.qty - o.filled_qty) * o.command.side.sign for o in self.live.values() if o.command.symbol == symbol),
            Decimal(0),
        )
        return self.positions.get(symbol).qty + live

    def _place(self, run: SignalRun, action: Place, now: int) -> None:
        symbol = run.signal["symbol"]
        if run.attempt >= self.config.max_attempts:
            self._finish(run, f"max attempts {self.config.max_attempts} reached")
            return
        refused = self.rules[symbol].violation(action.price, action.qty)
        if refused is not None:  # the policy never proposes this; the venue must never see it either
            self._deny(run, refused[0], refused[1], action.price, action.qty)
            return
        if action.time_in_force is TimeInForce.IOC:
            unfit = self.market.unfit(self.config.venue, symbol, now, self.config.max_book_age_ns)
            if unfit is not None:  # never take liquidity on a book that cannot be trusted
                if now - run.received_at >= self.config.market_wait_ns:
                    self._deny(run, "stale_book", unfit, action.price, action.qty, action.order_type, action.time_in_force)
                else:
                    run.next_action_at = now + self.config.poll_interval_ns
                return
        quote = self.market.quote(self.config.venue, symbol)
        probe = SubmitOrder("", run.signal_id, run.signal["venue"], symbol, run.side, action.order_type,
                            action.time_in_force, action.price, action.qty, run.leg, run.attempt)
        verdict = self.risk.check(probe, quote.mid if quote else None, self.exposure(symbol), len(self.live))
        if isinstance(verdict, Throttled):
            run.next_action_at = now + int(verdict.wait_s * 1e9)
            return
        if isinstance(verdict, Denied):
            self._deny(run, "risk", verdict.reason, action.price, action.qty, action.order_type, action.time_in_force)
            return
        order = self._next_order(run, action.order_type, action.time_in_force, action.price, action.qty)
        assert isinstance(verdict, Approved)
        self._publish(order, [order.apply(OrderTrigger.SUBMIT)])
        run.working, run.placed_at = order, now
        self._submit(run, order)

    def _submit(self, run: SignalRun, order: Order) -> None:
        timestamp = self.venue_clock.venue_ms(self.clock())
        self.deadline_ms[order.client_order_id] = timestamp + self.config.recv_window_ms
        order.sent_ns = self.clock()
        self.placing[order.client_order_id] = run
        if self.push is not None:
            try:  # over the WebSocket API: the answer and the reports come through on_push / on_report
                request_id = self.push.request("order.place",
                                               order_params(order.command, timestamp, self.config.recv_window_ms))
                self.push_requests[request_id] = ("place", order)
                return
            except NotConnected:
                pass  # the session is down: REST
        try:
            payload = self.venue.submit(order.command, timestamp, self.config.recv_window_ms)
        except VenueError as exc:
            self._submit_failed(run, order, exc)
            return
        self.on_ack(run, self.clock())
        self._accepted(run, order, payload)

    def _submit_failed(self, run: SignalRun, order: Order, exc: VenueError) -> None:
        if isinstance(exc, RateLimited):
            self.placing.pop(order.client_order_id, None)
            self._rate_limited(run, order, exc)
        elif isinstance(exc, OutcomeUnknown):
            log.warning("order outcome unknown", extra={"client_order_id": order.client_order_id, "error": exc.message})
            self._publish(order, [order.apply(OrderTrigger.OUTCOME_UNKNOWN, reason=exc.message, error_code=exc.code)])
            run.next_action_at = self.clock() + self._retry_in_ns(0)
            run.settle_retries = 1
        elif isinstance(exc, Rejected):
            self.placing.pop(order.client_order_id, None)
            self._venue_rejected(run, order, exc)
        else:
            raise exc

    def _accepted(self, run: SignalRun, order: Order, payload: dict[str, Any], report: bool = False) -> None:
        run.attempt = order.command.attempt + 1  # the venue holds this id now: the next order is a new attempt
        self.deadline_ms.pop(order.client_order_id, None)
        self.placing.pop(order.client_order_id, None)
        self._apply_venue_order(order, payload, report)
        if order.is_terminal:
            run.working = None

    # ---- the push path ------------------------------------------------------------------------------

    def on_push_answer(self, answer: Answer) -> None:
        """Apply the venue's answer to a request sent over the WebSocket API."""
        kind, order = self.push_requests.pop(answer.id, ("", None))
        if order is None:
            log.warning("answer to no request of ours", extra={"request_id": answer.id, "status": answer.status})
            return
        cid = order.client_order_id
        if kind == "place":
            run = self.placing.get(cid)
            if run is None or not order.is_unsettled:
                return  # an executionReport acknowledged it first; its fills came (or come) as reports
            if answer.ok:
                self.on_ack(run, self.clock())
                self._accepted(run, order, answer.result)
            else:
                self._submit_failed(run, order, answer_error(answer.status, answer.code, answer.msg))
            return
        self.cancel_sent.pop(cid, None)
        if answer.ok:
            self._apply_venue_order(order, answer.result)
            return
        exc = answer_error(answer.status, answer.code, answer.msg, cancel=True)
        log.warning("cancel not confirmed; asking the venue", extra={"client_order_id": cid, "error": exc.message,
                                                                    "code": exc.code})
        if isinstance(exc, RateLimited):
            self.paused_until = max(self.paused_until, self.clock() + int(exc.retry_after_s * 1e9))
        self.requery(order)

    def on_report(self, report: ExecutionReport) -> None:
        """Apply an ``executionReport``: the order's new state and, for a fill, its Fill (each trade once)."""
        order = self.live.get(report.client_order_id)
        if order is None:
            trade = report.trade()
            late = (report.execution in ("CANCELED", "EXPIRED") and parse_client_order_id(report.client_order_id)
                    or (trade is not None and (report.symbol, report.trade_id) in self.published_trades))
            if not late:  # anything else is an order of the account that we do not manage
                self.on_foreign(report)
            return
        trade = report.trade()
        if trade is not None:
            self._fills(order, [trade])
        stale = (order.is_terminal or report.executed_qty < order.filled_qty
                 or (report.execution == "NEW" and not order.is_unsettled))
        if stale:  # an older state than the one already applied (a REST answer overtook it)
            return
        run = self.placing.get(order.client_order_id)
        if order.is_unsettled and run is not None:
            self.on_ack(run, self.clock())
            self._accepted(run, order, report.snapshot(), report=True)
        else:
            self._apply_venue_order(order, report.snapshot(), report=True)

    def on_push_down(self, event: Disconnected) -> None:
        """The session dropped: a place without an answer is an unknown outcome, settled by query (REST)."""
        for request_id in event.pending:
            kind, order = self.push_requests.pop(request_id, ("", None))
            if order is None:
                continue
            run = self.placing.get(order.client_order_id)
            if kind == "place" and run is not None and order.is_unsettled:
                self._submit_failed(run, order, OutcomeUnknown(f"session lost before the answer: {event.reason}"))
            elif kind == "cancel":
                self.cancel_sent.pop(order.client_order_id, None)
                self.requery(order)
        self.push_requests.clear()

    def reconcile_live(self) -> None:
        """After a (re)connect: every live order's state and missing fills from the venue (REST)."""
        for order in list(self.live.values()):
            if not order.is_unsettled:  # an unsettled one is settled by its run (recvWindow proof)
                self.requery(order)

    def requery(self, order: Order) -> None:
        """Ask the venue for ``order`` once (REST) and apply the answer; a failure leaves it to the next try."""
        try:
            self._apply_venue_order(order, self.venue.query(order.command.symbol, order.client_order_id))
        except VenueError as exc:
            log.warning("order query failed", extra={"client_order_id": order.client_order_id, "error": str(exc)})

    def _venue_rejected(self, run: SignalRun, order: Order, exc: Rejected) -> None:
        self._publish(order, [order.apply(OrderTrigger.REJECT, reason=exc.message, error_code=exc.code)])
        run.working = None
        run.venue_rejections += 1
        if exc.post_only_would_take and run.venue_rejections < self.config.max_attempts:
            run.next_action_at = self.clock() + self.config.poll_interval_ns
            return
        # any other refusal would be refused again: no retry storm
        self._finish(run, f"rejected by venue: {exc.code} {exc.message}")

    def _rate_limited(self, run: SignalRun, order: Order, exc: RateLimited) -> None:
        now = self.clock()
        self.paused_until = max(self.paused_until, now + int(exc.retry_after_s * 1e9))
        log.warning("venue rate limit; pausing", extra={"retry_after_s": exc.retry_after_s, "code": exc.code})
        self._publish(order, [order.apply(OrderTrigger.REJECT, reason=exc.message, error_code=exc.code)])
        run.working = None

    def _settle(self, run: SignalRun, order: Order) -> None:
        try:
            payload = self.venue.query(order.command.symbol, order.client_order_id)
        except NotFound:
            deadline = self.deadline_ms.get(order.client_order_id, self.recover_proof_ms)
            now = self.clock()
            if not self.venue_clock.surely_past(deadline, now):
                # proof of nothing yet: the request may be held inside the venue and still execute
                run.next_action_at = self.venue_clock.local_ns_when_past(deadline)
                log.info("not found, but the request may still execute; asking again after its recvWindow",
                         extra={"client_order_id": order.client_order_id, "venue_deadline_ms": deadline,
                                "wait_ms": (run.next_action_at - now) // 1_000_000})
                return
            self.deadline_ms.pop(order.client_order_id, None)
            self.placing.pop(order.client_order_id, None)
            self._publish(order, [order.apply(
                OrderTrigger.NOT_FOUND, reason=f"not at venue after its recvWindow ended (venue time {deadline})")])
            run.working = None
            return
        except RateLimited as exc:
            self.paused_until = max(self.paused_until, self.clock() + int(exc.retry_after_s * 1e9))
            return
        except OutcomeUnknown:
            run.next_action_at = self.clock() + self._retry_in_ns(run.settle_retries)
            run.settle_retries += 1
            return
        self._accepted(run, order, payload)

    def _poll(self, run: SignalRun, order: Order) -> None:
        try:
            payload = self.venue.query(order.command.symbol, order.client_order_id)
        except (OutcomeUnknown, NotFound) as exc:
            log.warning("poll failed", extra={"client_order_id": order.client_order_id, "error": str(exc)})
            run.next_action_at = self.clock() + self.config.poll_interval_ns
            return
        except RateLimited as exc:
            self.paused_until = max(self.paused_until, self.clock() + int(exc.retry_after_s * 1e9))
            return
        self._apply_venue_order(order, payload)
        run.next_action_at = self.clock() + self.config.poll_interval_ns

    def _cancel(self, run: SignalRun, reason: str) -> None:
        order = run.working
        assert order is not None
        if order.can(OrderTrigger.CANCEL_REQUEST):
            self.request_cancel(order, reason)
        if order.is_terminal:
            run.working = None

    def request_cancel(self, order: Order, reason: str) -> None:
        """Cancel ``order`` on the venue and apply the answer (an unknown outcome is settled by query later)."""
        self._publish(order, [order.apply(OrderTrigger.CANCEL_REQUEST, reason=reason)])
        if self.push is not None:
            try:
                request_id = self.push.request("order.cancel", {"symbol": order.command.symbol,
                                                                "origClientOrderId": order.client_order_id})
                self.push_requests[request_id] = ("cancel", order)
                self.cancel_sent[order.client_order_id] = self.clock()
                return
            except NotConnected:
                pass
        try:
            payload = self.venue.cancel(order.command.symbol, order.client_order_id)
        except (NotFound, OutcomeUnknown, RateLimited) as exc:
            # refused (-2011: usually filled or canceled already) or lost: the order stays pending_cancel
            # and the next poll's venue report settles it (filled, canceled, or still resting)
            log.warning("cancel not confirmed; the next query settles it",
                        extra={"client_order_id": order.client_order_id, "error": exc.message, "code": exc.code})
            if isinstance(exc, RateLimited):
                self.paused_until = max(self.paused_until, self.clock() + int(exc.retry_after_s * 1e9))
            return
        self._apply_venue_order(order, payload)

    def _deny_without_market(self, run: SignalRun, now: int) -> None:
        reason = f"no market data for {run.signal['symbol']} within {self.config.market_wait_ns // 1_000_000} ms"
        self._deny(run, "no_market_data", reason, None, run.target)

    def _deny(
        self, run: SignalRun, check: str, reason: str, price: Decimal | None, qty: Decimal,
        order_type: OrderType = OrderType.LIMIT_MAKER, tif: TimeInForce | None = None,
    ) -> None:
        """Publish the order that will not go out as ``denied`` with ``reason``; the signal is done."""
        price = Decimal(run.signal["reference_price"]) if price is None else price
        order = self._next_order(run, order_type, tif, price, qty)
        self._publish(order, [order.apply(OrderTrigger.DENY, reason=reason)])
        self.on_deny(check)
        log.info("order denied", extra={"signal_id": run.signal_id, "check": check, "reason": reason})
        self._finish(run, f"denied: {reason}")

    # ---- recovery ---------------------------------------------------------------------------------

    def recover(self, run: SignalRun) -> int:
        """Adopt every order the venue already holds for ``run`` (attempts 0, 1, ... until unknown to it).

        Returns how many were found.  Raises :class:`OutcomeUnknown` / :class:`RateLimited` if the venue
        cannot answer: the caller retries later and must not act on the signal before it succeeds.
        """
        found = 0
        while run.attempt < self.config.max_attempts:
            cid = client_order_id(run.signal_id, run.leg, run.attempt)
            try:
                payload = self.venue.query(run.signal["symbol"], cid)
            except NotFound:
                now = self.clock()
                if not self.venue_clock.surely_past(self.recover_proof_ms, now):
                    # a request sent just before the restart may be held in the venue and still execute
                    raise NotYetProven(f"{cid} not found before the previous run's requests expired",
                                       self.venue_clock.local_ns_when_past(self.recover_proof_ms)) from None
                break
            order = self._adopted_order(run, cid, payload)
            run.attempt += 1
            found += 1
            self._publish(order, [order.apply(OrderTrigger.SUBMIT)])
            if not order.is_terminal:
                run.working, run.placed_at = order, self.clock()
            self._apply_venue_order(order, payload)
            if order.is_terminal and run.working is order:
                run.working = None
        return found

    def _adopted_order(self, run: SignalRun, cid: str, payload: dict[str, Any]) -> Order:
        s = run.signal
        tif = payload.get("timeInForce")
        cmd = SubmitOrder(
            cid, run.signal_id, s["venue"], s["symbol"], Side(payload["side"].lower()), OrderType(payload["type"]),
            TimeInForce(tif) if tif and payload["type"] != OrderType.LIMIT_MAKER else None,
            Decimal(payload["price"]), Decimal(payload["origQty"]), run.leg, run.attempt,
        )
        order = Order(cmd)
        run.orders.append(order)
        return order


def _full_fill(payload: dict[str, Any], fill: dict[str, Any], side: Side) -> dict[str, Any]:
    # a FULL order response's fills lack time and maker flag: an immediate execution is always the taker
    return {
        "id": fill["tradeId"], "orderId": payload["orderId"], "price": fill["price"], "qty": fill["qty"],
        "commission": fill.get("commission", "0"), "commissionAsset": fill.get("commissionAsset", ""),
        "isBuyer": side is Side.BUY, "isMaker": False, "time": payload.get("transactTime", 0),
    }
