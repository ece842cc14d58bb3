"""Kafka publishing: idempotent producer, bounded RAM buffer, backpressure and drop reporting.

librdkafka's own queue is the bounded RAM buffer (``queue.buffering.max.messages`` = the
``buffer_max_records`` setting): while the broker is unreachable, records wait there and are
retried by the idempotent producer (no duplicates, order kept per partition). Only when that
queue is full are records dropped; drops are counted and reported in a ``dropped`` FeedEvent once
there is room again. When deliveries resume after a stall, a ``backpressure`` FeedEvent says how
long and how many records waited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from infra.kafka_config import idempotent_producer_config
from infra.settings import KafkaSettings
from producers.health import FeedEventKind, FeedEvents
from producers.metrics import FeedMetrics
from schemas.serde import AvroSerde
from schemas.topics import Topic

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_DRAINED = 1_000
"""Records still waiting at which a backlog counts as drained (normal in-flight level is far lower)."""


def producer_config(kafka: KafkaSettings, buffer_max_records: int, delivery_timeout_ms: int) -> dict[str, Any]:
    """Return the librdkafka settings of the feed producer."""
    return idempotent_producer_config(kafka, **{
        "compression.type": "lz4",
        "linger.ms": kafka.feed_linger_ms,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": buffer_max_records,
        "queue.buffering.max.kbytes": 2_097_151,
        "message.timeout.ms": delivery_timeout_ms,
    })


class KafkaPublisher:
    """Encode records with :class:`AvroSerde` and produce them; not thread-safe (one feed thread owns it)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        events: FeedEvents,
        metrics: FeedMetrics,
        clock: Callable[[], int],
        *,
        buffer_max_records: int,
        delivery_timeout_ms: int = 300_000,
        backpressure_after_s: float = 1.0,
    ) -> None:
        config = producer_config(kafka, buffer_max_records, delivery_timeout_ms)
        config["on_delivery"] = self._on_delivery
        config["error_cb"] = self._on_error
        config["logger"] = logging.getLogger("librdkafka")
        self._producer = Producer(config)
        self._serde = AvroSerde.from_settings(kafka)
        self._events = events
        self._metrics = metrics
        self._clock = clock
        self._bound = buffer_max_records
        self._backpressure_after_ns = int(backpressure_after_s * _NS)
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._unreported_drops = 0
        self._last_progress = clock()
        self._stalled_since: int | None = None
        self._resumed_at: int | None = None
        self._peak_waiting = 0

    def publish(self, topic: str, key: bytes, record_name: str, record: dict[str, Any]) -> None:
        """Encode and enqueue one record; count and remember it if the buffer is full."""
        value = self._serde.encode(record_name, record, topic)
        if not self._produce(topic, key, value):
            return
        if self._unreported_drops:
            self._report_drops()

    def poll(self) -> None:
        """Serve delivery callbacks; detect a broker that stopped taking records and report the episode."""
        self._producer.poll(0)
        waiting = len(self._producer)
        self._metrics.kafka_buffer.set(waiting)
        now = self._clock()
        if waiting == 0:
            self._last_progress = now
        if self._stalled_since is None:
            if waiting and now - self._last_progress > self._backpressure_after_ns:
                self._stalled_since = self._last_progress
                log.warning("kafka is not taking records; buffering in RAM", extra={"waiting": waiting, "bound": self._bound})
            return
        self._peak_waiting = max(self._peak_waiting, waiting)
        if self._resumed_at is not None and waiting <= _DRAINED:
            self._report_backpressure(now)

    @property
    def waiting(self) -> int:
        """Return the records not yet acknowledged by the broker."""
        return len(self._producer)

    @property
    def unreported_drops(self) -> int:
        """Return drops not yet reported in a ``dropped`` FeedEvent."""
        return self._unreported_drops

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for every buffered record; return how many are still waiting."""
        left = self._producer.flush(timeout_s)
        self._producer.poll(0)
        return left

    def _produce(self, topic: str, key: bytes, value: bytes) -> bool:
        try:
            self._producer.produce(topic, value, key)
            return True
        except BufferError:
            self.dropped += 1
            self._unreported_drops += 1
            self._metrics.kafka_dropped.inc()
            if self._unreported_drops == 1:
                log.error("producer buffer full; dropping records", extra={"bound": self._bound})
            self._producer.poll(0)
            return False

    def _report_drops(self) -> None:
        n, self._unreported_drops = self._unreported_drops, 0
        record = self._events.build(
            FeedEventKind.DROPPED, self._clock(), count=n,
            detail=f"{n} records dropped: producer RAM buffer full (bound {self._bound} records)",
        )
        if not self._produce(Topic.HEALTH, self._events.key, self._serde.encode("FeedEvent", record, Topic.HEALTH)):
            self._unreported_drops += n

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        now = self._clock()
        self._last_progress = now
        if err is not None:
            self.failed += 1
            self._metrics.kafka_failed.inc()
            if self.failed <= 10 or self.failed % 10_000 == 0:
                log.error("kafka delivery failed", extra={"error": str(err), "topic": msg.topic(), "failed": self.failed})
            return
        self.delivered += 1
        if self._stalled_since is not None and self._resumed_at is None:
            self._resumed_at = now
            log.warning("kafka takes records again; draining the RAM buffer", extra={"waiting": len(self._producer)})

    def _report_backpressure(self, now: int) -> None:
        assert self._stalled_since is not None and self._resumed_at is not None
        stalled_s = (self._resumed_at - self._stalled_since) / _NS
        drained_s = (now - self._resumed_at) / _NS
        peak = self._peak_waiting
        self._stalled_since = self._resumed_at = None
        self._peak_waiting = 0
        log.warning("kafka backlog drained", extra={"stalled_s": round(stalled_s, 3), "peak_waiting": peak})
        record = self._events.build(
            FeedEventKind.BACKPRESSURE, now, count=peak,
            detail=f"broker took no records for {stalled_s:.1f}s; up to {peak} records waited in RAM "
            f"(bound {self._bound}), drained in {drained_s:.1f}s; {self.dropped} dropped so far",
        )
        self._produce(Topic.HEALTH, self._events.key, self._serde.encode("FeedEvent", record, Topic.HEALTH))

    @staticmethod
    def _on_error(err: KafkaError) -> None:
        log.warning("kafka client error", extra={"error": str(err), "retriable": err.retriable()})
