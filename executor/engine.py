"""The executor loop: wires its parts, then drains market data and control, takes signals, steps runs, commits.

One thread, one loop: drain ``md.bbo``/``md.book`` and the control topic (:mod:`executor.feeds`), take
signals while fewer than ``max_inflight_signals`` are in progress (:mod:`executor.intake`), step every
run (:mod:`executor.trader`), commit the offsets of finished signals, and on their intervals measure the
venue's clock and reconcile the account (:mod:`executor.supervise`).  Start-up (:mod:`executor.startup`)
reconciles before any signal is taken; every record goes out through :mod:`executor.outbox`.
"""

from __future__ import annotations

import logging
import signal as os_signal
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from executor.events import ExecutorEvents
from executor.feeds import ControlFeed, MarketFeed
from executor.intake import SignalIntake, StartAt
from executor.market import MarketView
from executor.metrics import ExecutorMetrics
from executor.order import InvalidStateTrigger
from executor.outbox import KafkaOutbox
from executor.policy import InstrumentRules
from executor.positions import Positions
from executor.reconcile import FillsReplay, Reconciliation
from executor.risk import RiskEngine
from executor.startup import load_books, reconcile_at_start, risk_engine, trader_config, until_answered
from executor.supervise import BalanceSupervisor, ClockSync, OrderSweeper
from executor.trader import SignalRun, Trader
from executor.user_stream import (
    AccountEvent,
    Answer,
    Connected,
    Disconnected,
    ExecutionReport,
    Item,
    Malformed,
    WsApiSession,
)
from executor.venue import BinanceVenue, VenueError
from infra.backoff import Backoff
from infra.kafka_config import idempotent_producer_config
from infra.settings import ExecutorSettings, KafkaSettings
from schemas.serde import AvroSerde

log = logging.getLogger(__name__)

COMMIT_INTERVAL_NS = 50_000_000  # commits, gauges and the ledger's expiry at most this often
IDLE_SLEEP_S = 0.002  # runs waiting on timers (TTL, poll, backoff) and no new signal: don't spin


def now_ns() -> int:
    """Wall clock in ns since epoch."""
    return time.time_ns()


