"""The executor's Kafka consumers: built with their client-level errors reported, and their errors counted.

Every loop (signals, market, control) reads through a manual-commit consumer of its own; the error
reporting is one piece so each loop's errors land in ``executor_consumer_errors_total{loop}`` alike.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from executor.metrics import ExecutorMetrics
from infra.kafka_config import manual_commit_consumer_config
from infra.settings import KafkaSettings

log = logging.getLogger(__name__)


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


def new_consumer(kafka: KafkaSettings, metrics: ExecutorMetrics, group: str, loop: str, **extra: Any) -> Consumer:
    """A manual-commit consumer whose client-level errors are reported as ``loop``'s."""

    def on_error(error: KafkaError) -> None:
        report_client_error(metrics, error, loop)

    return Consumer(manual_commit_consumer_config(kafka, group, error_cb=on_error, **extra))


def tail_start(low: int, high: int, back: int) -> int:
    """Where to start reading a partition to get its last ``back`` records (never before its low watermark)."""
    return max(low, high - back)


def tail_partitions(consumer: Consumer, topics: list[str], back: int) -> list[TopicPartition]:
    """Return every partition of ``topics`` at its last ``back`` records."""
    parts = []
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            parts.append(TopicPartition(topic, p, tail_start(low, high, back)))
    return parts

