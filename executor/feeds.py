"""The executor's input loops besides signals: market data into the MarketView, control messages into risk.

Both are drained without blocking on every turn of the engine's loop, before signals are taken, so a
run steps on the freshest book and a halt is applied before the next order goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from executor.consumers import new_consumer, report_consumer_error, tail_partitions
from executor.control import ControlVerifier, apply_control
from executor.events import ExecutorEvents
from executor.market import MarketView
from executor.metrics import ExecutorMetrics
from executor.outbox import KafkaOutbox
from executor.risk import RiskEngine, TradingState
from executor.supervise import OrderSweeper, state_rank
from infra.settings import ExecutorSettings, KafkaSettings
from schemas.serde import AvroSerde, SerdeError
from schemas.topics import Topic

log = logging.getLogger(__name__)

MD_BACKFILL = 200  # messages per md partition read back at start, to know the market at once


def apply_market_record(market: MarketView, name: str, record: dict[str, Any]) -> bool:
    """Apply one decoded ``md.*`` record to ``market``; False for a record the executor does not use."""
    if name == "BBO":
        market.on_bbo(record)
    elif name == "BookDelta":
        market.on_book(record)
    elif name == "FeedEvent" and record["symbol"]:
        market.on_health(record)
    else:
        return False
    return True


class MarketFeed:
    """``md.bbo``, ``md.book`` and ``md.health`` into the MarketView; their tail read back at start."""

    def __init__(self, settings: ExecutorSettings, kafka: KafkaSettings, serde: AvroSerde, metrics: ExecutorMetrics,
                 market: MarketView, clock: Callable[[], int]) -> None:
        self.serde, self.metrics, self.market = serde, metrics, market
        # a group of its own per process: every executor reads the whole market
        self.consumer = new_consumer(kafka, metrics, f"{settings.group_id}-md-{clock()}", "market",
                                     **{"fetch.wait.max.ms": kafka.executor_fetch_wait_ms})

    def open(self, book_from: dict[int, int] | None = None) -> None:
        """Assign every market-data partition at its last ``MD_BACKFILL`` records, md.book's at ``book_from``
        (partition -> offset) where given: where the deltas after the books loaded at start begin."""
        book = Topic.BOOK.value
        parts = tail_partitions(self.consumer, [Topic.BBO.value, book, Topic.HEALTH.value], MD_BACKFILL)
        if book_from:
            parts = [TopicPartition(book, tp.partition, book_from.get(tp.partition, tp.offset)) if tp.topic == book
                     else tp for tp in parts]
        self.consumer.assign(parts)

    def drain(self) -> None:
        """Apply every market-data record available now; undecodable ones are counted and skipped."""
        for msg in self.consumer.consume(1000, 0):
            if msg.error():
                report_consumer_error(self.metrics, msg, "market")
                continue
            try:
                name, record = self.serde.decode(msg.value() or b"")
            except SerdeError as exc:
                self.metrics.md_errors.inc()
                log.warning("undecodable market-data record", extra={
                    "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "error": str(exc)})
                continue
            apply_market_record(self.market, name, record)

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


class ControlFeed:
    """The kill switch's topic: signed halt/resume messages applied to the risk engine, read from the beginning."""

    def __init__(self, settings: ExecutorSettings, kafka: KafkaSettings, metrics: ExecutorMetrics, risk: RiskEngine,
                 events: ExecutorEvents, outbox: KafkaOutbox, sweeper: OrderSweeper, clock: Callable[[], int]) -> None:
        self.metrics, self.risk, self.events, self.outbox, self.sweeper, self.clock = (
            metrics, risk, events, outbox, sweeper, clock)
        self.verifier = ControlVerifier(settings.control_key, settings.control_max_age_ms * 1_000_000)
        self.topic = settings.control_topic
        self.consumer = new_consumer(kafka, metrics, f"{settings.group_id}-control-{clock()}", "control")
        self.history_end = 0

    def open(self) -> None:
        """Assign the topic from its beginning; what is below its end now is history (no age check)."""
        self.history_end = self.consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)[1]
        self.consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])

    def drain(self) -> None:
        """Apply every verified control message available now; reject the rest; keep a halt's orders canceled."""
        for msg in self.consumer.consume(100, 0):
            if msg.error():
                report_consumer_error(self.metrics, msg, "control")
                continue
            verdict = self.verifier.verify(msg.value(), self.clock(), live=msg.offset() >= self.history_end)
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
                self.sweeper.cancel_all("kill switch")
            self.metrics.trading_state.set(state_rank(self.risk.state))
        if self.risk.state is TradingState.HALTED:
            # sticky: an order that appears while halted (a late ack, a settled unknown) is canceled too
            self.sweeper.cancel_all("kill switch (order appeared while halted)", quiet=True)

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()
