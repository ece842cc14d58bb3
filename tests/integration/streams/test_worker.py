"""The streams worker as a real subprocess on a real broker: outputs, crash recovery, scale-out.

Each test gets a broker of its own (fresh topics and offsets), publishes the same fixed input, and
compares what the worker(s) wrote with the pure pipelines' reference over that input.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import orjson
import pytest
import requests
from confluent_kafka import Producer

from infra.broker import free_port
from infra.topics import create_topics
from schemas.topics import Topic
from streams.models.base import InputRef
from streams.pipelines.trades import TradeInstrument
from tests.integration.streams.harness import (
    FLOW_BUCKET_MS,
    LATENESS_MS,
    MS,
    OutputReader,
    complete,
    fixed_input,
    fresh_broker,
    produce,
    reference,
    same,
    start_worker,
    stop,
)

COOLDOWN_MS = 500

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def items() -> list:
    return fixed_input()


@pytest.mark.timeout(120)
def test_one_worker_writes_exactly_the_reference_outputs(tmp_path: Path, items: list) -> None:
    with fresh_broker(tmp_path) as kafka:
        # Arrange
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        reader = OutputReader(kafka)
        # Act
        port = free_port()
        worker = start_worker(kafka, "streams-one", tmp_path, "one", COOLDOWN_MS, web_port=port)
        try:
            reader.wait_for(expected, timeout_s=60)
            health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
            metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        finally:
            stop(worker)
            reader.close()
        # Assert
        assert worker.returncode == 0, (tmp_path / "worker-one.log").read_text()[-3000:]
        assert expected.signals and expected.dlq and len(expected.bars) > 20
        same(reader.out, expected)
        assert reader.out.stamps_ok
        assert health.status_code == 200 and len(health.json()["assigned"]) > 0
        assert 'tickpipe_streams_dead_letters_total{reason="undecodable"} 1.0' in metrics
        assert 'tickpipe_streams_dead_letters_total{reason="unknown_instrument"} 1.0' in metrics
        assert 'tickpipe_streams_dead_letters_total{reason="invalid_record"} 1.0' in metrics
        # no duplicates in an uninterrupted run
        assert reader.raw_counts["features.flow"] == len(expected.flow)
        assert reader.raw_counts["signals"] == len(expected.signals)


@pytest.mark.timeout(150)
def test_kill_9_part_way_then_restart_gives_the_same_signals_and_final_bars(tmp_path: Path, items: list) -> None:
    with fresh_broker(tmp_path) as kafka:
        # Arrange
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        reader = OutputReader(kafka)
        worker = start_worker(kafka, "streams-crash", tmp_path, "crash-1", COOLDOWN_MS)
        try:
            # Act: kill -9 once a fifth of the flow features are out (the worker is a little ahead)
            deadline = time.monotonic() + 60
            while len(reader.out.flow) < len(expected.flow) // 5 and time.monotonic() < deadline:
                reader.poll(0.05)
            stop(worker, signal.SIGKILL)
            seen_at_kill = len(reader.out.flow)
            worker = start_worker(kafka, "streams-crash", tmp_path, "crash-2", COOLDOWN_MS)
            reader.wait_for(expected, timeout_s=60)
        finally:
            stop(worker)
            reader.close()
        # Assert
        assert 0 < seen_at_kill < len(expected.flow), "the kill must land part-way"
        same(reader.out, expected)


@pytest.mark.timeout(150)
def test_two_workers_on_four_partitions_match_the_reference(tmp_path: Path, items: list) -> None:
    with fresh_broker(tmp_path) as kafka:
        # Arrange
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        reader = OutputReader(kafka)
        # Act
        workers = [start_worker(kafka, "streams-two", tmp_path, f"two-{i}", COOLDOWN_MS) for i in range(2)]
        try:
            reader.wait_for(expected, timeout_s=90)
        finally:
            for w in workers:
                stop(w)
            reader.close()
        # Assert
        assert complete(reader.out, expected)
        same(reader.out, expected)
        for i in range(2):
            lines = (tmp_path / f"worker-two-{i}.log").read_text().splitlines()
            assert any("newly assigned partitions" in ln and "topic='md.trades'" in ln for ln in lines), i


@pytest.mark.timeout(120)
def test_recovery_restores_the_newest_state_when_the_changelog_ends_in_a_multi_record_batch(
    tmp_path: Path, items: list
) -> None:
    """Recovery reads a changelog partition to its end, through a last batch of several records.

    Three successive states of BTCUSDT are written to the trade changelog in one record batch. If
    recovery stopped at the batch's first record it would restore the oldest of them and emit flow features
    for trades the newest state already holds; restoring the newest, the worker skips exactly those.
    """
    app_id = "streams-recover"
    with fresh_broker(tmp_path) as kafka:
        # Arrange: the states after 10, 20 and 30 BTCUSDT trades, as the worker would have saved them
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        btc = sorted(
            (p for p in landed if p.topic == Topic.TRADES and p.key == b"binance:BTCUSDT" and p.event is not None),
            key=lambda p: p.offset,
        )
        inst = TradeInstrument(LATENESS_MS * MS, FLOW_BUCKET_MS * MS)
        states, bars_before_cut = [], {}
        for n, p in enumerate(btc[:30], start=1):
            for label, bar in inst.on_trade(p.event.record).bars:
                bars_before_cut[("BTCUSDT", label, bar["start"])] = bar["version"]
            inst.mark(InputRef(p.topic, p.partition, p.offset))
            if n % 10 == 0:
                states.append(orjson.dumps(inst.to_state()))
        cut_offset, cut_trade_id = btc[29].offset, btc[29].event.record["trade_id"]
        changelog = f"{app_id}-trade-state-changelog"
        create_topics(kafka, [changelog])
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 200})
        for state in states:
            producer.produce(changelog, state, b"binance:BTCUSDT", partition=btc[0].partition)
        assert producer.flush(30) == 0
        reader = OutputReader(kafka)
        expected.flow = {
            k: v for k, v in expected.flow.items() if not (k[0] == "BTCUSDT" and k[1] <= cut_trade_id)
        }
        expected.bars = {k: v for k, v in expected.bars.items() if bars_before_cut.get(k) != v["version"]}
        skipped_dlq = {d for d in expected.dlq if d[:2] == (Topic.TRADES.value, btc[0].partition) and d[2] <= cut_offset}
        expected.dlq -= skipped_dlq
        # Act
        worker = start_worker(kafka, app_id, tmp_path, "recover", COOLDOWN_MS)
        try:
            reader.wait_for(expected, timeout_s=60)
        finally:
            stop(worker)
            reader.close()
        # Assert: what the newest state holds is not emitted again, and everything after it continues it
        assert not [k for k in reader.out.flow if k[0] == "BTCUSDT" and k[1] <= cut_trade_id]
        assert reader.out.flow == expected.flow
        assert reader.out.bars == expected.bars
        assert reader.out.signals == expected.signals
        assert reader.out.dlq - expected.dlq <= skipped_dlq


@pytest.mark.timeout(120)
def test_a_worker_whose_new_topics_are_listed_late_joins_with_every_partition_of_them(
    tmp_path: Path, items: list
) -> None:
    # Arrange: the broker lists the cross-venue topics 3 s after the worker created them (a loaded
    # broker's metadata lags its controller); Faust's assignor leaves out a topic it cannot see
    app_id = "streams-late"
    late = (f"{app_id}-cross-pairs", f"{app_id}-cross-state-changelog")
    with fresh_broker(tmp_path) as kafka:
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        reader = OutputReader(kafka)
        port = free_port()
        # Act
        worker = start_worker(
            kafka, app_id, tmp_path, "late", COOLDOWN_MS, web_port=port,
            extra_env={"TEST_LATE_TOPICS": ",".join(late), "TEST_LATE_SECONDS": "3"},
            argv=[sys.executable, "-m", "tests.integration.streams.late_topics"],
        )
        try:
            reader.wait_for(expected, timeout_s=60)
            assigned = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["assigned"]
        finally:
            stop(worker)
            reader.close()
        log = (tmp_path / "worker-late.log").read_text()
        # Assert: the worker waited for the topics to be listed and holds all of their partitions
        assert worker.returncode == 0, log[-3000:]
        assert log.count(f"Topic '{late[0]}' created") == 1  # the injection did delay it
        assert "Ignoring missing topic" not in log, log[-3000:]
        for topic in late:
            assert {f"{topic}:{p}" for p in range(4)} <= set(assigned), (topic, assigned)
        same(reader.out, expected)
