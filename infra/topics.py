"""Topic admin: create every tickpipe topic idempotently, describe them, and read one to its exact end."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from infra.settings import KafkaSettings
from schemas.topics import Topic


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


def create_topics(kafka: KafkaSettings, names: list[str] | None = None, timeout_s: float = 15.0) -> list[str]:
    """Create the tickpipe topics that do not exist yet; return the names created."""
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    wanted = names or [t.value for t in Topic]
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [n for n in wanted if n not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(n, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor,
                     config={"retention.ms": str(kafka.retention_ms)})
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


def end_offsets(
    bootstrap: str, partitions: list[TopicPartition], timeout_s: float = 10.0
) -> dict[tuple[str, int], tuple[int, int]]:
    """Return ``(low, end)`` offsets per ``(topic, partition)``, exact on tansu too.

    tansu 0.6 answers ListOffsets(latest) with the base offset of the partition's last record batch
    plus one, not its last offset plus one (5 records produced in one batch read as end offset 1).
    Its Fetch responses carry the right high watermark, so the last batch is fetched once and the
    end is the high watermark of that fetch (or, failing that, where the consumer reaches the end of
    the partition; on a topic still being written that may not come before ``timeout_s``). Against
    Apache Kafka this costs one small fetch per non-empty partition and changes nothing.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "tickpipe-admin", "enable.auto.commit": False,
        "enable.partition.eof": True, "log_level": 0,
    })
    try:
        listed = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=timeout_s) for tp in partitions
        }
        pending = {key: high for key, (low, high) in listed.items() if high > low}
        ends = {key: high for key, (_, high) in listed.items()}
        if pending:
            consumer.assign([TopicPartition(t, p, high - 1) for (t, p), high in pending.items()])
            deadline = time.monotonic() + timeout_s
            while pending and time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                key = (msg.topic(), msg.partition())
                if msg.error() is None:
                    _, fetched_high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
                    ends[key] = max(ends[key], msg.offset() + 1, fetched_high)
                    if fetched_high > 0:
                        pending.pop(key, None)
                elif msg.error().code() == KafkaError._PARTITION_EOF:
                    ends[key] = max(ends[key], msg.offset())
                    pending.pop(key, None)
        return {key: (listed[key][0], ends[key]) for key in listed}
    finally:
        consumer.close()


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Return every message of ``topic`` from its beginning up to its end offsets at the call (no group).

    For checks and tools that need a topic's exact content: the ends come from :func:`end_offsets`
    (exact on tansu), so the read stops as soon as each partition is complete instead of waiting for
    silence. Raise ``TimeoutError`` naming the partitions not read to their end within ``timeout_s``.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "tickpipe-reader", "enable.auto.commit": False, "log_level": 0,
    })
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        ends = {p: end for (_, p), (low, end) in end_offsets(
            bootstrap, [TopicPartition(topic, p) for p in partitions], timeout_s
        ).items() if end > low}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        out: list[Message] = []
        remaining = set(ends)
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None or msg.offset() >= ends[msg.partition()]:
                    continue
                out.append(msg)
                if msg.offset() + 1 >= ends[msg.partition()]:
                    remaining.discard(msg.partition())
        if remaining:
            raise TimeoutError(f"could not read {topic} partitions {sorted(remaining)} to their end in {timeout_s:.0f}s")
        return out
    finally:
        consumer.close()
