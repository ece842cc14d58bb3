"""Signal intake: the ``signals`` consumer, its assignment or replay start, the signal runs and their commits.

A signal's offset is committed only when every order of the signal is terminal (or the signal was
refused), after the outbox has flushed, and only as the lowest unfinished offset of its partition, so a
crash replays exactly the unfinished signals.  A signal whose offset was below the partition's end when
the partition was assigned may have been acted on before: its orders are first looked up on the venue by
client order id (``Trader.recover``).  The decisions (parse, staleness, commit positions, start offsets)
are pure functions; :class:`SignalIntake` does the consumer I/O around them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Message, TopicPartition

from executor.commands import Side
from executor.consumers import new_consumer, report_consumer_error
from executor.ledger import SignalLedger
from executor.metrics import ExecutorMetrics
from executor.outbox import KafkaOutbox
from executor.trader import NotYetProven, SignalRun, Trader
from executor.venue import OutcomeUnknown, RateLimited
from infra.settings import ExecutorSettings, KafkaSettings
from infra.topics import end_offsets
from schemas.serde import AvroSerde, SerdeError
from schemas.topics import Topic

log = logging.getLogger(__name__)

LEDGER_MARGIN_MS = 10_000  # signals read back beyond max_signal_age_ms at start (clock skew between hosts)
LEDGER_READ_S = 30  # the ledger's partitions must be read to their end within this


@dataclass(frozen=True)
class StartAt:
    """Replay start: an offset for every partition, or a time (ns since epoch)."""

    offset: int | None = None
    time_ns: int | None = None


@dataclass(frozen=True)
class OtherVenue:
    """A well-formed signal for another venue: not this executor's to trade, and no error either.

    ``signals`` carries every venue's signals (streams emits them per instrument); each venue's
    executor takes its own and skips the rest, counted, without dead-lettering them.
    """

    venue: str


def parse_signal(
    serde: AvroSerde, msg: Message, now: int, venue: str, symbols: Collection[str]
) -> SignalRun | OtherVenue | str:
    """The run of a ``signals`` message, another venue's signal, or why it goes to the dlq (malformed, unknown symbol)."""
    try:
        signal = serde.decode_as("Signal", msg.value() or b"")
    except SerdeError as exc:
        return f"malformed: {exc}"
    if signal["venue"] != venue:
        return OtherVenue(signal["venue"])
    if signal["symbol"] not in symbols:
        return f"unknown symbol {signal['symbol']!r}"
    try:
        target = Decimal(signal["target"])
        Decimal(signal["reference_price"])
    except InvalidOperation:
        return f"malformed: target {signal['target']!r} / reference_price {signal['reference_price']!r}"
    if not target.is_finite() or target <= 0:
        return f"malformed: target {signal['target']!r} must be a positive decimal"
    kind, ms = msg.timestamp()
    acked = ms * 1_000_000 if kind == TIMESTAMP_LOG_APPEND_TIME else None
    return SignalRun(signal, msg.partition(), msg.offset(), now, Side(signal["side"]), target, signal_ack_ns=acked)


def stale_reason(signal: Mapping[str, Any], now: int, max_age_ms: int) -> str | None:
    """Why ``signal`` is too old to act on at ``now`` (expired, or emitted over ``max_age_ms`` ago), or None."""
    if now >= signal["expires_at"]:
        return f"stale: expired {(now - signal['expires_at']) / 1e6:.0f} ms ago"
    age = now - signal["ts_emit"]
    if age > max_age_ms * 1_000_000:
        return f"stale: {age / 1e6:.0f} ms old, max {max_age_ms} ms"
    return None


def dlq_kind(error: str) -> str:
    """The ``executor_dlq_total{kind}`` label of a dlq reason: its first word (``malformed``, ``venue``, ...)."""
    return error.split(":", 1)[0].split(" ", 1)[0]


def commit_positions(
    seen: Mapping[int, int], runs: Mapping[tuple[int, int], SignalRun], committed: Mapping[int, int]
) -> dict[int, int]:
    """Per partition, the offset to commit now: its lowest unfinished signal, else past the last seen.

    Only positions beyond what is already committed are returned.
    """
    positions = {}
    for partition, last in seen.items():
        pending = [off for (p, off), run in runs.items() if p == partition and not run.done]
        position = min(pending) if pending else last + 1
        if position > committed.get(partition, -1):
            positions[partition] = position
    return positions


