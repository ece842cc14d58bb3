"""Resume frontier: the highest offset per (topic, partition) already in the archive.

After a crash between an acknowledged insert and the offset commit, the consumer re-reads
messages that are already archived. Each table receives its rows in offset order per partition,
and every insert writes one atomic part (no ``PARTITION BY``), so "offset <= the table's highest
offset for that partition" means "already archived": the sink skips those messages and the
materialized views never see a message twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from clickhouse_connect.driver.client import Client

from sinks.ddl import DEAD_LETTERS, table_name

TopicPartition = tuple[str, int]


def read_frontier(
    client: Client, starts: dict[TopicPartition, int], topic_ids: dict[str, str]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Return ``(rows, dead_letters)``: highest archived offset >= the start offset, per (topic, partition).

    ``starts`` maps each assigned partition to the offset consumption resumes from (its committed
    offset, or 0); only rows of the topic's current incarnation (``topic_ids``) count. Partitions
    with nothing archived from there are absent.
    """
    rows: dict[TopicPartition, int] = {}
    by_topic: dict[str, list[int]] = {}
    for topic, partition in starts:
        by_topic.setdefault(topic, []).append(partition)
    for topic, partitions in by_topic.items():
        low = min(starts[(topic, p)] for p in partitions)
        result = client.query(
            f"SELECT _partition, max(_offset) FROM {table_name(topic)} WHERE _topic_id = {{tid:String}} "
            "AND _partition IN {parts:Array(Int32)} AND _offset >= {low:Int64} GROUP BY _partition",
            parameters={"tid": topic_ids.get(topic, ""), "parts": partitions, "low": low},
        )
        rows.update(_at_or_after(topic, result.result_rows, starts))
    result = client.query(
        f"SELECT topic, topic_id, partition, max(offset) FROM {DEAD_LETTERS} "
        "WHERE topic IN {topics:Array(String)} GROUP BY topic, topic_id, partition",
        parameters={"topics": list(by_topic)},
    )
    dead: dict[TopicPartition, int] = {}
    for topic, topic_id, partition, offset in result.result_rows:
        current = topic_id == topic_ids.get(topic, "")
        if current and (topic, partition) in starts and offset >= starts[(topic, partition)]:
            dead[(topic, partition)] = offset
    return rows, dead


def _at_or_after(topic: str, result_rows: Iterable[tuple[int, int]], starts: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    return {(topic, p): off for p, off in result_rows if (topic, p) in starts and off >= starts[(topic, p)]}
