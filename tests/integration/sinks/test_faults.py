"""Fault drills: kill -9 of the sink mid-work, ClickHouse unavailable; nothing lost, nothing doubled."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from infra.broker import free_port, private_broker
from infra.settings import KafkaSettings
from tests.integration.sinks.conftest import (
    Archive,
    ThreadedSink,
    committed_total,
    end_offsets,
    open_archive,
    produce,
    sink_env,
    tickpipe_argv,
    wait_for,
)
from tests.integration.sinks.records import T0
from tests.integration.sinks.test_analyst_queries import analyst_queries
from warehouse.process import WarehouseProcess

COUNT_QUERY = "SELECT count() FROM v_md_trades"


def _trades(count: int) -> list[dict]:
    return [{"venue": "binance", "symbol": ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3], "trade_id": i,
             "price": f"{60000 + i % 977}.{i % 100:02d}", "qty": f"0.{i % 99_999_999 + 1:08d}",
             "side": "buy" if i % 2 else "sell", "ts_event": T0 + i * 1_000_000,
             "ts_recv": T0 + i * 1_000_000 + 700}
            for i in range(count)]


def _assert_every_offset_once(archive: Archive, kafka: KafkaSettings, total: int) -> None:
    # the documented count query (docs/analysts.md, query 1): messages and missing offsets per partition
    documented = archive.client.query(analyst_queries()[0]).result_rows
    assert sum(r[2] for r in documented) == total and all(r[5] == 0 for r in documented)
    assert archive.scalar(COUNT_QUERY) == total
    ends = end_offsets(kafka, "md.trades")
    per_partition = dict(archive.client.query(
        "SELECT _partition, uniqExact(_offset) FROM v_md_trades GROUP BY _partition").result_rows)
    bounds = {p: (lo, hi) for p, lo, hi in archive.client.query(
        "SELECT _partition, min(_offset), max(_offset) FROM v_md_trades GROUP BY _partition").result_rows}
    for partition, end in ends.items():
        if end:
            assert per_partition[partition] == end and bounds[partition] == (0, end - 1), (partition, ends, per_partition, bounds)
    # the materialized views saw every message exactly once, too
    assert archive.scalar("SELECT sum(trades) FROM ohlcv_1m") == total
    assert archive.scalar("SELECT sum(records) FROM hop_latency_1m WHERE source = 'md_trades'") == total


@pytest.mark.integration
@pytest.mark.faults
@pytest.mark.timeout(240)
def test_kill_9_at_random_moments_loses_nothing_and_doubles_nothing(
    private_kafka: KafkaSettings, archive: Archive, sink_processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # Arrange
    total = 100_000
    trades = _trades(total)
    slices = [trades[i:i + 20_000] for i in range(0, total, 20_000)]
    env = sink_env(private_kafka, archive.warehouse, group_id="crash-drill", batch_max_rows=500,
                   batch_max_ms=100, consume_max_messages=500, topics="md.trades")
    rng = random.Random(5)
    log = open(tmp_path / "sink.log", "ab")  # noqa: SIM115 (kept for the subprocesses)

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*tickpipe_argv(), "sink"], env=env, stdout=log, stderr=log)
        sink_processes.append(proc)
        return proc

    # Act: four kill -9 while rows are flowing, each after a random pause once progress is seen; each
    # life gets a fresh slice and small batches (a fast sink would otherwise be idle when killed)
    killed_mid_work = 0
    for lives, part in enumerate(slices[:4], start=1):
        produce(private_kafka, "md.trades", part)
        before = archive.scalar("SELECT count() FROM md_trades")
        proc = start()
        wait_for(lambda b=before: archive.scalar("SELECT count() FROM md_trades") > b, 60, "the sink to make progress")
        time.sleep(rng.uniform(0.1, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_mid_work += archive.scalar("SELECT count() FROM v_md_trades") < lives * len(part)
    metrics_port = free_port()
    env["TICKPIPE_SINK__METRICS_PORT"] = str(metrics_port)
    produce(private_kafka, "md.trades", slices[4])
    proc = start()
    health_url = f"http://127.0.0.1:{metrics_port}/health"
    wait_for(lambda: archive.scalar(COUNT_QUERY) >= total and committed_total(
        private_kafka, "crash-drill", "md.trades") == total
        and requests.get(health_url, timeout=5).json()["assigned_partitions"] == 4, 90, "catch-up after the last restart")
    health = requests.get(health_url, timeout=5)
    exposition = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    # Assert
    assert killed_mid_work >= 2, "the sink was idle at most kills; give each life more to do"
    assert health.status_code == 200 and health.json()["ok"] is True and health.json()["assigned_partitions"] == 4
    assert 'tickpipe_sink_rows_inserted_total{table="md_trades"}' in exposition
    assert "tickpipe_sink_redelivered_skipped_total" in exposition
    _assert_every_offset_once(archive, private_kafka, total)
    raw_rows = archive.scalar("SELECT count() FROM md_trades")
    assert raw_rows == total, f"{raw_rows - total} redelivered rows reached the table"


@pytest.mark.integration
@pytest.mark.faults
@pytest.mark.timeout(200)
def test_clickhouse_paused_then_down_10s_retries_commits_nothing_then_catches_up(
    private_kafka: KafkaSettings, threaded_sink: Callable[..., ThreadedSink], tmp_path: Path
) -> None:
    # Arrange: a warehouse of this test alone, so freezing and stopping it disturbs nobody
    warehouse = WarehouseProcess(free_port(), tmp_path / "store", log_path=tmp_path / "warehouse.log").start()
    try:
        archive = open_archive(warehouse.url)
        trades = _trades(30_000)
        produce(private_kafka, "md.trades", trades[:10_000])
        sink = threaded_sink(archive, topics=["md.trades"], group_id="outage-drill", retry_initial_ms=100,
                             retry_max_ms=1_000, insert_timeout_s=3)
        wait_for(lambda: committed_total(private_kafka, "outage-drill", "md.trades") == 10_000,
                 60, "first third archived and committed")
        # Act 1: the warehouse freezes (SIGSTOP) for 8 s while trades arrive: inserts time out and are
        # retried; the frozen server may still apply the first attempt when it thaws
        warehouse.pause()
        produce(private_kafka, "md.trades", trades[10_000:20_000])
        time.sleep(8)
        paused_health = sink.loop.health()
        committed_while_paused = committed_total(private_kafka, "outage-drill", "md.trades")
        warehouse.resume()
        wait_for(lambda: committed_total(private_kafka, "outage-drill", "md.trades") == 20_000, 60,
                 "catch-up after the freeze")
        # Act 2: the warehouse is stopped for 10 s, then started again on the same data dir
        warehouse.stop()
        produce(private_kafka, "md.trades", trades[20_000:])
        time.sleep(10)
        down_health = sink.loop.health()
        committed_while_down = committed_total(private_kafka, "outage-drill", "md.trades")
        warehouse.start()
        wait_for(lambda: archive.scalar(COUNT_QUERY) == 30_000 and committed_total(
            private_kafka, "outage-drill", "md.trades") == 30_000, 60, "catch-up after the outage")
        sink.stop()
        # Assert
        assert committed_while_paused == 10_000 and committed_while_down == 20_000
        for healthy, detail in (paused_health, down_health):
            assert not healthy and detail["last_error"] and detail["retrying_s"] > 3
        _assert_every_offset_once(archive, private_kafka, 30_000)
        assert archive.scalar("SELECT count() FROM md_trades") == 30_000, "a retried insert landed twice"
    finally:
        warehouse.stop()


@pytest.mark.integration
@pytest.mark.faults
@pytest.mark.timeout(120)
def test_recreated_topic_starting_again_at_offset_0_is_archived_not_skipped(
    archive: Archive, threaded_sink_factory: Callable[..., ThreadedSink], tmp_path: Path
) -> None:
    # Arrange: a second, empty broker on the same address (a topic deleted and recreated, a new
    # cluster behind the same bootstrap): md.trades starts again at offset 0; the archive does not
    port = free_port()
    first_life, second_life = _trades(1_000), _trades(1_600)[1_000:]
    with private_broker(tmp_path / "kafka-1", port=port) as (kafka, _):
        produce(kafka, "md.trades", first_life)
        sink = threaded_sink_factory(kafka, archive, topics=["md.trades"], group_id="reset-drill")
        wait_for(lambda: committed_total(kafka, "reset-drill", "md.trades") == 1_000, 60, "first life archived")
        sink.stop()
    with private_broker(tmp_path / "kafka-2", port=port) as (kafka, _):
        produce(kafka, "md.trades", second_life)
        # Act
        sink = threaded_sink_factory(kafka, archive, topics=["md.trades"], group_id="reset-drill")
        wait_for(lambda: committed_total(kafka, "reset-drill", "md.trades") == 600, 60, "second life archived")
        sink.stop()
    # Assert: both lives archived, nothing collapsed or skipped, bars count every trade once
    assert archive.scalar(COUNT_QUERY) == 1_600
    assert archive.scalar("SELECT uniqExact(trade_id) FROM v_md_trades") == 1_600
    assert archive.scalar("SELECT uniqExact(_topic_id) FROM v_md_trades") == 2
    assert archive.scalar("SELECT sum(trades) FROM ohlcv_1m") == 1_600