class Engine:
    """The executor service; :meth:`run` until :meth:`stop` (SIGTERM)."""

    def __init__(
        self,
        settings: ExecutorSettings,
        kafka: KafkaSettings,
        venue: BinanceVenue,
        metrics: ExecutorMetrics,
        clock: Callable[[], int] = now_ns,
        start_at: StartAt | None = None,
    ) -> None:
        self.settings, self.kafka, self.venue, self.metrics, self.clock = settings, kafka, venue, metrics, clock
        self.serde = AvroSerde()
        self.market = MarketView(settings.depth_levels)
        self.positions = Positions()
        self.events = ExecutorEvents(settings.venue, settings.account, clock())
        self.fills_replay = FillsReplay(self.positions, settings.venue, settings.account)
        self.producer = Producer(idempotent_producer_config(kafka, **{"linger.ms": kafka.executor_linger_ms}))
        self.outbox = KafkaOutbox(self.producer, self.serde, metrics, clock)
        self.intake = SignalIntake(settings, kafka, self.serde, metrics, self.outbox, clock, start_at)
        self.market_feed: MarketFeed | None = None
        self.control_feed: ControlFeed | None = None
        self.push: WsApiSession | None = None
        self._stopping = False
        self.started = False
        # set by start-up
        self.rules: dict[str, InstrumentRules]
        self.risk: RiskEngine
        self.reconciliation: Reconciliation
        self.trader: Trader
        self.sweeper: OrderSweeper
        self.clock_sync: ClockSync
        self.supervisor: BalanceSupervisor

    @property
    def runs(self) -> dict[tuple[int, int], SignalRun]:
        """Signal runs by (partition, offset), until their offset is committed."""
        return self.intake.runs

    @property
    def recover_below(self) -> dict[int, int]:
        """Per assigned partition, the end offset at assignment (empty until signals are assigned)."""
        return self.intake.recover_below

    @property
    def last_check(self) -> dict[str, Any]:
        """The last periodic reconciliation's report."""
        return self.supervisor.last_check

    # ---- start-up ----------------------------------------------------------------------------------

    def _setup(self) -> None:
        s, stopping = self.settings, lambda: self._stopping
        info = until_answered("exchangeInfo", self.venue.exchange_info, stopping)
        self.rules = BinanceVenue.rules_of(info)
        self.positions.assets = BinanceVenue.assets_of(info)
        self.risk = risk_engine(s, info.get("rateLimits", []), self.clock)
        self.reconciliation, venue_clock = reconcile_at_start(
            self.kafka, self.serde, self.venue, self.positions, self.fills_replay, self.clock, stopping)
        book_from = load_books(self.kafka, self.serde, self.venue, self.market, self.metrics, s.venue,
                               [x for x in s.symbols.split(",") if x], self.clock)
        self.trader = Trader(trader_config(s), self.venue, self.risk, self.market, self.positions, self.rules,
                             self.outbox, self.clock, self._acked, lambda check: self.metrics.denied.labels(check).inc(),
                             lambda order, exc: self.metrics.invalid_transitions.inc())
        self.clock_sync = ClockSync(self.venue, self.trader, s.clock_sync_interval_ms, self.clock)
        self.clock_sync.sync(venue_clock)
        # any request of a previous process carries a timestamp before now (+1 s the venue tolerates ahead):
        # until this venue time has passed, "not found" in the recovery lookup proves nothing
        self.trader.recover_proof_ms = self.trader.venue_clock.venue_ms(self.clock()) + s.recv_window_ms + 1000
        self.sweeper = OrderSweeper(self.trader, self.venue)
        self.supervisor = BalanceSupervisor(
            s, self.venue, self.reconciliation.balances, self.positions, self.market, self.trader, self.risk,
            self.sweeper, self.events, self.outbox, self.metrics, self.clock)
        self.market_feed = MarketFeed(s, self.kafka, self.serde, self.metrics, self.market, self.clock)
        self.market_feed.open(book_from)
        self.control_feed = ControlFeed(s, self.kafka, self.metrics, self.risk, self.events, self.outbox,
                                        self.sweeper, self.clock)
        self.control_feed.open()
        self.intake.restore_ledger()
        self.intake.open(self.rules)
        if s.ws_api_url:
            self._open_push(s)
        self.started = True

    def _open_push(self, s: ExecutorSettings) -> None:
        trader = self.trader
        self.push = WsApiSession(s.ws_api_url, s.api_key, s.api_secret,
                                 lambda: trader.venue_clock.venue_ms(self.clock()), s.recv_window_ms,
                                 Backoff(s.ws_reconnect_base_ms / 1000, s.ws_reconnect_cap_ms / 1000))
        trader.push = self.push
        trader.on_foreign = self._foreign_report
        self.push.start()

    def _drain_push(self) -> None:
        assert self.push is not None
        for item in self.push.drain():
            self._push_item(item)

    def _push_item(self, item: Item) -> None:
        match item:
            case ExecutionReport():
                self.metrics.push_frames.labels("report").inc()
                self.trader.on_report(item)
            case Answer():
                self.metrics.push_frames.labels("answer").inc()
                self.trader.on_push_answer(item)
            case AccountEvent():
                self.metrics.push_frames.labels("account").inc()  # balances are reconciled from the venue
            case Malformed(raw=raw, error=error):
                self.metrics.push_frames.labels("malformed").inc()
                self.metrics.dlq.labels("ws_event").inc()
                log.error("malformed WebSocket API frame; dead-lettered, session kept",
                          extra={"error": error, "raw": raw[:500].decode("utf-8", "replace")})
                self.outbox.dead_letter(self.settings.ws_api_url, -1, -1, raw, error, self.settings.venue)
            case Connected(generation=generation):
                self.metrics.push_sessions.inc()
                self.metrics.push_up.set(1)
                log.info("WebSocket API session up; reconciling live orders", extra={"generation": generation})
                self.trader.reconcile_live()
            case Disconnected(generation=generation, reason=reason, pending=pending):
                self.metrics.push_up.set(0)
                log.warning("WebSocket API session down; REST until it is back",
                            extra={"generation": generation, "reason": reason, "unanswered": len(pending)})
                self.trader.on_push_down(item)

    def _foreign_report(self, report: ExecutionReport) -> None:
        # an order of this account that the executor does not manage: the reconciliation reports it
        # (executor.health) and, if the account moved, acts on the difference; run it now
        self.metrics.push_frames.labels("foreign").inc()
        log.warning("executionReport for an order the executor does not manage; reconciling now", extra={
            "symbol": report.symbol, "client_order_id": report.client_order_id, "execution": report.execution,
            "status": report.status, "executed_qty": str(report.executed_qty)})
        self.supervisor.check_soon()

    def _acked(self, run: SignalRun, now: int) -> None:
        self.metrics.ack_latency.observe(max(0, now - run.signal["ts_emit"]) / 1e9)

    # ---- loop --------------------------------------------------------------------------------------

    def run(self) -> None:
        """Set up (reconcile first), then loop until stopped; commit, flush and close on the way out."""
        self._setup()
        assert self.market_feed is not None and self.control_feed is not None
        last_commit = 0
        try:
            while not self._stopping and not self.intake.replay_finished():
                self.control_feed.drain()
                self.market_feed.drain()
                if self.push is not None:
                    self._drain_push()
                inflight = self.intake.inflight()
                read = self.intake.consume(inflight)
                self._step_runs()
                now = self.clock()
                if now - last_commit > COMMIT_INTERVAL_NS:
                    self.intake.commit()
                    self._update_gauges()
                    self.intake.ledger.forget_before(now)
                    last_commit = now
                if now >= self.clock_sync.next_at:
                    self.clock_sync.resync()
                if self.supervisor.due(now):
                    self.supervisor.check(now, self.intake.runs.values())
                if inflight and not read:
                    if self.push is not None:
                        self.push.wait(IDLE_SLEEP_S)  # woken by the session's next answer or report
                    else:
                        time.sleep(IDLE_SLEEP_S)
        finally:
            self.close()

    def _step_runs(self) -> None:
        for key in sorted(self.intake.runs):
            run = self.intake.runs[key]
            if run.done:
                continue
            if not self.intake.begin(run, self.trader):
                continue
            try:
                self.trader.step(run)
            except VenueError as exc:
                log.warning("venue call failed; the run retries", extra={"signal_id": run.signal_id, "error": str(exc)})
            except InvalidStateTrigger as exc:
                # never drop the run: its orders stay live and its offset uncommitted; tried again later
                self.metrics.invalid_transitions.inc()
                log.exception("illegal order transition; run kept and retried",
                              extra={"signal_id": run.signal_id, "error": str(exc)})
                run.next_action_at = self.clock() + 1_000_000_000
            if run.done:
                self.metrics.signals.labels("done").inc()
                log.info("signal done", extra={"signal_id": run.signal_id, "outcome": run.outcome,
                                               "filled": str(run.filled), "orders": len(run.orders)})

    def _update_gauges(self) -> None:
        self.metrics.inflight.set(self.intake.inflight())
        self.metrics.open_orders.set(len(self.trader.live))
        for symbol in self.positions.symbols():
            pos = self.positions.get(symbol)
            self.metrics.position.labels(symbol).set(float(pos.qty))
            self.metrics.realized_pnl.labels(symbol).set(float(pos.realized_pnl))
            quote = self.market.quote(self.settings.venue, symbol)
            if quote is not None:
                self.metrics.unrealized_pnl.labels(symbol).set(float(pos.unrealized_pnl(quote.mid)))

    def cancel_all(self, reason: str, quiet: bool = False) -> None:
        """Cancel every live order of ours that can be canceled (the kill switch)."""
        self.sweeper.cancel_all(reason, quiet)

    def stop(self, *_: Any) -> None:
        """Ask the loop to finish (SIGTERM handler)."""
        self._stopping = True

    def close(self) -> None:
        """Commit what is done, flush the producer, close the consumers and the WebSocket API session."""
        if self.push is not None:
            self.push.stop()
        if self.started:
            self.intake.commit()
        self.outbox.flush(10)
        self.intake.close()
        for feed in (self.market_feed, self.control_feed):
            if feed is not None:
                feed.close()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Health: up once reconciled; detail for operators."""
        ok = self.started
        detail: dict[str, Any] = {"started": self.started}
        if self.started:
            detail.update(
                trading_state=self.risk.state.value, state_reason=self.risk.state_reason,
                inflight=self.intake.inflight(), open_orders=len(self.trader.live),
                signals_partitions=len(self.recover_below),
                paused_until=self.trader.paused_until, push_up=self.trader.push_up,
                positions={s: str(self.positions.get(s).qty) for s in self.positions.symbols()},
                reconciliation=self.supervisor.last_check, fills_read=dict(self.fills_replay.counts),
            )
        return ok, detail


def install_sigterm(engine: Engine) -> None:
    """Stop ``engine`` cleanly on SIGTERM and SIGINT."""
    os_signal.signal(os_signal.SIGTERM, engine.stop)
    os_signal.signal(os_signal.SIGINT, engine.stop)
