"""The executor loop: signals in, orders on the venue, OrderEvents and Fills out, offsets committed safely.

One thread, one loop: drain market data (``md.bbo``, ``md.book``) and the control topic, take signals
(confluent-kafka, manual commits) while fewer than ``max_inflight_signals`` are in progress, step every
run, commit.  A signal's offset is committed only when every order of the signal is terminal (or the
signal was refused), after the producer has flushed its events, and only as the lowest unfinished
offset of its partition, so a crash replays exactly the unfinished signals.  A signal whose offset was
below the partition's end when the partition was assigned may have been acted on before: its orders are
first looked up on the venue by client order id (``Trader.recover``).
"""

from __future__ import annotations

import logging
import signal as os_signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from executor.commands import Side
from executor.control import ControlVerifier, apply_control
from executor.events import ExecutorEvents
from executor.ids import parse_client_order_id
from executor.ledger import SignalLedger
from executor.market import MarketView
from executor.metrics import ExecutorMetrics
from executor.order import InvalidStateTrigger, Order, OrderTrigger
from executor.policy import PolicyParams
from executor.positions import Positions
from executor.reconcile import BalanceCheck, FillsReplay, balance_check, rebuild_positions, reconcile
from executor.risk import RiskEngine, RiskLimits, TradingState, buckets_from_rate_limits
from executor.trader import NotYetProven, SignalRun, Trader, TraderConfig
from executor.venue import BinanceVenue, OutcomeUnknown, RateLimited, VenueError
from infra.backoff import Backoff
from infra.kafka_config import idempotent_producer_config, manual_commit_consumer_config
from infra.settings import ExecutorSettings, KafkaSettings
from infra.topics import end_offsets
from schemas.serde import AvroSerde, SerdeError
from schemas.topics import Topic, instrument_key

log = logging.getLogger(__name__)

MD_BACKFILL = 200  # messages per md partition read back at start, to know the market at once
REST_DEPTH_LIMIT = 100  # levels per side of the venue's depth snapshot loaded at start
LEDGER_MARGIN_MS = 10_000  # signals read back beyond max_signal_age_ms at start (clock skew between hosts)


def now_ns() -> int:
    """Wall clock in ns since epoch."""
    return time.time_ns()


@dataclass(frozen=True)
class StartAt:
    """Replay start: an offset for every partition, or a time (ns since epoch)."""

    offset: int | None = None
    time_ns: int | None = None


class _Outbox:
    def __init__(self, producer: Producer, serde: AvroSerde, metrics: ExecutorMetrics) -> None:
        self.producer, self.serde, self.metrics = producer, serde, metrics

    def _send(self, topic: Topic, record_name: str, record: dict[str, Any], key: bytes | None = None) -> None:
        key = key or instrument_key(record.get("venue", ""), record.get("symbol", ""))
        self.producer.produce(topic.value, self.serde.encode(record_name, record), key, on_delivery=self._delivered)
        self.producer.poll(0)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.metrics.delivery_errors.inc()
            log.error("delivery failed", extra={"topic": msg.topic(), "error": str(err)})

    def order_event(self, record: dict[str, Any]) -> None:
        self.metrics.order_events.labels(record["status"]).inc()
        self._send(Topic.ORDERS, "OrderEvent", record)

    def fill(self, record: dict[str, Any]) -> None:
        self.metrics.fills.inc()
        self._send(Topic.FILLS, "Fill", record)

    def executor_event(self, record: dict[str, Any]) -> None:
        # one account's events stay in order in one partition
        log.warning("executor event published", extra={"kind": record["kind"], "detail": record["detail"]})
        self._send(Topic.EXECUTOR_HEALTH, "ExecutorEvent", record, f"{record['venue']}:{record['account']}".encode())

    def dead_letter(self, msg: Message, error: str, venue: str = "", symbol: str = "") -> None:
        now = now_ns()
        record = {
            "venue": venue, "symbol": symbol, "stage": "executor", "source_topic": msg.topic(),
            "partition": msg.partition(), "offset": msg.offset(), "raw": msg.value() or b"", "error": error,
            "ts_event": now, "ts_recv": now,
        }
        self._send(Topic.DLQ, "DeadLetter", record)


