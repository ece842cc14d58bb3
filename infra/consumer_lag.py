"""Consumer-group lag: committed offsets against end offsets, per group and topic.

tansu answers ListGroups (state reported as UNKNOWN) and OffsetFetch, which is all lag needs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient


@dataclass(frozen=True)
class GroupLag:
    """Lag of one consumer group on one topic."""

    group: str
    state: str
    topic: str
    committed: int
    end: int
    lag: int


def partition_lag(committed: int, low: int, high: int) -> int:
    """Messages not yet consumed in one partition; no commit yet counts everything retained."""
    start = committed if committed >= 0 else low
    return max(0, high - max(start, low))


def group_lags(bootstrap: str, timeout_s: float = 5.0) -> list[GroupLag]:
    """Return every consumer group's lag per topic it has committed offsets for."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    listing = admin.list_consumer_groups(request_timeout=timeout_s).result()
    groups = sorted((g.group_id, g.state.name) for g in listing.valid)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tickpipe-status", "log_level": 0})
    rows: list[GroupLag] = []
    try:
        for group_id, state in groups:
            future = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group_id)], request_timeout=timeout_s
            )[group_id]
            per_topic: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            for tp in future.result().topic_partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout_s)
                acc = per_topic[tp.topic]
                acc[0] += max(tp.offset, 0)
                acc[1] += high
                acc[2] += partition_lag(tp.offset, low, high)
            rows += [GroupLag(group_id, state, t, c, e, lag) for t, (c, e, lag) in sorted(per_topic.items())]
    finally:
        consumer.close()
    return rows
