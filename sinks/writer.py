"""Insert a batch into ClickHouse, retrying with capped exponential backoff until acknowledged.

Nothing is committed to Kafka while this retries: the caller commits only after :meth:`write`
returns True. Rows are inserted per table and per (topic, partition), each insert carrying an
``insert_deduplication_token`` that is a pure function of that partition's offset range, so an
attempt that timed out but did land is dropped by ClickHouse on the retry, and so is the same
range archived by the sink instance that took the partition over (the archive tables and the
views' ``*_state`` tables keep a deduplication window).
"""

from __future__ import annotations

import logging
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from infra.backoff import Backoff
from sinks import metrics
from sinks.arrow_block import arrow_table, dead_letter_table
from sinks.batcher import Batch
from sinks.ddl import DEAD_LETTERS, TableSpec

log = logging.getLogger(__name__)


class ArchiveWriter:
    """Write batches to the archive tables through one clickhouse-connect client."""

    def __init__(self, client: Client, specs: dict[str, TableSpec], backoff: Backoff) -> None:
        self._client = client
        self._specs = specs
        self._backoff = backoff
        self.last_error: str | None = None
        self.last_ack_ns: int = 0
        self.retrying_since_ns: int | None = None

    def _blocks(self, batch: Batch) -> list[tuple[str, pa.Table, str]]:
        # (table, rows of one partition, token of that partition's range)
        tables = [t for t in {**batch.rows, **batch.blocks} if batch.rows.get(t) or batch.blocks.get(t)]
        blocks: list[tuple[str, pa.Table, str]] = []
        for table in tables:
            topic = self._specs[table].topic
            whole = arrow_table(self._specs[table], batch.rows.get(table, []), batch.topic_ids.get(topic, ""),
                                batch.blocks.get(table, ()))
            blocks += _per_partition(table, whole, batch, {tp for tp in batch.offsets if tp[0] == topic})
        if batch.dead_letters:
            blocks += _per_partition(DEAD_LETTERS, dead_letter_table(batch.dead_letters, batch.topic_ids), batch,
                                     {(d[0], d[1]) for d in batch.dead_letters})
        return blocks

    def write(self, batch: Batch, give_up: threading.Event) -> bool:
        """Insert every table of ``batch``; return True once all are acknowledged.

        Retry failed inserts until they succeed or ``give_up`` is set (then return False and the
        caller commits nothing; the messages are read again on restart).
        """
        pending = self._blocks(batch)
        attempt = 0
        while pending:
            table, block, token = pending[0]
            started = time.perf_counter()
            try:
                self._client.insert_arrow(table, block, settings={"insert_deduplication_token": token})
            except Exception as exc:  # noqa: BLE001 (any failure is retried; the batch is kept)
                metrics.INSERT_ERRORS.labels(table).inc()
                metrics.RETRYING.set(1)
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                self.retrying_since_ns = self.retrying_since_ns or time.time_ns()
                pause = self._backoff.delay(attempt)
                log.warning("insert failed; retrying", extra={"table": table, "rows": block.num_rows,
                                                                "attempt": attempt + 1, "retry_in_s": round(pause, 3),
                                                                "error": self.last_error})
                attempt += 1
                if give_up.wait(pause):
                    return False
                continue
            metrics.INSERT_SECONDS.labels(table).observe(time.perf_counter() - started)
            metrics.ROWS.labels(table).inc(block.num_rows)
            pending.pop(0)
            attempt = 0
        if self.retrying_since_ns is not None:
            log.info("ClickHouse available again", extra={"down_s": round((time.time_ns() - self.retrying_since_ns) / 1e9, 1)})
        metrics.RETRYING.set(0)
        self.retrying_since_ns = None
        self.last_error = None
        self.last_ack_ns = time.time_ns()
        return True


def _per_partition(table: str, block: pa.Table, batch: Batch, partitions: set[tuple[str, int]]) -> list[tuple[str, pa.Table, str]]:
    topics = block.column("_topic" if table != DEAD_LETTERS else "topic")
    parts = block.column("_partition" if table != DEAD_LETTERS else "partition")
    out = []
    for tp in sorted(partitions):
        if len(partitions) == 1:
            rows = block
        else:
            rows = block.filter(pc.and_(pc.equal(topics, tp[0]), pc.equal(parts, tp[1])))
        if rows.num_rows:
            # one record batch = one block: ClickHouse suffixes the token per block, so an insert chunked
            # differently by another instance would not match this one's block ids
            out.append((table, rows.combine_chunks(), batch.dedup_token(table, {tp})))
    return out
