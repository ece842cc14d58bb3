"""Read ``md.book.snapshots`` (the feed's latest whole book per instrument) and find where ``md.book`` continues it.

A consumer that joins mid-stream (a streams worker whose group has no committed md.book offset, the
executor at start) takes the newest snapshot record of each instrument and reads md.book from
``kafka.book_snapshot_lookback_ms`` before the newest snapshot's time. Both topics are stamped by the
broker (LogAppendTime) and every delta that continues a snapshot was produced after it, so that
position is at or before the first delta each live book needs: the feed snapshots every live book at
least every ``feed.book_snapshot_interval_s``, and the lookback covers that plus the append-time skew
between the two topics. Deltas a snapshot already holds are told by update id (``orderbook``'s rule)
and skipped by the consumer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from infra.topics import end_offsets, iter_to_end
from schemas.topics import BOOK_SNAPSHOTS, Topic


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """One md.book.snapshots message, still encoded: the consumer decodes and checks it (bad ones to its dlq)."""

    key: bytes
    value: bytes
    partition: int
    offset: int
    timestamp_ms: int


def latest_snapshots(bootstrap: str, timeout_s: float = 10.0) -> dict[bytes, SnapshotRecord]:
    """Return the newest record per key of md.book.snapshots, read up to its end offsets at the call (no group).

    The topic is compacted, so this is about one record per instrument plus what its open segments
    hold; a tombstone (no value) forgets its key.
    """
    latest: dict[bytes, SnapshotRecord] = {}
    for msg in iter_to_end(bootstrap, BOOK_SNAPSHOTS, timeout_s):
        key, value = msg.key() or b"", msg.value()
        if value is None:
            latest.pop(key, None)
            continue
        latest[key] = SnapshotRecord(key, value, msg.partition(), msg.offset(), msg.timestamp()[1])
    return latest


def resume_time_ms(snapshots: Iterable[SnapshotRecord], lookback_ms: int) -> int | None:
    """Return the append time md.book is read from after these snapshots; None when there are none."""
    newest = max((s.timestamp_ms for s in snapshots), default=None)
    return None if newest is None else newest - lookback_ms


def book_offsets(bootstrap: str, partitions: list[int] | None, since_ms: int, timeout_s: float = 10.0) -> dict[int, int]:
    """Return, per md.book partition (None: every one), the first offset appended at or after ``since_ms``
    (its end offset when none is).

    The end offsets are read first: a record appended after that read is at or past them, and one
    appended before with a later time is found by the time lookup.
    """
    topic = Topic.BOOK.value
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tickpipe-reader", "enable.auto.commit": False,
                         "log_level": 0})
    try:
        if partitions is None:
            partitions = sorted(consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
        if not partitions:
            return {}
        ends = end_offsets(bootstrap, [TopicPartition(topic, p) for p in partitions], timeout_s)
        found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=timeout_s)
    finally:
        consumer.close()
    offsets = {}
    for tp in found:
        if tp.error is not None:
            raise KafkaException(tp.error)
        offsets[tp.partition] = tp.offset if tp.offset >= 0 else ends[(topic, tp.partition)][1]
    return offsets