def report_consumer_error(metrics: ExecutorMetrics, msg: Message, loop: str) -> None:
    """Count and log a consumer error event of ``loop`` (signals, market, control); end-of-partition is none."""
    error = msg.error()
    if error.code() == KafkaError._PARTITION_EOF:
        return
    report_client_error(metrics, error, loop, msg.topic(), msg.partition())


def report_client_error(
    metrics: ExecutorMetrics, error: KafkaError, loop: str, topic: str | None = None, partition: int | None = None
) -> None:
    """Count and log an error of ``loop``'s consumer; as its ``error_cb``, the errors of the client as a whole.

    librdkafka hands client-level errors (broker unreachable, all brokers down) to ``error_cb`` only,
    never to ``consume()``: without the callback they reached its own stderr lines and no metric.
    """
    metrics.consumer_errors.labels(loop).inc()
    log.error("consumer error", extra={"loop": loop, "topic": topic, "partition": partition, "error": error.str(),
                                       "code": error.code(), "error_name": error.name(), "fatal": error.fatal(),
                                       "retriable": error.retriable()})


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
        self.start_at = start_at
        self.serde = AvroSerde()
        self.market = MarketView(settings.depth_levels)
        self.positions = Positions()
        self.runs: dict[tuple[int, int], SignalRun] = {}
        self.recover_below: dict[int, int] = {}
        self.committed: dict[int, int] = {}
        self.seen: dict[int, int] = {}
        self.replay_end: dict[int, int] = {}
        self.ledger = SignalLedger(settings.max_signal_age_ms * 1_000_000)
        self.control_verifier = ControlVerifier(settings.control_key, settings.control_max_age_ms * 1_000_000)
        self.control_end = 0  # control messages below this offset at start are history: no age check
        self._next_clock_sync = 0
        self._next_reconcile = 0
        self._last_diff: dict[str, Decimal] | None = None
        # (balance differences, differing open orders) of the last check and of the last ExecutorEvent published
        self._last_view: tuple[dict[str, Decimal], list[tuple[str, str, bool]]] | None = None
        self._published_view: tuple[dict[str, Decimal], list[tuple[str, str, bool]]] = ({}, [])
        self.events = ExecutorEvents(settings.venue, settings.account, clock())
        self.fills_replay = FillsReplay(self.positions, settings.venue, settings.account)
        self.last_check: dict[str, Any] = {}
        self.metrics_assets: set[str] = set()
        self._disputed_canceled: set[str] = set()
        self._stopping = False
        self.started = False
        self.producer = Producer(idempotent_producer_config(kafka, **{"linger.ms": 2}))
        self.outbox = _Outbox(self.producer, self.serde, metrics)

    # ---- setup -------------------------------------------------------------------------------------

    def _consumer(self, group: str, loop: str, **extra: Any) -> Consumer:
        def on_error(error: KafkaError) -> None:
            report_client_error(self.metrics, error, loop)

        return Consumer(manual_commit_consumer_config(self.kafka, group, error_cb=on_error, **extra))

    def _assign_tail(self, consumer: Consumer, topics: list[str], back: int) -> None:
        parts = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                parts.append(TopicPartition(topic, p, max(low, high - back)))
        consumer.assign(parts)

    def _until_answered(self, what: str, call: Callable[[], Any]) -> Any:
        """Call the venue until it answers: retriable failures back off (capped, jittered, Retry-After)."""
        backoff = Backoff(0.2, 5.0)
        while True:
            try:
                return call()
            except VenueError as exc:
                if not exc.retriable or self._stopping:
                    raise
                wait = exc.retry_after_s if isinstance(exc, RateLimited) else backoff.next_delay()
                log.warning("venue unavailable at start; retrying", extra={"call": what, "error": str(exc), "wait_s": wait})
                time.sleep(wait)

    def _setup(self) -> None:
        s = self.settings
        info = self._until_answered("exchangeInfo", self.venue.exchange_info)
        self.rules = BinanceVenue.rules_of(info)
        self.positions.assets = BinanceVenue.assets_of(info)
        buckets = buckets_from_rate_limits(info.get("rateLimits", []), s.rate_limit_fraction, lambda: self.clock() / 1e9)
        limits = RiskLimits(s.max_order_notional, s.max_position, s.max_open_orders, s.price_band_bps,
                            s.max_throttle_wait_ms / 1000)
        self.risk = RiskEngine(limits, buckets, TradingState(s.initial_state))
        TradingState(s.reconcile_breach_state)  # fail at start, not at the first breach, on a bad value
        rebuild_positions(self.kafka.bootstrap, self.serde, self.fills_replay)
        venue_clock = self._until_answered("time", self.venue.server_time)  # dates the baseline balances
        self.reconciliation = self._until_answered("reconcile", lambda: reconcile(self.venue, self.clock))
        self.positions.asset_delta.clear()  # the baseline balances hold every fill read back
        # a trade of before the balances were read, published only later (a replay), is in them already
        self.positions.baseline_ms = venue_clock.venue_ms(self.reconciliation.balances_at_ns)
        for symbol in [x for x in s.symbols.split(",") if x]:
            self._load_depth(symbol)
        ms = 1_000_000
        policy = PolicyParams(
            s.passive_ttl_ms * ms, s.reprice_ticks, s.improve_ticks, s.cross_min_urgency,
            s.passive_window_ms * ms, s.max_slippage_bps, s.depth_fraction,
        )
        config = TraderConfig(s.venue, s.account, policy, s.max_attempts, s.poll_interval_ms * ms,
                              s.settle_retry_ms * ms, s.market_wait_ms * ms, s.recv_window_ms, s.max_book_age_ms * ms)
        self.trader = Trader(config, self.venue, self.risk, self.market, self.positions, self.rules, self.outbox,
                             self.clock, self._acked, lambda check: self.metrics.denied.labels(check).inc(),
                             lambda order, exc: self.metrics.invalid_transitions.inc())
        self._sync_clock(venue_clock)
        # any request of a previous process carries a timestamp before now (+1 s the venue tolerates ahead):
        # until this venue time has passed, "not found" in the recovery lookup proves nothing
        self.trader.recover_proof_ms = self.trader.venue_clock.venue_ms(self.clock()) + s.recv_window_ms + 1000
        log.info("order rate buckets from venue rateLimits",
                 extra={"buckets": [(round(b.rate, 3), b.burst) for b in buckets]})
        self.md = self._consumer(f"{s.group_id}-md-{self.clock()}", "market",
                                 **{"fetch.wait.max.ms": s.signals_fetch_wait_ms})
        self._assign_tail(self.md, [Topic.BBO.value, Topic.BOOK.value, Topic.HEALTH.value], MD_BACKFILL)
        self.control = self._consumer(f"{s.group_id}-control-{self.clock()}", "control")
        self.control_end = self.control.get_watermark_offsets(TopicPartition(s.control_topic, 0), timeout=10)[1]
        self.control.assign([TopicPartition(s.control_topic, 0, OFFSET_BEGINNING)])
        self._restore_ledger()
        self.signals = self._consumer(
            s.group_id, "signals",
            **{"auto.offset.reset": s.signals_offset_reset, "fetch.wait.max.ms": s.signals_fetch_wait_ms},
        )
        if self.start_at is None:
            self.signals.subscribe([Topic.SIGNALS.value], on_assign=self._on_assign, on_revoke=self._on_revoke)
        else:
            self._assign_replay()
        self.started = True

    def _load_depth(self, symbol: str) -> None:
        """Full depth at once after a (re)start: the venue's REST snapshot, instead of waiting for the feed's next one."""
        try:
            depth = self.venue.depth(symbol, REST_DEPTH_LIMIT)
        except VenueError as exc:
            log.warning("REST depth snapshot failed; waiting for the feed's", extra={"symbol": symbol, "error": str(exc)})
            return
        if not depth.get("bids") or not depth.get("asks"):
            return
        now, uid = self.clock(), int(depth["lastUpdateId"])
        (bid, bid_qty), (ask, ask_qty) = depth["bids"][0][:2], depth["asks"][0][:2]
        venue = self.settings.venue
        self.market.on_bbo({"venue": venue, "symbol": symbol, "update_id": uid, "bid_price": bid, "bid_qty": bid_qty,
                            "ask_price": ask, "ask_qty": ask_qty, "ts_recv": now})
        self.market.on_book({"venue": venue, "symbol": symbol, "snapshot": True, "first_update_id": uid,
                             "last_update_id": uid, "ts_recv": now,
                             "bids": [{"price": p, "qty": q} for p, q, *_ in depth["bids"]],
                             "asks": [{"price": p, "qty": q} for p, q, *_ in depth["asks"]]})

    def _sync_clock(self, clock: Any) -> None:
        self.trader.venue_clock = clock
        self._next_clock_sync = self.clock() + self.settings.clock_sync_interval_ms * 1_000_000
        log.info("venue clock measured", extra={"offset_ms": round(clock.offset_ms, 1),
                                                "uncertainty_ms": round(clock.uncertainty_ms, 1)})

    def _restore_ledger(self) -> None:
        """Read the signal ids of the last ``max_signal_age_ms`` (+ margin) from ``signals``, every partition."""
        topic = Topic.SIGNALS.value
        reader = self._consumer(f"{self.settings.group_id}-ledger-{self.clock()}", "signals")
        try:
            meta = reader.list_topics(topic, timeout=10).topics[topic]
            since_ms = (self.clock() - self.ledger.max_age_ns) // 1_000_000 - LEDGER_MARGIN_MS
            starts = reader.offsets_for_times([TopicPartition(topic, p, since_ms) for p in meta.partitions], timeout=10)
            ends = end_offsets(self.kafka.bootstrap, [TopicPartition(topic, p) for p in meta.partitions])
            todo = {tp.partition: ends[(topic, tp.partition)][1] for tp in starts
                    if 0 <= tp.offset < ends[(topic, tp.partition)][1]}
            reader.assign([tp for tp in starts if tp.partition in todo])
            deadline = time.monotonic() + 30
            while todo and time.monotonic() < deadline:
                for msg in reader.consume(1000, 0.2):
                    if msg.error() is not None or msg.partition() not in todo:
                        continue
                    if msg.offset() + 1 >= todo[msg.partition()]:
                        del todo[msg.partition()]
                    try:
                        self.ledger.claim(self.serde.decode_as("Signal", msg.value() or b""), msg.partition(), msg.offset())
                    except SerdeError:
                        continue
            if todo:
                raise RuntimeError(f"signal ledger: partitions {sorted(todo)} not read to their end in 30 s")
        finally:
            reader.close()
        log.info("signal ledger restored", extra={"signal_ids": len(self.ledger)})

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        ends = end_offsets(self.kafka.bootstrap, partitions)
        committed = consumer.committed(partitions, timeout=10)
        for tp, done in zip(partitions, committed, strict=True):
            end = ends[(tp.topic, tp.partition)][1]
            self.recover_below[tp.partition] = end
            if done.offset < 0 and self.settings.signals_offset_reset == "latest":
                # a new group starts at the end offset read when it was assigned (nothing older is replayed)
                tp.offset = end
        consumer.assign(partitions)
        log.info("signals assigned", extra={"partitions": {str(tp.partition): self.recover_below[tp.partition] for tp in partitions}})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._commit()
        for tp in partitions:
            for key in [k for k in self.runs if k[0] == tp.partition]:
                del self.runs[key]
            self.committed.pop(tp.partition, None)
            self.seen.pop(tp.partition, None)

    def _assign_replay(self) -> None:
        assert self.start_at is not None
        topic = Topic.SIGNALS.value
        meta = self.signals.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p) for p in meta.partitions]
        if self.start_at.time_ns is not None:
            stamped = [TopicPartition(topic, tp.partition, self.start_at.time_ns // 1_000_000) for tp in parts]
            parts = self.signals.offsets_for_times(stamped, timeout=10)
        else:
            parts = [TopicPartition(topic, tp.partition, self.start_at.offset or 0) for tp in parts]
        ends = end_offsets(self.kafka.bootstrap, parts)
        for tp in parts:
            high = ends[(tp.topic, tp.partition)][1]
            self.recover_below[tp.partition] = high
            self.replay_end[tp.partition] = high
            if tp.offset < 0:  # no message at/after the time: nothing to replay there
                tp.offset = high
        self.signals.assign(parts)

    # ---- signals -----------------------------------------------------------------------------------

    def _parse(self, msg: Message) -> SignalRun | str:
        try:
            signal = self.serde.decode_as("Signal", msg.value() or b"")
        except SerdeError as exc:
            return f"malformed: {exc}"
        if signal["venue"] != self.settings.venue:
            return f"venue {signal['venue']!r} is not this executor's {self.settings.venue!r}"
        if signal["symbol"] not in self.rules:
            return f"unknown symbol {signal['symbol']!r}"
        try:
            target = Decimal(signal["target"])
            Decimal(signal["reference_price"])
        except InvalidOperation:
            return f"malformed: target {signal['target']!r} / reference_price {signal['reference_price']!r}"
        if not target.is_finite() or target <= 0:
            return f"malformed: target {signal['target']!r} must be a positive decimal"
        return SignalRun(signal, msg.partition(), msg.offset(), self.clock(), Side(signal["side"]), target)

    def _stale(self, run: SignalRun) -> str | None:
        now = self.clock()
        if now >= run.signal["expires_at"]:
            return f"stale: expired {(now - run.signal['expires_at']) / 1e6:.0f} ms ago"
        age = now - run.signal["ts_emit"]
        if age > self.settings.max_signal_age_ms * 1_000_000:
            return f"stale: {age / 1e6:.0f} ms old, max {self.settings.max_signal_age_ms} ms"
        return None

    def _take(self, msg: Message) -> None:
        partition, offset = msg.partition(), msg.offset()
        self.seen[partition] = max(self.seen.get(partition, -1), offset)
        parsed = self._parse(msg)
        if isinstance(parsed, str):
            self._dead_letter(msg, parsed)
            return
        first = self.ledger.claim(parsed.signal, partition, offset)
        if first is not None:
            self.metrics.signals.labels("duplicate").inc()
            log.warning("duplicate signal id dropped; the first message's run stands", extra={
                "signal_id": parsed.signal_id, "partition": partition, "offset": offset,
                "first_partition": first.partition, "first_offset": first.offset})
            return
        self.runs[(partition, offset)] = parsed
        self.metrics.signals.labels("received").inc()

    def _dead_letter(self, msg: Message, error: str) -> None:
        kind = error.split(":", 1)[0].split(" ", 1)[0]
        self.metrics.dlq.labels(kind).inc()
        log.warning("signal to dlq", extra={"partition": msg.partition(), "offset": msg.offset(), "error": error})
        self.outbox.dead_letter(msg, error)

    def _begin(self, run: SignalRun) -> bool:
        """First step of a run: recovery lookup if it may have been acted on, then the staleness check."""
        if run.started:
            return True
        if self.clock() < run.next_action_at:
            return False
        if run.offset < self.recover_below.get(run.partition, 0):
            try:
                self.trader.recover(run)
            except NotYetProven as exc:
                run.next_action_at = exc.retry_at_ns
                log.info("recovery lookup waits for the previous run's requests to expire",
                         extra={"signal_id": run.signal_id, "wait_ms": (exc.retry_at_ns - self.clock()) // 1_000_000})
                return False
            except (OutcomeUnknown, RateLimited) as exc:
                log.warning("recovery lookup failed; retrying", extra={"signal_id": run.signal_id, "error": str(exc)})
                run.next_action_at = self.clock() + self.settings.settle_retry_ms * 1_000_000
                return False
            if run.orders:
                self.metrics.signals.labels("recovered").inc()
                run.started = True
                return True
        stale = self._stale(run)
        if stale is not None:
            run.done, run.outcome = True, stale
            self.metrics.dlq.labels("stale").inc()
            log.warning("stale signal to dlq: %s", stale, extra={"signal_id": run.signal_id})
            self._dead_letter_run(run, stale)
            return False
        run.started = True
        return True

    def _dead_letter_run(self, run: SignalRun, error: str) -> None:
        now = self.clock()
        record = {
            "venue": run.signal["venue"], "symbol": run.signal["symbol"], "stage": "executor",
            "source_topic": Topic.SIGNALS.value, "partition": run.partition, "offset": run.offset,
            "raw": self.serde.encode("Signal", run.signal), "error": error, "ts_event": now, "ts_recv": now,
        }
        self.outbox._send(Topic.DLQ, "DeadLetter", record)

    def _acked(self, run: SignalRun, now: int) -> None:
        self.metrics.ack_latency.observe(max(0, now - run.signal["ts_emit"]) / 1e9)

    # ---- loop --------------------------------------------------------------------------------------

    def _consumer_error(self, msg: Message, loop: str) -> None:
        report_consumer_error(self.metrics, msg, loop)

    def _drain_market(self) -> None:
        for msg in self.md.consume(1000, 0):
            if msg.error():
                self._consumer_error(msg, "market")
                continue
            try:
                name, record = self.serde.decode(msg.value() or b"")
            except SerdeError as exc:
                self.metrics.md_errors.inc()
                log.warning("undecodable market-data record", extra={
                    "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "error": str(exc)})
                continue
            if name == "BBO":
                self.market.on_bbo(record)
            elif name == "BookDelta":
                self.market.on_book(record)
            elif name == "FeedEvent" and record["symbol"]:
                self.market.on_health(record)

    def _drain_control(self) -> None:
        for msg in self.control.consume(100, 0):
            if msg.error():
                self._consumer_error(msg, "control")
                continue
            verdict = self.control_verifier.verify(msg.value(), self.clock(), live=msg.offset() >= self.control_end)
            if isinstance(verdict, str):
                self.metrics.control_rejected.labels(verdict.split(":", 1)[0]).inc()
                log.error("control message rejected", extra={"offset": msg.offset(), "why": verdict,
                                                             "raw": (msg.value() or b"")[:200]})
                continue
            previous = self.risk.state
            change = apply_control(self.risk, verdict)
            if change is not None:
                now = self.clock()
                self.outbox.executor_event(self.events.risk_state(
                    previous.value, change.value, f"kill switch: {self.risk.state_reason}", verdict["ts"], now, now))
            if change is TradingState.HALTED:
                self.cancel_all("kill switch")
            self.metrics.trading_state.set(list(TradingState).index(self.risk.state))
        if self.risk.state is TradingState.HALTED:
            # sticky: an order that appears while halted (a late ack, a settled unknown) is canceled too
            self.cancel_all("kill switch (order appeared while halted)", quiet=True)

    def cancel_all(self, reason: str, quiet: bool = False) -> None:
        """Cancel every live order of ours that can be canceled (the kill switch)."""
        cancelable = [o for o in self.trader.live.values() if o.can(OrderTrigger.CANCEL_REQUEST)]
        for order in [o for o in self.trader.disputed.values() if not o.can(OrderTrigger.CANCEL_REQUEST)]:
            self._halt_cancel_disputed(order, reason)
        if quiet and not cancelable:
            return
        log.warning("canceling all open orders", extra={"reason": reason, "count": len(cancelable)})
        for order in cancelable:
            try:
                self.trader.request_cancel(order, reason)
            except VenueError as exc:
                log.warning("kill-switch cancel failed; retried next loop",
                            extra={"client_order_id": order.client_order_id, "error": str(exc)})

    def _halt_cancel_disputed(self, order: Order, reason: str) -> None:
        # an order whose venue report the table refused may rest although our state says otherwise:
        # cancel it on the venue directly (no transition); the re-query then reports it canceled
        if order.client_order_id in self._disputed_canceled:
            return
        try:
            self.venue.cancel(order.command.symbol, order.client_order_id)
            log.warning("canceled a disputed order on the venue", extra={"client_order_id": order.client_order_id,
                                                                         "reason": reason})
        except VenueError as exc:
            log.warning("cancel of a disputed order failed", extra={"client_order_id": order.client_order_id,
                                                                     "error": str(exc)})
            return
        self._disputed_canceled.add(order.client_order_id)

    def _step_runs(self) -> None:
        for key in sorted(self.runs):
            run = self.runs[key]
            if run.done:
                continue
            if not self._begin(run):
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

    def _commit(self) -> None:
        offsets = []
        for partition, seen in self.seen.items():
            pending = [off for (p, off), run in self.runs.items() if p == partition and not run.done]
            position = min(pending) if pending else seen + 1
            if position > self.committed.get(partition, -1):
                offsets.append(TopicPartition(Topic.SIGNALS.value, partition, position))
        if not offsets:
            return
        if self.producer.flush(10) > 0:
            log.error("producer did not flush; not committing")
            return
        self.signals.commit(offsets=offsets, asynchronous=False)
        for tp in offsets:
            self.committed[tp.partition] = tp.offset
        for key in [k for k, r in self.runs.items() if r.done and k[1] < self.committed.get(k[0], -1)]:
            del self.runs[key]

    def _update_gauges(self) -> None:
        self.metrics.inflight.set(sum(1 for r in self.runs.values() if not r.done))
        self.metrics.open_orders.set(len(self.trader.live))
        for symbol in self.positions.symbols():
            pos = self.positions.get(symbol)
            self.metrics.position.labels(symbol).set(float(pos.qty))
            self.metrics.realized_pnl.labels(symbol).set(float(pos.realized_pnl))
            quote = self.market.quote(self.settings.venue, symbol)
            if quote is not None:
                self.metrics.unrealized_pnl.labels(symbol).set(float(pos.unrealized_pnl(quote.mid)))

    def replay_finished(self) -> bool:
        """In replay mode: every partition read up to its end at start and every run done."""
        if self.start_at is None:
            return False
        caught_up = all(self.seen.get(p, -1) + 1 >= end for p, end in self.replay_end.items())
        return caught_up and all(r.done for r in self.runs.values())

    def run(self) -> None:
        """Set up (reconcile first), then loop until stopped; commit, flush and close on the way out."""
        self._setup()
        last_commit = 0
        try:
            while not self._stopping and not self.replay_finished():
                self._drain_control()
                self._drain_market()
                inflight = sum(1 for r in self.runs.values() if not r.done)
                msgs: list[Message] = []
                if inflight < self.settings.max_inflight_signals:
                    msgs = self.signals.consume(self.settings.max_inflight_signals - inflight, 0)
                    if not msgs and not inflight:
                        msgs = self.signals.consume(1, 0.02)  # idle: block until the next signal, briefly
                    for msg in msgs:
                        if msg.error():
                            self._consumer_error(msg, "signals")
                            continue
                        self._take(msg)
                else:
                    msgs = []
                self._step_runs()
                now = self.clock()
                if now - last_commit > 50_000_000:
                    self._commit()
                    self._update_gauges()
                    self.ledger.forget_before(now)
                    last_commit = now
                if now >= self._next_clock_sync:
                    self._resync_clock()
                if self.settings.reconcile_interval_ms and now >= self._next_reconcile:
                    self._reconcile_balances(now)
                if inflight and not msgs:
                    time.sleep(0.002)  # runs are waiting on timers (TTL, poll, backoff): don't spin
        finally:
            self.close()

    def _prices(self) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        for symbol, (base, quote) in self.positions.assets.items():
            prices[quote] = Decimal(1)
            q = self.market.quote(self.settings.venue, symbol)
            if q is not None:
                prices[base] = q.mid
        return prices

    def _reconcile_balances(self, now: int) -> None:
        """Balances from fills vs the venue's account, and the venue's open orders vs ours; act on a breach."""
        self._next_reconcile = now + self.settings.reconcile_interval_ms * 1_000_000
        try:
            balances = self.venue.balances()
            open_orders = self.venue.open_orders()
        except VenueError as exc:
            log.warning("periodic reconciliation failed; next interval", extra={"error": str(exc)})
            return
        answered = self.clock()
        check = balance_check(self.reconciliation.balances, self.positions.asset_delta, balances, self._prices())
        foreign = [o for o in open_orders if parse_client_order_id(o.get("clientOrderId", "")) is None]
        unmanaged = [o for o in open_orders if o not in foreign and o["clientOrderId"] not in self.trader.live]
        self.last_check = {"diff": {a: str(d) for a, d in check.diff.items()}, "value": str(check.value),
                           "unpriced": list(check.unpriced), "foreign_open_orders": len(foreign),
                           "unmanaged_open_orders": [o["clientOrderId"] for o in unmanaged]}
        for asset in set(self.metrics_assets) | set(check.diff):
            self.metrics.balance_diff.labels(asset).set(float(check.diff.get(asset, 0)))
        self.metrics_assets = set(check.diff) | self.metrics_assets
        self.metrics.foreign_open_orders.set(len(foreign))
        if check.diff or foreign or unmanaged:
            log.warning("reconciliation: the venue's account differs from the executor's view", extra=self.last_check)
        if unmanaged and self.risk.state is TradingState.HALTED:
            for order in unmanaged:  # ours but not managed (e.g. left by a crash mid-submit): halted means none rests
                try:
                    self.venue.cancel(order["symbol"], order["clientOrderId"])
                    log.warning("halted: canceled an unmanaged order of ours", extra={"client_order_id": order["clientOrderId"]})
                except VenueError as exc:
                    log.warning("halted: cancel of an unmanaged order failed", extra={"error": str(exc)})
        settling = any(o.is_unsettled for o in self.trader.live.values()) or any(
            r.finishing and not r.done for r in self.runs.values())
        persistent = check.diff and check.diff == self._last_diff and not settling
        self._last_diff = check.diff
        breach = persistent and check.value > self.settings.reconcile_max_diff_quote
        orders = sorted((o["symbol"], o.get("clientOrderId", ""), o not in foreign) for o in foreign + unmanaged)
        view = (check.diff, orders)
        steady = view == self._last_view and not settling  # not a fill still being fetched
        self._last_view = view
        if (steady or breach) and view != self._published_view:
            self.outbox.executor_event(self.events.reconciliation(
                check, orders, self.risk.state.value, self.risk.state_reason, answered, self.clock()))
            self._published_view = view
        if breach:
            self._breach(check, answered)

    def _breach(self, check: BalanceCheck, answered: int) -> None:
        target = TradingState(self.settings.reconcile_breach_state)
        order = list(TradingState)
        previous = self.risk.state
        if order.index(previous) >= order.index(target):
            return  # already as strict (REDUCING or HALTED)
        reason = (f"reconciliation: venue balances differ from fills by {check.value} (quote) "
                  f"{ {a: str(d) for a, d in check.diff.items()} }")
        self.risk.set_state(target, reason)
        self.metrics.trading_state.set(order.index(self.risk.state))
        log.error("trading state changed by reconciliation", extra={"state": target.value, "reason": reason})
        self.outbox.executor_event(self.events.risk_state(previous.value, target.value, reason, answered, answered,
                                                          self.clock()))
        if target is TradingState.HALTED:
            self.cancel_all("reconciliation breach")

    def _resync_clock(self) -> None:
        try:
            self._sync_clock(self.venue.server_time())
        except VenueError as exc:
            log.warning("venue clock measurement failed; keeping the last one", extra={"error": str(exc)})
            self._next_clock_sync = self.clock() + 5_000_000_000

    def stop(self, *_: Any) -> None:
        """Ask the loop to finish (SIGTERM handler)."""
        self._stopping = True

    def close(self) -> None:
        """Commit what is done, flush the producer, close the consumers."""
        if self.started:
            self._commit()
        self.producer.flush(10)
        for name in ("signals", "md", "control"):
            consumer = getattr(self, name, None)
            if consumer is not None:
                consumer.close()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Health: up once reconciled; detail for operators."""
        ok = self.started
        detail: dict[str, Any] = {"started": self.started}
        if self.started:
            detail.update(
                trading_state=self.risk.state.value, state_reason=self.risk.state_reason,
                inflight=sum(1 for r in self.runs.values() if not r.done), open_orders=len(self.trader.live),
                paused_until=self.trader.paused_until,
                positions={s: str(self.positions.get(s).qty) for s in self.positions.symbols()},
                reconciliation=self.last_check, fills_read=dict(self.fills_replay.counts),
            )
        return ok, detail


def install_sigterm(engine: Engine) -> None:
    """Stop ``engine`` cleanly on SIGTERM and SIGINT."""
    os_signal.signal(os_signal.SIGTERM, engine.stop)
    os_signal.signal(os_signal.SIGINT, engine.stop)
