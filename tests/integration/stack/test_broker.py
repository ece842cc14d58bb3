"""The local Apache Kafka broker: durable across kill -9 and restart, topics with their configs, standard tools.

Each test runs a broker of its own (``private_broker``), so it may kill it and start it again on
the same data directory and port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource

from infra.broker import free_port, private_broker
from infra.settings import KafkaSettings
from infra.topics import create_topics, end_offsets, read_to_end
from schemas.serde import AvroSerde
from schemas.topics import BOOK_SNAPSHOTS, Topic

pytestmark = pytest.mark.integration
TICKPIPE = str(Path(sys.executable).with_name("tickpipe"))


def _produce(bootstrap: str, topic: str, values: list[bytes], key: bytes = b"binance:BTCUSDT") -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "compression.type": "lz4", "linger.ms": 5})
    for value in values:
        producer.produce(topic, value, key=key)
    assert producer.flush(20) == 0


def _consume(consumer: Consumer, n: int, timeout_s: float = 30.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        for msg in consumer.consume(n - len(got), 0.5):
            if msg.error() is None:
                got.append(msg.value())
    return got


@pytest.mark.timeout(120)
def test_kill_9_of_the_broker_keeps_every_acknowledged_record_and_committed_offset(tmp_path: Path) -> None:
    # Arrange: 1,000 acknowledged records; a group consumed and committed the first 400
    port, values = free_port(), [f"r{i}".encode() for i in range(1_000)]
    group = {"bootstrap.servers": "", "group.id": "survivor", "enable.auto.commit": False,
             "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
    with private_broker(tmp_path / "kafka", partitions=1, port=port) as (kafka, proc):
        _produce(kafka.bootstrap, "md.trades", values)
        consumer = Consumer({**group, "bootstrap.servers": kafka.bootstrap})
        consumer.assign([TopicPartition("md.trades", 0)])
        first = _consume(consumer, 400)
        consumer.commit(asynchronous=False)
        consumer.close()

        # Act: SIGKILL, no shutdown of any kind
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    with private_broker(tmp_path / "kafka", partitions=1, port=port) as (kafka, _):
        # Assert: every record is there once, the commit too, and the group resumes where it was
        assert [m.value() for m in read_to_end(kafka.bootstrap, "md.trades")] == values
        consumer = Consumer({**group, "bootstrap.servers": kafka.bootstrap})
        [committed] = consumer.committed([TopicPartition("md.trades", 0)], timeout=10)
        consumer.assign([TopicPartition("md.trades", 0)])
        rest = _consume(consumer, 600)
        consumer.close()
    assert first == values[:400]
    assert committed.offset == 400
    assert rest == values[400:]


@pytest.mark.timeout(60)
def test_topics_are_created_with_their_retention_and_a_changed_retention_reaches_existing_topics(
    tmp_path: Path,
) -> None:
    with private_broker(tmp_path / "kafka") as (kafka, _):
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})

        def retention(topic: str) -> str:
            resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
            return admin.describe_configs([resource])[resource].result()["retention.ms"].value

        # Arrange: private_broker created every topic with the default retention (7 days), but fills and
        # orders, which the executor's start-up positions are rebuilt from, with none
        assert retention("md.book") == str(7 * 24 * 3600 * 1000)
        assert retention("fills") == retention("orders") == "-1"

        # Act: a per-topic override, applied to the existing topics
        changed = KafkaSettings(bootstrap=kafka.bootstrap, topic_retention_ms={"md.book": 3_600_000})
        created = create_topics(changed)

        # Assert (the broker applies a config change through its metadata log: shortly after the answer)
        assert created == []
        deadline = time.monotonic() + 10
        while retention("md.book") != "3600000" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert retention("md.book") == "3600000"
        assert retention("md.trades") == str(7 * 24 * 3600 * 1000)
        assert retention("fills") == retention("orders") == "-1"  # an override of other topics keeps them
        assert end_offsets(kafka.bootstrap, [TopicPartition("md.book", 0)]) == {("md.book", 0): (0, 0)}
        # the feed's latest books: compacted (no retention), segments that roll so they can be, md.book's clock
        resource = ConfigResource(ConfigResource.Type.TOPIC, BOOK_SNAPSHOTS)
        snapshots = admin.describe_configs([resource])[resource].result()
        assert (snapshots["cleanup.policy"].value, snapshots["segment.ms"].value,
                snapshots["message.timestamp.type"].value) == ("compact", "60000", "LogAppendTime")


@pytest.mark.timeout(60)
def test_hot_path_topics_carry_the_brokers_append_time_and_the_others_the_producers(tmp_path: Path) -> None:
    with private_broker(tmp_path / "kafka") as (kafka, _):
        producer = Producer({"bootstrap.servers": kafka.bootstrap})
        old_ms = 1_000_000_000_000  # 2001: a create time no broker clock would give
        for topic in ("md.book", "signals", "features.book"):
            producer.produce(topic, b"x", key=b"k", partition=0, timestamp=old_ms)
        producer.flush(10)
        before_ms = time.time_ns() // 1_000_000 - 60_000
        consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "ts", "enable.auto.commit": False})
        stamps = {}
        for topic in ("md.book", "signals", "features.book"):
            consumer.assign([TopicPartition(topic, 0, 0)])
            msg = None
            deadline = time.monotonic() + 20
            while msg is None and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
            assert msg is not None and not msg.error(), topic
            stamps[topic] = msg.timestamp()
        consumer.close()
        for topic in ("md.book", "signals"):
            kind, ms = stamps[topic]
            assert kind == TIMESTAMP_LOG_APPEND_TIME and ms >= before_ms, (topic, stamps[topic])
        assert stamps["features.book"] == (TIMESTAMP_CREATE_TIME, old_ms)


@pytest.mark.timeout(60)
def test_kcat_lists_the_topics_and_reads_a_record(tmp_path: Path) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.skip("kcat is not installed (Debian/Ubuntu: apt-get install kcat)")
    with private_broker(tmp_path / "kafka") as (kafka, _):
        _produce(kafka.bootstrap, "dlq", [b"seen-by-kcat"])

        listing = subprocess.run([kcat, "-b", kafka.bootstrap, "-L", "-J"], capture_output=True, text=True,
                                 timeout=30, check=True)
        read = subprocess.run([kcat, "-b", kafka.bootstrap, "-C", "-t", "dlq", "-o", "beginning", "-e", "-q",
                               "-f", "%k %s\\n"], capture_output=True, text=True, timeout=30, check=True)

    topics = {t["topic"] for t in json.loads(listing.stdout)["topics"]}
    assert {t.value for t in Topic} <= topics
    assert read.stdout.splitlines() == ["binance:BTCUSDT seen-by-kcat"]


def _trade(i: int, symbol: str) -> dict:
    return {
        "venue": "binance", "symbol": symbol, "trade_id": i, "price": f"{100 + i}.5", "qty": "0.25",
        "side": "buy" if i % 2 else "sell", "ts_event": 1_700_000_000_000_000_000 + i, "ts_recv": 1_700_000_000_000_000_001 + i,
    }


def _tail(bootstrap: str, *args: str, timeout: float = 30) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKPIPE_")}
    env["TICKPIPE_KAFKA__BOOTSTRAP"] = bootstrap
    done = subprocess.run([TICKPIPE, "topics", "tail", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.timeout(90)
def test_topics_tail_prints_decoded_records_by_key_from_the_beginning_or_the_last_n(tmp_path: Path) -> None:
    serde = AvroSerde()
    with private_broker(tmp_path / "kafka", partitions=1) as (kafka, _):
        # Arrange: 6 trades of two instruments and one message that is no Avro record
        trades = [_trade(i, "BTCUSDT" if i % 3 else "ETHUSDT") for i in range(6)]
        producer = Producer({"bootstrap.servers": kafka.bootstrap})
        for trade in trades:
            producer.produce("md.trades", serde.encode("Trade", trade), key=f"binance:{trade['symbol']}".encode())
        producer.produce("md.trades", b"\x00not avro", key=b"binance:BTCUSDT")
        assert producer.flush(10) == 0

        # Act
        everything = _tail(kafka.bootstrap, "md.trades", "--from-beginning")
        eth = _tail(kafka.bootstrap, "md.trades", "--from-beginning", "--key", "binance:ETHUSDT")
        last_two = _tail(kafka.bootstrap, "md.trades", "--last", "2")

    # Assert
    assert [line["offset"] for line in everything] == list(range(7))
    assert [line["value"] for line in everything[:6]] == trades
    assert {line["record"] for line in everything[:6]} == {"Trade"}
    assert everything[6]["record"] is None and "error" in everything[6] and everything[6]["raw"]["base64"]
    assert [line["value"]["trade_id"] for line in eth] == [0, 3]
    assert all(line["key"] == "binance:ETHUSDT" for line in eth)
    assert [line["offset"] for line in last_two] == [5, 6]


@pytest.mark.timeout(90)
def test_topics_tail_follow_prints_records_produced_after_it_started_and_stops_on_sigterm(tmp_path: Path) -> None:
    serde = AvroSerde()
    with private_broker(tmp_path / "kafka", partitions=2) as (kafka, _):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKPIPE_")}
        env["TICKPIPE_KAFKA__BOOTSTRAP"] = kafka.bootstrap
        proc = subprocess.Popen([TICKPIPE, "topics", "tail", "md.trades", "--follow"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(3)  # assigned and at the end before anything is produced
            producer = Producer({"bootstrap.servers": kafka.bootstrap})
            producer.produce("md.trades", serde.encode("Trade", _trade(42, "BTCUSDT")), key=b"binance:BTCUSDT")
            assert producer.flush(10) == 0
            line = json.loads(proc.stdout.readline())
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert line["value"] == _trade(42, "BTCUSDT")
    assert rc == 0
