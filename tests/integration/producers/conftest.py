"""Fixtures of the feed producer integration tests: a private broker, a feed running in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from infra.broker import private_broker
from infra.settings import FeedSettings, KafkaSettings
from producers.health import FeedEvents
from producers.metrics import FeedMetrics
from producers.publisher import KafkaPublisher
from producers.registry import adapter_for
from producers.service import FeedService, producer_id
from schemas.serde import AvroSerde


@dataclass
class Broker:
    """A broker process of one test: its pid is known, so a test may freeze it (SIGSTOP)."""

    kafka: KafkaSettings
    pid: int


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh broker with every topic created, private to the test (clean topics, known pid)."""
    with private_broker(tmp_path / "kafka") as (kafka, proc):
        yield Broker(kafka, proc.pid)


@dataclass
class RunningFeed:
    """A FeedService publishing to Kafka from a background thread."""

    service: FeedService
    publisher: KafkaPublisher
    thread: threading.Thread
    produced: dict[str, list[tuple[bytes, dict[str, Any]]]] = field(default_factory=dict)

    def stop(self, flush_s: float = 30.0) -> int:
        """Stop the feed, flush the producer; return records left unflushed."""
        self.service.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "feed thread did not stop"
        return self.publisher.flush(flush_s)


@pytest.fixture
def start_feed() -> Iterator[Callable[..., RunningFeed]]:
    """Start ``FeedService`` threads (``factory(kafka, ws_url, rest_url, symbols, venue="binance", **FeedSettings
    fields)``); stop all at the end."""
    feeds: list[RunningFeed] = []

    def factory(
        kafka: KafkaSettings, ws_url: str, rest_url: str, symbols: list[str], venue: str = "binance", **fields: Any
    ) -> RunningFeed:
        settings = FeedSettings(ws_url=ws_url, rest_url=rest_url, symbols=",".join(symbols), venue=venue, **fields)
        metrics = FeedMetrics(CollectorRegistry())
        adapter = adapter_for(venue)
        events = FeedEvents(venue, producer_id())
        publisher = KafkaPublisher(
            kafka, events, metrics, time.time_ns,
            buffer_max_records=settings.buffer_max_records, backpressure_after_s=settings.backpressure_after_s,
        )
        produced: dict[str, list[tuple[bytes, dict[str, Any]]]] = {}

        def sink(topic: str, key: bytes, name: str, record: dict[str, Any]) -> None:
            produced.setdefault(topic, []).append((key, record))
            publisher.publish(topic, key, name, record)

        service = FeedService(adapter, settings, symbols, sink, metrics, poll=publisher.poll, events=events)
        thread = threading.Thread(target=service.run, name="feed", daemon=True)
        thread.start()
        feed = RunningFeed(service, publisher, thread, produced)
        feeds.append(feed)
        return feed

    try:
        yield factory
    finally:
        for feed in feeds:
            if feed.thread.is_alive():
                feed.stop(flush_s=5)


def consume_all(kafka: KafkaSettings, topic: str, expect_at_least: int = 0, timeout_s: float = 30.0) -> list[tuple[bytes, dict[str, Any]]]:
    """Read every message of ``topic`` (all partitions, from the start) until idle; decode with AvroSerde."""
    consumer = Consumer({
        "bootstrap.servers": kafka.bootstrap, "group.id": f"feed-test-{time.time_ns()}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    })
    serde = AvroSerde()
    out: list[tuple[bytes, dict[str, Any]]] = []
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        deadline = time.monotonic() + timeout_s
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            msgs = consumer.consume(10_000, timeout=0.5)
            if msgs:
                idle_since = time.monotonic()
            for msg in msgs:
                if msg.error():
                    continue
                out.append((msg.key(), serde.decode(msg.value())[1]))
            if len(out) >= expect_at_least and time.monotonic() - idle_since > 2.0:
                break
        return out
    finally:
        consumer.close()
