"""FeedPipeline on Binance frames from two lossy connections: records once, in order, true book."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from producers import book_sync as bs
from producers.binance.feed import BinanceSpotAdapter
from producers.health import FeedEvents
from producers.metrics import FeedMetrics
from producers.pipeline import Callbacks, FeedPipeline
from schemas.serde import AvroSerde
from schemas.topics import Topic
from tests.unit.producers.exchange_model import Truth, book_as_dicts, truths

SNAP_URL = "http://x/api/v3/depth?symbol=BTCUSDT&limit=5000"
MS = 1_000_000


def _trade(t: int) -> bytes:
    return orjson.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": 1000 + t, "s": "BTCUSDT", "t": t, "p": f"{100 + t}.10", "q": "0.5",
        "T": 1000 + t, "m": t % 2 == 0, "M": True}})


def _depth(first: int, last: int, bid: str) -> bytes:
    return orjson.dumps({"e": "depthUpdate", "E": 2000 + last, "s": "BTCUSDT", "U": first, "u": last,
                         "b": [[bid, "1.5"]], "a": [["200.00", "2"]]})


class _Run:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, str, dict[str, Any]]] = []
        self.snapshot_requests: list[str] = []
        self.replaced: list[str] = []
        self.pipeline = FeedPipeline(
            BinanceSpotAdapter(), ["BTCUSDT"], self._sink, FeedEvents("binance", "test"),
            FeedMetrics(CollectorRegistry()),
            callbacks=Callbacks(self.snapshot_requests.append, self.replaced.append, lambda c: None),
            hold_ns=100 * MS, stall_timeout_ns=1000 * MS,
        )
        self.serde = AvroSerde()

    def _sink(self, topic: str, key: bytes, name: str, record: dict[str, Any]) -> None:
        self.serde.encode(name, record)  # every record must fit its schema
        self.records.append((topic, key, name, record))

    def of(self, topic: Topic) -> list[dict[str, Any]]:
        return [r for t, _, _, r in self.records if t == topic]


def test_two_lossy_connections_give_each_trade_once_in_order_and_a_true_book() -> None:
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    p.open("c1#1", "ws://x", 0)
    now = 1 * MS
    # Arrange: c0 misses trades 4-6, c1 misses 1-2 and 8; depth diffs likewise split
    for t in range(1, 11):
        if t not in (4, 5, 6):
            p.frame("c0#1", _trade(t), now)
        if t not in (1, 2, 8):
            p.frame("c1#1", _trade(t), now + 1)
        now += MS
    for i, (first, last) in enumerate([(10, 12), (13, 15), (16, 16), (17, 20)]):
        if i != 1:
            p.frame("c0#1", _depth(first, last, f"99.{i}0"), now)
        p.frame("c1#1", _depth(first, last, f"99.{i}0"), now + 1)
        if i == 1:
            assert run.snapshot_requests == ["BTCUSDT"]
            # the snapshot (id 14) arrives while diffs keep coming: nothing is lost
            p.snapshot(SNAP_URL, orjson.dumps({"lastUpdateId": 14, "bids": [["98.00", "1"]], "asks": [["201.00", "1"]]}), now)
        now += MS
    p.tick(now + 200 * MS)
    # Assert
    trades = run.of(Topic.TRADES)
    assert [t["trade_id"] for t in trades] == list(range(1, 11))
    assert trades[0]["price"] == "101.10" and trades[0]["side"] == "buy" and trades[1]["side"] == "sell"
    deltas = run.of(Topic.BOOK)
    assert deltas[0]["snapshot"] is True and deltas[0]["last_update_id"] == 14
    assert [(d["first_update_id"], d["last_update_id"]) for d in deltas[1:]] == [(13, 15), (16, 16), (17, 20)]
    assert all(not d["snapshot"] for d in deltas[1:])
    bids, asks = p.book("BTCUSDT").book.top(5)
    assert bids == [["99.30", "1.5"], ["99.20", "1.5"], ["99.10", "1.5"], ["98.00", "1"]]
    assert asks == [["200.00", "2"], ["201.00", "1"]]
    kinds = [e["kind"] for e in run.of(Topic.HEALTH)]
    assert kinds == ["connect", "connect", "resync", "recovered"]


def gap_after_sync(p: FeedPipeline) -> None:
    """Sync BTCUSDT from snapshot 11, then lose 13-15 on every connection (the gap shows at 103 ms)."""
    p.open("c0#1", "ws://x", 0)
    p.frame("c0#1", _depth(10, 12, "99.00"), MS)
    p.snapshot(SNAP_URL, b'{"lastUpdateId": 11, "bids": [], "asks": []}', 2 * MS)
    p.frame("c0#1", _depth(16, 18, "99.50"), 3 * MS)
    p.tick(3 * MS + 100 * MS)


def test_gap_on_every_connection_publishes_gap_stale_and_resyncs_with_a_snapshot_delta() -> None:
    run = _Run()
    p = run.pipeline
    # Act: 13-15 never arrives on any connection
    gap_after_sync(p)
    # Assert
    health = run.of(Topic.HEALTH)
    gap = next(e for e in health if e["kind"] == "gap")
    assert (gap["first_update_id"], gap["last_update_id"]) == (13, 15)
    assert [e["kind"] for e in health][-3:] == ["gap", "stale", "resync"]
    assert run.snapshot_requests == ["BTCUSDT", "BTCUSDT"]
    n_deltas = len(run.of(Topic.BOOK))
    p.snapshot(SNAP_URL, b'{"lastUpdateId": 17, "bids": [["99.00","1"]], "asks": []}', 200 * MS)
    new = run.of(Topic.BOOK)[n_deltas:]
    assert new[0]["snapshot"] is True and new[1]["last_update_id"] == 18
    assert run.of(Topic.HEALTH)[-1]["kind"] == "recovered"


def test_bad_frames_and_unknown_symbols_go_to_dlq_and_the_feed_continues() -> None:
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://venue/stream", 0)
    p.frame("c0#1", b"{garbage", MS)
    p.frame("c0#1", _trade(1).replace(b"BTCUSDT", b"DOGEUSDT"), MS)
    p.frame("c0#1", _trade(2).replace(b'"102.10"', b'"1,5"'), MS)
    p.frame("c0#1", _trade(3), MS)
    dlq = run.of(Topic.DLQ)
    assert [d["raw"] for d in dlq] == [b"{garbage", _trade(1).replace(b"BTCUSDT", b"DOGEUSDT"),
                                        _trade(2).replace(b'"102.10"', b'"1,5"')]
    assert "not JSON" in dlq[0]["error"] and "unknown symbol" in dlq[1]["error"] and "invalid decimal" in dlq[2]["error"]
    assert all(d["source_topic"] == "ws://venue/stream" and d["stage"] == "feed" for d in dlq)
    assert [t["trade_id"] for t in run.of(Topic.TRADES)] == [3]
    assert p.dead_letters == 3


def test_silent_connection_is_replaced_while_its_peer_receives() -> None:
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    p.open("c1#1", "ws://x", 0)
    for i in range(1, 30):
        p.frame("c0#1", _trade(i), i * 100 * MS)
        p.tick(i * 100 * MS)
    assert run.replaced == ["c1#1"]
    assert any(e["kind"] == "stalled" and e["connection_id"] == "c1#1" for e in run.of(Topic.HEALTH))


def test_server_shutdown_asks_for_a_rollover() -> None:
    rolled: list[str] = []
    run = _Run()
    run.pipeline._cb = Callbacks(rollover_connection=rolled.append)
    run.pipeline.frame("c0#1", b'{"e":"serverShutdown","E":1}', MS)
    assert rolled == ["c0#1"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(truths(max_events=25), st.data())
def test_two_connections_with_random_losses_never_publish_a_wrong_book(truth: Truth, data: st.DataObject) -> None:
    # Arrange: two connections each lose random depth events; snapshots arrive at random points
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    p.open("c1#1", "ws://x", 0)
    frames: list[tuple[str, int]] = []
    for i in range(len(truth.diffs)):
        for conn in ("c0#1", "c1#1"):
            if data.draw(st.booleans()):
                frames.append((conn, i))
    now = MS
    book_true_at: list[int] = []
    for conn, i in frames:
        d = truth.diffs[i]
        frame = orjson.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": d.first_id, "u": d.last_id,
                              "b": d.bids, "a": d.asks})
        # Act
        p.frame(conn, frame, now)
        now += data.draw(st.sampled_from([MS, 50 * MS, 200 * MS]))
        p.tick(now)
        sync = p.book("BTCUSDT")
        if sync.state is bs.SyncState.SYNCING and data.draw(st.booleans()):
            snap = truth.snapshot_after(data.draw(st.integers(-1, i)))
            p.snapshot(SNAP_URL, orjson.dumps({"lastUpdateId": snap.last_update_id, "bids": snap.bids, "asks": snap.asks}), now)
        # Assert: whenever the book claims to be true, it is
        if sync.state is bs.SyncState.LIVE:
            assert book_as_dicts(sync.book.top()) == truth.books[sync.book.last_update_id]
            book_true_at.append(sync.book.last_update_id)
    event(f"true book reached: {bool(book_true_at)}")
    # every published delta chain (snapshot, then deltas) replays to the true book at its last id
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    for delta in run.of(Topic.BOOK):
        if delta["snapshot"]:
            bids, asks = {}, {}
        for side, levels in ((bids, delta["bids"]), (asks, delta["asks"])):
            for level in levels:
                if level["qty"].strip("0.") == "":
                    side.pop(level["price"], None)
                else:
                    side[level["price"]] = level["qty"]
        assert (bids, asks) == truth.books[delta["last_update_id"]]


def test_snapshot_without_symbol_or_unparseable_goes_to_dlq_and_is_asked_again() -> None:
    run = _Run()
    p = run.pipeline
    p.snapshot("http://x/api/v3/depth", b"{}", MS)
    p.frame("c0#1", _depth(10, 12, "99.00"), MS)
    p.snapshot(SNAP_URL, b'{"lastUpdateId": "x"}', 2 * MS)
    errors = [d["error"] for d in run.of(Topic.DLQ)]
    assert errors[0].startswith("snapshot url without symbol") and "invalid integer in lastUpdateId" in errors[1]
    assert run.snapshot_requests == ["BTCUSDT", "BTCUSDT"]
