"""The sink loop: consume every topic, decode, batch, insert, and only then commit offsets.

Delivery: at-least-once from Kafka, exactly-once into the tables as analysts see them.

* ``enable.auto.commit`` and ``enable.auto.offset.store`` are off; after :class:`ArchiveWriter`
  acknowledged a whole batch, the next offset of every partition in it is committed explicitly.
* A crash between insert and commit re-reads those messages; on assignment the sink reads the
  archive's :mod:`resume frontier <sinks.frontier>` and skips what is already there, so inserts
  (and the materialized views fed by them) see each message once. ``ReplacingMergeTree`` keyed by
  (partition, offset) plus ``FINAL`` in the ``v_*`` views is the second line of defence.
* Two instances never archive a range twice, even when a partition moves while an insert is
  retrying (warehouse down past ``max.poll.interval.ms``): before a batch is inserted, each of its
  partitions' committed offset is re-committed with the batch's range as commit metadata
  (``inflight:<first>-<last>``). The broker accepts that commit only from the partition's current
  owner, so an instance that lost the partition inserts nothing new; an insert it already sent may
  still land, and the instance taking the partition over reads the range from the metadata,
  archives exactly that range first, with the same per-partition dedup token, so ClickHouse keeps
  one of the two inserts.
* Undecodable messages (bad framing, unknown schema, record of the wrong type, value that does
  not fit its column) become ``dead_letters`` rows with the raw bytes and the error; the loop goes on.

Each poll's messages of a flat record type are decoded column-wise (:mod:`sinks.columnar`, straight
into Arrow arrays, decimals checked vectorised); any message that path cannot vouch for takes the
per-message path (:class:`AvroSerde` and :class:`RowMapper`), which alone decides dead letters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import numpy as np
from clickhouse_connect.driver.client import Client
from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from infra.backoff import Backoff
from infra.kafka_config import manual_commit_consumer_config
from infra.settings import KafkaSettings, SinkSettings
from schemas.serde import AvroSerde, SerdeError
from sinks import metrics
from sinks.arrow_block import decoded_table, plain_decimals
from sinks.batcher import Batch, Batcher
from sinks.columnar import ColumnarDecoder, ColumnarUnsupported, columnar_decoder
from sinks.ddl import ColumnKind, TableSpec, table_spec
from sinks.frontier import read_frontier
from sinks.rows import RowError, RowMapper
from sinks.writer import ArchiveWriter

log = logging.getLogger(__name__)
T = TypeVar("T")
_DECIMAL_KINDS = (ColumnKind.DECIMAL, ColumnKind.DERIVED_DECIMAL)
_INFLIGHT = "tickpipe-sink inflight:"


def _inflight_range(metadata: str | None) -> tuple[int, int] | None:
    """The ``(first, last)`` offsets a committed offset's metadata says were being inserted, if any."""
    if not metadata or not metadata.startswith(_INFLIGHT):
        return None
    try:
        first, last = metadata[len(_INFLIGHT):].split("-")
        return int(first), int(last)
    except ValueError:
        return None


def consumer_config(kafka: KafkaSettings, sink: SinkSettings) -> dict[str, Any]:
    """Return the confluent-kafka configuration of the sink's consumer."""
    return manual_commit_consumer_config(
        kafka, sink.group_id, **{"max.poll.interval.ms": sink.max_poll_interval_ms, "enable.partition.eof": False,
                                 "fetch.wait.max.ms": kafka.sink_fetch_wait_ms}
    )


class SinkStuck(RuntimeError):
    """The group did not assign partitions again after a revocation (see ``SinkLoop._check_rejoined``)."""


