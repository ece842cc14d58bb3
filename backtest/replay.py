"""Read archived market data back in the order the live pipeline saw it: receive time, partition order kept.

The four market topics (``md.book``, ``md.trades``, ``md.bbo``, ``md.health``) come back as the records
their consumers decode from Kafka (the Avro dicts: decimal strings, ns integers), each with the Kafka
position it was archived from (``_topic``, ``_partition``, ``_offset``). That position is what the streams
pipeline hashes into a signal id, so a backtest of archived inputs names its signals exactly as live did.

Order: within one (topic, partition) by offset, as a Kafka consumer reads it; across partitions and topics
by ``ts_recv`` (the feed's receive time: when the live pipeline could first have seen the record). The
archive is read ``chunk_ns`` of receive time per query, so memory stays bounded by one chunk.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

# ``md.health`` first at equal receive times: a stale mark applies before the book update it came with
TOPICS = ("md.health", "md.book", "md.bbo", "md.trades")
_RANK = {topic: rank for rank, topic in enumerate(TOPICS)}
_TABLE = {"md.book": "md_book", "md.trades": "md_trades", "md.bbo": "md_bbo", "md.health": "md_health"}
_NS = "toUnixTimestamp64Nano({0}) AS {0}_ns"  # an alias named like the column would shadow it in WHERE
_COLUMNS = {
    "md.book": ("snapshot", "first_update_id", "last_update_id",
                "arrayMap(l -> (toString(l.1), toString(l.2)), bids) AS bids",
                "arrayMap(l -> (toString(l.1), toString(l.2)), asks) AS asks"),
    "md.trades": ("trade_id", "toString(price) AS price", "toString(qty) AS qty", "toString(side) AS side"),
    "md.bbo": ("update_id", "toString(bid_price) AS bid_price", "toString(bid_qty) AS bid_qty",
               "toString(ask_price) AS ask_price", "toString(ask_qty) AS ask_qty"),
    "md.health": ("event_id", "toString(kind) AS kind", "connection_id", "detail", "first_update_id",
                  "last_update_id", "count"),
}


@dataclass(frozen=True, slots=True)
class Event:
    """One archived record and where it was read from (its Kafka position)."""

    ts: int  # ts_recv, ns
    topic: str
    partition: int
    offset: int
    record: dict[str, Any]


def _from(topic: str, instruments: bool) -> str:
    where = "ts_recv >= fromUnixTimestamp64Nano({lo:Int64}) AND ts_recv < fromUnixTimestamp64Nano({hi:Int64})"
    if instruments:
        # health events of a whole connection (symbol "") reach every instrument of the venue
        symbol = "symbol = ''" if topic == "md.health" else "false"
        where += f" AND (has({{instruments:Array(String)}}, concat(venue, ':', symbol)) OR {symbol})"
    return f"FROM {_TABLE[topic]} FINAL WHERE {where}"


def _sql(topic: str, instruments: bool) -> str:
    columns = ", ".join(("toString(venue) AS venue", "toString(symbol) AS symbol", *_COLUMNS[topic],
                         _NS.format("ts_event"), _NS.format("ts_recv"), "_topic_id", "_partition", "_offset"))
    return f"SELECT {columns} {_from(topic, instruments)} ORDER BY _topic_id, _partition, _offset"


def _record(topic: str, names: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(names, row, strict=True))
    if topic == "md.book":
        record["bids"] = [{"price": p, "qty": q} for p, q in record["bids"]]
        record["asks"] = [{"price": p, "qty": q} for p, q in record["asks"]]
    return record


class ArchiveReplay:
    """Archived market data of ``[start_ns, end_ns)`` (receive time) as :class:`Event` in replay order."""

    def __init__(self, client: Client, start_ns: int, end_ns: int, instruments: list[str] | None = None,
                 chunk_ns: int = 60_000_000_000) -> None:
        self.client, self.start_ns, self.end_ns = client, start_ns, end_ns
        self.instruments = instruments or []  # "venue:SYMBOL"; empty = every instrument
        self.chunk_ns = chunk_ns

    def _chunk(self, lo: int, hi: int) -> Iterator[Event]:
        streams: list[list[Event]] = []
        params: dict[str, Any] = {"lo": lo, "hi": hi, "instruments": self.instruments}
        for topic in TOPICS:
            result = self.client.query(_sql(topic, bool(self.instruments)), parameters=params)
            names = tuple(name.removesuffix("_ns") for name in result.column_names[:-3])
            current: tuple[str, int] | None = None
            for row in result.result_rows:
                topic_id, partition, offset = row[-3:]
                if (topic_id, partition) != current:
                    current = (topic_id, partition)
                    streams.append([])
                record = _record(topic, names, row[:-3])
                streams[-1].append(Event(record["ts_recv"], topic, partition, offset, record))
        # each stream keeps its offset order; equal receive times go in TOPICS order
        yield from heapq.merge(*streams, key=lambda e: (e.ts, _RANK[e.topic]))

    def __iter__(self) -> Iterator[Event]:
        lo = self.start_ns
        while lo < self.end_ns:
            hi = min(lo + self.chunk_ns, self.end_ns)
            yield from self._chunk(lo, hi)
            lo = hi

    def warm_start(self) -> int:
        """Where to start reading so every instrument's book is whole at ``start_ns``: its last ``md.book``
        snapshot at or before ``start_ns`` (the earliest of them), else ``start_ns``."""
        where = "snapshot AND ts_recv <= fromUnixTimestamp64Nano({lo:Int64})"
        if self.instruments:
            where += " AND has({instruments:Array(String)}, concat(venue, ':', symbol))"
        rows = self.client.query(
            f"SELECT min(at) FROM (SELECT toUnixTimestamp64Nano(max(ts_recv)) AS at FROM md_book FINAL WHERE {where} "
            "GROUP BY venue, symbol)", parameters={"lo": self.start_ns, "instruments": self.instruments}).result_rows
        found = rows[0][0] if rows else None
        return int(found) if found else self.start_ns

    def count(self) -> int:
        """How many archived market records the window holds (for progress and rates)."""
        total = 0
        for topic in TOPICS:
            total += self.client.query(f"SELECT count() {_from(topic, bool(self.instruments))}", parameters={"lo": self.start_ns, "hi": self.end_ns,
                                                        "instruments": self.instruments}).result_rows[0][0]
        return total
