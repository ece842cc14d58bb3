"""features.cross end to end: a real ``tickpipe streams worker`` on a private broker regroups three venues'
BBOs by base/quote through md.instruments; a stale venue drops out and is named; records equal a brute force,
also after a kill -9 and restart.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from schemas.serde import AvroSerde
from schemas.topics import Topic
from tests.integration.streams.harness import fresh_broker, start_worker, stop
from tests.polling import wait_for
from tests.unit.streams.cross_reference import Reference, as_view, emission_key

pytestmark = pytest.mark.integration

BTC = {"binance": "BTCUSDT", "kraken": "BTC/USDT", "coinbase": "BTC-USDT"}


def instrument(venue: str, symbol: str, base: str, quote: str) -> dict:
    now = time.time_ns()
    return {"venue": venue, "symbol": symbol, "base": base, "quote": quote, "tick_size": "0.01",
            "lot_size": "0.00001", "ts_event": now, "ts_recv": now}


def bbo(venue: str, bid: str, ask: str, uid: int, symbol: str | None = None) -> dict:
    now = time.time_ns()
    return {"venue": venue, "symbol": symbol or BTC[venue], "update_id": uid, "bid_price": bid, "bid_qty": "1.5",
            "ask_price": ask, "ask_qty": "0.25", "ts_event": now - 1000, "ts_recv": now}


def health(venue: str, kind: str, seq: int) -> dict:
    now = time.time_ns()
    return {"event_id": f"t-{seq}", "venue": venue, "symbol": BTC[venue], "kind": kind, "connection_id": "c1",
            "detail": "test", "ts_event": now, "ts_recv": now}


def records_in(url: str, topic: str) -> float:
    text = requests.get(url, timeout=2).text
    match = re.search(rf'tickpipe_streams_records_in_total\{{topic="{re.escape(topic)}"\}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


@pytest.mark.timeout(180)
def test_three_venues_consolidate_by_base_quote_and_a_stale_venue_drops_out_named(tmp_path: Path) -> None:
    serde = AvroSerde()
    with fresh_broker(tmp_path) as kafka:
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 0})
        reader = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "cross-test-reader",
                           "enable.auto.commit": False})
        reader.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in (Topic.FEATURES_CROSS.value, Topic.DLQ.value)
                       for p in range(4)])
        cross: dict[tuple[str, int, int], tuple[bytes, dict]] = {}
        dlq: dict[tuple[str, int, int], dict] = {}

        def send(topic: Topic, name: str, record: dict) -> tuple[str, int, int]:
            landed: list[tuple[str, int, int]] = []
            producer.produce(topic.value, serde.encode(name, record), f"{record['venue']}:{record['symbol']}".encode(),
                             on_delivery=lambda err, msg: landed.append((msg.topic(), msg.partition(), msg.offset())))
            producer.flush(10)
            return landed[0]

        def read() -> None:
            for msg in reader.consume(100, timeout=0.2):
                if msg.error():
                    continue
                rec = serde.decode(msg.value())[1]
                if msg.topic() == Topic.DLQ.value:
                    dlq[(rec["source_topic"], rec["partition"], rec["offset"])] = rec
                else:
                    cross[(rec["source_topic"], rec["source_partition"], rec["source_offset"])] = (msg.key(), rec)

        worker = start_worker(kafka, "streams-cross", tmp_path, "cross", 500,
                              extra_env={"TICKPIPE_STREAMS__CROSS_MAX_AGE_MS": "600000"})
        try:
            # Arrange: the three venues' definitions of BTC/USDT, and an unrelated pair
            for venue, symbol in BTC.items():
                send(Topic.INSTRUMENTS, "Instrument", instrument(venue, symbol, "BTC", "USDT"))
            send(Topic.INSTRUMENTS, "Instrument", instrument("kraken", "ETH/USD", "ETH", "USD"))
            wait_for(lambda: records_in(worker.metrics_url, Topic.INSTRUMENTS.value) >= 4, 60,
                     "the worker took the instrument definitions", tolerate=(requests.RequestException,))
            # a BBO of an instrument nobody defined: dead-lettered, nothing else happens
            unknown = send(Topic.BBO, "BBO", bbo("binance", "1", "2", 1, symbol="XRPUSDT"))
            # Act: inputs one at a time (each venue is on its own partition, so the order across venues is
            # the order we send in only if we wait for each one's effect)
            steps: list[tuple[Topic, str, dict]] = [
                (Topic.BBO, "BBO", bbo("binance", "100", "101", 10)),
                (Topic.BBO, "BBO", bbo("kraken", "100.5", "101.5", 11)),
                (Topic.BBO, "BBO", bbo("coinbase", "99", "100.9", 12)),
                (Topic.BBO, "BBO", bbo("binance", "100.7", "100.95", 13)),
                (Topic.HEALTH, "FeedEvent", health("kraken", "stale", 1)),
                (Topic.BBO, "BBO", bbo("coinbase", "100.8", "101.2", 14)),
                (Topic.BBO, "BBO", bbo("kraken", "100.9", "101", 15)),  # while stale: no change, no record
                (Topic.BBO, "BBO", bbo("binance", "100.75", "100.95", 16)),
                (Topic.HEALTH, "FeedEvent", health("kraken", "recovered", 2)),
            ]
            model = Reference(max_age_ns=600_000 * 1_000_000)
            expected: dict[tuple[str, int, int], dict | None] = {}
            last = None
            for topic, name, record in steps:
                where = send(topic, name, record)
                model.apply(topic.value, record)
                view = model.view()
                changed = view is not None and emission_key(view) != last
                expected[where] = view if changed else None
                if changed:
                    last = emission_key(view)
                    wait_for(lambda w=where: read() or w in cross, 45, f"the features.cross record of {where}")
            wait_for(lambda: read() or unknown in dlq, 20, "the unknown instrument's BBO in dlq")
            # Act 2: kill -9 and a new worker; the instrument mapping and the pair's state come back from the
            # changelogs (md.instruments is not read again once its offsets are committed)
            stop(worker, signal.SIGKILL)
            worker = start_worker(kafka, "streams-cross", tmp_path, "cross-2", 500,
                                  extra_env={"TICKPIPE_STREAMS__CROSS_MAX_AGE_MS": "600000"})
            record = bbo("coinbase", "100.95", "101.3", 17)
            where = send(Topic.BBO, "BBO", record)
            model.apply(Topic.BBO.value, record)
            expected[where] = model.view()
            wait_for(lambda: read() or where in cross, 60, "the record after the restart")
            time.sleep(1.0)
            read()
            # Assert: one record per view change, each equal to the brute force, keyed by the pair
            assert {w for w, v in expected.items() if v is not None} == set(cross)
            for where, view in expected.items():
                if view is None:
                    continue
                key, rec = cross[where]
                assert key == b"cross:BTC/USDT"
                assert (rec["venue"], rec["symbol"], rec["base"], rec["quote"]) == ("cross", "BTC/USDT", "BTC", "USDT")
                assert as_view(rec) == view, where
                assert rec["ts_emit"] >= rec["ts_recv"]
            # the stale venue is out of the view and named with its reason while stale, back after recovered
            stale_records = [cross[w][1] for w, v in expected.items() if v is not None and v["stale"]]
            assert len(stale_records) == 3
            for rec in stale_records:
                assert [(s["venue"], s["reason"]) for s in rec["stale"]] == [("kraken", "health:stale")]
                assert "kraken" not in {q["venue"] for q in rec["quotes"]}
            final = cross[list(expected)[-1]][1]
            assert final["stale"] == [] and (final["bid_price"], final["bid_venues"]) == ("100.95", "coinbase")
            assert len(final["quotes"]) == 3
            assert dlq[unknown]["error"] == "no Instrument record for binance:XRPUSDT on md.instruments"
            assert set(dlq) == {unknown}
        finally:
            stop(worker)
            reader.close()
