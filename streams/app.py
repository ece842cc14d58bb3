"""The Faust app, built from the settings, and the runtime the agents share.

* broker ``kafka://host:port`` from ``KafkaSettings.bootstrap``; keys and values are raw bytes, the
  records inside are Avro (``schemas.serde.AvroSerde``);
* store ``memory://`` by default: tables are rebuilt from their changelog topics when a worker
  starts or takes over partitions (``StreamsSettings.store`` may name ``rocksdb://`` where installed);
* short session, heartbeat and rebalance timeouts so that joins take seconds locally;
* a short consumer fetch wait (:mod:`streams.transport`), since the local broker holds empty fetches;
* the producer partitions keys like librdkafka's default ``consistent_random`` (CRC-32 of the key),
  the partitioner of the confluent-kafka producers upstream, so an instrument's features, bars and
  signals land on the same partition number as its market data.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from infra.settings import Settings
from schemas.serde import AvroSerde
from schemas.topics import RECORD_OF_TOPIC, Topic
from streams import metrics
from streams.intake import Accepted, check_input, dead_letter, parse_instruments
from streams.late_join import LateJoin
from streams.tables import StreamTables, declare_tables
from streams.topics import StreamTopics, declare_topics
from streams.transport import Transport

# outputs whose records carry this stage's emit time
STAMPED = frozenset({
    Topic.FEATURES_BOOK, Topic.FEATURES_FLOW, Topic.FEATURES_CROSS, Topic.BARS_1S, Topic.BARS_1M, Topic.SIGNALS,
})


def crc32_partitioner(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """Pick the partition librdkafka's default partitioner would pick for ``key``."""
    if key is None:
        return (available or all_partitions)[0]
    return all_partitions[zlib.crc32(key) % len(all_partitions)]


@dataclass
class Runtime:
    """Everything an agent needs: app, topics, tables, serde, settings and worker-local status."""

    app: faust.App
    settings: Settings
    topics: StreamTopics
    tables: StreamTables
    serde: AvroSerde = field(default_factory=AvroSerde)
    allowed: frozenset[bytes] = frozenset()
    stale: set[str] = field(default_factory=set)
    late_join: LateJoin | None = None

    async def send(self, topic: Topic, key: bytes, record: dict[str, Any]) -> Awaitable[Any]:
        """Stamp ``ts_emit`` (when the record has one), encode and hand ``record`` to the producer.

        Returns the delivery future: an agent awaits its batch's deliveries (:meth:`delivered`)
        before it writes the batch's state to the changelog, so that the changelog is never ahead
        of the outputs (see "Crash semantics" in docs/architecture.md).
        """
        if topic in STAMPED:
            record["ts_emit"] = time.time_ns()
        value = self.serde.encode(RECORD_OF_TOPIC[topic], record)
        delivery = await self.app.producer.send(topic.value, key, value, None, None, None)
        metrics.RECORDS_OUT.labels(topic.value).inc()
        return delivery

    @staticmethod
    async def delivered(deliveries: list[Awaitable[Any]]) -> None:
        """Wait until the broker acknowledged every output in ``deliveries`` (raises if one failed).

        The producer batches per partition and sends at most one batch per partition per request,
        so a changelog write queued after an output can reach the broker before it; waiting here
        closes that window.
        """
        if deliveries:
            await asyncio.gather(*deliveries)
            deliveries.clear()

    async def admit(
        self, message: Any, expected: str, deliveries: list[Awaitable[Any]], venue_wide_ok: bool = False
    ) -> dict[str, Any] | None:
        """Count an input ``message`` and check it (see :func:`check_input`); return its record.

        A refused message is dead-lettered (its delivery added to ``deliveries``) and None returned,
        so the agent moves on to the next one.
        """
        metrics.RECORDS_IN.labels(message.topic).inc()
        checked = check_input(self.serde, message.key, message.value, expected, self.allowed, venue_wide_ok)
        if isinstance(checked, Accepted):
            return checked.record
        deliveries.append(await self.reject(
            checked.reason, checked.error, checked.venue, checked.symbol, message.topic,
            message.partition, message.offset, message.value, checked.ts_event,
        ))
        return None

    async def reject(
        self, reason: str, error: str, venue: str, symbol: str, source: str,
        partition: int, offset: int, raw: bytes | None, ts_event: int | None,
    ) -> Awaitable[Any]:
        """Count a refused input and send it to ``dlq``; processing goes on. Returns the delivery future."""
        metrics.DEAD_LETTERS.labels(reason).inc()
        record = dead_letter(error, venue, symbol, str(source), partition, offset, raw or b"", ts_event, time.time_ns())
        return await self.send(Topic.DLQ, (f"{venue}:{symbol}" if venue else "").encode() or b"unknown", record)


def build_app(settings: Settings) -> Runtime:
    """Return the Faust app with its topics, tables and agents wired, ready for a worker."""
    from streams.agents import book, cross_venue, trades

    s, k = settings.streams, settings.kafka
    app = faust.App(
        s.app_id,
        broker=[f"kafka://{host.strip()}" for host in k.bootstrap.split(",")],
        store=s.store,
        datadir=str(s.data_dir),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        broker_session_timeout=k.session_timeout_ms / 1000,
        broker_heartbeat_interval=k.heartbeat_interval_ms / 1000,
        broker_rebalance_timeout=s.rebalance_timeout_ms / 1000,
        broker_commit_interval=s.commit_interval_ms / 1000,
        processing_guarantee=s.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        producer_partitioner=crc32_partitioner,
        producer_linger=k.streams_linger_ms / 1000,
        table_standby_replicas=s.standby_replicas,
        web_enabled=False,
    )
    late_join = LateJoin(k.bootstrap, k.book_snapshot_lookback_ms) if s.seed_from_snapshots else None
    app.transport = Transport(
        app.conf.broker_consumer, app, fetch_max_wait_ms=k.streams_fetch_max_wait_ms, late_join=late_join
    )
    rt = Runtime(
        app=app, settings=settings, topics=declare_topics(app, s.bbo_features), tables=declare_tables(app, k.partitions),
        allowed=parse_instruments(s.instruments), late_join=late_join,
    )
    book.attach(rt)
    trades.attach(rt)
    cross_venue.attach(rt)
    return rt
