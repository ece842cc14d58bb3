"""Topic admin: create every tickpipe topic idempotently, describe them, and read one to its exact end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

from infra.backoff import Backoff
from infra.settings import KafkaSettings
from schemas.topics import BOOK_SNAPSHOTS, Topic


@dataclass(frozen=True)
class TopicInfo:
    """One topic as the broker reports it."""

    name: str
    partitions: int
    end_offsets: tuple[int, ...]

    @property
    def messages(self) -> int:
        """Sum of end offsets (messages ever written, for a topic that was never compacted)."""
        return sum(self.end_offsets)


# Topics whose records carry the broker's append time as their Kafka timestamp: the hop "market data
# (or signal) acknowledged by Kafka" is then read from the record itself by the next stage.
# md.book.snapshots too: a late joiner finds its place in md.book by the snapshot's time, so both topics
# must be stamped by the same clock.
APPEND_TIME_TOPICS = frozenset({Topic.TRADES.value, Topic.BOOK.value, Topic.BBO.value, Topic.HEALTH.value,
                                Topic.SIGNALS.value, BOOK_SNAPSHOTS})

ALL_TOPICS = (*(t.value for t in Topic), BOOK_SNAPSHOTS)
"""Every topic ``tickpipe topics create`` makes: the record topics and the compacted book snapshots."""


def topic_configs(kafka: KafkaSettings, name: str) -> dict[str, str]:
    """The configs a tickpipe topic is created with: its retention (per-topic setting, else the default), and
    for the hot-path topics the broker's append time as record timestamp.

    md.book.snapshots is compacted instead (the latest book per key is kept whatever its age); its
    segments roll every ``book_snapshots_segment_ms`` because only closed segments are compacted.
    """
    if name == BOOK_SNAPSHOTS:
        configs = {"cleanup.policy": "compact", "segment.ms": str(kafka.book_snapshots_segment_ms)}
    else:
        configs = {"retention.ms": str(kafka.topic_retention_ms.get(name, kafka.retention_ms))}
    if name in APPEND_TIME_TOPICS:
        configs["message.timestamp.type"] = "LogAppendTime"
    return configs


def create_topics(kafka: KafkaSettings, names: list[str] | None = None, timeout_s: float = 15.0) -> list[str]:
    """Create the tickpipe topics that do not exist yet; return the names created.

    Existing topics keep their partitions; their configs (retention, timestamp type) are brought to
    the settings' values, so a change applies to a broker whose topics outlived it.
    """
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    wanted = names or list(ALL_TOPICS)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [n for n in wanted if n not in existing]
    _align_configs(admin, kafka, [n for n in wanted if n in existing], timeout_s)
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(n, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor,
                     config=topic_configs(kafka, n))
            for n in missing
        ],
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return created


def _align_configs(admin: AdminClient, kafka: KafkaSettings, names: list[str], timeout_s: float) -> None:
    if not names:
        return
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names],
                                       request_timeout=timeout_s)
    changes = []
    for resource, future in described.items():
        want = topic_configs(kafka, resource.name)
        have = future.result()
        differ = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                  for k, v in want.items() if k not in have or have[k].value != v]
        if differ:
            changes.append(ConfigResource(ConfigResource.Type.TOPIC, resource.name, incremental_configs=differ))
    if changes:
        for future in admin.incremental_alter_configs(changes, request_timeout=timeout_s).values():
            future.result()


def describe_topics(kafka: KafkaSettings, timeout_s: float = 10.0) -> list[TopicInfo]:
    """Return every topic with its partition count and end offsets."""
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    metadata = admin.list_topics(timeout=timeout_s)
    partitions = [
        TopicPartition(name, p) for name in sorted(metadata.topics) for p in sorted(metadata.topics[name].partitions)
    ]
    ends = end_offsets(kafka.bootstrap, partitions, timeout_s)
    return [
        TopicInfo(name, len(metadata.topics[name].partitions),
                  tuple(ends[(name, p)][1] for p in sorted(metadata.topics[name].partitions)))
        for name in sorted(metadata.topics)
    ]


_LEADER_UNKNOWN = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)


def end_offsets(
    bootstrap: str, partitions: list[TopicPartition], timeout_s: float = 10.0
) -> dict[tuple[str, int], tuple[int, int]]:
    """Return ``(low, end)`` offsets per ``(topic, partition)``: two ListOffsets requests in all."""
    if not partitions:
        return {}
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    keys = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
    out: dict[str, dict[tuple[str, int], int]] = {}
    deadline = time.monotonic() + timeout_s
    backoff = Backoff(0.05, 1.0)
    for name, spec in (("low", OffsetSpec.earliest()), ("end", OffsetSpec.latest())):
        while True:
            try:
                futures = admin.list_offsets({tp: spec for tp in keys}, request_timeout=timeout_s)
                out[name] = {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}
                break
            except KafkaException as exc:
                # a leader not known yet (a topic just created, a broker just restarted) is retriable
                error = exc.args[0]
                if not (error.retriable() or error.code() in _LEADER_UNKNOWN) or time.monotonic() >= deadline:
                    raise
                time.sleep(backoff.next_delay())
    return {key: (out["low"][key], out["end"][key]) for key in out["end"]}


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Return every message of ``topic`` from its beginning up to its end offsets at the call (no group).

    For checks and tools that need a topic's exact content: the ends come from :func:`end_offsets`,
    so the read stops as soon as each partition is complete instead of waiting for
    silence. Raise ``TimeoutError`` naming the partitions not read to their end within ``timeout_s``.
    """
    return list(iter_to_end(bootstrap, topic, timeout_s))


def iter_to_end(bootstrap: str, topic: str, timeout_s: float = 30.0) -> Iterator[Message]:
    """Yield what :func:`read_to_end` returns, message by message: a long topic is never held in memory whole."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "tickpipe-reader", "enable.auto.commit": False, "log_level": 0,
    })
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        ends = {p: end for (_, p), (low, end) in end_offsets(
            bootstrap, [TopicPartition(topic, p) for p in partitions], timeout_s
        ).items() if end > low}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        remaining = set(ends)
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None or msg.offset() >= ends[msg.partition()]:
                    continue
                yield msg
                if msg.offset() + 1 >= ends[msg.partition()]:
                    remaining.discard(msg.partition())
        if remaining:
            raise TimeoutError(f"could not read {topic} partitions {sorted(remaining)} to their end in {timeout_s:.0f}s")
    finally:
        consumer.close()
