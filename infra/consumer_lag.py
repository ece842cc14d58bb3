"""Consumer-group lag: committed offsets (OffsetFetch) against end offsets (ListOffsets), per group and topic."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from infra.topics import end_offsets


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
    committed: dict[tuple[str, str], list[TopicPartition]] = defaultdict(list)
    states = {g.group_id: g.state.name if g.state is not None else "UNKNOWN" for g in listing.valid}
    for group in sorted(listing.valid, key=lambda g: g.group_id):
        future = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group.group_id)], request_timeout=timeout_s
        )[group.group_id]
        for tp in future.result().topic_partitions:
            committed[(group.group_id, tp.topic)].append(tp)
    partitions = {(tp.topic, tp.partition) for tps in committed.values() for tp in tps}
    offsets = end_offsets(bootstrap, [TopicPartition(t, p) for t, p in sorted(partitions)], timeout_s)
    rows = []
    for (group_id, topic), tps in sorted(committed.items()):
        lags = [partition_lag(tp.offset, *offsets[(tp.topic, tp.partition)]) for tp in tps]
        rows.append(GroupLag(
            group_id, states[group_id], topic,
            committed=sum(max(tp.offset, 0) for tp in tps),
            end=sum(offsets[(tp.topic, tp.partition)][1] for tp in tps),
            lag=sum(lags),
        ))
    return rows