class SinkLoop:
    """Consume ``topics`` into the archive until :meth:`stop` is called."""

    def __init__(
        self,
        kafka: KafkaSettings,
        sink: SinkSettings,
        client: Client,
        topics: list[str],
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._sink = sink
        self._topics = topics
        self._clock = clock
        self._client = client
        self._serde = AvroSerde()
        self._specs: dict[str, TableSpec] = {t: table_spec(t) for t in topics}
        self._mappers = {t: RowMapper(spec) for t, spec in self._specs.items()}
        self._decoders: dict[str, ColumnarDecoder] = {}
        if sink.columnar_decode:
            self._decoders = {t: d for t, spec in self._specs.items() if (d := columnar_decoder(spec.record))}
        self._writer = ArchiveWriter(client, {s.name: s for s in self._specs.values()},
                                     Backoff(sink.retry_initial_ms / 1000, sink.retry_max_ms / 1000))
        self._batcher = Batcher(sink.batch_max_rows, sink.batch_max_ms)
        self._consumer = Consumer(consumer_config(kafka, sink))
        self._admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        self._topic_ids: dict[str, str] = {}
        self._frontier_rows: dict[tuple[str, int], int] = {}
        self._frontier_dead: dict[tuple[str, int], int] = {}
        self._assigned: set[tuple[str, int]] = set()
        # partitions taken over with a range the previous owner may still be inserting: (first, last)
        self._replay: dict[tuple[str, int], tuple[int, int]] = {}
        self._stopping = threading.Event()
        self._give_up = threading.Event()
        self._give_up_timer: threading.Timer | None = None
        # one batch in flight: the writer thread inserts batch k while this thread decodes batch k+1
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-writer")
        # offset commits run here, bounded by sink.commit_timeout_s: see _commit
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-commit")
        self._inflight: tuple[Batch, Future[bool]] | None = None
        # set by a revocation, cleared by the next assignment: see _check_rejoined
        self._revoked_at: float | None = None
        self._stuck = False  # then close() is skipped: the stuck consumer could block it too
        self._rejoin_timeout_s = 60.0  # a healthy rejoin takes seconds; a member stuck longer in a retry only delays it
        self._consumed: Counter[str] = Counter()
        self.committed_batches = 0

    # --- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop consuming; the loop flushes, commits and closes (used by the SIGTERM handler).

        Inserts still failing ``shutdown_timeout_s`` later are abandoned uncommitted (read again on restart).
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._give_up_timer = threading.Timer(self._sink.shutdown_timeout_s, self._give_up.set)
        self._give_up_timer.daemon = True
        self._give_up_timer.start()

    def run(self) -> None:
        """Consume until :meth:`stop`; then flush the last batch, commit and close the consumer."""
        self._consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        log.info("sink consuming", extra={"topics": self._topics, "group": self._sink.group_id})
        try:
            while not self._stopping.is_set():
                self._check_rejoined()
                messages = self._consumer.consume(self._sink.consume_max_messages, timeout=0.1)
                self._ingest_many(messages, self._clock())
                metrics.PENDING_ROWS.set(self._batcher.pending_rows)
                if self._inflight is not None and self._inflight[1].done():
                    self._drain()
                if self._batcher.due(self._clock()) and not self._replay_incomplete():
                    self._flush()
            self._batcher.drop_partitions(self._replay_incomplete())
            if not (self._flush() and self._drain()):
                log.warning("shutdown before ClickHouse acknowledged the last batch; nothing committed, "
                            "the messages are read again on restart")
        finally:
            self._give_up.set()  # after an error, a batch still failing is abandoned uncommitted
            if not self._stuck:
                self._consumer.close()
            self._executor.shutdown(wait=True)
            self._committer.shutdown(wait=False)
            if self._give_up_timer is not None:
                self._give_up_timer.cancel()
            log.info("sink stopped", extra={"batches": self.committed_batches})

    def _check_rejoined(self) -> None:
        """Exit the process when the group has not handed partitions back long after a revocation.

        After a revocation librdkafka rejoins and calls ``on_assign`` (with an empty list if this
        instance gets nothing). Seen in the broker-freeze drill: after the broker came back, the
        consumer never rejoined and the sink archived nothing for minutes, healthy to every probe.
        Nothing is lost by leaving: offsets are committed only after their insert, and the restarted
        sink (supervisord, Kubernetes) skips what the archive already holds.
        """
        if self._revoked_at is None:
            return
        waited = time.monotonic() - self._revoked_at
        if waited > self._rejoin_timeout_s:
            log.error("no partition assignment since the last revocation; exiting so the supervisor restarts the sink",
                      extra={"waited_s": round(waited, 1), "limit_s": self._rejoin_timeout_s})
            self._stuck = True
            raise SinkStuck(f"no partition assignment {waited:.0f} s after a revocation")

    # --- health ----------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless an insert has been failing; details for ``/health``."""
        retrying = self._writer.retrying_since_ns
        detail = {
            "assigned_partitions": len(self._assigned),
            "pending_rows": self._batcher.pending_rows + (self._inflight[0].row_count if self._inflight else 0),
            "committed_batches": self.committed_batches,
            "last_ack_ns": self._writer.last_ack_ns,
            "last_error": self._writer.last_error,
            "retrying_s": round((time.time_ns() - retrying) / 1e9, 1) if retrying else 0,
        }
        return retrying is None, detail

    # --- per poll --------------------------------------------------------------------------
    def _ingest_many(self, messages: list[Message], now: int) -> None:
        if self._replay:
            # a range taken over is archived exactly as its previous owner cut it: messages past
            # its end wait for the next batch
            ends = self._replay
            later = [m for m in messages if m.error() is None
                     and m.offset() > ends.get((m.topic(), m.partition()), (0, 1 << 62))[1]]
            if later:
                held = {id(m) for m in later}
                messages = [m for m in messages if id(m) not in held]
            self._ingest_poll(messages, now)
            done = {tp for tp, (_, last) in ends.items() if self._batcher.last_offset(tp) == last}
            # offsets past the end arrived but the end itself did not (retention, compaction): that
            # range cannot be cut the same way any more; the frontier and FINAL remain
            gone = {(m.topic(), m.partition()) for m in later} - done
            if gone:
                log.warning("range taken over cannot be archived as cut before (offsets missing)",
                            extra={"partitions": sorted(f"{t}/{p}" for t, p in gone)})
            if done or gone:
                self._flush()
                for tp in done | gone:
                    del self._replay[tp]
            if later:
                self._ingest_poll(later, now)
            return
        self._ingest_poll(messages, now)

    def _replay_incomplete(self) -> set[tuple[str, int]]:
        return {tp for tp in self._replay if self._batcher.last_offset(tp) is not None}

    def _ingest_poll(self, messages: list[Message], now: int) -> None:
        columnar: dict[str, tuple[list[Message], list[bytes]]] = {}
        for message in messages:
            topic, value = message.topic(), message.value()
            if topic in self._decoders and value is not None and message.error() is None:
                chunk = columnar.get(topic)
                if chunk is None:
                    chunk = columnar[topic] = ([], [])
                chunk[0].append(message)
                chunk[1].append(value)
            else:
                self._ingest(message, now)
        for topic, (chunk, values) in columnar.items():
            self._ingest_columnar(topic, chunk, values, now)

    def _ingest_columnar(self, topic: str, messages: list[Message], values: list[bytes], now: int) -> None:
        spec = self._specs[topic]
        count = len(messages)
        partitions = np.fromiter((m.partition() for m in messages), np.int64, count)
        offsets = np.fromiter((m.offset() for m in messages), np.int64, count)
        try:
            fields, keep = self._decoders[topic].decode(values)
            for column in spec.columns:
                if column.kind in _DECIMAL_KINDS:
                    keep &= plain_decimals(fields[column.name])
            for (frontier_topic, partition), archived in self._frontier_rows.items():
                if frontier_topic == topic:  # already archived: the per-message path counts the skip
                    keep &= ~((partitions == partition) & (offsets <= archived))
            block = decoded_table(spec, fields, keep, topic, partitions, offsets) if keep.any() else None
        except ColumnarUnsupported as exc:
            log.debug("poll decoded message by message", extra={"topic": topic, "reason": str(exc)})
            keep, block = np.zeros(count, bool), None
        if block is not None:
            self._batcher.add_block(spec.name, block, topic, partitions[keep], offsets[keep], now)
            self._consumed[topic] += block.num_rows
        for index in np.flatnonzero(~keep):
            self._ingest(messages[index], now)

    # --- per message -----------------------------------------------------------------------
    def _ingest(self, message: Message, now: int) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            log.warning("consumer error", extra={"error": str(error), "code": error.code()})
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        self._consumed[topic] += 1
        raw = message.value()
        try:
            name, record = self._serde.decode(raw if raw is not None else b"")
            mapper = self._mappers[topic]
            if name != mapper.spec.record:
                raise SerdeError(f"{topic} carries {mapper.spec.record}, got {name}")
            if offset <= self._frontier_rows.get((topic, partition), -1):
                metrics.SKIPPED.labels(topic).inc()
                self._batcher.add_skipped(topic, partition, offset, now)
                return
            row = mapper.row(record, topic, partition, offset)
        except (SerdeError, RowError) as exc:
            if offset <= self._frontier_dead.get((topic, partition), -1):
                metrics.SKIPPED.labels(topic).inc()
                self._batcher.add_skipped(topic, partition, offset, now)
                return
            metrics.DEAD_LETTERS.labels(topic).inc()
            log.warning("undecodable message to dead_letters", extra={
                "topic": topic, "partition": partition, "offset": offset, "error": str(exc),
                "raw_head": (raw or b"")[:32].hex()})
            self._batcher.add_dead_letter(topic, partition, offset, raw or b"", str(exc), now)
            return
        self._batcher.add_row(mapper.spec.name, row, topic, partition, offset, now)

    # --- batches ---------------------------------------------------------------------------
    def _flush(self) -> bool:
        """Hand the current batch to the writer once the previous one is acknowledged and committed."""
        if not self._drain():
            return False
        for topic, count in self._consumed.items():
            metrics.MESSAGES.labels(topic).inc(count)
        self._consumed.clear()
        if self._batcher.empty:
            return True
        batch = self._batcher.take(self._topic_ids)
        if not self._fence(batch):
            return True
        metrics.BATCH_ROWS.observe(batch.row_count)
        self._inflight = (batch, self._executor.submit(self._writer.write, batch, self._give_up))
        return True

    def _fence(self, batch: Batch) -> bool:
        """Record the batch's ranges as commit metadata; False (batch dropped) if the broker refuses.

        The broker takes a commit only from the partition's current owner (group generation), so a
        refusal means the partitions moved or are moving: their new owner reads them again.
        """
        fences = [TopicPartition(t, p, first, metadata=f"{_INFLIGHT}{first}-{last}")
                  for (t, p), (first, last) in sorted(batch.offsets.items()) if (t, p) in self._assigned]
        if not fences:
            return True
        try:
            refused = [tp for tp in self._commit(fences) if tp.error]
            if refused:
                raise KafkaException(refused[0].error)
            return True
        except KafkaException as exc:
            metrics.COMMIT_ERRORS.inc()
            log.warning("partitions no longer ours (commit refused): batch dropped before its insert, "
                        "read again by their owner", extra={"error": str(exc), "partitions": len(fences)})
            for tp in fences:  # if they are still assigned after all, read them again here
                try:
                    self._consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset))
                except KafkaException:
                    pass
            return False

    def _commit(self, offsets: list[TopicPartition]) -> list[TopicPartition]:
        """Commit synchronously, but give up after ``sink.commit_timeout_s`` (raise KafkaException).

        librdkafka holds a commit while the group has no usable coordinator or is rejoining, and the
        rejoin needs this thread back in ``consume()`` to serve the rebalance: a commit waited on
        without a bound can block the sink for good (seen after a broker froze for 10 s: no rejoin
        for minutes, until the sink was killed). On a timeout the commit counts as refused; if it
        lands later, it committed offsets the next batch commits again.
        """
        future = self._committer.submit(self._consumer.commit, offsets=offsets, asynchronous=False)
        try:
            return future.result(timeout=self._sink.commit_timeout_s) or []
        except FutureTimeout:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT,
                                            f"commit not answered within {self._sink.commit_timeout_s:.0f}s")) from None

    def _drain(self) -> bool:
        """Wait for the batch in flight; commit its offsets once ClickHouse acknowledged it."""
        if self._inflight is None:
            return True
        batch, future = self._inflight
        acknowledged = future.result()
        self._inflight = None
        if not acknowledged:
            return False
        positions = batch.commit_positions()
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items() if (t, p) in self._assigned]
        if offsets:
            try:
                self._commit(offsets)
                metrics.COMMITS.inc()
            except KafkaException as exc:
                # the rows are archived; a redelivery is skipped by the frontier on reassignment
                metrics.COMMIT_ERRORS.inc()
                log.warning("offset commit failed", extra={"error": str(exc), "partitions": len(offsets)})
        self.committed_batches += 1
        log.debug("batch archived", extra={"rows": batch.row_count, "messages": batch.messages})
        return True

    # --- rebalance -------------------------------------------------------------------------
    def _refresh_topic_ids(self, topics: set[str]) -> None:
        # a new id means the topic was deleted and created again: its
        # offsets start again at 0 and must not match the archived rows of its previous life. A failed
        # lookup is retried: archiving under "" would mix incarnations and miss the frontier
        def lookup() -> dict[str, str]:
            described = self._admin.describe_topics(TopicCollection(sorted(topics)), request_timeout=15)
            return {name: str(future.result().topic_id) for name, future in described.items()}

        ids = self._until_read("the topic ids", lookup)
        changed = {t: (self._topic_ids[t], i) for t, i in ids.items() if t in self._topic_ids and self._topic_ids[t] != i}
        if changed:
            log.warning("topic recreated since last assignment", extra={"topics": changed})
        self._topic_ids.update(ids)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._refresh_topic_ids({tp.topic for tp in partitions})
        # an exception raised here leaves the sink through consume(): both reads are retried instead
        committed = self._until_read("the committed offsets", lambda: consumer.committed(partitions, timeout=10))
        starts = {(tp.topic, tp.partition): (tp.offset if tp.offset != OFFSET_INVALID and tp.offset >= 0 else 0)
                  for tp in committed}
        for tp in committed:
            taken_over = _inflight_range(tp.metadata)
            if taken_over is not None and taken_over[0] == starts[(tp.topic, tp.partition)]:
                self._replay[(tp.topic, tp.partition)] = taken_over
        rows, dead = self._until_read("the resume frontier", lambda: read_frontier(self._client, starts, self._topic_ids))
        self._frontier_rows.update(rows)
        self._frontier_dead.update(dead)
        self._assigned |= set(starts)
        self._revoked_at = None
        log.info("partitions assigned", extra={
            "partitions": sorted(f"{t}/{p}@{o}" for (t, p), o in starts.items()),
            "ranges_taken_over": {f"{t}/{p}": f"{a}-{b}" for (t, p), (a, b) in self._replay.items()},
            "already_archived": {f"{t}/{p}": o for (t, p), o in {**rows, **dead}.items()}})

    def _until_read(self, what: str, read: Callable[[], T]) -> T:
        """Return ``read()``, retried with the sink's backoff until it succeeds or the sink gives up."""
        backoff = Backoff(self._sink.retry_initial_ms / 1000, self._sink.retry_max_ms / 1000)
        attempt = 0
        while True:
            try:
                return read()
            except Exception as exc:
                log.warning(f"cannot read {what}; retrying", extra={"error": str(exc)[:300], "attempt": attempt + 1})
                if self._give_up.wait(backoff.delay(attempt)) or self._stopping.is_set():
                    raise
                attempt += 1

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revoked_at = time.monotonic()
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        # a range taken over and not read to its end cannot be archived with its token: leave it whole to the next owner
        self._batcher.drop_partitions(revoked & self._replay_incomplete())
        if not self._stopping.is_set():
            self._flush()
        self._drain()
        self._forget(revoked)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revoked_at = time.monotonic()
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, partitions: set[tuple[str, int]]) -> None:
        self._batcher.drop_partitions(partitions)
        self._assigned -= partitions
        for tp in partitions:
            self._replay.pop(tp, None)
            self._frontier_rows.pop(tp, None)
            self._frontier_dead.pop(tp, None)
        log.info("partitions revoked", extra={"partitions": sorted(f"{t}/{p}" for t, p in partitions)})

