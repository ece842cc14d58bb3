"""Topic admin: create every tickpipe topic idempotently and describe them."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
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
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "tickpipe-admin", "enable.auto.commit": False})
    try:
        infos = []
        for name in sorted(metadata.topics):
            parts = sorted(metadata.topics[name].partitions)
            ends = tuple(
                consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout_s)[1] for p in parts
            )
            infos.append(TopicInfo(name, len(parts), ends))
        return infos
    finally:
        consumer.close()