def assigned_start(committed_offset: int, end: int, offset_reset: str) -> int | None:
    """Where an assigned partition starts if not at its committed offset: a new group on ``latest`` starts at
    the end read at assignment (nothing older is replayed); None keeps the consumer's own start."""
    if committed_offset < 0 and offset_reset == "latest":
        return end
    return None


def replay_caught_up(seen: Mapping[int, int], replay_end: Mapping[int, int]) -> bool:
    """Every replayed partition read up to the end offset it had at start."""
    return all(seen.get(p, -1) + 1 >= end for p, end in replay_end.items())


class SignalIntake:
    """Takes signals into runs, decides when a run may start, and commits the offsets of finished runs."""

    def __init__(
        self,
        settings: ExecutorSettings,
        kafka: KafkaSettings,
        serde: AvroSerde,
        metrics: ExecutorMetrics,
        outbox: KafkaOutbox,
        clock: Callable[[], int],
        start_at: StartAt | None = None,
    ) -> None:
        self.settings, self.kafka, self.serde, self.metrics, self.outbox = settings, kafka, serde, metrics, outbox
        self.clock, self.start_at = clock, start_at
        self.runs: dict[tuple[int, int], SignalRun] = {}  # (partition, offset) -> run, until committed past
        self.recover_below: dict[int, int] = {}  # partition -> end offset at assignment: below it, look up first
        self.committed: dict[int, int] = {}
        self.seen: dict[int, int] = {}
        self.replay_end: dict[int, int] = {}
        self.ledger = SignalLedger(settings.max_signal_age_ms * 1_000_000)
        self.symbols: Collection[str] = ()
        self.consumer: Consumer | None = None

    # ---- start ----------------------------------------------------------------------------------

    def restore_ledger(self) -> None:
        """Read the signal ids of the last ``max_signal_age_ms`` (+ margin) from ``signals``, every partition."""
        topic = Topic.SIGNALS.value
        reader = new_consumer(self.kafka, self.metrics, f"{self.settings.group_id}-ledger-{self.clock()}", "signals")
        try:
            meta = reader.list_topics(topic, timeout=10).topics[topic]
            since_ms = (self.clock() - self.ledger.max_age_ns) // 1_000_000 - LEDGER_MARGIN_MS
            starts = reader.offsets_for_times([TopicPartition(topic, p, since_ms) for p in meta.partitions], timeout=10)
            ends = end_offsets(self.kafka.bootstrap, [TopicPartition(topic, p) for p in meta.partitions])
            todo = {tp.partition: ends[(topic, tp.partition)][1] for tp in starts
                    if 0 <= tp.offset < ends[(topic, tp.partition)][1]}
            reader.assign([tp for tp in starts if tp.partition in todo])
            deadline = time.monotonic() + LEDGER_READ_S
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
                raise RuntimeError(f"signal ledger: partitions {sorted(todo)} not read to their end in {LEDGER_READ_S} s")
        finally:
            reader.close()
        log.info("signal ledger restored", extra={"signal_ids": len(self.ledger)})

    def open(self, symbols: Collection[str]) -> None:
        """Start consuming: subscribe with the group, or (replay) assign every partition at the start asked."""
        self.symbols = symbols
        s = self.settings
        self.consumer = new_consumer(
            self.kafka, self.metrics, s.group_id, "signals",
            **{"auto.offset.reset": s.signals_offset_reset, "fetch.wait.max.ms": self.kafka.executor_fetch_wait_ms},
        )
        if self.start_at is None:
            self.consumer.subscribe([Topic.SIGNALS.value], on_assign=self._on_assign, on_revoke=self._on_revoke)
        else:
            self._assign_replay(self.consumer, self.start_at)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        ends = end_offsets(self.kafka.bootstrap, partitions)
        committed = consumer.committed(partitions, timeout=10)
        for tp, done in zip(partitions, committed, strict=True):
            end = ends[(tp.topic, tp.partition)][1]
            self.recover_below[tp.partition] = end
            start = assigned_start(done.offset, end, self.settings.signals_offset_reset)
            if start is not None:
                tp.offset = start
        consumer.assign(partitions)
        log.info("signals assigned", extra={"partitions": {str(tp.partition): self.recover_below[tp.partition] for tp in partitions}})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.commit()
        for tp in partitions:
            for key in [k for k in self.runs if k[0] == tp.partition]:
                del self.runs[key]
            self.committed.pop(tp.partition, None)
            self.seen.pop(tp.partition, None)

    def _assign_replay(self, consumer: Consumer, start_at: StartAt) -> None:
        topic = Topic.SIGNALS.value
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p) for p in meta.partitions]
        if start_at.time_ns is not None:
            stamped = [TopicPartition(topic, tp.partition, start_at.time_ns // 1_000_000) for tp in parts]
            parts = consumer.offsets_for_times(stamped, timeout=10)
        else:
            parts = [TopicPartition(topic, tp.partition, start_at.offset or 0) for tp in parts]
        ends = end_offsets(self.kafka.bootstrap, parts)
        for tp in parts:
            high = ends[(tp.topic, tp.partition)][1]
            self.recover_below[tp.partition] = high
            self.replay_end[tp.partition] = high
            if tp.offset < 0:  # no message at/after the time: nothing to replay there
                tp.offset = high
        consumer.assign(parts)

    # ---- signals ----------------------------------------------------------------------------------

    def inflight(self) -> int:
        """Runs not done yet."""
        return sum(1 for r in self.runs.values() if not r.done)

    def consume(self, inflight: int) -> int:
        """Take new signals while fewer than ``max_inflight_signals`` are in progress; the messages read."""
        assert self.consumer is not None
        room = self.settings.max_inflight_signals - inflight
        if room <= 0:
            return 0
        msgs = self.consumer.consume(room, 0)
        if not msgs and not inflight:
            msgs = self.consumer.consume(1, 0.02)  # idle: block until the next signal, briefly
        for msg in msgs:
            if msg.error():
                report_consumer_error(self.metrics, msg, "signals")
                continue
            self.take(msg)
        return len(msgs)

    def take(self, msg: Message) -> None:
        """A new run for ``msg``, unless it is malformed (dlq) or a duplicate signal id (dropped)."""
        partition, offset = msg.partition(), msg.offset()
        self.seen[partition] = max(self.seen.get(partition, -1), offset)
        parsed = parse_signal(self.serde, msg, self.clock(), self.settings.venue, self.symbols)
        if isinstance(parsed, OtherVenue):
            self.metrics.signals.labels("other_venue").inc()
            return
        if isinstance(parsed, str):
            self.metrics.dlq.labels(dlq_kind(parsed)).inc()
            log.warning("signal to dlq", extra={"partition": partition, "offset": offset, "error": parsed})
            self.outbox.dead_letter(msg.topic(), partition, offset, msg.value() or b"", parsed)
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

    def begin(self, run: SignalRun, trader: Trader) -> bool:
        """First step of a run: recovery lookup if it may have been acted on, then the staleness check."""
        if run.started:
            return True
        if self.clock() < run.next_action_at:
            return False
        if run.offset < self.recover_below.get(run.partition, 0):
            try:
                trader.recover(run)
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
        stale = stale_reason(run.signal, self.clock(), self.settings.max_signal_age_ms)
        if stale is not None:
            run.done, run.outcome = True, stale
            self.metrics.dlq.labels("stale").inc()
            log.warning("stale signal to dlq: %s", stale, extra={"signal_id": run.signal_id})
            self.outbox.dead_letter(Topic.SIGNALS.value, run.partition, run.offset,
                                    self.serde.encode("Signal", run.signal), stale,
                                    run.signal["venue"], run.signal["symbol"])
            return False
        run.started = True
        return True

    # ---- commits ----------------------------------------------------------------------------------

    def commit(self) -> None:
        """Commit each partition's lowest unfinished offset once the outbox has flushed; forget committed runs."""
        positions = commit_positions(self.seen, self.runs, self.committed)
        if not positions or self.consumer is None:
            return
        if self.outbox.flush(10) > 0:
            log.error("producer did not flush; not committing")
            return
        offsets = [TopicPartition(Topic.SIGNALS.value, p, off) for p, off in positions.items()]
        self.consumer.commit(offsets=offsets, asynchronous=False)
        self.committed.update(positions)
        for key in [k for k, r in self.runs.items() if r.done and k[1] < self.committed.get(k[0], -1)]:
            del self.runs[key]

    def replay_finished(self) -> bool:
        """In replay mode: every partition read up to its end at start and every run done."""
        if self.start_at is None:
            return False
        return replay_caught_up(self.seen, self.replay_end) and all(r.done for r in self.runs.values())

    def close(self) -> None:
        """Close the consumer (leaves the group)."""
        if self.consumer is not None:
            self.consumer.close()
