"""The outbox: every record the executor publishes (orders, fills, executor.health, dlq) through one producer.

One idempotent producer, so the engine can flush it before committing a signal's offset: what a
committed signal caused is on the broker first.  Which topic and key a record gets is pure
(:func:`record_key`, :func:`dead_letter_record`); sending and delivery accounting stay here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from executor.metrics import ExecutorMetrics
from schemas.serde import AvroSerde
from schemas.topics import Topic, instrument_key

log = logging.getLogger(__name__)


def record_key(topic: Topic, record: dict[str, Any]) -> bytes:
    """The partition key: ``venue:account`` on executor.health (one account's events in order), else the instrument."""
    if topic is Topic.EXECUTOR_HEALTH:
        return f"{record['venue']}:{record['account']}".encode()
    return instrument_key(record.get("venue", ""), record.get("symbol", ""))


def dead_letter_record(
    source_topic: str, partition: int, offset: int, raw: bytes, error: str, now: int, venue: str = "", symbol: str = ""
) -> dict[str, Any]:
    """A DeadLetter of the executor stage for the message at ``source_topic``/``partition``/``offset``."""
    return {
        "venue": venue, "symbol": symbol, "stage": "executor", "source_topic": source_topic,
        "partition": partition, "offset": offset, "raw": raw, "error": error, "ts_event": now, "ts_recv": now,
    }


class KafkaOutbox:
    """Publishes the executor's records; counts each kind and every failed delivery."""

    def __init__(self, producer: Producer, serde: AvroSerde, metrics: ExecutorMetrics, clock: Callable[[], int]) -> None:
        self.producer, self.serde, self.metrics, self.clock = producer, serde, metrics, clock

    def _send(self, topic: Topic, record_name: str, record: dict[str, Any]) -> None:
        value = self.serde.encode(record_name, record)
        self.producer.produce(topic.value, value, record_key(topic, record), on_delivery=self._delivered)
        self.producer.poll(0)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.metrics.delivery_errors.inc()
            log.error("delivery failed", extra={"topic": msg.topic(), "error": str(err)})

    def order_event(self, record: dict[str, Any]) -> None:
        """Publish an OrderEvent to ``orders``."""
        self.metrics.order_events.labels(record["status"]).inc()
        self._send(Topic.ORDERS, "OrderEvent", record)

    def fill(self, record: dict[str, Any]) -> None:
        """Publish a Fill to ``fills``."""
        self.metrics.fills.inc()
        self._send(Topic.FILLS, "Fill", record)

    def executor_event(self, record: dict[str, Any]) -> None:
        """Publish an ExecutorEvent (reconciliation, trading state) to ``executor.health``; logged for operators."""
        log.warning("executor event published", extra={"kind": record["kind"], "detail": record["detail"]})
        self._send(Topic.EXECUTOR_HEALTH, "ExecutorEvent", record)

    def dead_letter(
        self, source_topic: str, partition: int, offset: int, raw: bytes, error: str, venue: str = "", symbol: str = ""
    ) -> None:
        """Publish a DeadLetter for a refused input message to ``dlq``."""
        record = dead_letter_record(source_topic, partition, offset, raw, error, self.clock(), venue, symbol)
        self._send(Topic.DLQ, "DeadLetter", record)

    def flush(self, timeout_s: float) -> int:
        """Wait for every record to be delivered; the number still undelivered after ``timeout_s``."""
        return self.producer.flush(timeout_s)
