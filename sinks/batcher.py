"""Pure batching of consumed messages by size and age (no I/O, the clock is passed in).

A batch holds, per table, the rows to insert (Python rows, and Arrow blocks decoded column-wise)
and, per (topic, partition), the offset range it covers, including messages that produced no row
(already archived, dead-lettered). Offsets are committed only after the whole batch is in
ClickHouse, so the ranges are the commit positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sinks.rows import Row

TopicPartition = tuple[str, int]


@dataclass
class Batch:
    """Rows per table and the offset range consumed per (topic, partition)."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    blocks: dict[str, list[pa.Table]] = field(default_factory=dict)  # see sinks.arrow_block.decoded_table
    dead_letters: list[tuple[str, int, int, bytes, str]] = field(default_factory=list)
    offsets: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    messages: int = 0
    topic_ids: dict[str, str] = field(default_factory=dict)  # broker topic UUIDs, "" when unknown

    @property
    def row_count(self) -> int:
        """Rows to insert, dead letters included."""
        return (sum(len(r) for r in self.rows.values()) + sum(b.num_rows for bs in self.blocks.values() for b in bs)
                + len(self.dead_letters))

    def commit_positions(self) -> dict[TopicPartition, int]:
        """Return the next offset to read per (topic, partition): last consumed + 1."""
        return {tp: last + 1 for tp, (_, last) in self.offsets.items()}

    def dedup_token(self, table: str, partitions: set[TopicPartition] | None = None) -> str:
        """Return the ``insert_deduplication_token`` of ``table``'s rows of ``partitions`` (default: all).

        A pure function of the table, the topics' ids and the offset ranges: the same batch retried
        after a timeout carries the same token, and so does another sink instance archiving the same
        range of a partition it took over, so ClickHouse keeps whichever insert lands first.
        """
        ranges = ",".join(f"{t}@{self.topic_ids.get(t, '')}/{p}/{first}-{last}"
                          for (t, p), (first, last) in sorted(self.offsets.items())
                          if partitions is None or (t, p) in partitions)
        return f"{table}:{ranges}"

    def without(self, partitions: set[TopicPartition]) -> Batch:
        """Return this batch minus every row and offset of ``partitions`` (revoked in a rebalance)."""
        kept = Batch(offsets={tp: r for tp, r in self.offsets.items() if tp not in partitions})
        for table, rows in self.rows.items():
            kept_rows = [r for r in rows if (r[-3], r[-2]) not in partitions]
            if kept_rows:
                kept.rows[table] = kept_rows
        for table, blocks in self.blocks.items():
            kept_blocks = [k for k in (_without(b, partitions) for b in blocks) if k.num_rows]
            if kept_blocks:
                kept.blocks[table] = kept_blocks
        kept.dead_letters = [d for d in self.dead_letters if (d[0], d[1]) not in partitions]
        kept.messages = self.messages
        kept.topic_ids = dict(self.topic_ids)
        return kept


def _without(block: pa.Table, partitions: set[TopicPartition]) -> pa.Table:
    topic = block.column("_topic")
    if not len(topic):
        return block
    gone = [p for t, p in partitions if t == topic[0].as_py()]
    if not gone:
        return block
    return block.filter(pc.invert(pc.is_in(block.column("_partition"), pa.array(gone, pa.int32()))))


class Batcher:
    """Accumulate rows; say when the batch is due by row count or by the age of its first message."""

    def __init__(self, max_rows: int, max_age_ms: int) -> None:
        if max_rows < 1 or max_age_ms < 1:
            raise ValueError("max_rows and max_age_ms must be positive")
        self.max_rows = max_rows
        self.max_age_ns = max_age_ms * 1_000_000
        self._batch = Batch()
        self._rows = 0
        self._started_ns: int | None = None

    def _track(self, topic: str, partition: int, offset: int, now_ns: int) -> None:
        if self._started_ns is None:
            self._started_ns = now_ns
        key = (topic, partition)
        seen = self._batch.offsets.get(key)
        self._batch.offsets[key] = (offset, offset) if seen is None else (min(seen[0], offset), max(seen[1], offset))
        self._batch.messages += 1

    def add_row(self, table: str, row: Row, topic: str, partition: int, offset: int, now_ns: int) -> None:
        """Add one row of ``table`` read at ``topic``/``partition``/``offset``."""
        self._batch.rows.setdefault(table, []).append(row)
        self._rows += 1
        self._track(topic, partition, offset, now_ns)

    def add_block(self, table: str, block: pa.Table, topic: str, partitions: np.ndarray, offsets: np.ndarray,
                  now_ns: int) -> None:
        """Add a block of ``table`` rows decoded column-wise, read at ``partitions``/``offsets`` of ``topic``."""
        if not len(offsets):
            return
        self._batch.blocks.setdefault(table, []).append(block)
        self._rows += block.num_rows
        if self._started_ns is None:
            self._started_ns = now_ns
        for partition in np.unique(partitions):
            mine = offsets[partitions == partition]
            key = (topic, int(partition))
            low, high = int(mine.min()), int(mine.max())
            seen = self._batch.offsets.get(key)
            self._batch.offsets[key] = (low, high) if seen is None else (min(seen[0], low), max(seen[1], high))
        self._batch.messages += len(offsets)

    def add_dead_letter(self, topic: str, partition: int, offset: int, raw: bytes, error: str, now_ns: int) -> None:
        """Add an undecodable message for the ``dead_letters`` table."""
        self._batch.dead_letters.append((topic, partition, offset, raw, error))
        self._rows += 1
        self._track(topic, partition, offset, now_ns)

    def add_skipped(self, topic: str, partition: int, offset: int, now_ns: int) -> None:
        """Record a message that needs no row (already archived) so its offset still gets committed."""
        self._track(topic, partition, offset, now_ns)

    def last_offset(self, partition: TopicPartition) -> int | None:
        """The highest offset of ``partition`` in the current batch (None if it has none)."""
        seen = self._batch.offsets.get(partition)
        return None if seen is None else seen[1]

    @property
    def pending_rows(self) -> int:
        """Rows waiting in the current batch."""
        return self._rows

    def drop_partitions(self, partitions: set[TopicPartition]) -> None:
        """Forget everything read from ``partitions`` (revoked: their new owner reads them again)."""
        self._batch = self._batch.without(partitions)
        self._rows = self._batch.row_count
        if self.empty:
            self._started_ns = None

    @property
    def empty(self) -> bool:
        """True when nothing was consumed since the last :meth:`take`."""
        return not self._batch.offsets

    def due(self, now_ns: int) -> bool:
        """True when the batch reached ``max_rows`` or its first message is ``max_age_ms`` old."""
        if self._started_ns is None:
            return False
        return self._rows >= self.max_rows or now_ns - self._started_ns >= self.max_age_ns

    def take(self, topic_ids: dict[str, str] | None = None) -> Batch:
        """Return the current batch (stamped with the topics' broker ids) and start an empty one."""
        batch, self._batch, self._rows, self._started_ns = self._batch, Batch(), 0, None
        batch.topic_ids = dict(topic_ids or {})
        return batch
