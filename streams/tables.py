"""Per-instrument state tables (memory or RocksDB store, backed by compacted changelog topics).

Values are JSON documents of the pipelines' ``to_state()``; keys are instrument keys. Agents read
and write them through :class:`InstrumentStates`, once per instrument and batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust
import orjson
from faust.types import TableT

T = TypeVar("T")

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


class InstrumentStates(Generic[T]):
    """Decoded per-instrument states over one table.

    Decoding a state (a book, a minute of trades) costs far more than processing a record, so the
    decoded object is kept while the table still holds the bytes this worker last wrote for the key.
    When recovery or another worker changed them (a rebalance), the bytes differ and the state is
    decoded again from the table, which stays the one source of truth.
    """

    def __init__(self, table: TableT, decode: Callable[[dict[str, Any] | None], T]) -> None:
        self.table = table
        self._decode = decode
        self._cache: dict[bytes, tuple[bytes | None, T]] = {}

    def get(self, key: bytes) -> T:
        """Return the state of ``key`` (a fresh one when the table has none)."""
        raw = self.table.data.get(key)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == raw:
            return hit[1]
        obj = self._decode(orjson.loads(raw) if raw is not None else None)
        self._cache[key] = (raw, obj)
        return obj

    def save(self, partition: int, key: bytes, obj: T, state: dict[str, Any]) -> None:
        """Store ``state`` (the JSON form of ``obj``) and send it to the changelog partition of its input.

        The partition is named explicitly: a batch mixes partitions, so Faust's "partition of the
        current event" would be wrong for all but one key.
        """
        value = orjson.dumps(state)
        self.table.data[key] = value
        self.table.send_changelog(partition, key, value)
        self._cache[key] = (value, obj)
