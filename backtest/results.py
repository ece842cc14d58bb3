"""A backtest's signals, order events and fills into the archive, through the sink's own row and insert path.

The records are the Avro records the live services publish, with ``backtest_id`` set; they go into the
same tables (``signals``, ``orders``, ``fills``) so the same views and reports read both. Each topic is
written as one partition of a topic named ``backtest:<backtest_id>`` (the ``_topic_id`` column), offsets
0, 1, 2, ... in emission order: the tables' (``_topic_id``, ``_partition``, ``_offset``) key never
collapses a backtest's rows with live ones or with another backtest's, and a retried insert carries
the same deduplication token (``sinks.batcher``).
"""

from __future__ import annotations

import threading
from typing import Any

from clickhouse_connect.driver.client import Client

from infra.backoff import Backoff
from schemas.topics import Topic
from sinks.batcher import Batcher
from sinks.ddl import table_spec
from sinks.rows import RowMapper
from sinks.writer import ArchiveWriter

RESULT_TOPICS = (Topic.SIGNALS.value, Topic.ORDERS.value, Topic.FILLS.value)


class ResultWriter:
    """Collect result records and insert them every ``flush_rows`` rows and at :meth:`close`."""

    def __init__(self, client: Client, backtest_id: str, flush_rows: int) -> None:
        self.backtest_id = backtest_id
        self._specs = {topic: table_spec(topic) for topic in RESULT_TOPICS}
        self._mappers = {topic: RowMapper(spec) for topic, spec in self._specs.items()}
        self._writer = ArchiveWriter(client, {s.name: s for s in self._specs.values()}, Backoff())
        self._batcher = Batcher(max_rows=flush_rows, max_age_ms=10**12)
        self._offsets = dict.fromkeys(RESULT_TOPICS, 0)
        self.counts = dict.fromkeys(RESULT_TOPICS, 0)

    def add(self, topic: str, record: dict[str, Any]) -> None:
        """Stamp ``record`` with the backtest id and queue it for ``topic``'s table."""
        record["backtest_id"] = self.backtest_id
        offset = self._offsets[topic]
        self._offsets[topic] = offset + 1
        self.counts[topic] += 1
        self._batcher.add_row(self._specs[topic].name, self._mappers[topic].row(record, topic, 0, offset),
                              topic, 0, offset, 0)
        if self._batcher.due(0):
            self.flush()

    def flush(self) -> None:
        """Insert what is queued, retried with backoff until the archive takes it (as the sink does)."""
        if self._batcher.empty:
            return
        topic_ids = {topic: f"backtest:{self.backtest_id}" for topic in RESULT_TOPICS}
        self._writer.write(self._batcher.take(topic_ids), threading.Event())
