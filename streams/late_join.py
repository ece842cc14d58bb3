"""Full books for a worker that joins mid-stream: seeds from md.book.snapshots and where md.book resumes.

A partition of md.book on which the worker's group has no committed offset is *joined late*: without
this, the worker would read md.book from its beginning (the whole retained history) or, once the
first snapshot has expired, have no book until the feed's next resync. Instead the transport, while it
seeks the assigned partitions (:mod:`streams.transport`), calls :meth:`LateJoin.prepare`: it reads the
feed's latest snapshot per instrument and returns, per late partition, the md.book offset to read
from (``kafka.book_snapshot_lookback_ms`` before the newest snapshot, :mod:`infra.book_snapshots`).
The book agent then takes each instrument's seed at its first md.book record of a late partition
(:meth:`LateJoin.take`) and starts the book from it (``BookInstrument.seed``).

``prepare`` runs on the consumer's thread, ``take`` on the agents' loop: the seeds are replaced as a
whole and only read or popped afterwards, which the GIL keeps atomic.
"""

from __future__ import annotations

import logging
import time

from infra.book_snapshots import SnapshotRecord, book_offsets, latest_snapshots, resume_time_ms

log = logging.getLogger(__name__)


class LateJoin:
    """Seeds of the md.book partitions this worker joined late, taken once per instrument."""

    def __init__(self, bootstrap: str, lookback_ms: int) -> None:
        self._bootstrap = bootstrap
        self._lookback_ms = lookback_ms
        self._seeds: dict[bytes, SnapshotRecord] = {}
        self._partitions: frozenset[int] = frozenset()

    def prepare(self, partitions: list[int]) -> dict[int, int]:
        """Read the latest snapshots; return where each late md.book partition is read from (empty: none known).

        Called at every seek (each rebalance): seeds of an earlier join are forgotten, since the
        partitions may have changed hands since. Blocking (Kafka reads): the transport runs it off its
        event loop. Partitions absent from the answer are read from their beginning, as before there
        were snapshots.
        """
        self._seeds, self._partitions = {}, frozenset()
        if not partitions:
            return {}
        started = time.monotonic()
        seeds = latest_snapshots(self._bootstrap)
        since_ms = resume_time_ms(seeds.values(), self._lookback_ms)
        if since_ms is None:
            log.info("joined md.book late but md.book.snapshots is empty: reading md.book from its beginning",
                     extra={"partitions": partitions})
            return {}
        offsets = book_offsets(self._bootstrap, partitions, since_ms)
        self._seeds, self._partitions = seeds, frozenset(partitions)
        log.info("joined md.book late: books start from md.book.snapshots", extra={
            "partitions": partitions, "snapshots": len(seeds), "since_ms": since_ms,
            "offsets": {str(p): offset for p, offset in offsets.items()},
            "seconds": round(time.monotonic() - started, 3),
        })
        return offsets

    def take(self, key: bytes, partition: int) -> SnapshotRecord | None:
        """Return the seed of ``key`` once, if its md.book partition was joined late (None otherwise or after)."""
        if partition not in self._partitions:
            return None
        return self._seeds.pop(key, None)
