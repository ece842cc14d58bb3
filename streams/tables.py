"""Per-instrument state tables (memory or RocksDB store, backed by compacted changelog topics).

Values are JSON documents of the pipelines' ``to_state()``; keys are instrument keys. Agents write
once per batch with :func:`save`, naming the partition of the input explicitly: a batch mixes
partitions, so Faust's "partition of the current event" would be wrong for all but one key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import TableT

BOOK_TABLE = "book-state"
TRADE_TABLE = "trade-state"


@dataclass(frozen=True)
class StreamTables:
    """The tables of the streams app."""

    book: TableT
    trades: TableT


def declare_tables(app: faust.App, partitions: int) -> StreamTables:
    """Declare the tables; their changelogs get ``partitions`` partitions, like the source topics."""
    def table(name: str) -> TableT:
        return app.Table(
            name, default=None, partitions=partitions, key_type=bytes, value_type=bytes
        )

    return StreamTables(book=table(BOOK_TABLE), trades=table(TRADE_TABLE))


def load(table: TableT, key: bytes) -> dict[str, Any] | None:
    """Return the saved state of ``key``, or None."""
    raw = table.data.get(key)
    return orjson.loads(raw) if raw is not None else None


def save(table: TableT, partition: int, key: bytes, state: dict[str, Any]) -> None:
    """Store ``state`` locally and send it to the changelog partition of its input."""
    value = orjson.dumps(state)
    table.data[key] = value
    table.send_changelog(partition, key, value)
