"""md.health drives staleness end to end: no book features while stale, listed in /health, back after recovered.

The worker also reads md.bbo here (``bbo_features``): a BBO newer than the book gives features of its top.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer

from infra.broker import free_port
from schemas.serde import AvroSerde
from schemas.topics import Topic
from tests.integration.streams.harness import OutputReader, fresh_broker, start_worker, stop
from tests.polling import wait_for

KEY = b"binance:BTCUSDT"

pytestmark = pytest.mark.integration


def delta(uid: int, snapshot: bool = False) -> dict:
    now = time.time_ns()
    return {
        "venue": "binance", "symbol": "BTCUSDT", "snapshot": snapshot, "first_update_id": uid,
        "last_update_id": uid, "bids": [{"price": "100.00", "qty": str(1 + uid % 7)}],
        "asks": [{"price": "100.10", "qty": "2"}], "ts_event": now, "ts_recv": now,
    }


def health(kind: str, seq: int) -> dict:
    now = time.time_ns()
    return {"event_id": f"test-{seq}", "venue": "binance", "symbol": "BTCUSDT", "kind": kind,
            "connection_id": "c1", "detail": "test", "ts_event": now, "ts_recv": now}


@pytest.mark.timeout(90)
def test_stale_event_stops_book_features_until_recovered(tmp_path: Path) -> None:
    serde = AvroSerde()
    with fresh_broker(tmp_path) as kafka:
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 0})

        def send(topic: Topic, name: str, record: dict) -> None:
            producer.produce(topic.value, serde.encode(name, record), KEY)
            producer.flush(10)

        port = free_port()
        reader = OutputReader(kafka)
        worker = start_worker(kafka, "streams-stale", tmp_path, "stale", 500, web_port=port,
                              extra_env={"TICKPIPE_STREAMS__BBO_FEATURES": "true"})

        def stale_list() -> list[str]:
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).json()["stale"]
            except requests.RequestException:
                return ["unreachable"]

        def features_for(uids: range) -> bool:
            reader.poll(0.3)
            return all(("BTCUSDT", u) in reader.out.book for u in uids)

        try:
            # Arrange: a live book
            send(Topic.BOOK, "BookDelta", delta(1, snapshot=True))
            for uid in range(2, 6):
                send(Topic.BOOK, "BookDelta", delta(uid))
            wait_for(lambda: features_for(range(1, 6)), 45, "book features of updates 1-5")
            # Act 1: the feed declares the book stale, then updates keep coming
            send(Topic.HEALTH, "FeedEvent", health("stale", 1))
            wait_for(lambda: stale_list() == ["binance:BTCUSDT"], 15, "BTCUSDT listed stale")
            for uid in range(6, 11):
                send(Topic.BOOK, "BookDelta", delta(uid))
            time.sleep(2)
            reader.poll(1)
            # Assert 1: no features while stale
            assert not any(("BTCUSDT", u) in reader.out.book for u in range(6, 11))
            # Act 2: recovered (md.health and md.book are separate fetches, so wait for it to land)
            send(Topic.HEALTH, "FeedEvent", health("recovered", 2))
            wait_for(lambda: stale_list() == [], 15, "no instrument stale")
            for uid in range(11, 14):
                send(Topic.BOOK, "BookDelta", delta(uid))
            # Assert 2: features again
            wait_for(lambda: features_for(range(11, 14)), 20, "book features of updates 11-13")
            # Act 3: a best bid/offer newer than the book (update 14) moves the best bid up
            now = time.time_ns()
            send(Topic.BBO, "BBO", {"venue": "binance", "symbol": "BTCUSDT", "update_id": 14, "bid_price": "100.05",
                                    "bid_qty": "5", "ask_price": "100.10", "ask_qty": "2", "ts_event": now,
                                    "ts_recv": now})
            # Assert 3: features of the book under that top
            wait_for(lambda: features_for(range(14, 15)), 20, "book features of BBO update 14")
            assert reader.out.book[("BTCUSDT", 14)]["mid"] == (100.05 + 100.10) / 2
            assert reader.out.book[("BTCUSDT", 14)]["imbalance_1"] == (5 - 2) / (5 + 2)
        finally:
            stop(worker)
            reader.close()
