"""Fixtures of the sink's integration tests: a private broker, a fresh database, sink runners."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.broker import private_broker
from infra.settings import KafkaSettings, SinkSettings, WarehouseSettings, environ_without_settings
from infra.topics import end_offsets as topic_end_offsets
from schemas.serde import AvroSerde
from schemas.topics import RECORD_OF_TOPIC, Topic, instrument_key
from sinks.client import connect
from sinks.consumer import SinkLoop
from sinks.migrate import ensure_database, migrate
from tests import polling


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[KafkaSettings]:
    """A broker of this test alone (no other test's records in its topics), stopped by pid."""
    with private_broker(tmp_path / "kafka") as (settings, _):
        yield settings


@dataclass(frozen=True)
class Archive:
    """A fresh database on a warehouse, and a client using it."""

    warehouse: WarehouseSettings
    client: Client

    def scalar(self, sql: str) -> Any:
        return self.client.query(sql).result_rows[0][0]


def open_archive(url: str) -> Archive:
    """Create a fresh database on ``url`` with the archive tables and views."""
    warehouse = WarehouseSettings(url=url, database=f"t_{uuid.uuid4().hex[:10]}")
    ensure_database(connect(warehouse, database=None), warehouse.database)
    client = connect(warehouse)
    migrate(client, warehouse.database)
    return Archive(warehouse, client)


@pytest.fixture
def archive(warehouse_url: str) -> Iterator[Archive]:
    """A fresh database on the session's warehouse."""
    fresh = open_archive(warehouse_url)
    yield fresh
    fresh.client.command(f"DROP DATABASE IF EXISTS {fresh.warehouse.database}")
    fresh.client.close()


@pytest.fixture
def fresh_archive(warehouse_url: str) -> Iterator[Callable[[], Archive]]:
    """Open fresh databases on demand (one per hypothesis example); all dropped at the end."""
    opened: list[Archive] = []

    def open_one() -> Archive:
        opened.append(open_archive(warehouse_url))
        return opened[-1]

    yield open_one
    for archive in opened:
        archive.client.command(f"DROP DATABASE IF EXISTS {archive.warehouse.database}")
        archive.client.close()


def produce(kafka: KafkaSettings, topic: str, records: list[dict[str, Any]], raw: list[bytes] = ()) -> None:
    """Publish ``records`` (encoded as the topic's record) and ``raw`` payloads to ``topic``."""
    serde = AvroSerde()
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 20, "batch.num.messages": 10_000})
    name = RECORD_OF_TOPIC[Topic(topic)]
    for i, record in enumerate(records):
        key = instrument_key(record.get("venue", "binance"), record.get("symbol", ""))
        producer.produce(topic, serde.encode(name, record), key=key)
        if i % 10_000 == 0:
            producer.poll(0)
    for payload in raw:
        producer.produce(topic, payload, key=b"binance:BTCUSDT")
    assert producer.flush(30) == 0


def committed_total(kafka: KafkaSettings, group: str, topic: str) -> int:
    """Return the sum of ``group``'s committed offsets on ``topic`` (partitions never committed count 0)."""
    return sum(max(0, offset) for offset in committed_offsets(kafka, group, topic).values())


def committed_offsets(kafka: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    """Return the committed offset per partition of ``group`` on ``topic`` (-1001 = none)."""
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p) for p in range(kafka.partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
    finally:
        consumer.close()


def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """Return the end offset per partition of ``topic`` (ListOffsets, see infra.topics.end_offsets)."""
    ends = topic_end_offsets(kafka.bootstrap, [TopicPartition(topic, p) for p in range(kafka.partitions)])
    return {p: end for (_, p), (_, end) in ends.items()}


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.25) -> None:
    """Poll ``predicate`` until true, else fail naming ``what``; the warehouse may be briefly unavailable meanwhile."""
    polling.wait_for(predicate, timeout_s, what, interval_s, tolerate=(Exception,))


class ThreadedSink:
    """The sink loop in a thread of the test process (start, then stop() = flush, commit, close)."""

    def __init__(self, kafka: KafkaSettings, archive: Archive, sink: SinkSettings, topics: list[str]) -> None:
        self.loop = SinkLoop(kafka, sink, connect(archive.warehouse, timeout_s=sink.insert_timeout_s), topics)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run()
        except BaseException as exc:  # noqa: BLE001 (surfaced by stop())
            self.error = exc

    def start(self) -> ThreadedSink:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.loop.stop()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "sink thread did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def threaded_sink_factory() -> Iterator[Callable[..., ThreadedSink]]:
    """Start in-process sinks on any broker; every one still running is stopped at teardown."""
    started: list[ThreadedSink] = []

    def start(kafka: KafkaSettings, archive: Archive, topics: list[str] | None = None,
              **sink_fields: Any) -> ThreadedSink:
        fields = {"group_id": f"sink-{uuid.uuid4().hex[:8]}", "metrics_port": 0, "batch_max_ms": 200, **sink_fields}
        sink = ThreadedSink(kafka, archive, SinkSettings(**fields), topics or [t.value for t in Topic]).start()
        started.append(sink)
        return sink

    yield start
    for sink in started:
        if sink._thread.is_alive():
            sink.loop.stop()
            sink._thread.join(30)


@pytest.fixture
def threaded_sink(private_kafka: KafkaSettings,
                  threaded_sink_factory: Callable[..., ThreadedSink]) -> Callable[..., ThreadedSink]:
    """Start in-process sinks on the private broker; every one is stopped at teardown."""
    return lambda archive, topics=None, **fields: threaded_sink_factory(private_kafka, archive, topics, **fields)


def sink_env(kafka: KafkaSettings, warehouse: WarehouseSettings, **sink_fields: Any) -> dict[str, str]:
    """Return the environment of a ``tickpipe sink`` subprocess on ``kafka`` and ``warehouse``."""
    env = environ_without_settings()
    env.update({
        "TICKPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap,
        "TICKPIPE_WAREHOUSE__URL": warehouse.url,
        "TICKPIPE_WAREHOUSE__DATABASE": warehouse.database,
        "TICKPIPE_SINK__METRICS_PORT": "0",
    })
    env.update({f"TICKPIPE_SINK__{k.upper()}": str(v) for k, v in sink_fields.items()})
    return env


def tickpipe_argv() -> list[str]:
    """argv prefix that runs the ``tickpipe`` CLI of this virtualenv."""
    script = Path(sys.executable).parent / "tickpipe"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from infra.cli import main; main()"]


@pytest.fixture
def sink_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Track ``tickpipe sink`` subprocesses; any still running at teardown is killed by pid."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
