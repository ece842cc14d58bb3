"""The feed core keeps md.book.snapshots current: each live book whole after every (re)sync and every interval."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from producers.binance.feed import BinanceSpotAdapter
from producers.health import FeedEvents
from producers.kraken.checksum import checksum
from producers.metrics import FeedMetrics
from producers.pipeline import FeedPipeline
from producers.registry import adapter_for
from schemas.serde import AvroSerde
from schemas.topics import BOOK_SNAPSHOTS, Topic
from tests.unit.producers.test_stream_pipeline import _book

INSTRUMENT = orjson.dumps({"channel": "instrument", "type": "snapshot", "data": {"pairs": [{
    "symbol": "BTC/USD", "base": "BTC", "quote": "USD", "price_precision": 1, "qty_precision": 2,
    "price_increment": 0.1, "qty_increment": 0.01}]}})
SNAP_URL = "http://x/api/v3/depth?symbol=BTCUSDT&limit=5000"
MS = 1_000_000
S = 1_000_000_000


def _depth(first: int, last: int, bids: list[list[str]]) -> bytes:
    return orjson.dumps({"e": "depthUpdate", "E": 2000 + last, "s": "BTCUSDT", "U": first, "u": last,
                         "b": bids, "a": [["101.00", str(last)]]})


class _Run:
    def __init__(self, adapter: Any, symbol: str, interval_ns: int) -> None:
        self.records: list[tuple[str, bytes, dict[str, Any]]] = []
        self.serde = AvroSerde()
        self.pipeline = FeedPipeline(adapter, [symbol], self._sink, FeedEvents(adapter.venue, "test"),
                                     FeedMetrics(CollectorRegistry()), hold_ns=0, snapshot_interval_ns=interval_ns)

    def _sink(self, topic: str, key: bytes, name: str, record: dict[str, Any]) -> None:
        self.serde.encode(name, record, topic)  # every record must fit its schema
        self.records.append((topic, key, record))

    def snapshots(self) -> list[dict[str, Any]]:
        return [r for t, _, r in self.records if t == BOOK_SNAPSHOTS]


def _levels(record: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(lv["price"], lv["qty"]) for lv in record[side]]


def test_binance_book_is_published_whole_after_sync_then_every_interval_only_when_it_changed() -> None:
    # Arrange
    run = _Run(BinanceSpotAdapter(), "BTCUSDT", 5 * S)
    p = run.pipeline
    p.open("c0", "ws://x", 0)
    p.frame("c0", _depth(10, 12, [["99.00", "1"]]), 1 * MS)
    # Act 1: the snapshot syncs the book (the buffered diff 10-12 continues it)
    deep = [[f"{98 - i}.00", str(2 + i)] for i in range(8)]  # 98.00 down to 91.00: the whole book, not a top
    p.snapshot(SNAP_URL, orjson.dumps({"lastUpdateId": 11, "bids": deep, "asks": [["102.00", "4"]]}), 2 * MS)
    # Assert 1: one snapshot record, after the md.book snapshot and its buffered diff, at the diff's id
    assert [t for t, _, _ in run.records if t in (Topic.BOOK, BOOK_SNAPSHOTS)] == [Topic.BOOK, Topic.BOOK, BOOK_SNAPSHOTS]
    first = run.snapshots()[0]
    assert (first["snapshot"], first["first_update_id"], first["last_update_id"]) == (True, 12, 12)
    assert _levels(first, "bids") == [("99.00", "1"), *map(tuple, deep)]
    assert _levels(first, "asks") == [("101.00", "12"), ("102.00", "4")]
    assert [k for t, k, _ in run.records if t == BOOK_SNAPSHOTS] == [b"binance:BTCUSDT"] and first["ts_recv"] == 2 * MS
    # Act 2: the interval passes without a change, then a diff removes 98.00
    p.tick(2 * MS + 5 * S)
    unchanged = len(run.snapshots())
    p.frame("c0", _depth(13, 14, [["98.00", "0"]]), 6 * S)
    p.tick(6 * S + 1 * S)
    early = len(run.snapshots())
    p.tick(2 * MS + 10 * S)
    # Assert 2: nothing while unchanged or before the next due time; then the book at 14
    assert (unchanged, early) == (1, 1)
    second = run.snapshots()[-1]
    assert second["last_update_id"] == 14 and _levels(second, "bids") == [("99.00", "1"), *map(tuple, deep[1:])]
    assert second["ts_recv"] == 2 * MS + 10 * S


def test_no_snapshot_record_while_the_book_resyncs_and_one_at_once_after() -> None:
    # Arrange: a synced book, then 15-16 lost on every connection
    run = _Run(BinanceSpotAdapter(), "BTCUSDT", 1 * S)
    p = run.pipeline
    p.open("c0", "ws://x", 0)
    p.frame("c0", _depth(10, 12, [["99.00", "1"]]), 1 * MS)
    p.snapshot(SNAP_URL, b'{"lastUpdateId": 11, "bids": [], "asks": [["102.00", "4"]]}', 2 * MS)
    p.frame("c0", _depth(13, 14, [["99.50", "1"]]), 3 * MS)
    p.frame("c0", _depth(17, 18, [["99.60", "1"]]), 4 * MS)
    p.tick(5 * MS)  # the hole is given up: gap, stale, resync
    before = len(run.snapshots())
    # Act 1: intervals pass while the book is not true
    for t in range(2, 6):
        p.tick(t * S)
    # Assert 1
    assert len(run.snapshots()) == before == 1
    # Act 2: the resync's snapshot
    p.snapshot(SNAP_URL, b'{"lastUpdateId": 17, "bids": [["99.70", "5"]], "asks": [["102.00", "4"]]}', 6 * S)
    # Assert 2: published at once, whole, at the last id applied (18)
    last = run.snapshots()[-1]
    assert len(run.snapshots()) == 2 and last["last_update_id"] == 18 and last["ts_recv"] == 6 * S
    assert _levels(last, "bids") == [("99.70", "5"), ("99.60", "1")]


def test_interval_zero_publishes_no_snapshot_record() -> None:
    run = _Run(BinanceSpotAdapter(), "BTCUSDT", 0)
    p = run.pipeline
    p.open("c0", "ws://x", 0)
    p.frame("c0", _depth(10, 12, [["99.00", "1"]]), 1 * MS)
    p.snapshot(SNAP_URL, b'{"lastUpdateId": 11, "bids": [], "asks": []}', 2 * MS)
    p.tick(100 * S)
    assert run.snapshots() == [] and run.records


def test_websocket_venue_book_is_published_with_the_feeds_own_update_ids() -> None:
    # Arrange: Kraken, whose published book the feed numbers itself
    run = _Run(adapter_for("kraken"), "BTC/USD", 1 * S)
    p = run.pipeline
    p.open("c0", "ws://x/v2", 1 * S)
    p.frame("c0", INSTRUMENT, 1 * S)
    # Act
    p.frame("c0", _book("snapshot", [("100.0", "1.00")], [("101.0", "2.00")],
                        checksum([["1010", "200"]], [["1000", "100"]])), 1 * S)
    p.frame("c0", _book("update", [("100.0", "3.00")], [], checksum([["1010", "200"]], [["1000", "300"]])), 3 * S)
    p.tick(3 * S)
    # Assert: after the first book and after the interval, each at the id of the last BookDelta published
    deltas = [r for t, _, r in run.records if t == Topic.BOOK]
    snaps = run.snapshots()
    assert [s["last_update_id"] for s in snaps] == [deltas[0]["last_update_id"], deltas[1]["last_update_id"]]
    assert _levels(snaps[-1], "bids") == [("100.0", "3.00")] and _levels(snaps[-1], "asks") == [("101.0", "2.00")]
    assert all(s["venue"] == "kraken" and s["symbol"] == "BTC/USD" for s in snaps)
